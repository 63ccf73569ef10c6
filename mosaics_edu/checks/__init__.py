"""Exercise checks: compare a learner's function with the package's reference, and diagnose.

A check runs the learner's function on a few cases. When an answer is wrong it does not stop at
"wrong": it tries the *known mistakes* of that exercise (a softmax over the wrong axis, a mask off
by one, a missing normalisation, ...) and, if the learner's answer matches one of them, says which.
Every failure raises :class:`CheckFailed`, an ``AssertionError``, so ``pytest --nbval`` reports it.

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

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["CheckFailed", "as_numpy", "compare", "fail", "passed", "call_learner"]


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


def as_numpy(x: Any) -> Any:
    """Convert torch tensors (and nested tuples of them) to numpy arrays; leave the rest alone."""
    if isinstance(x, tuple | list):
        return type(x)(as_numpy(v) for v in x)
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        return x.detach().cpu().numpy()
    return x


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


def _close(a: Any, b: Any, rtol: float, atol: float, equal_nan: bool = False) -> bool:
    a, b = as_numpy(a), as_numpy(b)
    if isinstance(a, tuple | list) or isinstance(b, tuple | list):
        if not (isinstance(a, tuple | list) and isinstance(b, tuple | list)) or len(a) != len(b):
            return False
        return all(_close(x, y, rtol, atol, equal_nan) for x, y in zip(a, b, strict=True))
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    if a.dtype.kind in "fc" or b.dtype.kind in "fc":
        return bool(np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan))
    return bool(np.array_equal(a, b))


def _describe(got: Any, want: Any) -> str:
    got, want = as_numpy(got), as_numpy(want)
    g, w = np.asarray(got), np.asarray(want)
    if g.shape != w.shape:
        return f"it returned shape {g.shape}, expected shape {w.shape}."
    if g.dtype.kind in "fc" and not np.all(np.isfinite(g)):
        return "it returned inf or NaN values (an overflow? a division by zero?)."
    if g.dtype.kind in "fciu" and w.dtype.kind in "fciu":
        err = np.abs(g.astype(float) - w.astype(float))
        i = np.unravel_index(int(np.argmax(err)), err.shape) if err.ndim else ()
        return (f"the largest difference is {err.max():.3g} at index {tuple(int(j) for j in i)}: "
                f"got {g[i]!r}, expected {w[i]!r}.")
    return f"got {got!r}, expected {want!r}."


def compare(
    chapter: str,
    exercise: str,
    learner: Callable[..., Any],
    reference: Callable[..., Any],
    cases: Iterable[Sequence[Any]],
    mistakes: Mapping[str, Callable[..., Any]] | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-6,
    quiet: bool = False,
) -> None:
    """Check ``learner(*case) ≈ reference(*case)`` for every case; diagnose the first mismatch.

    ``mistakes`` maps a diagnosis ("normalised over the wrong axis") to a function that makes that
    mistake. When the learner's answer is wrong but equals one of them, the diagnosis is the message.
    Prints a pass line unless ``quiet``.
    """
    for k, case in enumerate(cases):
        want = reference(*case)
        got = call_learner(chapter, exercise, learner, *case)
        if _close(got, want, rtol, atol):
            continue
        for diagnosis, wrong in (mistakes or {}).items():
            try:
                if _close(got, wrong(*case), rtol, atol, equal_nan=True):
                    fail(chapter, exercise, f"wrong on test case {k}: it looks like you {diagnosis}.")
            except CheckFailed:
                raise
            except Exception:  # noqa: BLE001 — a mistake model that cannot run on this case
                continue
        fail(chapter, exercise, f"wrong on test case {k}: {_describe(got, want)}")
    if not quiet:
        passed(chapter, exercise)
