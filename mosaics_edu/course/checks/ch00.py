"""Checks for chapter 00 (Start here): a numerically stable softmax and the entropy of its weights.

Every case sits in a regime where some mistake shows (its ``why`` says which): scores whose ``exp``
overflows or underflows, rows so spread out that shifting by the mean (or the first score) still
overflows, ``-inf`` scores of a mask, one item per row, 1-D and 3-D arrays, float32 inputs,
β = 0, a negative β, ties. The chapter's tests assert that each case is in the regimes it names.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import Case, compare, notebook_check

CHAPTER = "00_start_here"

__all__ = ["check_stable_softmax", "check_weight_entropy", "reference_softmax", "reference_entropy",
           "SOFTMAX_CASES", "SOFTMAX_MISTAKES", "SOFTMAX_REGIMES", "ENTROPY_CASES", "ENTROPY_MISTAKES",
           "ENTROPY_REGIMES"]

H1, H2, H3 = "(see hint 1 above)", "(see hint 2 above)", "(see hint 3 above)"


def reference_softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, shifted by the row maximum so ``exp`` never overflows."""
    x = np.asarray(x)
    z = x - x.max(axis=-1, keepdims=True)  # (..., n), every row's maximum is now 0
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _f64(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _shifted(x: np.ndarray, shift: np.ndarray, axis: int = -1) -> np.ndarray:
    """exp(x - shift) normalised over ``axis``: every shift mistake is one ``shift``."""
    e = np.exp(_f64(x) - shift)
    return e / e.sum(axis=axis, keepdims=True)


def _row(f: Callable, x: np.ndarray) -> np.ndarray:
    return f(_f64(x), axis=-1, keepdims=True)


SOFTMAX_MISTAKES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    f"computed exp(x) directly: it overflows to inf for large scores (inf/inf = nan) and underflows "
    f"to 0 for very negative ones (0/0 = nan). Subtract each row's maximum before exp {H1}":
        lambda x: _shifted(x, 0.0),
    f"normalised over axis 0; the softmax runs over the last axis (axis=-1) {H2}":
        lambda x: _shifted(x, _f64(x).max(axis=0, keepdims=True), axis=0),
    f"subtracted the maximum of the whole array instead of each row's maximum (use "
    f"x.max(axis=-1, keepdims=True)); rows far below the global maximum underflow to 0/0 {H3}":
        lambda x: _shifted(x, _f64(x).max()),
    f"shifted each column by its maximum (x.max(axis=0)); the shift is one number per row, its "
    f"maximum over the last axis {H3}": lambda x: _shifted(x, _f64(x).max(axis=0, keepdims=True)),
    f"returned equal weights 1/n: the weights must grow with the scores, e^(x_i - max) / Σ_j "
    f"e^(x_j - max) {H2}": lambda x: np.ones_like(_f64(x)) / np.shape(x)[-1],
    f"divided by e.sum(axis=-1) without keepdims=True: the sums, of shape (...,), broadcast "
    f"against the last axis, so each entry is divided by another row's sum {H3}":
        lambda x: np.exp(_f64(x) - _row(np.max, x)) / np.exp(_f64(x) - _row(np.max, x)).sum(axis=-1),
    f"forgot to divide by the sum: the outputs must add up to 1 along the last axis {H2}":
        lambda x: np.exp(_f64(x) - _row(np.max, x)),
    f"subtracted the minimum instead of the maximum: exp of a large positive number overflows {H1}":
        lambda x: _shifted(x, _row(np.min, x)),
    f"subtracted each row's mean instead of its maximum: a row whose scores spread more than ~1,400 "
    f"still overflows above its mean (and a -inf score makes the mean -inf) {H1}":
        lambda x: _shifted(x, _row(np.mean, x)),
    f"subtracted each row's first score instead of its maximum: a later score far above the first "
    f"still overflows {H1}": lambda x: _shifted(x, _f64(x)[..., :1]),
    f"clipped the scores (np.clip) to keep exp finite: large scores that differ all become the "
    f"same number; subtract the row maximum instead, which changes no weight {H1}":
        lambda x: _shifted(np.clip(_f64(x), -700.0, 700.0), 0.0),
    f"left out keepdims=True: x.max(axis=-1) has shape (...,) and broadcasts against the *last* "
    f"axis, so each column is shifted by another row's maximum {H3}":
        lambda x: np.exp(_f64(x) - _f64(x).max(axis=-1)) / np.exp(_f64(x) - _f64(x).max(axis=-1)).sum(
            axis=-1),
    f"divided by the sum of the whole array; each row is divided by its own sum "
    f"(e.sum(axis=-1, keepdims=True)) {H2}":
        lambda x: np.exp(_f64(x) - _row(np.max, x)) / np.exp(_f64(x) - _row(np.max, x)).sum(),
    f"subtracted the maximum in the numerator but not in the denominator: shift both, the shift "
    f"only cancels when it is applied to both {H2}":
        lambda x: np.exp(_f64(x) - _row(np.max, x)) / np.exp(_f64(x)).sum(axis=-1, keepdims=True),
    f"divided the scores by their maximum instead of subtracting it: a shift leaves softmax "
    f"unchanged, a division does not {H1}": lambda x: _shifted(_f64(x) / _row(np.max, x), 0.0),
    f"returned the log-softmax (log of the weights): exponentiate, the weights must lie in "
    f"[0, 1] {H2}": lambda x: (_f64(x) - _row(np.max, x)) - np.log(np.exp(_f64(x) - _row(np.max, x)).sum(
        axis=-1, keepdims=True)),
}

SOFTMAX_REGIMES = {
    "overflow": f"a score is above 709, so exp of the raw score overflows to inf: shift each row by "
                f"its maximum before exp {H1}",
    "underflow": f"every score of a row is below -745, so every raw exp underflows to 0 (0/0 = nan) "
                 f"{H1}",
    "spread": f"a row's scores span more than 1,400: shifting by anything but the row's maximum "
              f"(its mean, its first score) still leaves an exponent above 709 {H1}",
    "masked": f"a score is -inf (a masked item, weight 0): only the row maximum is a safe shift "
              f"(-inf - (-inf) is nan) {H1}",
    "unstable": f"exp of a raw score overflows (a score above 709) or underflows (a whole row "
                f"below -745): shift each row by its maximum before exp {H1}",
    "3d": f"the array has three axes: axis 1 is not the last one, write axis=-1 {H2}",
}

_RNG = np.random.default_rng(0)

SOFTMAX_CASES = [
    Case(np.array([1.0, 2.0, 3.0]), why="1-D: the last axis is axis 0"),
    Case(np.array([[1.0, -2.0, 0.5], [0.0, 4.0, -1.0], [3.0, 3.0, -3.0]]),
         why="square: an axis mistake is not a shape mistake; a tie in the last row"),
    Case(np.array([[-800.0, 0.0]]), regime="spread",
         why="exp(x - min) = exp(800) overflows; the mean shift leaves exp(400)"),
    Case(np.array([[1000.0, 1001.0, 1002.0], [-3.0, 0.0, 3.0]]), regime=("overflow", "unstable"),
         why="exp(1000) overflows; clipping at 700 makes the first row uniform"),
    Case(np.array([[-1000.0, -1000.5], [0.0, 0.0]]), regime=("underflow", "unstable"),
         why="exp(-1000) underflows to 0: 0/0"),
    Case(np.array([[[5.0, 1.0, 0.0, -2.0], [800.0, 0.0, -800.0, 1.0]],
                   [[3.0, 3.0, 3.0, 3.0], [0.1, 0.2, 0.3, 0.4]],
                   [[2.0, -1.0, 0.5, 0.0], [-0.3, 0.6, 0.9, -1.2]]]),
         regime=("3d", "overflow", "spread", "unstable"), why="3-D, non-square; a row spanning 1,600"),
    Case(np.array([[0.0, -np.inf, 1.0], [2.0, 2.0, -np.inf]]), regime="masked",
         why="-inf scores: masked items get weight 0"),
    Case(np.array([[-5.0, 1500.0, 1499.0, -1000.0]]), regime=("overflow", "spread", "unstable"),
         why="the largest score is not the first: shifting by the first score overflows"),
    Case(np.array([[7.0], [-1000.0]]), regime=("underflow", "unstable"),
         why="one item per row: its weight is 1"),
    Case(_RNG.standard_normal((4, 7)).astype(np.float32) * 30, why="float32 in, float32 out"),
]


@notebook_check
def check_stable_softmax(softmax: Callable[[np.ndarray], np.ndarray]) -> None:
    """Check the warm-up exercise on inputs that make the naive formula overflow or underflow."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        compare(CHAPTER, "stable_softmax", softmax, reference_softmax, SOFTMAX_CASES,
                mistakes=SOFTMAX_MISTAKES, arg_names=["x"], regimes=SOFTMAX_REGIMES,
                rebuild="ch00.SOFTMAX_CASES[{k}]",
                hint=f"Each row of the answer must be non-negative and sum to 1 along the last axis; "
                     f"print your answer for this input next to the expected one {H2}.")


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


def _xlogx(w):
    with np.errstate(divide="ignore", invalid="ignore"):
        return w * np.log(w)


ENTROPY_MISTAKES: dict[str, Callable] = {
    f"computed w · ln w from the weights: a weight that underflows to 0 gives 0 · ln 0 = "
    f"0 · (-inf) = nan. Use the log-weights (z - max - ln Σ exp), which stay finite, or count the "
    f"terms with w = 0 as 0 {H2}": lambda s, b: -_xlogx(_weights(s, b)).sum(axis=-1),
    f"used log2 (bits); the course measures entropy in nats, with the natural log {H1}":
        lambda s, b: reference_entropy(s, b) / np.log(2),
    f"forgot the minus sign: the entropy is -Σ w ln w, which is never negative {H1}":
        lambda s, b: -reference_entropy(s, b),
    f"summed over axis 0; the weights (and the entropy's sum) run over the last axis {H2}":
        lambda s, b: -np.where(_weights(s, b) > 0, _xlogx(_weights(s, b)), 0.0).sum(axis=0),
    f"took the log of the unnormalised exponentials: the log-weights are z - ln Σ exp(z), the "
    f"weights sum to 1 {H3}": lambda s, b: -(_weights(s, b) * (b * np.asarray(s, dtype=np.float64))).sum(-1),
    f"shifted the scores by their maximum *before* multiplying by β: with β < 0 the largest "
    f"β·score comes from the smallest score, so exp overflows; shift z = β·scores by z's own "
    f"maximum {H2}": lambda s, b: _entropy_shift_first(s, b),
    f"divided by ln n (a normalised entropy); the entropy in nats runs from 0 to ln n {H1}":
        lambda s, b: reference_entropy(s, b) / np.log(np.shape(s)[-1]),
    f"averaged the terms -w ln w over the items instead of summing them {H1}":
        lambda s, b: reference_entropy(s, b) / np.shape(s)[-1],
}


def _entropy_shift_first(scores, beta):
    s = np.asarray(scores, dtype=np.float64)
    z = beta * (s - s.max(axis=-1, keepdims=True))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        log_w = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))  # inf - inf = nan where exp overflows
        return -(np.exp(log_w) * log_w).sum(axis=-1)


ENTROPY_REGIMES = {
    "underflow": f"β is so large that most weights underflow to exactly 0, where 0 · ln 0 is nan: "
                 f"use the log-weights, or count those terms as 0 {H2}",
    "overflow": f"β·scores reaches above 709, where exp of an unshifted z overflows: shift z = "
                f"β·scores by its own row maximum {H2}",
    "negative-beta": f"β is negative, so the largest β·score comes from the *smallest* score: shift "
                     f"by the maximum of z = β·scores itself {H2}",
    "single": f"a row holds a single item (weight 1, entropy 0, ln n = 0) {H1}",
}

_r = np.random.default_rng(1)

ENTROPY_CASES = [
    Case(np.array([0.5, 2.0, -1.0, 0.0]), 1.0, why="1-D: one number"),
    Case(_r.standard_normal((3, 5)), 0.5, why="non-square"),
    Case(_r.standard_normal((4, 4)) * 2, 2.0, why="square: an axis mistake still shows"),
    Case(_r.standard_normal((2, 6)), 0.0, why="β = 0: uniform weights, entropy ln n"),
    Case(np.array([[0.0, 10.0, 3.0], [1.0, 1.0, -9.0]]), 100.0, regime="underflow",
         why="weights underflow to exactly 0; the second row ties: entropy ln 2"),
    Case(_r.standard_normal((2, 3, 6)), 1.5, why="3-D"),
    Case(_r.standard_normal((5, 7)).astype(np.float32), 0.7, why="float32"),
    Case(np.array([[3.0], [-2.0]]), 1.0, regime="single", why="one item: entropy 0"),
    Case(np.array([[2.0, 4.0, 4.0, 0.5], [1.0, -3.0, 2.0, 2.0]]), 400.0, regime=("overflow", "underflow"),
         why="β·scores up to 1,600: an unshifted exp overflows; two tied maxima, entropy ln 2"),
    Case(np.array([[1.0, -2.0, -2.0, 0.0], [5.0, 4.0, -1.0, -1.0]]), -300.0,
         regime=("negative-beta", "underflow"),
         why="β < 0 favours the smallest scores; two tied, entropy ln 2"),
]


@notebook_check
def check_weight_entropy(weight_entropy: Callable[[np.ndarray, float], np.ndarray]) -> None:
    """Exercise 0.2: the entropy of the weights, finite even where weights underflow to 0."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        compare(CHAPTER, "weight_entropy", weight_entropy, reference_entropy, ENTROPY_CASES,
                mistakes=ENTROPY_MISTAKES, arg_names=["scores", "beta"], regimes=ENTROPY_REGIMES,
                rebuild="ch00.ENTROPY_CASES[{k}]",
                hint=f"Entropies lie between 0 (one weight 1) and ln n (uniform weights); print your "
                     f"weights and their log for this input {H2}.")
