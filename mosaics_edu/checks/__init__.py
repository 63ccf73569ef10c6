"""Exercise checks: compare a learner's function with the package's reference, and diagnose.

A check runs the learner's function on a few cases. When an answer is wrong it does not stop at
"wrong": it tries the *known mistakes* of that exercise (a softmax over the wrong axis, a mask off
by one, a missing normalisation, ...) and, if the learner's answer matches one of them, says which.
Every failure raises :class:`CheckFailed`, an ``AssertionError``, so ``pytest --nbval`` reports it.

Three rules hold for every check written with :func:`compare` (or :func:`call_checked`):

- **Fresh inputs.** The learner gets deep copies of each case's arguments, so an answer that
  modifies its input cannot corrupt the cases of later calls; a modified argument (an array, a
  tensor, a module, or an element of a list, tuple or dict) is itself a diagnosis ("your function
  changed its argument `keys` in place").
- **One tolerance policy** (:func:`tolerance`): relative to the scale of the expected values,
  widened by how much the reference itself moves when its inputs are rounded to float32 — so a
  correct float32 answer passes, and a float16 answer or a loss of precision is named as such.
- **Answers are materialised**: a generator or other one-shot iterator returned where a list is
  shown is turned into a list once, so it is never read twice (and found empty the second time).

A wrong answer gets the most specific message that fits every case: a declared mistake (when two
fit, both are named), a shape or dtype, an ignored argument, or the regime that all failing cases
share (their :class:`~mosaics_edu.checks.cases.Case` tags: "only the cases where exp overflows
fail"); only then where and by how much it differs. Every message shows the failing case's inputs
(:func:`~mosaics_edu.checks.cases.show_inputs`). How a failure reaches the learner (raised in a
test run, printed in a notebook session, never with a traceback) is
:mod:`mosaics_edu.checks.report`.

Writing a new check is short::

    @notebook_check
    def check_softmax(softmax):
        compare(
            "00_start_here", "stable_softmax", softmax, reference_softmax,
            [Case(np.array([[1000.0, 1001.0]]), regime="overflow", why="exp(1000) overflows")],
            mistakes={"applied over axis 0 instead of the last axis": lambda x: ...},
            regimes={"overflow": "a score is so large that exp overflows: ..."},
        )

Per-chapter checks live in ``mosaics_edu.checks.chNN``.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import linecache
import traceback
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .cases import Case, regimes_of, show_inputs
from .report import CheckFailed, fail, notebook_check, passed

__all__ = [
    "Case",
    "CheckFailed",
    "as_numpy",
    "call_checked",
    "call_learner",
    "compare",
    "describe_difference",
    "fail",
    "fmt",
    "fresh_copy",
    "learner_line",
    "materialise",
    "notebook_check",
    "passed",
    "show_inputs",
    "tolerance",
]

#: Element-wise and scale-relative parts of the tolerance (float32 rounding is ~1e-7).
RTOL = 1e-5
#: How many times the reference's own float32 sensitivity an answer may differ by.
F32_FACTOR = 30.0
_EPS32 = float(np.finfo(np.float32).eps)
_CHECKS_DIR = str(Path(__file__).resolve().parent)


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
    if isinstance(x, str | bytes | int | float | complex | bool | type(None) | np.generic):
        return ("value", x)
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return ("dict", {f.name: _snapshot(getattr(x, f.name)) for f in dataclasses.fields(x)})
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
    if a[0] == "value":
        return a[1] == b[1] or (a[1] != a[1] and b[1] != b[1])  # NaN equals NaN here
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


def learner_line(err: BaseException, fn: Callable[..., Any]) -> str:
    """" (line 3 of your function: `return 1 / 0`)" for the deepest frame in the learner's file."""
    filename = getattr(getattr(fn, "__code__", None), "co_filename", None)
    frames = [f for f in traceback.extract_tb(err.__traceback__)
              if f.filename == filename or not (f.filename.startswith(_CHECKS_DIR) or "site-packages"
                                                in f.filename or f.filename.startswith("<frozen"))]
    frames = [f for f in frames if f.filename == filename] or frames[-1:]
    if not frames or frames[-1].filename.startswith(_CHECKS_DIR):
        return ""
    f = frames[-1]
    code = (f.line or linecache.getline(f.filename, f.lineno)).strip()
    where = "your function" if f.filename == filename else Path(f.filename).name
    return f" (line {f.lineno} of {where}: `{code}`)" if code else ""


def call_learner(chapter: str, exercise: str, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    """Call the learner's function, turning the stub's NotImplementedError into a clear message.

    Warnings the function raises are not shown: the check judges what it returns (a warning such
    as numpy's "mean of empty slice" on a case whose answer is nan is expected), and a warning's
    text names the kernel's temporary file, so a saved notebook would differ on every run."""
    stub, crash = False, None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*args, **kw)
    except NotImplementedError:
        stub = True
    except CheckFailed:
        raise
    except Exception as err:  # a crash in learner code is itself a diagnosis
        crash = err
    if stub:
        fail(chapter, exercise, "is not implemented yet: replace `raise NotImplementedError()` in the "
             "exercise cell with your code, run that cell, then run this check again.", "stub")
    fail(chapter, exercise, f"your function raised {type(crash).__name__}: {crash}"
         f"{learner_line(crash, fn)}", "crash")
    return None  # unreachable


def call_checked(
    chapter: str,
    exercise: str,
    fn: Callable[..., Any],
    args: Sequence[Any],
    arg_names: Sequence[str] | None = None,
    where: str = "",
    inputs: str = "",
) -> Any:
    """Call the learner's ``fn`` on fresh copies of ``args``; fail if it changed any of them.

    Returns the answer with one-shot iterators materialised (see :func:`materialise`). ``where``
    ("on test case 2") and ``inputs`` (the case's inputs, see :func:`show_inputs`) go into the
    message.
    """
    given = [fresh_copy(a) for a in args]
    before = [_snapshot(a) for a in given]
    tail = f"\n{inputs}" if inputs else ""
    try:
        got = materialise(call_learner(chapter, exercise, fn, *given))
    except CheckFailed as err:
        if where and err.kind == "crash":  # say on which input it crashed
            raise CheckFailed(str(err).replace("your function raised", f"{where}: your function "
                                               "raised", 1) + tail, "crash") from None
        raise
    names = _arg_names(fn, len(args), arg_names)
    for name, b, a in zip(names, before, given, strict=True):
        if not _same_snapshot(b, _snapshot(a)):
            copy_how = {list: f"`{name} = list({name})`", dict: f"`{name} = dict({name})`"}.get(
                type(a), f"`{name} = {name}.copy()`, or `.clone()` for a tensor")
            fail(chapter, exercise, f"{'wrong ' + where + ': ' if where else ''}your function changed its "
                 f"argument `{name}` in place; the caller still needs it. Work on a copy "
                 f"({copy_how}) or use operations that return new objects (`z = x - m` instead of "
                 f"`x -= m`, no `out=`, no `x[...] = ...`).{tail}", "in-place")
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
    elif isinstance(a, np.ndarray | np.generic) and numeric(b) and (
            isinstance(b, list) or np.shape(a) == np.shape(np.asarray(b))):
        b = np.asarray(b)  # (an expected tuple of another shape stays a tuple: the parts of the answer)
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
    if (x.dtype.kind == "b") != (y.dtype.kind == "b"):  # a mask is a boolean, not 0/1 numbers
        return False
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


def describe_difference(got: Any, want: Any, tol: Any = None, dtype: str | None = None,
                        items: Sequence[str] | None = None) -> str:
    """Say where ``got`` differs from ``want``: shapes, non-finite entries, the differing positions
    (first few, as indices), the largest difference, and a pattern when one is obvious (a constant
    factor, a transpose, a sign, one row only, the wrong dtype or precision). ``items`` names the
    parts of a tuple answer ("the short-term mask") in the message."""
    got, want = _lists_as_arrays(as_numpy(materialise(got)), as_numpy(materialise(want)))
    if got is None:
        return "it returned None: did you forget the `return` statement?"
    if isinstance(want, dict):
        if not isinstance(got, dict) or got.keys() != want.keys():
            keys = sorted(got) if isinstance(got, dict) else f"a {type(got).__name__}"
            return f"it returned {keys}; expected a dict with the keys {sorted(want)}."
        bad = next(k for k in want if not _close(got[k], want[k]))
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
            if not _close(g, w, tol=t):
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
    if (np.isnan(wf) != np.isnan(gf)).any():
        where = np.argwhere(np.isnan(wf) != np.isnan(gf))
        return (f"at {_positions(where)} the expected value is nan where yours is not (or the other way "
                f"round): nan stands for a mean over nothing.")
    t = tolerance(w) if tol is None else tol
    d = _abs_diff(g, w)
    wrong = np.argwhere(d > t)
    if len(wrong) == 0:
        return "the answer is wrong."
    i = tuple(int(j) for j in np.unravel_index(int(np.argmax(d)), d.shape))
    msg = (f"{len(wrong)} of {gf.size} entries differ, first at {_positions(wrong)}; the largest "
           f"difference is {fmt(d[i])} at {fmt(i)}: got {fmt(gf[i])}, expected {fmt(wf[i])}.")
    return msg + _pattern(gf, wf, d, t, wrong, dtype)


def _kind_of_difference(got: Any, want: Any, dtype: str | None = None) -> str:
    """What a difference is, when it is more than wrong numbers: "return", "shape", "dtype"."""
    if not isinstance(got, tuple | list | dict | type(None)):
        dtype = dtype or _dtype_name(got)
    got, want = _lists_as_arrays(as_numpy(materialise(got)), as_numpy(materialise(want)))
    if got is None:
        return "return"
    if isinstance(want, dict):
        if not isinstance(got, dict) or got.keys() != want.keys():
            return "type"
        kinds = [_kind_of_difference(got[k], w) for k, w in want.items() if not _close(got[k], w)]
        return kinds[0] if kinds else "generic"
    if isinstance(got, tuple | list) and not isinstance(want, tuple | list) and np.ndim(want) > 0:
        return "type"
    if isinstance(want, tuple | list):
        if not isinstance(got, tuple | list) or len(got) != len(want):
            return "shape"
        kinds = [_kind_of_difference(g, w) for g, w in zip(got, want, strict=True)
                 if not _close(g, w)]
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


def _where(k: int, cases: Sequence[Sequence[Any]]) -> str:
    """"on test case 3 of 10 (why it is there)"."""
    why = getattr(cases[k], "why", "")
    return f"on test case {k} of {len(cases)}" + (f" ({why})" if why else "")


def _which(ks: Sequence[int]) -> str:
    ks = [str(k) for k in ks]
    return ks[0] if len(ks) == 1 else ", ".join(ks[:-1]) + " and " + ks[-1]


def _shared_regimes(cases: Sequence[Sequence[Any]], bad: Sequence[int], regimes: Mapping[str, str]) -> list:
    """The regimes of every failing case that explain the failures best: those whose cases fail
    in the largest share (all of them, or at least half; one tag among many does not explain)."""
    shared = set.intersection(*(set(regimes_of(cases[j])) for j in bad)) & set(regimes)
    share = {r: sum(j in bad for j, c in enumerate(cases) if r in regimes_of(c))
             / sum(r in regimes_of(c) for c in cases) for r in shared}
    best = max(share.values(), default=0.0)
    return sorted(r for r, v in share.items() if v == best) if best >= 0.5 else []


def _looks_like(found: Sequence[str]) -> str:
    if len(found) == 1:
        return f"it looks like you {found[0]}."
    rest = "; or you ".join(found[1:])
    return (f"{len(found)} explanations fit every case, so look at both: you {found[0]}; or you "
            f"{rest}.")


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
    regimes: Mapping[str, str] | None = None,
    rebuild: str = "",
    items: Sequence[str] | None = None,
) -> None:
    """Check ``learner(*case) ≈ reference(*case)`` for every case; diagnose what is wrong.

    The learner gets fresh copies of every argument; a modified argument fails the check with its
    name (from the learner's signature, else ``arg_names``). The tolerance is :func:`tolerance`:
    relative to the expected values' scale and widened by the reference's float32 sensitivity on
    the case (``float32_probe=False`` skips that probe for an expensive reference); explicit
    ``rtol``/``atol`` can only widen it.

    Every case is run, then the message is the most specific that fits: the ``mistakes`` (a
    diagnosis -> a function making that mistake) that give the learner's answer on *every* case
    (all of them when several do); a wrong shape, dtype or a missing return; an argument the
    answer ignores; the regimes (tags of :class:`Case`, described in ``regimes``) shared by every
    failing case when the others pass; else where the first failing case differs, which cases fail,
    and ``hint``. ``rebuild`` ("ch01.RETRIEVE_CASES[{k}]") shows how to rebuild a case whose inputs
    are too large to print; ``items`` names the parts of a tuple answer. Prints a pass line
    unless ``quiet``.
    """
    cases = list(cases)
    names = _arg_names(learner, max(len(c) for c in cases), arg_names)
    runs: list[tuple] = []  # (answer, expected, tolerance, right); answer None and right None: a crash
    for k, case in enumerate(cases):
        want, tol = _expected(reference, case, float32_probe)
        inputs = show_inputs(names, case, rebuild.format(k=k) if rebuild else "")
        try:
            got = call_checked(chapter, exercise, learner, case, arg_names, where=_where(k, cases),
                               inputs=inputs)
        except CheckFailed as err:
            if err.kind != "crash" or all(run[3] for run in runs):
                raise  # in place, a stub, or a crash before any wrong answer: that is the message
            runs.append((None, want, tol, None))  # a crash after a wrong answer: diagnose that one
            break
        runs.append((got, want, tol, _close(got, want, rtol, atol, equal_nan=True, tol=tol)))
    bad = [k for k, run in enumerate(runs) if run[3] is False]
    if not bad:
        if not quiet:
            passed(chapter, exercise)
        return
    k = bad[0]
    got, want, tol, _ = runs[k]
    head = f"wrong {_where(k, cases)}: "
    tail = "\n" + show_inputs(names, cases[k], rebuild.format(k=k) if rebuild else "")
    found = [d for d, wrong in (mistakes or {}).items() if _explains(wrong, cases, runs, k, rtol, atol)]
    if found:
        fail(chapter, exercise, head + _looks_like(found) + tail, "mistake")
    dtypes = [_dtype_name(x) for x in _leaves_raw(got)]
    dtype = dtypes[0] if len(dtypes) == 1 else None
    described = describe_difference(got, want, tol, dtype, items)
    kind = _kind_of_difference(got, want, dtype)
    extra = f" {hint}" if hint else ""
    if kind != "generic":
        fail(chapter, exercise, head + described + (extra if kind == "shape" else "") + tail, kind)
    ignored = _ignored_argument(learner, reference, cases, runs, names, rtol, atol)
    if ignored:
        fail(chapter, exercise, head + ignored + tail, "ignored")
    which = f" It fails on test case{'s' if len(bad) > 1 else ''} {_which(bad)} of {len(cases)}"
    if len(runs) < len(cases):
        which += f" (and your function crashes on test case {len(runs) - 1}; the cases after it did not run)"
    shared = _shared_regimes(cases[:len(runs)], bad, regimes or {})
    if shared and len(bad) < len(runs):
        said = "; and ".join(regimes[r] for r in sorted(shared))  # type: ignore[index]
        fail(chapter, exercise, f"{head}{described}{which}, and only those: every failing case is one "
             f"where {said}.{tail}", "regime")
    fail(chapter, exercise, f"{head}{described}{which}.{extra}{tail}")


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


def _finite(x: Any) -> bool:
    try:
        return all(np.all(np.isfinite(np.asarray(leaf, dtype=np.complex128)))
                   for leaf in _leaves_raw(as_numpy(x)))
    except (TypeError, ValueError):
        return True


def _explains(wrong: Callable[..., Any], cases: Sequence[Sequence[Any]], runs: Sequence[tuple],
              k: int, rtol: float | None, atol: float | None) -> bool:
    """A mistake is named only if it gives the learner's answer on case ``k`` *and* on every other
    case (a β of 2 makes "ignored β" look like "used β/2" on that case alone). A case where the
    mistake cannot run, or where the learner's answer is nan/inf (a degenerate case such as λ = 0,
    β = 0), is no evidence either way."""
    if not _makes(wrong, cases[k], runs[k][0], runs[k][2], rtol, atol):
        return False
    for j, (got, _, tol, right) in enumerate(runs):
        if right is None:  # the learner's function crashed here: so must the mistake
            if _makes(wrong, cases[j], None, tol, rtol, atol) is not None:
                return False
        elif j != k and _finite(got) and _makes(wrong, cases[j], got, tol, rtol, atol) is False:
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


def _moves(fn: Callable[..., Any], case: Sequence[Any], i: int, alt: Any, base: Any, rtol: float | None,
           atol: float | None) -> bool | None:
    """Whether ``fn``'s answer changes when argument ``i`` becomes ``alt``; None if it cannot run."""
    moved = tuple(alt if j == i else a for j, a in enumerate(case))
    try:
        with np.errstate(all="ignore"):
            answer = materialise(fn(*[fresh_copy(a) for a in moved]))
    except Exception:  # noqa: BLE001 — this alternative does not apply
        return None
    if isinstance(answer, dict) and isinstance(base, dict):  # compare the entries both answers have
        common = answer.keys() & base.keys()
        answer, base = {k: answer[k] for k in common}, {k: base[k] for k in common}
    return not _close(answer, base, rtol, atol, equal_nan=True)


def _ignored_argument(learner: Callable[..., Any], reference: Callable[..., Any],
                      cases: Sequence[Sequence[Any]], runs: Sequence[tuple], names: Sequence[str],
                      rtol: float | None, atol: float | None) -> str:
    """Name an argument (a number or a string) that the learner's answer does not depend on,
    on *any* case, although the expected answer does: "your function ignores its argument
    `beta`". One case is not enough: a cap that binds there hides the argument on that case alone."""
    k = next(j for j, run in enumerate(runs) if run[3] is False)
    for i, name in enumerate(names):
        first, evidence = None, 0
        for j, case in enumerate(cases[:len(runs)]):
            if i >= len(case) or runs[j][3] is None:
                continue
            for alt in _alternatives(cases, j, i):
                if not _moves(reference, case, i, alt, runs[j][1], rtol, atol):
                    continue
                learner_moves = _moves(learner, case, i, alt, runs[j][0], rtol, atol)
                if learner_moves is None:
                    continue
                if learner_moves:
                    evidence = -1
                    break
                evidence += 1
                if first is None or j == k:
                    first = (j, alt)
            if evidence < 0:
                break
        if evidence > 0 and first is not None:
            j, alt = first
            return (f"changing `{name}` from {fmt(cases[j][i])} to {fmt(alt)} does not change your "
                    f"answer (test case {j}), but it changes the expected one, and so on every case: "
                    f"your function ignores its argument `{name}` (a fixed number or name in its "
                    "place?).")
    return ""


def _leaves_raw(x: Any) -> list[Any]:
    if isinstance(x, tuple | list):
        return [leaf for v in x for leaf in _leaves_raw(v)]
    return [x]
