"""Checks for chapter 01 (An associative memory is a kernel regressor).

References: :func:`mosaics_edu.memory.kernel_regression`, :func:`mosaics_edu.memory.softmax_attention`
and :func:`mosaics_edu.toys.leave_one_out_error`. Each check also knows the usual mistakes of its
exercise and names the one a wrong answer matches.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .. import memory, toys
from . import compare

CHAPTER = "01_kernel_regression"

__all__ = ["check_retrieve", "check_attention_retrieve", "check_leave_one_out_error"]


# --------------------------------------------------------------------------------------------
# helpers that make the known mistakes
# --------------------------------------------------------------------------------------------


def _sq_dist(keys: np.ndarray, queries: np.ndarray) -> np.ndarray:
    return ((queries[:, None, :] - keys[None, :, :]) ** 2).sum(-1)  # (m, n)


def _softmax(scores: np.ndarray, axis: int = 1, stable: bool = True) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        z = scores - scores.max(axis=axis, keepdims=True) if stable else scores
        e = np.exp(z)
        return e / e.sum(axis=axis, keepdims=True)


def _case(seed: int, n: int, m: int, d: int, d_v: int, beta: float, norms: bool = False,
          far: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    rng = np.random.default_rng(seed)
    keys = rng.uniform(0, 1, (n, d))
    if norms:  # keys of clearly different norms
        keys = keys * rng.uniform(0.3, 2.0, (n, 1))
    values = rng.standard_normal((n, d_v))
    queries = rng.uniform(0, 1, (m, d)) + far
    return keys, values, queries, beta


# --------------------------------------------------------------------------------------------
# exercise 1.1: retrieve
# --------------------------------------------------------------------------------------------

RETRIEVE_CASES = [
    _case(0, 5, 3, 1, 1, 2.0),
    _case(1, 7, 4, 3, 2, 0.7, norms=True),
    _case(2, 6, 6, 2, 3, 10.0, norms=True),
    _case(3, 6, 3, 2, 2, 100.0, far=4.0),  # every exp(-beta d^2) underflows to 0 without the shift
]


def _ref_retrieve(keys, values, queries, beta):
    return memory.kernel_regression(keys, values, queries, beta)


RETRIEVE_MISTAKES: dict[str, Callable] = {
    "normalised the weights over the queries (axis 0) instead of over the stored pairs: each "
    "query's weights must sum to 1 over the n stored pairs (axis=1 of the (m, n) matrix)":
        lambda k, v, q, b: _softmax(-b * _sq_dist(k, q), axis=0) @ v,
    "forgot to divide by the sum of the weights (the denominator of w_i)":
        lambda k, v, q, b: np.exp(-b * _sq_dist(k, q)) @ v,
    "forgot to divide by the sum of the weights, after subtracting the maximum score":
        lambda k, v, q, b: np.exp(-b * _sq_dist(k, q) + (b * _sq_dist(k, q)).min(1, keepdims=True)) @ v,
    "used the distance ||k - k_i|| instead of its square ||k - k_i||^2":
        lambda k, v, q, b: _softmax(-b * np.sqrt(_sq_dist(k, q))) @ v,
    "forgot the minus sign: exp(+beta ||k - k_i||^2) gives the *farthest* keys the largest weight":
        lambda k, v, q, b: _softmax(b * _sq_dist(k, q)) @ v,
    "computed exp(-beta ||k - k_i||^2) without subtracting each row's largest score first: with "
    "a large beta every exponential underflows to 0 and 0/0 = nan (see chapter 00)":
        lambda k, v, q, b: _softmax(-b * _sq_dist(k, q), stable=False) @ v,
    "used softmax(2 beta k.k_i), the attention form: it equals kernel smoothing only when all "
    "stored keys have the same norm, which these test keys do not":
        lambda k, v, q, b: _softmax(2 * b * q @ k.T) @ v,
    "used beta/2 or 2*beta: the kernel is exp(-beta ||k - k_i||^2), with beta itself":
        lambda k, v, q, b: _softmax(-2 * b * _sq_dist(k, q)) @ v,
}


def check_retrieve(retrieve: Callable[..., np.ndarray]) -> None:
    """Exercise 1.1: Nadaraya–Watson retrieval, with several shapes and a large-β case."""
    compare(CHAPTER, "retrieve", retrieve, _ref_retrieve, RETRIEVE_CASES,
            mistakes=RETRIEVE_MISTAKES, rtol=1e-6, atol=1e-8)


# --------------------------------------------------------------------------------------------
# exercise 1.2: attention_retrieve
# --------------------------------------------------------------------------------------------

ATTENTION_CASES = [
    _case(10, 5, 3, 1, 1, 2.0),
    _case(11, 8, 5, 3, 2, 1.5, norms=True),
    _case(12, 6, 2, 3, 3, 400.0, norms=True),  # large logits: needs the max subtracted
]


def _ref_attention(keys, values, queries, beta):
    return memory.softmax_attention(keys, values, queries, beta)


ATTENTION_MISTAKES: dict[str, Callable] = {
    "computed exp without subtracting each row's largest score: large scores overflow to inf "
    "and inf/inf = nan":
        lambda k, v, q, b: _softmax(2 * b * q @ k.T, stable=False) @ v,
    "used softmax(beta k.k_i): the expansion of ||k - k_i||^2 has the cross term -2 k.k_i, so "
    "the inverse temperature is 2*beta":
        lambda k, v, q, b: _softmax(b * q @ k.T) @ v,
    "divided the scores by sqrt(d) as a transformer does: here the temperature is the explicit "
    "bandwidth, softmax(2 beta k.k_i), with no 1/sqrt(d)":
        lambda k, v, q, b: _softmax(2 * b * q @ k.T / np.sqrt(k.shape[1])) @ v,
    "returned the kernel smoothing exp(-beta ||k - k_i||^2) itself: the exercise asks for the "
    "dot-product form, which differs from it when the key norms differ (as in this test)":
        lambda k, v, q, b: _softmax(-b * _sq_dist(k, q)) @ v,
    "normalised over the queries (axis 0) instead of over the stored pairs (axis 1)":
        lambda k, v, q, b: _softmax(2 * b * q @ k.T, axis=0) @ v,
    "forgot to divide by the sum of the weights":
        lambda k, v, q, b: np.exp(2 * b * q @ k.T) @ v,
}


def check_attention_retrieve(attention_retrieve: Callable[..., np.ndarray]) -> None:
    """Exercise 1.2: softmax(2β q·k_i) attention, on keys of unequal norms."""
    compare(CHAPTER, "attention_retrieve", attention_retrieve, _ref_attention, ATTENTION_CASES,
            mistakes=ATTENTION_MISTAKES, rtol=1e-6, atol=1e-8)


# --------------------------------------------------------------------------------------------
# exercise 1.3: leave_one_out_error
# --------------------------------------------------------------------------------------------


def _loo_case(seed: int, n: int, d: int, d_v: int, beta: float):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, (n, d)), rng.standard_normal((n, d_v)), beta


LOO_CASES = [
    _loo_case(20, 8, 1, 1, 10.0),
    _loo_case(21, 10, 2, 3, 3.0),
    _loo_case(22, 12, 2, 2, 300.0),  # large beta: each pair's answer is its nearest other pair
]


def _answers(keys, values, beta, exclude=None, renormalise=True):
    scores = -beta * _sq_dist(keys, keys)  # (n, n)
    if exclude is not None and renormalise:
        scores = np.where(exclude, -np.inf, scores)
    w = _softmax(scores)
    if exclude is not None and not renormalise:
        w = np.where(exclude, 0.0, w)
    return w @ values  # (n, d_v)


def _err(answers, values):
    return float(np.mean(((answers - values) ** 2).sum(axis=1)))


def _ref_loo(keys, values, beta):
    return toys.leave_one_out_error(keys, values, beta)


def _eye(n, k=0):
    return np.eye(n, k=k, dtype=bool) | (np.eye(n, k=k - n, dtype=bool) if k > 0 else False)


LOO_MISTAKES: dict[str, Callable] = {
    "did not leave the pair out: each stored key is answered by a memory that still holds its "
    "own pair, so it (nearly) returns its own value and the error rewards the largest beta. "
    "Exclude pair i from the answer to key i (set the diagonal of the scores to -inf)":
        lambda k, v, b: _err(_answers(k, v, b), v),
    "left out the wrong pair (the mask is off by one: pair i+1 instead of pair i)":
        lambda k, v, b: _err(_answers(k, v, b, exclude=_eye(len(k), 1)), v),
    "set the pair's own weight to 0 *after* the softmax without renormalising: the remaining "
    "weights must sum to 1 (set the score to -inf *before* the softmax)":
        lambda k, v, b: _err(_answers(k, v, b, exclude=np.eye(len(k), dtype=bool),
                                     renormalise=False), v),
    "summed the squared errors over the pairs instead of averaging them (divide by n)":
        lambda k, v, b: len(k) * _err(_answers(k, v, b, exclude=np.eye(len(k), dtype=bool)), v),
    "averaged the squared error over the value dimensions too: sum over d_v, average over pairs":
        lambda k, v, b: _err(_answers(k, v, b, exclude=np.eye(len(k), dtype=bool)), v) / v.shape[1],
    "returned the root of the mean squared error: return the mean squared error itself":
        lambda k, v, b: np.sqrt(_err(_answers(k, v, b, exclude=np.eye(len(k), dtype=bool)), v)),
}


def check_leave_one_out_error(leave_one_out_error: Callable[..., float]) -> None:
    """Exercise 1.3: the leave-one-out error of a memory, for several shapes and bandwidths."""
    compare(CHAPTER, "leave_one_out_error", leave_one_out_error, _ref_loo, LOO_CASES,
            mistakes=LOO_MISTAKES, rtol=1e-6, atol=1e-9)
