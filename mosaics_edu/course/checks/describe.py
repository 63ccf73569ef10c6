"""What differs, said plainly: where a wrong answer differs from the expected one, and how.

:func:`describe_difference` writes the sentence a learner reads: a wrong shape (and what it
suggests), a missing ``return``, non-finite entries, the differing positions and the largest
difference, and a pattern when one is obvious (a constant factor, a shift, a transpose, a sign,
one row only, float16 precision, an integer dtype). :func:`kind_of_difference` names the kind of
message for :class:`~mosaics_edu.course.checks.report.CheckFailed`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .arrays import as_numpy, dtype_name, fmt
from .inputs import materialise
from .tolerance import abs_diff, close, lists_as_arrays, tolerance

__all__ = ["describe_difference", "kind_of_difference"]


def describe_difference(got: Any, want: Any, tol: Any = None, dtype: str | None = None,
                        items: Sequence[str] | None = None) -> str:
    """Say where ``got`` differs from ``want``: shapes, non-finite entries, the differing positions
    (first few, as indices), the largest difference, and a pattern when one is obvious (a constant
    factor, a transpose, a sign, one row only, the wrong dtype or precision). ``items`` names the
    parts of a tuple answer ("the short-term mask") in the message."""
    got, want = lists_as_arrays(as_numpy(materialise(got)), as_numpy(materialise(want)))
    if got is None:
        return "it returned None: did you forget the `return` statement?"
    if isinstance(want, dict):
        if not isinstance(got, dict) or got.keys() != want.keys():
            keys = sorted(got) if isinstance(got, dict) else f"a {type(got).__name__}"
            return f"it returned {keys}; expected a dict with the keys {sorted(want)}."
        bad = next(k for k in want if not close(got[k], want[k]))
        return f"{bad!r} is wrong: " + describe_difference(got[bad], want[bad])
    if isinstance(got, tuple | list) and not isinstance(want, tuple | list) and np.ndim(want) > 0:
        return (f"it returned a {type(got).__name__} of {len(got)}; expected one array (a "
                f"{type(want).__name__}) of shape {np.shape(want)}.")
    if isinstance(want, tuple | list):
        if not isinstance(got, tuple | list):
            return f"it returned a {type(got).__name__}; expected a {type(want).__name__} of {len(want)}."
        if len(got) != len(want):
            return f"it returned {len(got)} items, expected {len(want)}."
        tols = tol if isinstance(tol, list) else [tol] * len(want)
        for i, (g, w, t) in enumerate(zip(got, want, tols, strict=False)):
            if not close(g, w, tol=t):
                name = items[i] if items and i < len(items) else f"item {i} of the answer"
                return f"{name} is wrong: " + describe_difference(g, w, t)
        return "the answer is wrong."
    try:
        g, w = np.asarray(got), np.asarray(want)
    except Exception:  # noqa: BLE001
        return f"got {fmt(got)}, expected {fmt(want)}."
    dtype = dtype or str(g.dtype)
    if g.shape != w.shape:
        msg = f"it returned shape {g.shape}, expected shape {w.shape}."
        if g.shape == w.shape[::-1] and g.ndim == 2:
            msg += " The axes look swapped (a transpose?)."
        elif g.size == w.size:
            msg += " Same number of entries: a reshape or axis order problem."
        elif g.ndim < w.ndim:
            msg += " An axis is missing: did you sum, index or squeeze over one you should keep?"
        elif g.ndim > w.ndim:
            msg += " An extra axis: a broadcast that went wrong, or a missing sum/squeeze?"
        return msg
    if w.dtype.kind == "b" and g.dtype.kind != "b":
        return (f"it returned {g.dtype} values where booleans (True/False) are expected: a comparison "
                "such as `lag >= 1` gives booleans; do not convert them to numbers.")
    if g.dtype.kind not in "fciub" or w.dtype.kind not in "fciub":
        return f"got {fmt(got)}, expected {fmt(want)}."
    if "c" in (g.dtype.kind, w.dtype.kind):
        d = abs_diff(g, w)
        i = tuple(int(j) for j in np.unravel_index(int(np.argmax(d)), d.shape)) if d.ndim else ()
        return f"the largest difference is {fmt(d[i])} at {fmt(i)}: got {g[i]}, expected {w[i]}."
    gf, wf = g.astype(np.float64), w.astype(np.float64)
    if gf.ndim == 0:
        hint = ""
        if wf != 0 and np.isfinite(gf) and gf != 0:
            r = float(gf / wf)
            if abs(r - round(r)) < 1e-6 or abs(1 / r - round(1 / r)) < 1e-6:
                hint = f" (your answer is {fmt(r)} times the expected one: a factor too many or missing?)"
        if dtype in ("float16", "bfloat16"):
            hint = f" (your answer is {dtype}: compute and return float32 or float64)"
        elif dtype.startswith(("int", "uint")) and w.dtype.kind == "f":
            hint = f" (your answer has the integer dtype {dtype}; the expected value is a float)"
        return f"got {fmt(gf.item())}, expected {fmt(wf.item())}{hint}."
    if not np.all(np.isfinite(gf)) and np.all(np.isfinite(wf)):
        bad = np.argwhere(~np.isfinite(gf))
        return (f"it returned inf or NaN at {len(bad)} of {gf.size} positions (first at "
                f"{_positions(bad)}): an overflow in exp? a division 0/0 or by zero?")
    if (np.isnan(wf) != np.isnan(gf)).any():
        where = np.argwhere(np.isnan(wf) != np.isnan(gf))
        return (f"at {_positions(where)} the expected value is nan where yours is not (or the other way "
                f"round): nan stands for a mean over nothing.")
    t = tolerance(w) if tol is None else tol
    d = abs_diff(g, w)
    wrong = np.argwhere(d > t)
    if len(wrong) == 0:
        return "the answer is wrong."
    i = tuple(int(j) for j in np.unravel_index(int(np.argmax(d)), d.shape))
    msg = (f"{len(wrong)} of {gf.size} entries differ, first at {_positions(wrong)}; the largest "
           f"difference is {fmt(d[i])} at {fmt(i)}: got {fmt(gf[i])}, expected {fmt(wf[i])}.")
    return msg + _pattern(gf, wf, d, t, wrong, dtype)


def kind_of_difference(got: Any, want: Any, dtype: str | None = None) -> str:
    """What a difference is, when it is more than wrong numbers: "return", "shape", "dtype"."""
    if not isinstance(got, tuple | list | dict | type(None)):
        dtype = dtype or dtype_name(got)
    got, want = lists_as_arrays(as_numpy(materialise(got)), as_numpy(materialise(want)))
    if got is None:
        return "return"
    if isinstance(want, dict):
        if not isinstance(got, dict) or got.keys() != want.keys():
            return "type"
        kinds = [kind_of_difference(got[k], w) for k, w in want.items() if not close(got[k], w)]
        return kinds[0] if kinds else "generic"
    if isinstance(got, tuple | list) and not isinstance(want, tuple | list) and np.ndim(want) > 0:
        return "type"
    if isinstance(want, tuple | list):
        if not isinstance(got, tuple | list) or len(got) != len(want):
            return "shape"
        kinds = [kind_of_difference(g, w) for g, w in zip(got, want, strict=True)
                 if not close(g, w)]
        return kinds[0] if kinds else "generic"
    try:
        g, w = np.asarray(got), np.asarray(want)
    except Exception:  # noqa: BLE001
        return "type"
    if g.shape != w.shape:
        return "shape"
    if g.dtype.kind not in "fciub" and w.dtype.kind in "fciub":
        return "type"
    if (w.dtype.kind == "b") != (g.dtype.kind == "b"):
        return "dtype"
    dtype = dtype or str(g.dtype)
    if dtype in ("float16", "bfloat16") or (dtype.startswith(("int", "uint")) and w.dtype.kind == "f"):
        return "dtype"
    return "generic"


def _positions(idx: np.ndarray, k: int = 4) -> str:
    shown = ", ".join(fmt(tuple(int(j) for j in row)) for row in idx[:k])
    return shown + (", ..." if len(idx) > k else "")


def _pattern(g: np.ndarray, w: np.ndarray, d: np.ndarray, t: Any, wrong: np.ndarray, dtype: str) -> str:
    """One sentence on what to look at, when the difference has an obvious shape."""
    with np.errstate(all="ignore"):
        scale = float(np.nanmax(np.abs(w))) or 1.0
        if dtype in ("float16", "bfloat16") and float(np.max(d)) < 0.05 * scale:
            return (f" Your answer is {dtype}: it agrees only to {dtype} precision. Compute (and "
                    "return) float32 or float64.")
        if dtype.startswith(("int", "uint", "bool")) and w.dtype.kind == "f":
            return (f" Your answer has the integer dtype {dtype}: the expected values are "
                    "floats. Did an integer array (np.zeros_like of int input?) truncate them?")
        nz = np.abs(w) > 1e-3 * scale
        if nz.any():
            ratio = g[nz] / w[nz]
            r = float(np.median(ratio))
            if np.all(np.abs(ratio - r) < 1e-6 * max(1.0, abs(r))) and abs(r - 1) > 1e-6:
                if r == -1 or abs(r + 1) < 1e-6:
                    return " Every entry has the wrong sign: a minus sign missing or extra?"
                return (f" Your answer is the expected one times {fmt(r)} everywhere: a scale "
                        "factor is missing, extra or wrong (a normalisation? a 2 or a 1/2?).")
        diff = g - w
        if np.all(np.abs(diff - diff.flat[0]) <= t):
            return f" Every entry is off by the same {fmt(float(diff.flat[0]))}: a constant shift."
        if g.ndim == 2 and g.shape[0] == g.shape[1] and np.allclose(g, w.T, rtol=1e-6, atol=1e-9):
            return " Your answer is the transpose of the expected one: swap the axes."
        if g.ndim >= 2:
            rows = np.unique(wrong[:, 0])
            if len(rows) == 1:
                which = "first" if rows[0] == 0 else ("last" if rows[0] == g.shape[0] - 1 else None)
                where = f"the {which} row" if which else f"row {int(rows[0])} alone"
                return f" Only {where} (index {int(rows[0])} on axis 0) differs."
        elif g.ndim == 1 and len(wrong) == 1:
            return f" Only entry {int(wrong[0, 0])} differs."
        if float(np.max(d)) < 1e-2 * scale:
            return (" The answer is close but not within the tolerance: a loss of precision "
                    "(float16 intermediates? subtracting nearly equal numbers?) or a small term "
                    "missing.")
    return ""
