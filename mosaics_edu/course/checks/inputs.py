"""The learner's function called safely: fresh inputs, in-place changes named, answers materialised.

- **Fresh inputs.** :func:`call_checked` gives the learner deep copies (:func:`fresh_copy`) of a
  case's arguments, so an answer that modifies its input cannot corrupt the cases of later calls;
  a modified argument (an array, a tensor, a module, or an element of a list, tuple or dict) is
  itself a diagnosis ("your function changed its argument `keys` in place").
- **Answers are materialised** (:func:`materialise`): a generator returned where a list is shown is
  read once, into a list.
- **A stub or a crash is a message**: :func:`call_learner` turns the stub's NotImplementedError
  into "not implemented yet", and a crash into its exception and the learner's line
  (:func:`learner_line`).
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import linecache
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .arrays import as_numpy, is_tensor
from .report import CheckFailed, fail

__all__ = ["argument_names", "call_checked", "call_learner", "fresh_copy", "learner_line", "materialise"]

_CHECKS_DIR = str(Path(__file__).resolve().parent)


def fresh_copy(x: Any) -> Any:
    """A deep copy of a case argument: arrays, tensors (``requires_grad`` kept), lists, dicts, modules.

    Functions and other immutable objects are returned as they are.
    """
    if is_tensor(x):
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
    if is_tensor(x):
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


def argument_names(fn: Callable[..., Any], n: int, declared: Sequence[str] | None) -> list[str]:
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
    names = argument_names(fn, len(args), arg_names)
    for name, b, a in zip(names, before, given, strict=True):
        if not _same_snapshot(b, _snapshot(a)):
            copy_how = {list: f"`{name} = list({name})`", dict: f"`{name} = dict({name})`"}.get(
                type(a), f"`{name} = {name}.copy()`, or `.clone()` for a tensor")
            fail(chapter, exercise, f"{'wrong ' + where + ': ' if where else ''}your function changed its "
                 f"argument `{name}` in place; the caller still needs it. Work on a copy "
                 f"({copy_how}) or use operations that return new objects (`z = x - m` instead of "
                 f"`x -= m`, no `out=`, no `x[...] = ...`).{tail}", "in-place")
    return got
