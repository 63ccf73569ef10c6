"""Checks for chapter 00 (Start here): the warm-up exercise, a numerically stable softmax."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import compare, fail, passed

CHAPTER = "00_start_here"


def reference_softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, shifted by the row maximum so ``exp`` never overflows."""
    x = np.asarray(x, dtype=np.float64)
    z = x - x.max(axis=-1, keepdims=True)  # (..., n), every row's maximum is now 0
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _naive(x: np.ndarray) -> np.ndarray:
    e = np.exp(np.asarray(x, dtype=np.float64))
    return e / e.sum(axis=-1, keepdims=True)


def _wrong_axis(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - x.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def _global_max(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - x.max())
    return e / e.sum(axis=-1, keepdims=True)


def _unnormalised(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return np.exp(x - x.max(axis=-1, keepdims=True))


def _min_shift(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - x.min(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


SOFTMAX_CASES = [
    (np.array([1.0, 2.0, 3.0]),),
    (np.array([[-800.0, 0.0]]),),  # a wide range: exp(x - min) = exp(800) overflows
    (np.array([[1000.0, 1001.0, 1002.0], [-3.0, 0.0, 3.0]]),),  # exp(1000) overflows float64
    (np.array([[-1000.0, -1000.5], [0.0, 0.0]]),),  # exp(-1000) underflows to 0: 0/0
    (np.array([[[5.0, 1.0, 0.0, -2.0], [800.0, 0.0, -800.0, 1.0]],
               [[3.0, 3.0, 3.0, 3.0], [0.1, 0.2, 0.3, 0.4]]]),),
]

SOFTMAX_MISTAKES = {
    "computed exp(x) directly: it overflows to inf for large inputs (inf/inf = nan). "
    "Subtract each row's maximum before exp": _naive,
    "normalised over axis 0; the softmax runs over the last axis (axis=-1)": _wrong_axis,
    "subtracted the maximum of the whole array instead of each row's maximum "
    "(use x.max(axis=-1, keepdims=True)); rows far below the global maximum underflow to 0/0":
        _global_max,
    "forgot to divide by the sum: the outputs must add up to 1 along the last axis": _unnormalised,
    "subtracted the minimum instead of the maximum: exp of a large positive number overflows":
        _min_shift,
}


def check_stable_softmax(softmax: Callable[[np.ndarray], np.ndarray]) -> None:
    """Check the warm-up exercise on inputs that make the naive formula overflow or underflow."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        compare(CHAPTER, "stable_softmax", softmax, reference_softmax, SOFTMAX_CASES,
                mistakes=SOFTMAX_MISTAKES, quiet=True)
    out = np.asarray(softmax(np.array([[1e4, 0.0]])))
    if out.dtype.kind != "f":
        fail(CHAPTER, "stable_softmax", f"returned dtype {out.dtype}; probabilities are floats.")
    passed(CHAPTER, "stable_softmax")
