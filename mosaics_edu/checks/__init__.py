"""Exercise checks: compare a learner's function with the package's reference, and diagnose.

A check runs the learner's function on a few cases. When an answer is wrong it does not stop at
"wrong": it tries the *known mistakes* of that exercise (a softmax over the wrong axis, a mask off
by one, a missing normalisation, ...) and, if the learner's answer matches one of them, says which.
Every failure raises :class:`CheckFailed`, an ``AssertionError``, so ``pytest --nbval`` reports it.

Three rules hold for every check written with :func:`compare` (or :func:`call_checked`):

- **Fresh inputs.** The learner gets deep copies of each case's arguments, so an answer that
  modifies its input cannot corrupt the cases of later calls; a modified argument is itself a
  diagnosis ("your function changed its argument `keys` in place").
- **One tolerance policy** (:func:`tolerance`): relative to the scale of the expected values,
  widened by how much the reference itself moves when its inputs are rounded to float32 — so a
  correct float32 answer passes, and a float16 answer or a loss of precision is named as such.
- **Answers are materialised**: a generator or other one-shot iterator returned where a list is
  shown is turned into a list once, so it is never read twice (and found empty the second time).

Writing a new check is short::

    def check_softmax(softmax):
        x = np.array([[1000.0, 1001.0]])
        compare(
            "00_start_here", "stable_softmax", softmax, reference_softmax, [(x,)],
            mistakes={"applied over axis 0 instead of the last axis": lambda x: ...},
        )

Per-chapter checks live in ``mosaics_edu.checks.chNN``.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "CheckFailed",
    "as_numpy",
    "call_checked",
    "call_learner",
    "compare",
    "describe_difference",
    "fail",
    "fmt",
    "fresh_copy",
    "materialise",
    "passed",
    "tolerance",
]

#: Element-wise and scale-relative parts of the tolerance (float32 rounding is ~1e-7).
RTOL = 1e-5
#: How many times the reference's own float32 sensitivity an answer may differ by.
F32_FACTOR = 30.0
_EPS32 = float(np.finfo(np.float32).eps)


class CheckFailed(AssertionError):
    """An exercise check failed; the message names the chapter, the exercise and the likely cause."""


def _tag(chapter: str, exercise: str) -> str:
    return f"[chapter {chapter} · exercise '{exercise}']"


def fail(chapter: str, exercise: str, message: str) -> None:
    """Raise :class:`CheckFailed` with the chapter/exercise tag in front of ``message``."""
    raise CheckFailed(f"{_tag(chapter, exercise)} {message}")


def passed(chapter: str, exercise: str) -> None:
    """Print the one line a learner sees when an exercise is right."""
    print(f"✓ {_tag(chapter, exercise)} passed")


# --------------------------------------------------------------------------------------------
# plain numbers and arrays
# --------------------------------------------------------------------------------------------


def _is_tensor(x: Any) -> bool:
    return hasattr(x, "detach") and hasattr(x, "cpu") and hasattr(x, "dtype")


def _dtype_name(x: Any) -> str:
    """'float32', 'float16', 'bfloat16', 'int64', ... of an array, tensor or Python number."""
    if _is_tensor(x):
        return str(x.dtype).replace("torch.", "")
    return str(np.asarray(x).dtype)


def as_numpy(x: Any) -> Any:
    """Convert torch tensors (and nested tuples/lists of them) to numpy arrays; leave the rest.

    Half-precision tensors (float16, bfloat16) become float32 arrays: numpy has no bfloat16.
    """
    if isinstance(x, tuple | list):
        return type(x)(as_numpy(v) for v in x)
    if _is_tensor(x):
        t = x.detach().cpu()
        if str(t.dtype) in ("torch.bfloat16", "torch.float16"):
            t = t.float()
        return t.numpy()
    return x


def fmt(x: Any) -> str:
    """A number, index or small array written plainly: ``0.25``, ``(1, 2)``, ``[0.1 0.2]``.

    Never ``np.float64(0.25)`` or ``tensor(0.25)``: what a learner reads is the number.
    """
    x = as_numpy(x)
    if isinstance(x, bool | np.bool_):
        return str(bool(x))
    if isinstance(x, int | np.integer):
        return str(int(x))
    if isinstance(x, float | np.floating):
        return f"{float(x):.6g}"
    if isinstance(x, tuple) and all(isinstance(v, int | np.integer) for v in x):
        return "(" + ", ".join(str(int(v)) for v in x) + ")"
    if isinstance(x, np.ndarray):
        if x.ndim == 0:
            return fmt(x.item())
        return np.array2string(x, precision=4, threshold=12, edgeitems=3, max_line_width=100)
    if isinstance(x, list | tuple):
        inner = ", ".join(fmt(v) for v in x[:6]) + (", ..." if len(x) > 6 else "")
        return f"[{inner}]" if isinstance(x, list) else f"({inner})"
    return repr(x)


def _describe_input(x: Any) -> str:
    if _is_tensor(x) or isinstance(x, np.ndarray):
        kind = "tensor" if _is_tensor(x) else "array"
        return f"{kind} {tuple(int(s) for s in x.shape)} {_dtype_name(x)}"
    if isinstance(x, bool | int | float | np.number):
        return fmt(x)
    if isinstance(x, str):
        return repr(x)
    if callable(x):
        return getattr(x, "__name__", type(x).__name__)
    if isinstance(x, list | tuple):
        return f"{type(x).__name__} of {len(x)}"
    return type(x).__name__


# --------------------------------------------------------------------------------------------
# fresh copies, in-place detection, materialised answers
# --------------------------------------------------------------------------------------------


def fresh_copy(x: Any) -> Any:
    """A deep copy of a case argument: arrays, tensors (``requires_grad`` kept), lists, dicts, modules.

    Functions and other immutable objects are returned as they are.
    """
    if _is_tensor(x):
        y = x.detach().clone()
        return y.requires_grad_(bool(getattr(x, "requires_grad", False))) if y.is_floating_point() else y
    if isinstance(x, np.ndarray):
        return x.copy()
    if isinstance(x, list | tuple):
        return type(x)(fresh_copy(v) for v in x)
    if isinstance(x, dict):
        return {k: fresh_copy(v) for k, v in x.items()}
    if callable(x) and not hasattr(x, "state_dict"):
        return x  # a function: nothing to copy
    if isinstance(x, str | bytes | int | float | complex | bool | type(None) | np.generic):
        return x
    try:
        return copy.deepcopy(x)
    except Exception:  # noqa: BLE001 — an object that cannot be copied is passed as is
        return x


def _snapshot(x: Any) -> Any:
    """What is compared to tell whether an argument changed: arrays for tensors and modules."""
    if _is_tensor(x):
        return ("tensor", as_numpy(x).copy(), tuple(x.shape))
    if isinstance(x, np.ndarray):
        return ("array", x.copy(), x.shape)
    if isinstance(x, list | tuple):
        return (type(x).__name__, [_snapshot(v) for v in x])
    if isinstance(x, dict):
        return ("dict", {k: _snapshot(v) for k, v in x.items()})
    if hasattr(x, "state_dict") and callable(x.state_dict):
        try:
            return ("module", {k: as_numpy(v).copy() for k, v in x.state_dict().items()})
        except Exception:  # noqa: BLE001
            return ("opaque", id(x))
    return ("opaque", id(x))


def _same_snapshot(a: Any, b: Any) -> bool:
    if a[0] != b[0]:
        return False
    if a[0] in ("tensor", "array"):
        if a[2] != b[2]:
            return False
        x, y = a[1], b[1]
        if x.dtype.kind in "fc":
            return bool(np.array_equal(x, y, equal_nan=True))
        return bool(np.array_equal(x, y))
    if a[0] in ("list", "tuple"):
        return len(a[1]) == len(b[1]) and all(_same_snapshot(u, v) for u, v in zip(a[1], b[1], strict=True))
    if a[0] in ("dict", "module"):
        if a[1].keys() != b[1].keys():
            return False
        if a[0] == "module":
            return all(np.array_equal(a[1][k], b[1][k], equal_nan=a[1][k].dtype.kind in "fc") for k in a[1])
        return all(_same_snapshot(a[1][k], b[1][k]) for k in a[1])
    return True


def materialise(x: Any) -> Any:
    """Turn one-shot iterators (generators, ``map``, ``filter``, ``zip``) into lists, recursively.

    A generator can be read once; a check that reads an answer twice would find it empty the second
    time. Lists, tuples and dicts are rebuilt with their items materialised; arrays, tensors and
    modules are left alone.
    """
    if isinstance(x, Iterator):
        return [materialise(v) for v in x]
    if isinstance(x, list | tuple):
        return type(x)(materialise(v) for v in x)
    if isinstance(x, dict):
        return {k: materialise(v) for k, v in x.items()}
    return x


def _arg_names(fn: Callable[..., Any], n: int, declared: Sequence[str] | None) -> list[str]:
    """Names of the first ``n`` positional arguments: the learner's own, else the declared ones."""
    try:
        params = [p for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if len(params) >= n:
            return [p.name for p in params[:n]]
    except (TypeError, ValueError):
        pass
    if declared is not None and len(declared) >= n:
        return list(declared[:n])
    return [f"number {i + 1}" for i in range(n)]


def call_learner(chapter: str, exercise: str, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    """Call the learner's function, turning the stub's NotImplementedError into a clear message."""
    try:
        return fn(*args, **kw)
    except NotImplementedError:
        fail(chapter, exercise, "is not implemented yet: replace `raise NotImplementedError()` "
             "in the exercise cell with your code, run that cell, then run this check again.")
    except CheckFailed:
        raise
    except Exception as err:  # a crash in learner code is itself a diagnosis
        fail(chapter, exercise, f"your function raised {type(err).__name__}: {err}")
    return None  # unreachable


def call_checked(
    chapter: str,
    exercise: str,
    fn: Callable[..., Any],
    args: Sequence[Any],
    arg_names: Sequence[str] | None = None,
    where: str = "",
) -> Any:
    """Call the learner's ``fn`` on fresh copies of ``args``; fail if it changed any of them.

    Returns the answer with one-shot iterators materialised (see :func:`materialise`). ``where``
    ("on test case 2") is put into the message.
    """
    given = [fresh_copy(a) for a in args]
    before = [_snapshot(a) for a in given]
    try:
        got = materialise(call_learner(chapter, exercise, fn, *given))
    except CheckFailed as err:
        if where and "your function raised" in str(err):  # say on which input it crashed
            raise CheckFailed(str(err).replace("your function raised", f"{where}: your function "
                                               "raised", 1)) from None
        raise
    names = _arg_names(fn, len(args), arg_names)
    for name, b, a in zip(names, before, given, strict=True):
        if not _same_snapshot(b, _snapshot(a)):
            fail(chapter, exercise, f"{'wrong ' + where + ': ' if where else ''}your function changed its "
                 f"argument `{name}` in place; the caller still needs it. Work on a copy "
                 f"(`{name} = {name}.copy()`, or `.clone()` for a tensor) or use operations that "
                 "return new arrays (`z = x - m` instead of `x -= m`, no `out=`, no `x[...] = ...`).")
    return got


# --------------------------------------------------------------------------------------------
# the tolerance policy
# --------------------------------------------------------------------------------------------


def _round32(x: Any, rng: np.random.Generator) -> Any:
    """``x`` with every float entry moved by one float32 rounding step (random sign); same dtype."""
    if _is_tensor(x):
        if not x.is_floating_point():
            return x
        import torch

        u = torch.as_tensor(rng.choice([-1.0, 1.0], size=tuple(x.shape)), dtype=x.dtype)
        return (x.detach() * (1 + _EPS32 * u)).requires_grad_(bool(x.requires_grad))
    if isinstance(x, np.ndarray) and x.dtype.kind == "f":
        return (x * (1 + _EPS32 * rng.choice([-1.0, 1.0], size=x.shape))).astype(x.dtype)
    if isinstance(x, float) and not isinstance(x, bool):
        return x * (1 + _EPS32)
    if isinstance(x, list | tuple):
        return type(x)(_round32(v, rng) for v in x)
    return x


def tolerance(want: Any, sensitivity: Any = None) -> Any:
    """The allowed difference to ``want``, entry by entry (one array, or a list for tuples).

    ``RTOL · (|want| + scale)`` with ``scale`` the largest finite ``|want|`` (1 when all are 0),
    plus ``F32_FACTOR`` times the largest change of the reference when its inputs are rounded to
    float32 (``sensitivity``): what float32 arithmetic cannot avoid on this case.
    """
    want = as_numpy(want)
    if isinstance(want, tuple | list):
        sens = sensitivity if isinstance(sensitivity, tuple | list) else [sensitivity] * len(want)
        return [tolerance(w, s) for w, s in zip(want, sens, strict=False)]
    w = np.asarray(want)
    if w.dtype.kind == "b":  # a mask is right or wrong entry by entry: no tolerance
        return np.zeros(w.shape)
    if w.dtype.kind not in "fciu":
        return None
    a = np.abs(w.astype(np.float64)) if w.dtype.kind != "c" else np.abs(w)
    finite = a[np.isfinite(a)]
    scale = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    tol = RTOL * (np.where(np.isfinite(a), a, 0.0) + scale)
    if sensitivity is not None:
        s = np.asarray(as_numpy(sensitivity), dtype=np.float64)
        s = s[np.isfinite(s)] if s.ndim else s
        if np.size(s):
            tol = tol + F32_FACTOR * float(np.max(s))
    return tol


def _sensitivity(reference: Callable[..., Any], case: Sequence[Any], want: Any) -> Any:
    """How far the reference moves when the case's float inputs are rounded to float32."""
    rng = np.random.default_rng(0)
    try:
        with np.errstate(all="ignore"):
            moved = as_numpy(reference(*_round32([fresh_copy(a) for a in case], rng)))
        return _abs_diff(moved, want)
    except Exception:  # noqa: BLE001 — a reference that refuses rounded inputs has no probe
        return None


def _abs_diff(a: Any, b: Any) -> Any:
    a, b = as_numpy(a), as_numpy(b)
    if isinstance(a, tuple | list) and isinstance(b, tuple | list) and len(a) == len(b):
        return [_abs_diff(x, y) for x, y in zip(a, b, strict=True)]
    try:
        x, y = np.asarray(a), np.asarray(b)
        if x.shape != y.shape or x.dtype.kind not in "fciub" or y.dtype.kind not in "fciub":
            return None
        ct = np.complex128 if "c" in (x.dtype.kind, y.dtype.kind) else np.float64
        xf, yf = x.astype(ct), y.astype(ct)
        with np.errstate(invalid="ignore"):
            d = np.abs(xf - yf)
        both_nan = np.isnan(xf) & np.isnan(yf)
        same_inf = np.isinf(xf) & (xf == yf)
        return np.where(both_nan | same_inf, 0.0, d)
    except (TypeError, ValueError):
        return None


def _lists_as_arrays(a: Any, b: Any) -> tuple[Any, Any]:
    """A list of numbers compared with an array is compared as an array (and vice versa)."""
    def numeric(x: Any) -> bool:
        try:
            return isinstance(x, list | tuple) and np.asarray(x).dtype.kind in "fciub"
        except (ValueError, TypeError):
            return False

    if isinstance(b, np.ndarray | np.generic) and numeric(a):
        a = np.asarray(a)
    elif isinstance(a, np.ndarray | np.generic) and numeric(b):
        b = np.asarray(b)
    return a, b


def _close(a: Any, b: Any, rtol: float | None = None, atol: float | None = None,
           equal_nan: bool = False, tol: Any = None) -> bool:
    """``a ≈ b`` under the policy tolerance ``tol`` (see :func:`tolerance`), or explicit rtol/atol.

    Explicit ``rtol``/``atol`` (the old interface) only ever *widen* the policy's tolerance.
    """
    a, b = _lists_as_arrays(as_numpy(materialise(a)), as_numpy(materialise(b)))
    if isinstance(a, tuple | list) or isinstance(b, tuple | list):
        if not (isinstance(a, tuple | list) and isinstance(b, tuple | list)) or len(a) != len(b):
            return False
        tols = tol if isinstance(tol, list) else [tol] * len(a)
        return all(_close(x, y, rtol, atol, equal_nan, t) for x, y, t in zip(a, b, tols, strict=False))
    if isinstance(a, dict) or isinstance(b, dict):
        if not (isinstance(a, dict) and isinstance(b, dict)) or a.keys() != b.keys():
            return False
        return all(_close(a[k], b[k], rtol, atol, equal_nan) for k in a)
    try:
        x, y = np.asarray(a), np.asarray(b)
    except Exception:  # noqa: BLE001
        return a == b
    if x.shape != y.shape:
        return False
    if x.dtype.kind not in "fciub" or y.dtype.kind not in "fciub":
        return bool(np.all(x == y))
    if x.dtype.kind in "fc" or y.dtype.kind in "fc":
        t = tol if tol is not None and np.shape(tol) in ((), y.shape) else tolerance(y)
        if rtol is not None or atol is not None:
            t = np.fmax(t, (atol or 0.0) + (rtol or 0.0) * np.abs(y.astype(np.complex128)))
        ok = _abs_diff(x, y) <= t  # NaN differences are never within tolerance
        if not equal_nan:
            ok &= ~np.isnan(y.astype(np.complex128 if y.dtype.kind == "c" else np.float64))
        return bool(np.all(ok))
    return bool(np.array_equal(x, y))


# --------------------------------------------------------------------------------------------
# what differs, said plainly
# --------------------------------------------------------------------------------------------


def describe_difference(got: Any, want: Any, tol: Any = None, dtype: str | None = None) -> str:
    """Say where ``got`` differs from ``want``: shapes, non-finite entries, the differing positions
    (first few, as indices), the largest difference, and a pattern when one is obvious (a constant
    factor, a transpose, a sign, one row only, the wrong dtype or precision)."""
    got, want = _lists_as_arrays(as_numpy(materialise(got)), as_numpy(materialise(want)))
    if got is None:
        return "it returned None: did you forget the `return` statement?"
    if isinstance(want, tuple | list):
        if not isinstance(got, tuple | list):
            return f"it returned a {type(got).__name__}; expected a {type(want).__name__} of {len(want)}."
        if len(got) != len(want):
            return f"it returned {len(got)} items, expected {len(want)}."
        tols = tol if isinstance(tol, list) else [tol] * len(want)
        for i, (g, w, t) in enumerate(zip(got, want, tols, strict=False)):
            if not _close(g, w, tol=t):
                return f"item {i} of the answer is wrong: " + describe_difference(g, w, t)
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
    if g.dtype.kind not in "fciub" or w.dtype.kind not in "fciub":
        return f"got {fmt(got)}, expected {fmt(want)}."
    if "c" in (g.dtype.kind, w.dtype.kind):
        d = _abs_diff(g, w)
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
    t = tolerance(w) if tol is None else tol
    d = _abs_diff(g, w)
    wrong = np.argwhere(d > t)
    if len(wrong) == 0:
        return "the answer is wrong."
    i = tuple(int(j) for j in np.unravel_index(int(np.argmax(d)), d.shape))
    msg = (f"{len(wrong)} of {gf.size} entries differ, first at {_positions(wrong)}; the largest "
           f"difference is {fmt(d[i])} at {fmt(i)}: got {fmt(gf[i])}, expected {fmt(wf[i])}.")
    return msg + _pattern(gf, wf, d, t, wrong, dtype)


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
                return f" Only {where} (index {int(rows[0])} on axis 0) is wrong: look at that boundary."
        elif g.ndim == 1 and len(wrong) == 1:
            return f" Only entry {int(wrong[0, 0])} is wrong: look at that boundary case."
        if float(np.max(d)) < 1e-2 * scale:
            return (" The answer is close but not within the tolerance: a loss of precision "
                    "(float16 intermediates? subtracting nearly equal numbers?) or a small term "
                    "missing.")
    return ""


def _describe_case(names: Sequence[str], case: Sequence[Any]) -> str:
    return ", ".join(f"{n}={_describe_input(a)}" if not (_is_tensor(a) or isinstance(a, np.ndarray))
                     else f"{n}: {_describe_input(a)}" for n, a in zip(names, case, strict=False))


# --------------------------------------------------------------------------------------------
# compare: the one entry point most checks need
# --------------------------------------------------------------------------------------------


def compare(
    chapter: str,
    exercise: str,
    learner: Callable[..., Any],
    reference: Callable[..., Any],
    cases: Iterable[Sequence[Any]],
    mistakes: Mapping[str, Callable[..., Any]] | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    quiet: bool = False,
    *,
    arg_names: Sequence[str] | None = None,
    hint: str = "",
    float32_probe: bool = True,
) -> None:
    """Check ``learner(*case) ≈ reference(*case)`` for every case; diagnose the first mismatch.

    The learner gets fresh copies of every argument; a modified argument fails the check with its
    name (from the learner's signature, else ``arg_names``). The tolerance is :func:`tolerance`:
    relative to the expected values' scale and widened by the reference's float32 sensitivity on
    the case (``float32_probe=False`` skips that probe for an expensive reference); explicit
    ``rtol``/``atol`` can only widen it. ``mistakes`` maps a diagnosis ("normalised over the wrong
    axis") to a function that makes that mistake: when the learner's answer is wrong but equals
    one of them, the diagnosis is the message. Otherwise the message says which entries differ,
    and ``hint`` (what to look at for this exercise) is appended. Prints a pass line unless
    ``quiet``.
    """
    cases = [tuple(case) for case in cases]
    for k, case in enumerate(cases):
        want, tol = _expected(reference, case, float32_probe)
        names = _arg_names(learner, len(case), arg_names)
        where = f"on test case {k} ({_describe_case(names, case)})"
        got = call_checked(chapter, exercise, learner, case, arg_names, where=where)
        if _close(got, want, rtol, atol, tol=tol):
            continue
        for diagnosis, wrong in (mistakes or {}).items():
            if _makes(wrong, case, got, tol, rtol, atol) and _confirmed(
                    learner, wrong, reference, cases, k, rtol, atol, float32_probe):
                fail(chapter, exercise, f"wrong {where}: it looks like you {diagnosis}.")
        same_shapes = [np.shape(as_numpy(g)) for g in _leaves_raw(got)] == [
            np.shape(as_numpy(w)) for w in _leaves_raw(want)]
        ignored = same_shapes and _ignored_argument(learner, reference, cases, k, names, got, rtol, atol)
        if ignored:
            fail(chapter, exercise, f"wrong {where}: {ignored}")
        dtypes = [_dtype_name(x) for x in _leaves_raw(got)]
        dtype = dtypes[0] if len(dtypes) == 1 else None
        extra = f" {hint}" if hint else ""
        fail(chapter, exercise, f"wrong {where}: {describe_difference(got, want, tol, dtype)}{extra}")
    if not quiet:
        passed(chapter, exercise)


def _expected(reference: Callable[..., Any], case: Sequence[Any], probe: bool) -> tuple[Any, Any]:
    """The reference answer on ``case`` and the tolerance around it."""
    with np.errstate(all="ignore"):
        want = materialise(reference(*[fresh_copy(a) for a in case]))
    return want, tolerance(want, _sensitivity(reference, case, want) if probe else None)


def _makes(wrong: Callable[..., Any], case: Sequence[Any], got: Any, tol: Any, rtol: float | None,
           atol: float | None) -> bool | None:
    """Whether the mistake ``wrong`` gives ``got`` on ``case``; None when it cannot run there."""
    try:
        with np.errstate(all="ignore"):
            made = materialise(wrong(*[fresh_copy(a) for a in case]))
    except Exception:  # noqa: BLE001 — a mistake model that cannot run on this case
        return None
    return _close(got, made, rtol, atol, equal_nan=True, tol=tol)


def _confirmed(learner: Callable[..., Any], wrong: Callable[..., Any], reference: Callable[..., Any],
               cases: Sequence[Sequence[Any]], k: int, rtol: float | None, atol: float | None,
               probe: bool) -> bool:
    """A mistake is named only if the learner's answers equal it on *every* case, not just case
    ``k`` (a β of 2 makes "ignored β" look like "used β/2" on that case alone)."""
    for j, case in enumerate(cases):
        if j == k:
            continue
        try:
            with np.errstate(all="ignore"):
                got = materialise(learner(*[fresh_copy(a) for a in case]))
            if not all(np.all(np.isfinite(np.asarray(leaf, dtype=np.complex128)))
                       for leaf in _leaves_raw(as_numpy(got))):
                continue  # nan/inf on a degenerate case (λ = 0, β = 0) is not evidence either
        except Exception:  # noqa: BLE001 — the learner's crash elsewhere is not evidence
            continue
        _, tol = _expected(reference, case, probe)
        if _makes(wrong, case, got, tol, rtol, atol) is False:
            return False
    return True


def _alternatives(cases: Sequence[Sequence[Any]], k: int, i: int) -> list[Any]:
    """Other values argument ``i`` could take: a nudge of a number, the values of other cases."""
    x = cases[k][i]
    out: list[Any] = []
    for j, other in enumerate(cases):
        y = other[i] if i < len(other) else None
        if j != k and type(y) is type(x) and isinstance(y, str | float | int) and y != x:
            out.append(y)
    if not out and isinstance(x, float | int) and not isinstance(x, bool):
        out.append(x * 1.5 + 1 if isinstance(x, float) else x + 1)
    return list(dict.fromkeys(out))[:3]


def _ignored_argument(learner: Callable[..., Any], reference: Callable[..., Any],
                      cases: Sequence[Sequence[Any]], k: int, names: Sequence[str], got: Any,
                      rtol: float | None, atol: float | None) -> str:
    """Name an argument (a number or a string) the learner's answer does not depend on although
    the expected answer does: "your function ignores its argument `beta`"."""
    case = cases[k]
    for i, name in enumerate(names):
        for alt in _alternatives(cases, k, i):
            moved = tuple(alt if j == i else a for j, a in enumerate(case))
            try:
                with np.errstate(all="ignore"):
                    want_moved = materialise(reference(*[fresh_copy(a) for a in moved]))
                    got_moved = materialise(learner(*[fresh_copy(a) for a in moved]))
            except Exception:  # noqa: BLE001 — this alternative does not apply
                continue
            if _close(got_moved, got, rtol, atol, equal_nan=True) and not _close(
                    want_moved, materialise(reference(*[fresh_copy(a) for a in case])), rtol, atol):
                return (f"changing `{name}` from {fmt(case[i])} to {fmt(alt)} does not change your "
                        "answer, but it changes the expected one: your function ignores its "
                        f"argument `{name}` (a fixed number or name in its place?).")
    return ""


def _leaves_raw(x: Any) -> list[Any]:
    if isinstance(x, tuple | list):
        return [leaf for v in x for leaf in _leaves_raw(v)]
    return [x]
