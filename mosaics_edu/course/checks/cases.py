"""A check's test cases: the arguments, the regime each case is in, and how a learner sees them.

A :class:`Case` is the tuple of arguments a check calls the learner's function with, plus
``regime`` (short tags such as ``"overflow"`` that cases in the same regime share) and ``why``
(the mistake the case exists to catch, shown when it fails). When every failing case shares a
regime, the check says so ("only the cases where exp overflows fail: ..."); a chapter's tests
assert that each case really is in the regimes it is labelled with.

:func:`show_inputs` writes a failing case's inputs for the learner: in full when they are small,
with a one-line way to rebuild them from the check's case list otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["Case", "show_inputs", "regimes_of"]

_NONFINITE = re.compile(r"(?<![\w.])(-?)(inf|nan)\b")

#: Largest number of entries an array (or list) may have to be printed in full.
SMALL = 24


class Case(tuple):
    """One test case: the arguments in order, with its regimes and the mistake it exists to catch.

    ``Case(x, beta, regime="overflow", why="β·spread = 1,200: exp overflows")``; ``show`` replaces
    the automatic display of the inputs (e.g. ``"sample = Sample(...)"``) when that is clearer.
    """

    regime: tuple[str, ...]
    why: str
    show: str

    def __new__(cls, *args: Any, regime: str | Sequence[str] = (), why: str = "", show: str = "") -> Case:
        case = super().__new__(cls, args)
        case.regime = (regime,) if isinstance(regime, str) else tuple(regime)
        case.why, case.show = why, show
        return case


def regimes_of(case: Sequence[Any]) -> tuple[str, ...]:
    """The regime tags of a case (none for a plain tuple)."""
    return getattr(case, "regime", ())


def _is_tensor(x: Any) -> bool:
    return hasattr(x, "detach") and hasattr(x, "cpu") and hasattr(x, "dtype")


def _literal(x: Any) -> str | None:
    """``x`` written as Python a learner can paste, or None when it is too large or opaque."""
    if isinstance(x, str | bool | int | type(None)):
        return repr(x)
    if isinstance(x, float | np.generic):
        return _NONFINITE.sub(r"\1np.\2", repr(x.item() if isinstance(x, np.generic) else x))
    if _is_tensor(x) or isinstance(x, np.ndarray):
        arr = x.detach().cpu().float().numpy() if _is_tensor(x) and str(x.dtype) == "torch.bfloat16" \
            else (x.detach().cpu().numpy() if _is_tensor(x) else x)
        if arr.size > SMALL:
            return None
        body = _NONFINITE.sub(r"\1np.\2", repr(arr.tolist()))  # floats in full: they round-trip
        if _is_tensor(x):
            default = str(x.dtype) in ("torch.float32", "torch.int64", "torch.bool")
            return f"torch.tensor({body}{'' if default else ', dtype=' + str(x.dtype)})"
        default = arr.dtype in (np.float64, np.int64, np.bool_)
        return f"np.array({body}{'' if default else ', dtype=np.' + str(arr.dtype)})"
    if isinstance(x, list | tuple) and len(x) <= SMALL * 4:
        items = [_literal(v) for v in x]
        if all(i is not None for i in items) and sum(len(i) for i in items) <= 400:  # type: ignore[arg-type]
            inner = ", ".join(items)  # type: ignore[arg-type]
            return f"[{inner}]" if isinstance(x, list) else f"({inner}{',' if len(x) == 1 else ''})"
    return None


def _summary(x: Any) -> str:
    if _is_tensor(x) or isinstance(x, np.ndarray):
        kind = "tensor" if _is_tensor(x) else "array"
        dtype = str(x.dtype).replace("torch.", "")
        return f"<{kind} of shape {tuple(int(s) for s in x.shape)}, {dtype}>"
    if isinstance(x, list | tuple | dict):
        return f"<{type(x).__name__} of {len(x)}>"
    return f"<{type(x).__name__}>"


def show_inputs(names: Sequence[str], case: Sequence[Any], rebuild: str = "") -> str:
    """The case's inputs as lines for a message: small ones in full, and how to rebuild the rest.

    ``rebuild`` is an expression that gives the case, e.g. ``"ch01.RETRIEVE_CASES[3]"``.
    """
    shown = getattr(case, "show", "")
    parts, complete = [], True
    for name, value in zip(names, case, strict=False):
        text = _literal(value)
        complete &= text is not None
        parts.append(f"{name} = {text if text is not None else _summary(value)}")
    lines = [f"  Its inputs: {shown}" if shown else "  Its inputs: " + "; ".join(parts)]
    if rebuild and (not complete or shown):
        module = rebuild.split(".")[0]
        lines.append(f"  To rebuild them: from mosaics_edu.course.checks import {module}; "
                     f"{', '.join(names[:len(case)])}{',' if len(case) == 1 else ''} = {rebuild}")
    return "\n".join(lines)
