"""Checks for chapter 01 (An associative memory is a kernel regressor).

References: :func:`mosaics_edu.core.memory.kernel_regression`,
:func:`mosaics_edu.core.memory.softmax_attention` and
:func:`mosaics_edu.course.toys.leave_one_out_error`. Every argument is varied over the cases (shapes,
with n ≠ m ≠ d ≠ d_v; β from 0 to very large; equal and unequal key norms; float32 inputs), and
each check knows the usual mistakes of its exercise and names the one a wrong answer matches.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ...core import memory
from .. import toys
from . import Case, compare, notebook_check

CHAPTER = "01_kernel_regression"

__all__ = ["check_retrieve", "check_leave_one_out_error", "RETRIEVE_CASES", "RETRIEVE_MISTAKES",
           "RETRIEVE_REGIMES", "LOO_CASES", "LOO_MISTAKES", "LOO_REGIMES"]

H1, H2, H3 = "(see hint 1 above)", "(see hint 2 above)", "(see hint 3 above)"


# --------------------------------------------------------------------------------------------
# helpers that make the known mistakes
# --------------------------------------------------------------------------------------------


def _f64(*xs: np.ndarray) -> list[np.ndarray]:
    return [np.asarray(x, dtype=np.float64) for x in xs]


def _sq_dist(keys: np.ndarray, queries: np.ndarray) -> np.ndarray:
    keys, queries = _f64(keys, queries)
    return ((queries[:, None, :] - keys[None, :, :]) ** 2).sum(-1)  # (m, n)


def _softmax(scores: np.ndarray, axis: int = 1, stable: bool | str = True) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        shift = {True: np.max, "mean": np.mean, False: None}[stable]
        z = scores - shift(scores, axis=axis, keepdims=True) if shift else scores
        e = np.exp(z)
        return e / e.sum(axis=axis, keepdims=True)


def _scores(k, q, b, form, gauss_factor=1.0, dot_factor=2.0, root=False, sign=1.0):
    """The scores of either form, with the factors a mistake may get wrong. (m, n)"""
    if form == "gaussian":
        d2 = _sq_dist(k, q)
        return -sign * gauss_factor * b * (np.sqrt(d2) if root else d2)
    k, q = _f64(k, q)
    return sign * dot_factor * b * q @ k.T


def _case(seed: int, n: int, m: int, d: int, d_v: int, beta: float, form: str, norms: bool = False,
          far: float = 0.0, dtype: type = np.float64) -> tuple:
    rng = np.random.default_rng(seed)
    keys = rng.uniform(0, 1, (n, d))
    if norms:  # keys of clearly different norms
        keys = keys * rng.uniform(0.3, 2.0, (n, 1))
    values = rng.standard_normal((n, d_v))
    queries = rng.uniform(0, 1, (m, d)) + far
    return keys.astype(dtype), values.astype(dtype), queries.astype(dtype), beta, form


# --------------------------------------------------------------------------------------------
# exercise 1.1: retrieve, in both forms
# --------------------------------------------------------------------------------------------

RETRIEVE_CASES = [
    Case(*_case(0, 5, 3, 1, 1, 2.0, "gaussian"), why="d = d_v = 1"),
    Case(*_case(1, 7, 4, 3, 2, 0.7, "gaussian", norms=True), regime="norms",
         why="keys of different norms: the two forms differ"),
    Case(*_case(2, 6, 6, 2, 3, 10.0, "dot", norms=True), regime="norms",
         why="square (m = n): an axis mistake is not a shape mistake"),
    Case(*_case(3, 6, 3, 2, 2, 100.0, "gaussian", far=4.0), regime=("underflow", "unstable"),
         why="queries far from every key: every exp(-β d²) underflows without the shift"),
    Case(*_case(4, 8, 5, 3, 2, 1.5, "dot", norms=True), regime="norms", why="dot form, mild β"),
    Case(*_case(5, 6, 2, 3, 3, 400.0, "dot", norms=True), regime=("overflow", "unstable", "norms"),
         why="2β q·k above 709: exp overflows without the shift"),
    Case(*_case(6, 1, 2, 2, 4, 3.0, "gaussian"), regime="single-pair",
         why="a memory of one pair answers its value"),
    Case(*_case(7, 9, 4, 2, 1, 0.0, "dot"), regime="beta-zero", why="β = 0: the plain average of the values"),
    Case(*_case(8, 10, 3, 4, 2, 5.0, "gaussian", norms=True, dtype=np.float32), why="float32"),
    Case(*_case(9, 10, 7, 4, 3, 2.0, "dot", norms=True, dtype=np.float32), regime="norms",
         why="float32, dot form"),
    Case(np.array([[0.0], [2.0], [5.0]]), np.array([[1.0], [-1.0], [4.0]]), np.array([[1.0], [2.0]]),
         50.0, "gaussian", regime="tie",
         why="the first query is equally far from two keys: their weights are equal, 1/2 each"),
    Case(*_case(11, 6, 1, 3, 2, 1.0, "gaussian"), regime="single-query",
         why="one query: weights normalised over the queries would all be 1"),
    Case(np.array([[0.0], [4.0], [1.0]]), np.array([[2.0, 0.0], [-1.0, 1.0], [0.5, 3.0]]),
         np.array([[0.1], [3.9]]), 100.0, "gaussian", regime="spread",
         why="scores from -1 to -1,600 in a row: shifted by their mean, exp overflows"),
]

RETRIEVE_REGIMES = {
    "unstable": f"exp of a raw score overflows or underflows in float64: subtract each row's largest "
                f"score before exp {H2}",
    "underflow": f"every exp(-β ||k - k_i||²) of a query underflows to 0 (0/0 = nan) {H2}",
    "overflow": f"some 2β k·k_i exceeds 709, so exp overflows to inf (inf/inf = nan) {H2}",
    "spread": f"a query's scores span more than 1,400: shifted by anything but their maximum (their "
              f"mean, say) some exponent stays above 709 {H2}",
    "norms": f"the stored keys have different norms, so the two forms give different answers: "
             f"check which form you compute for each value of `form` {H1}",
    "tie": f"a query is equally far from two keys: they share the weight; no argmax (a hard "
           f"lookup), a softmax {H1}",
    "single-query": f"there is a single query: normalise each query's weights over the stored pairs "
                    f"(axis 1 of the (m, n) scores) {H1}",
    "single-pair": f"the memory holds one pair, whose weight is 1 for every query {H1}",
    "beta-zero": f"β = 0, where every stored pair weighs the same, 1/n {H2}",
}

def _ref_retrieve(keys, values, queries, beta, form="gaussian"):
    if form == "gaussian":
        return memory.kernel_regression(keys, values, queries, beta)
    if form == "dot":
        return memory.softmax_attention(keys, values, queries, 2 * beta)
    raise ValueError(f"form must be 'gaussian' or 'dot', got {form!r}")


def _m(**kw) -> Callable:
    """A retrieval with one mistake: ``axis``, ``stable``, ``normalise`` or a score variant."""
    axis, stable, normalise = kw.pop("axis", 1), kw.pop("stable", True), kw.pop("normalise", True)
    swap, only = kw.pop("swap", False), kw.pop("only", None)

    def wrong(k, v, q, b, form="gaussian"):
        f = {"gaussian": "dot", "dot": "gaussian"}[form] if swap else (only or form)
        s = _scores(k, q, b, f, **kw)
        if not normalise:
            return np.exp(s) @ _f64(v)[0]
        return _softmax(s, axis=axis, stable=stable) @ _f64(v)[0]

    return wrong


RETRIEVE_MISTAKES: dict[str, Callable] = {
    f"normalised the weights over the queries (axis 0) instead of over the stored pairs: each "
    f"query's weights must sum to 1 over the n stored pairs (axis=1 of the (m, n) matrix) {H1}":
        _m(axis=0),
    f"forgot to divide by the sum of the weights (the denominator of w_i) {H2}": _m(normalise=False),
    f"used the distance ||k - k_i|| instead of its square ||k - k_i||^2 {H3}": _m(root=True),
    f"forgot the minus sign: exp(+beta ||k - k_i||^2) gives the *farthest* keys the largest weight "
    f"(and in the dot form, exp(-2 beta k.k_i) the least similar) {H3}": _m(sign=-1.0),
    f"computed the exponentials without subtracting each row's largest score first: with a large "
    f"beta they underflow to 0 (0/0 = nan) or overflow to inf (inf/inf = nan); see chapter 00 {H2}":
        _m(stable=False),
    f"subtracted each row's mean score instead of its largest: far from every key the scores still "
    f"underflow (or overflow) around their mean {H2}": _m(stable="mean"),
    f"used the other form: form='gaussian' is exp(-beta ||k - k_i||^2), form='dot' is "
    f"exp(2 beta k.k_i). They agree only when all stored keys have the same norm, which these "
    f"test keys do not {H1}": _m(swap=True),
    f"ignored the argument `form`: your answer is the Gaussian form exp(-beta ||k - k_i||^2) "
    f"even when form='dot' asks for exp(2 beta k.k_i) {H2}": _m(only="gaussian"),
    f"ignored the argument `form`: your answer is the dot form exp(2 beta k.k_i) even when "
    f"form='gaussian' asks for exp(-beta ||k - k_i||^2) (the expansion of ||k - k_i||^2 also "
    f"has the term ||k_i||^2, which only cancels for keys of equal norms) {H2}": _m(only="dot"),
    f"used 2*beta in the Gaussian form: the kernel is exp(-beta ||k - k_i||^2), with beta itself {H3}":
        _m(gauss_factor=2.0),
    f"used beta/2 in the Gaussian form: the kernel is exp(-beta ||k - k_i||^2), with beta itself {H3}":
        _m(gauss_factor=0.5),
    f"used softmax(beta k.k_i) in the dot form: the expansion of ||k - k_i||^2 has the cross term "
    f"-2 k.k_i, so the multiplier is 2*beta {H2}": _m(dot_factor=1.0),
    f"answered with the value of the nearest key alone (an argmax): the answer is the softmax-"
    f"weighted average of all the values, which only tends to the nearest value as β grows {H1}":
        lambda k, v, q, b, form="gaussian": _f64(v)[0][np.argmax(_scores(k, q, 1.0, form), axis=1)],
}


def _sqrt_d(k, v, q, b, form="gaussian"):
    if form == "gaussian":
        return _ref_retrieve(k, v, q, b, form)
    return _softmax(_scores(k, q, b, form) / np.sqrt(np.shape(k)[1])) @ _f64(v)[0]


RETRIEVE_MISTAKES["divided the dot-product scores by sqrt(d) as a transformer does: here the "
                  f"temperature is the explicit beta, softmax(2 beta k.k_i), no 1/sqrt(d) {H2}"] = _sqrt_d


@notebook_check
def check_retrieve(retrieve: Callable[..., np.ndarray]) -> None:
    """Exercise 1.1: retrieval in both forms, with several shapes, β from 0 to 400, float32."""
    compare(CHAPTER, "retrieve", retrieve, _ref_retrieve, RETRIEVE_CASES,
            mistakes=RETRIEVE_MISTAKES, arg_names=["keys", "values", "queries", "beta", "form"],
            regimes=RETRIEVE_REGIMES, rebuild="ch01.RETRIEVE_CASES[{k}]",
            hint=f"Check the (m, n) score matrix first: one row per query, one column per stored "
                 f"pair; then the weights (each row sums to 1), then weights @ values {H2}.")


# --------------------------------------------------------------------------------------------
# exercise 1.2: leave_one_out_error
# --------------------------------------------------------------------------------------------


def _loo_case(seed: int, n: int, d: int, d_v: int, beta: float, spread: float = 1.0,
              dtype: type = np.float64):
    rng = np.random.default_rng(seed)
    return (rng.uniform(0, spread, (n, d)).astype(dtype), rng.standard_normal((n, d_v)).astype(dtype),
            beta)


LOO_CASES = [
    Case(*_loo_case(20, 8, 1, 1, 10.0), why="d = d_v = 1"),
    Case(*_loo_case(21, 10, 2, 3, 3.0), why="d_v = 3: the squared error is summed over it"),
    Case(*_loo_case(22, 12, 2, 2, 300.0), why="large β: each pair's answer is its nearest other pair"),
    Case(*_loo_case(23, 9, 3, 2, 40.0, spread=8.0), regime="underflow",
         why="far-apart keys: every exp(-β d²) of a row underflows without the shift"),
    Case(*_loo_case(24, 2, 2, 3, 1.0), regime="two-pairs",
         why="two pairs: each is answered by the other alone"),
    Case(*_loo_case(25, 15, 4, 1, 0.0), regime="beta-zero",
         why="β = 0: the average of the *other* values"),
    Case(*_loo_case(26, 11, 3, 4, 6.0, dtype=np.float32), why="float32"),
    Case(np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.5], [0.3, 0.9]]),
         np.array([[1.0, 0.0], [-1.0, 2.0], [0.5, 0.5], [2.0, -1.0]]), 20.0, regime="duplicate",
         why="two pairs share a key: leave out pair i, not every key at distance 0"),
]

LOO_REGIMES = {
    "underflow": f"the keys are far apart, so every exp(-β d²) of a row underflows to 0 (0/0 = nan): "
                 f"subtract each row's largest score after setting the diagonal {H2}",
    "duplicate": f"two stored pairs share the same key: leave out pair i by its index (the "
                 f"diagonal), not every pair whose key is at distance 0 {H3}",
    "two-pairs": f"the memory holds two pairs, so each is answered by the other alone {H1}",
    "beta-zero": f"β = 0, where every other pair weighs the same, 1/(n-1) {H2}",
}

def _answers(keys, values, beta, exclude=None, renormalise=True, stable=True, after=False):
    """The leave-one-out answers; ``after``: the excluded weights zeroed after the softmax (then
    renormalised, unless ``renormalise`` is False)."""
    keys, values = _f64(keys, values)
    scores = -beta * _sq_dist(keys, keys)  # (n, n)
    if exclude is not None and not after and renormalise:
        scores = np.where(exclude, -np.inf, scores)
    w = _softmax(scores, stable=stable)
    if exclude is not None and (after or not renormalise):
        w = np.where(exclude, 0.0, w)
        if renormalise:
            with np.errstate(invalid="ignore", divide="ignore"):
                w = w / w.sum(axis=1, keepdims=True)
    return w @ values  # (n, d_v)


def _err(answers, values):
    return float(np.mean(((answers - _f64(values)[0]) ** 2).sum(axis=1)))


def _ref_loo(keys, values, beta):
    return toys.leave_one_out_error(keys, values, beta)


def _eye(n, k=0):
    return np.eye(n, k=k, dtype=bool) | (np.eye(n, k=k - n, dtype=bool) if k > 0 else False)


def _own(k):
    return np.eye(len(k), dtype=bool)


def _at_zero(k):  # every pair whose key is at distance 0 from key i, pair i and its duplicates
    k = _f64(k)[0]
    return ((k[:, None] - k[None]) ** 2).sum(-1) == 0


LOO_MISTAKES: dict[str, Callable] = {
    f"did not leave the pair out: each stored key is answered by a memory that still holds its "
    f"own pair, so it (nearly) returns its own value and the error rewards the largest beta. "
    f"Exclude pair i from the answer to key i (set the diagonal of the scores to -inf) {H3}":
        lambda k, v, b: _err(_answers(k, v, b), v),
    f"left out the wrong pair (the mask is off by one: pair i+1 instead of pair i) {H3}":
        lambda k, v, b: _err(_answers(k, v, b, exclude=_eye(len(k), 1)), v),
    f"set the pair's own weight to 0 *after* the softmax without renormalising: the remaining "
    f"weights must sum to 1 (set the score to -inf *before* the softmax) {H2}":
        lambda k, v, b: _err(_answers(k, v, b, exclude=_own(k), renormalise=False), v),
    f"zeroed the pair's own weight after the softmax and renormalised: where its own weight is "
    f"~1 (far-apart keys, large β) the other weights underflow to 0 first and the renormalisation "
    f"divides 0 by 0; set the score to -inf before the softmax {H3}":
        lambda k, v, b: _err(_answers(k, v, b, exclude=_own(k), after=True), v),
    f"summed the squared errors over the pairs instead of averaging them (divide by n) {H2}":
        lambda k, v, b: len(k) * _err(_answers(k, v, b, exclude=_own(k)), v),
    f"averaged the squared error over the value dimensions too: sum over d_v, average over pairs {H2}":
        lambda k, v, b: _err(_answers(k, v, b, exclude=_own(k)), v) / np.shape(v)[1],
    f"returned the root of the mean squared error: return the mean squared error itself {H2}":
        lambda k, v, b: np.sqrt(_err(_answers(k, v, b, exclude=_own(k)), v)),
    f"averaged the distances ||f(k_i) - v_i|| instead of their squares {H2}":
        lambda k, v, b: float(np.mean(np.sqrt(((_answers(k, v, b, exclude=_own(k)) - _f64(v)[0]) ** 2)
                                              .sum(axis=1)))),
    f"computed the exponentials without subtracting each row's largest score: far-apart keys "
    f"underflow to 0 and 0/0 = nan (subtract the row maximum after setting the diagonal) {H2}":
        lambda k, v, b: _err(_answers(k, v, b, exclude=_own(k), stable=False), v),
    f"divided by n - 1 instead of n: the mean is over the n pairs (each left out once) {H2}":
        lambda k, v, b: len(k) / (len(k) - 1) * _err(_answers(k, v, b, exclude=_own(k)), v),
    f"left out every pair whose key is at distance 0 from key i: a duplicated key leaves out both "
    f"pairs; leave out pair i alone, by its index {H3}":
        lambda k, v, b: _err(_answers(k, v, b, exclude=_at_zero(k)), v),
}


@notebook_check
def check_leave_one_out_error(leave_one_out_error: Callable[..., float]) -> None:
    """Exercise 1.2: the leave-one-out error of a memory, for several shapes and bandwidths."""
    compare(CHAPTER, "leave_one_out_error", leave_one_out_error, _ref_loo, LOO_CASES,
            mistakes=LOO_MISTAKES, arg_names=["keys", "values", "beta"], regimes=LOO_REGIMES,
            rebuild="ch01.LOO_CASES[{k}]",
            hint=f"Print the (n, n) weight matrix for a small memory: its diagonal must be 0 and "
                 f"each row must sum to 1 {H2}.")
