"""Checks for chapter 01 (An associative memory is a kernel regressor).

References: :func:`mosaics_edu.memory.kernel_regression`, :func:`mosaics_edu.memory.softmax_attention`
and :func:`mosaics_edu.toys.leave_one_out_error`. Every argument is varied over the cases (shapes,
with n ≠ m ≠ d ≠ d_v; β from 0 to very large; equal and unequal key norms; float32 inputs), and
each check knows the usual mistakes of its exercise and names the one a wrong answer matches.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .. import memory, toys
from . import compare

CHAPTER = "01_kernel_regression"

__all__ = ["check_retrieve", "check_leave_one_out_error", "RETRIEVE_MISTAKES", "LOO_MISTAKES"]


# --------------------------------------------------------------------------------------------
# helpers that make the known mistakes
# --------------------------------------------------------------------------------------------


def _f64(*xs: np.ndarray) -> list[np.ndarray]:
    return [np.asarray(x, dtype=np.float64) for x in xs]


def _sq_dist(keys: np.ndarray, queries: np.ndarray) -> np.ndarray:
    keys, queries = _f64(keys, queries)
    return ((queries[:, None, :] - keys[None, :, :]) ** 2).sum(-1)  # (m, n)


def _softmax(scores: np.ndarray, axis: int = 1, stable: bool = True) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        z = scores - scores.max(axis=axis, keepdims=True) if stable else scores
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
    _case(0, 5, 3, 1, 1, 2.0, "gaussian"),
    _case(1, 7, 4, 3, 2, 0.7, "gaussian", norms=True),
    _case(2, 6, 6, 2, 3, 10.0, "dot", norms=True),  # square (m = n): axis mistakes still show
    _case(3, 6, 3, 2, 2, 100.0, "gaussian", far=4.0),  # exp(-β d²) underflows without the shift
    _case(4, 8, 5, 3, 2, 1.5, "dot", norms=True),
    _case(5, 6, 2, 3, 3, 400.0, "dot", norms=True),  # large logits: needs the max subtracted
    _case(6, 1, 2, 2, 4, 3.0, "gaussian"),  # a memory of one pair answers its value
    _case(7, 9, 4, 2, 1, 0.0, "dot"),  # β = 0: the plain average of the values
    _case(8, 10, 3, 4, 2, 5.0, "gaussian", norms=True, dtype=np.float32),
    _case(9, 10, 7, 4, 3, 2.0, "dot", norms=True, dtype=np.float32),
]


def _ref_retrieve(keys, values, queries, beta, form="gaussian"):
    if form == "gaussian":
        return memory.kernel_regression(keys, values, queries, beta)
    if form == "dot":
        return memory.softmax_attention(keys, values, queries, beta)
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
    "normalised the weights over the queries (axis 0) instead of over the stored pairs: each "
    "query's weights must sum to 1 over the n stored pairs (axis=1 of the (m, n) matrix)":
        _m(axis=0),
    "forgot to divide by the sum of the weights (the denominator of w_i)": _m(normalise=False),
    "used the distance ||k - k_i|| instead of its square ||k - k_i||^2": _m(root=True),
    "forgot the minus sign: exp(+beta ||k - k_i||^2) gives the *farthest* keys the largest weight "
    "(and in the dot form, exp(-2 beta k.k_i) the least similar)": _m(sign=-1.0),
    "computed the exponentials without subtracting each row's largest score first: with a large "
    "beta they underflow to 0 (0/0 = nan) or overflow to inf (inf/inf = nan); see chapter 00":
        _m(stable=False),
    "used the other form: form='gaussian' is exp(-beta ||k - k_i||^2), form='dot' is "
    "exp(2 beta k.k_i). They agree only when all stored keys have the same norm, which these "
    "test keys do not": _m(swap=True),
    "ignored the argument `form`: your answer is the Gaussian form exp(-beta ||k - k_i||^2) "
    "even when form='dot' asks for exp(2 beta k.k_i)": _m(only="gaussian"),
    "ignored the argument `form`: your answer is the dot form exp(2 beta k.k_i) even when "
    "form='gaussian' asks for exp(-beta ||k - k_i||^2) (the expansion of ||k - k_i||^2 also "
    "has the term ||k_i||^2, which only cancels for keys of equal norms)": _m(only="dot"),
    "used 2*beta in the Gaussian form: the kernel is exp(-beta ||k - k_i||^2), with beta itself":
        _m(gauss_factor=2.0),
    "used beta/2 in the Gaussian form: the kernel is exp(-beta ||k - k_i||^2), with beta itself":
        _m(gauss_factor=0.5),
    "used softmax(beta k.k_i) in the dot form: the expansion of ||k - k_i||^2 has the cross term "
    "-2 k.k_i, so the multiplier is 2*beta": _m(dot_factor=1.0),
}


def _sqrt_d(k, v, q, b, form="gaussian"):
    if form == "gaussian":
        return _ref_retrieve(k, v, q, b, form)
    return _softmax(_scores(k, q, b, form) / np.sqrt(np.shape(k)[1])) @ _f64(v)[0]


RETRIEVE_MISTAKES["divided the dot-product scores by sqrt(d) as a transformer does: here the "
                  "temperature is the explicit beta, softmax(2 beta k.k_i), no 1/sqrt(d)"] = _sqrt_d


def check_retrieve(retrieve: Callable[..., np.ndarray]) -> None:
    """Exercise 1.1: retrieval in both forms, with several shapes, β from 0 to 400, float32."""
    compare(CHAPTER, "retrieve", retrieve, _ref_retrieve, RETRIEVE_CASES,
            mistakes=RETRIEVE_MISTAKES, arg_names=["keys", "values", "queries", "beta", "form"],
            hint="Check the (m, n) score matrix first: one row per query, one column per stored "
                 "pair; then the weights (each row sums to 1), then weights @ values.")


# --------------------------------------------------------------------------------------------
# exercise 1.2: leave_one_out_error
# --------------------------------------------------------------------------------------------


def _loo_case(seed: int, n: int, d: int, d_v: int, beta: float, spread: float = 1.0,
              dtype: type = np.float64):
    rng = np.random.default_rng(seed)
    return (rng.uniform(0, spread, (n, d)).astype(dtype), rng.standard_normal((n, d_v)).astype(dtype),
            beta)


LOO_CASES = [
    _loo_case(20, 8, 1, 1, 10.0),
    _loo_case(21, 10, 2, 3, 3.0),
    _loo_case(22, 12, 2, 2, 300.0),  # large beta: each pair's answer is its nearest other pair
    _loo_case(23, 9, 3, 2, 40.0, spread=8.0),  # far-apart keys: exp(-β d²) underflows unshifted
    _loo_case(24, 2, 2, 3, 1.0),  # two pairs: each is answered by the other one alone
    _loo_case(25, 15, 4, 1, 0.0),  # β = 0: the average of the *other* values
    _loo_case(26, 11, 3, 4, 6.0, dtype=np.float32),
]


def _answers(keys, values, beta, exclude=None, renormalise=True, stable=True):
    keys, values = _f64(keys, values)
    scores = -beta * _sq_dist(keys, keys)  # (n, n)
    if exclude is not None and renormalise:
        scores = np.where(exclude, -np.inf, scores)
    w = _softmax(scores, stable=stable)
    if exclude is not None and not renormalise:
        w = np.where(exclude, 0.0, w)
    return w @ values  # (n, d_v)


def _err(answers, values):
    return float(np.mean(((answers - _f64(values)[0]) ** 2).sum(axis=1)))


def _ref_loo(keys, values, beta):
    return toys.leave_one_out_error(keys, values, beta)


def _eye(n, k=0):
    return np.eye(n, k=k, dtype=bool) | (np.eye(n, k=k - n, dtype=bool) if k > 0 else False)


def _own(k):
    return np.eye(len(k), dtype=bool)


LOO_MISTAKES: dict[str, Callable] = {
    "did not leave the pair out: each stored key is answered by a memory that still holds its "
    "own pair, so it (nearly) returns its own value and the error rewards the largest beta. "
    "Exclude pair i from the answer to key i (set the diagonal of the scores to -inf)":
        lambda k, v, b: _err(_answers(k, v, b), v),
    "left out the wrong pair (the mask is off by one: pair i+1 instead of pair i)":
        lambda k, v, b: _err(_answers(k, v, b, exclude=_eye(len(k), 1)), v),
    "set the pair's own weight to 0 *after* the softmax without renormalising: the remaining "
    "weights must sum to 1 (set the score to -inf *before* the softmax)":
        lambda k, v, b: _err(_answers(k, v, b, exclude=_own(k), renormalise=False), v),
    "summed the squared errors over the pairs instead of averaging them (divide by n)":
        lambda k, v, b: len(k) * _err(_answers(k, v, b, exclude=_own(k)), v),
    "averaged the squared error over the value dimensions too: sum over d_v, average over pairs":
        lambda k, v, b: _err(_answers(k, v, b, exclude=_own(k)), v) / np.shape(v)[1],
    "returned the root of the mean squared error: return the mean squared error itself":
        lambda k, v, b: np.sqrt(_err(_answers(k, v, b, exclude=_own(k)), v)),
    "computed the exponentials without subtracting each row's largest score: far-apart keys "
    "underflow to 0 and 0/0 = nan (subtract the row maximum after setting the diagonal)":
        lambda k, v, b: _err(_answers(k, v, b, exclude=_own(k), stable=False), v),
    "divided by n - 1 instead of n: the mean is over the n pairs (each left out once)":
        lambda k, v, b: len(k) / (len(k) - 1) * _err(_answers(k, v, b, exclude=_own(k)), v),
}


def check_leave_one_out_error(leave_one_out_error: Callable[..., float]) -> None:
    """Exercise 1.2: the leave-one-out error of a memory, for several shapes and bandwidths."""
    compare(CHAPTER, "leave_one_out_error", leave_one_out_error, _ref_loo, LOO_CASES,
            mistakes=LOO_MISTAKES, arg_names=["keys", "values", "beta"],
            hint="Print the (n, n) weight matrix for a small memory: its diagonal must be 0 and "
                 "each row must sum to 1.")
