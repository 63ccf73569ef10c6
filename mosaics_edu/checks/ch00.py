"""Checks for chapter 00 (Start here): the warm-up exercise, a numerically stable softmax.

The cases vary every property an answer could get away with ignoring: the number of axes
(1-D, 2-D square and non-square, 3-D), the size of the scores (overflow, underflow, ties,
``-inf`` entries of a masked score), and the dtype (float32 inputs get float32 answers).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import compare

CHAPTER = "00_start_here"

__all__ = ["check_stable_softmax", "check_weight_entropy", "reference_softmax", "reference_entropy",
           "SOFTMAX_CASES", "SOFTMAX_MISTAKES", "ENTROPY_CASES", "ENTROPY_MISTAKES"]


def reference_softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, shifted by the row maximum so ``exp`` never overflows."""
    x = np.asarray(x)
    z = x - x.max(axis=-1, keepdims=True)  # (..., n), every row's maximum is now 0
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _f64(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _naive(x: np.ndarray) -> np.ndarray:
    e = np.exp(_f64(x))
    return e / e.sum(axis=-1, keepdims=True)


def _wrong_axis(x: np.ndarray) -> np.ndarray:
    x = _f64(x)
    e = np.exp(x - x.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def _global_max(x: np.ndarray) -> np.ndarray:
    x = _f64(x)
    e = np.exp(x - x.max())
    return e / e.sum(axis=-1, keepdims=True)


def _unnormalised(x: np.ndarray) -> np.ndarray:
    x = _f64(x)
    return np.exp(x - x.max(axis=-1, keepdims=True))


def _min_shift(x: np.ndarray) -> np.ndarray:
    x = _f64(x)
    e = np.exp(x - x.min(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _no_keepdims(x: np.ndarray) -> np.ndarray:  # x.max(-1) broadcasts along the wrong axis
    x = _f64(x)
    e = np.exp(x - x.max(axis=-1))
    return e / e.sum(axis=-1)


def _whole_sum(x: np.ndarray) -> np.ndarray:
    x = _f64(x)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum()


def _mixed_shift(x: np.ndarray) -> np.ndarray:  # shifted numerator, unshifted denominator
    x = _f64(x)
    return np.exp(x - x.max(axis=-1, keepdims=True)) / np.exp(x).sum(axis=-1, keepdims=True)


def _divided_by_max(x: np.ndarray) -> np.ndarray:  # x / max instead of x - max
    x = _f64(x)
    e = np.exp(x / x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = _f64(x)
    z = x - x.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


_RNG = np.random.default_rng(0)

SOFTMAX_CASES = [
    (np.array([1.0, 2.0, 3.0]),),  # 1-D
    (np.array([[1.0, -2.0, 0.5], [0.0, 4.0, -1.0], [3.0, 3.0, -3.0]]),),  # square
    (np.array([[-800.0, 0.0]]),),  # a wide range: exp(x - min) = exp(800) overflows
    (np.array([[1000.0, 1001.0, 1002.0], [-3.0, 0.0, 3.0]]),),  # exp(1000) overflows float64
    (np.array([[-1000.0, -1000.5], [0.0, 0.0]]),),  # exp(-1000) underflows to 0: 0/0
    (np.array([[[5.0, 1.0, 0.0, -2.0], [800.0, 0.0, -800.0, 1.0]],
               [[3.0, 3.0, 3.0, 3.0], [0.1, 0.2, 0.3, 0.4]],
               [[2.0, -1.0, 0.5, 0.0], [-0.3, 0.6, 0.9, -1.2]]]),),  # 3-D, non-square
    (np.array([[0.0, -np.inf, 1.0], [2.0, 2.0, -np.inf]]),),  # -inf: a masked score weighs 0
    (_RNG.standard_normal((4, 7)).astype(np.float32) * 30,),  # float32 in, float32 out
]

SOFTMAX_MISTAKES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "computed exp(x) directly: it overflows to inf for large inputs (inf/inf = nan). "
    "Subtract each row's maximum before exp": _naive,
    "normalised over axis 0; the softmax runs over the last axis (axis=-1)": _wrong_axis,
    "subtracted the maximum of the whole array instead of each row's maximum "
    "(use x.max(axis=-1, keepdims=True)); rows far below the global maximum underflow to 0/0":
        _global_max,
    "forgot to divide by the sum: the outputs must add up to 1 along the last axis": _unnormalised,
    "subtracted the minimum instead of the maximum: exp of a large positive number overflows":
        _min_shift,
    "left out keepdims=True: x.max(axis=-1) has shape (...,) and broadcasts against the *last* "
    "axis, so each column is shifted by another row's maximum (and the sum divides the wrong "
    "entries)": _no_keepdims,
    "divided by the sum of the whole array; each row is divided by its own sum "
    "(e.sum(axis=-1, keepdims=True))": _whole_sum,
    "subtracted the maximum in the numerator but not in the denominator: shift both (or "
    "neither), the shift only cancels when it is applied to both": _mixed_shift,
    "divided the scores by their maximum instead of subtracting it: a shift leaves softmax "
    "unchanged, a division does not": _divided_by_max,
    "returned the log-softmax (log of the weights): exponentiate, the weights must lie in [0, 1]":
        _log_softmax,
}


def check_stable_softmax(softmax: Callable[[np.ndarray], np.ndarray]) -> None:
    """Check the warm-up exercise on inputs that make the naive formula overflow or underflow."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        compare(CHAPTER, "stable_softmax", softmax, reference_softmax, SOFTMAX_CASES,
                mistakes=SOFTMAX_MISTAKES, arg_names=["x"],
                hint="Each row of the answer must be non-negative and sum to 1 along the last "
                     "axis; print your answer for this input next to the expected one.")


# --------------------------------------------------------------------------------------------
# exercise 0.2: the entropy of the weights softmax(beta * scores)
# --------------------------------------------------------------------------------------------


def reference_entropy(scores: np.ndarray, beta: float) -> np.ndarray:
    """Entropy in nats of softmax(beta * scores) over the last axis, from the log-weights."""
    z = beta * np.asarray(scores, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)  # (..., n)
    log_w = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))  # (..., n), finite
    w = np.exp(log_w)
    return -np.where(w > 0, w * log_w, 0.0).sum(axis=-1)  # (...,): 0 · ln 0 counts as 0


def _weights(scores, beta):
    return reference_softmax(beta * np.asarray(scores, dtype=np.float64))


def _entropy_from_weights(scores, beta):  # 0 · ln 0 = 0 · (-inf) = nan
    w = _weights(scores, beta)
    with np.errstate(divide="ignore", invalid="ignore"):
        return -(w * np.log(w)).sum(axis=-1)


_r = np.random.default_rng(1)

ENTROPY_CASES = [
    (np.array([0.5, 2.0, -1.0, 0.0]), 1.0),  # 1-D: one number
    (_r.standard_normal((3, 5)), 0.5),  # non-square
    (_r.standard_normal((4, 4)) * 2, 2.0),  # square: an axis mistake still shows
    (_r.standard_normal((2, 6)), 0.0),  # β = 0: uniform weights, ln n
    (np.array([[0.0, 10.0, 3.0], [1.0, 1.0, -9.0]]), 100.0),  # weights underflow to exactly 0
    (_r.standard_normal((2, 3, 6)), 1.5),  # 3-D
    (_r.standard_normal((5, 7)).astype(np.float32), 0.7),  # float32
    (np.array([[3.0], [-2.0]]), 1.0),  # one item: entropy 0
]

ENTROPY_MISTAKES: dict[str, Callable] = {
    "computed w · ln w from the weights: a weight that underflows to 0 gives 0 · ln 0 = "
    "0 · (-inf) = nan. Use the log-weights (z - max - ln Σ exp), which stay finite, or count the "
    "terms with w = 0 as 0": _entropy_from_weights,
    "used log2 (bits); the course measures entropy in nats, with the natural log":
        lambda s, b: reference_entropy(s, b) / np.log(2),
    "forgot the minus sign: the entropy is -Σ w ln w, which is never negative":
        lambda s, b: -reference_entropy(s, b),
    "summed over axis 0; the weights (and the entropy's sum) run over the last axis":
        lambda s, b: -np.where(_weights(s, b) > 0, _weights(s, b) * np.log(
            np.where(_weights(s, b) > 0, _weights(s, b), 1.0)), 0.0).sum(axis=0),
    "took the log of the unnormalised exponentials: the log-weights are z - ln Σ exp(z), the "
    "weights sum to 1": lambda s, b: -(_weights(s, b) * (b * np.asarray(s, dtype=np.float64))).sum(-1),
}


def check_weight_entropy(weight_entropy: Callable[[np.ndarray, float], np.ndarray]) -> None:
    """Exercise 0.2: the entropy of the weights, finite even where weights underflow to 0."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        compare(CHAPTER, "weight_entropy", weight_entropy, reference_entropy, ENTROPY_CASES,
                mistakes=ENTROPY_MISTAKES, arg_names=["scores", "beta"],
                hint="Entropies lie between 0 (one weight 1) and ln n (uniform weights); print "
                     "your weights and their log for this input.")
