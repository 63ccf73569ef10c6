"""The chapter-00 check: the reference passes, declared mistakes are named, and a table of wrong
answers written here (none of them the check's own mistake functions) fails while correct answers
written differently — float32 included — pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from check_contract import contract_tests, table_tests

from mosaics_edu.course.checks import CheckFailed, ch00


def stable_softmax(x):  # the chapter's solution
    z = x - x.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def weight_entropy(scores, beta):  # the chapter's solution
    z = beta * scores
    z = z - z.max(axis=-1, keepdims=True)
    log_w = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    w = np.exp(log_w)
    return -np.where(w > 0, w * log_w, 0.0).sum(axis=-1)


EXERCISES = [(ch00.check_stable_softmax, stable_softmax, ch00.SOFTMAX_MISTAKES),
             (ch00.check_weight_entropy, weight_entropy, ch00.ENTROPY_MISTAKES)]
test_reference_passes, test_stub_fails, test_each_mistake_is_diagnosed = contract_tests(EXERCISES)


# --- wrong answers a learner writes --------------------------------------------------------------


def in_place(x):
    x -= x.max(axis=-1, keepdims=True)
    np.exp(x, out=x)
    x /= x.sum(axis=-1, keepdims=True)
    return x


def half(x):
    z = (x - x.max(axis=-1, keepdims=True)).astype(np.float16)
    return np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)


def naive_indexing(x):  # the naive formula, written with [..., None]
    e = np.exp(x)
    return e / e.sum(-1)[..., None]


def torch_axis0(x):  # a library softmax, over the wrong dimension
    return torch.softmax(torch.from_numpy(np.array(x)), dim=0).numpy()


def uniform(x):  # ignores the scores
    return np.ones_like(x) / x.shape[-1]


def sum_without_keepdims(x):  # shift right, division broadcast against the last axis
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1)


def column_shift(x):  # shifts each column by its max: not one constant per row
    e = np.exp(x - x.max(axis=0, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def axis1(x):  # axis=1 is the last axis of a matrix, but not of a 3-D array
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def log_of_sum_unstable(x):  # exp(x - log Σ exp x): log(inf) = inf
    return np.exp(x - np.log(np.exp(x).sum(axis=-1, keepdims=True)))


def mean_shift(x):  # shifts by the row mean: fine until a row spreads over more than ~1,400
    e = np.exp(x - x.mean(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def clipped(x):  # "keeps exp finite" by clipping: large scores that differ become equal
    e = np.exp(np.clip(x, -700, 700))
    return e / e.sum(axis=-1, keepdims=True)


def naive_nan_to_num(x):  # the literal formula with its nan replaced by 0
    e = np.exp(x)
    return np.nan_to_num(e / e.sum(axis=-1, keepdims=True))


def first_shift(x):  # shifts by the first score of each row
    e = np.exp(x - x[..., :1])
    return e / e.sum(axis=-1, keepdims=True)


def torch_half(x):  # a library softmax computed in half precision
    return torch.softmax(torch.as_tensor(x).half(), dim=-1)


WRONG = [
    ("mean-shift", mean_shift, "it looks like you subtracted each row's mean", "spread"),
    ("clipped", clipped, "it looks like you clipped the scores", "overflow"),
    ("naive-nan-to-num", naive_nan_to_num, "every failing case is one where", "overflow"),
    ("first-shift", first_shift, "it looks like you subtracted each row's first score", "spread"),
    ("torch-half", torch_half, "float16"),
    ("in-place", in_place, "changed its argument `x` in place"),
    ("float16", half, "float16"),
    ("naive-indexing", naive_indexing, "it looks like you computed exp(x) directly"),
    ("torch-axis0", torch_axis0, "it looks like you normalised over axis 0"),
    ("uniform", uniform, "it looks like you returned equal weights"),
    ("sum-no-keepdims", sum_without_keepdims, "wrong on test case 1"),
    ("column-shift", column_shift, "wrong on test case"),
    ("axis1", axis1, "on test case 0 of 10 (1-D: the last axis is axis 0): your function raised AxisError"),
    ("log-of-sum", log_of_sum_unstable, "wrong on test case"),
]


# --- correct answers written differently ---------------------------------------------------------


def torch_softmax(x):
    return torch.softmax(torch.as_tensor(x), dim=-1).numpy()


def float32(x):
    z = np.asarray(x, dtype=np.float32)
    z = z - z.max(axis=-1, keepdims=True)
    return np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)


def log_sum_exp(x):
    m = x.max(axis=-1, keepdims=True)
    return np.exp(x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True)))


def as_lists(x):
    return stable_softmax(x).tolist()


def row_loop(x):  # one row at a time, with Python's max
    out = np.empty(x.shape)
    for i in np.ndindex(x.shape[:-1]):
        m = max(x[i])
        e = np.exp(x[i] - m)
        out[i] = e / e.sum()
    return out


RIGHT = [("torch", torch_softmax), ("float32", float32), ("log-sum-exp", log_sum_exp),
         ("lists", as_lists), ("row-loop", row_loop)]

test_wrong_answer_fails, test_correct_variant_passes = table_tests(
    ch00.check_stable_softmax, WRONG, RIGHT)


def test_cases_are_in_the_regimes_they_name():
    """A case labelled with a regime really is in it: the mistake it is there for shows on it."""
    with np.errstate(all="ignore"):
        for case in ch00.SOFTMAX_CASES:
            x = case[0].astype(np.float64)
            for regime in case.regime:
                assert regime in ch00.SOFTMAX_REGIMES, regime
                holds = {
                    "overflow": np.isinf(np.exp(x)).any(),
                    "underflow": (np.exp(x) == 0).all(axis=-1).any(),
                    "spread": np.isinf(np.exp(x - x.mean(-1, keepdims=True))).any()
                    or np.isinf(np.exp(x - x[..., :1])).any(),
                    "masked": np.isneginf(x).any(),
                    "unstable": np.isinf(np.exp(x)).any() or (np.exp(x) == 0).all(axis=-1).any(),
                    "3d": x.ndim == 3,
                }[regime]
                assert holds, (regime, case.why)
        for case in ch00.ENTROPY_CASES:
            s, beta = case[0].astype(np.float64), case[1]
            for regime in case.regime:
                assert regime in ch00.ENTROPY_REGIMES, regime
                w = ch00.reference_softmax(beta * s)
                holds = {
                    "underflow": (w == 0).any(),
                    "overflow": np.isinf(np.exp(beta * s)).any(),
                    "negative-beta": beta < 0
                    and np.isinf(np.exp(beta * (s - s.max(-1, keepdims=True)))).any(),
                    "single": s.shape[-1] == 1,
                }[regime]
                assert holds, (regime, case.why)
    for regimes, cases in ((ch00.SOFTMAX_REGIMES, ch00.SOFTMAX_CASES),
                           (ch00.ENTROPY_REGIMES, ch00.ENTROPY_CASES)):
        assert set(regimes) == {r for c in cases for r in c.regime}  # every regime has a case


def test_cases_vary_shape_values_and_dtype():
    shapes = {c[0].shape for c in ch00.SOFTMAX_CASES}
    assert {1, 2, 3} <= {len(s) for s in shapes}
    assert any(len(s) == 2 and s[0] == s[1] for s in shapes)  # square
    assert any(len(s) == 2 and s[0] != s[1] for s in shapes)  # non-square
    assert any(c[0].dtype == np.float32 for c in ch00.SOFTMAX_CASES)
    assert any(np.isinf(c[0]).any() for c in ch00.SOFTMAX_CASES)


def test_in_place_answer_leaves_the_cases_intact():
    before = [c[0].copy() for c in ch00.SOFTMAX_CASES]
    with pytest.raises(CheckFailed):
        ch00.check_stable_softmax(in_place)
    for b, c in zip(before, ch00.SOFTMAX_CASES, strict=True):
        assert np.array_equal(b, c[0], equal_nan=True)
    with np.errstate(all="ignore"), pytest.raises(CheckFailed):
        ch00.check_stable_softmax(naive_indexing)  # still caught after an in-place answer ran


# --- exercise 0.2: wrong answers and correct variants ----------------------------------------------


def e_in_place(scores, beta):
    scores *= beta  # scales the caller's scores
    return weight_entropy(scores, 1.0)


def e_fixed_beta(scores, beta):
    return weight_entropy(scores, 1.0)


def e_eps_in_wrong_place(scores, beta):  # ln(w + 0.01): a large "safety" epsilon
    w = stable_softmax(beta * scores)
    return -(w * np.log(w + 1e-2)).sum(-1)


def e_mean_not_sum(scores, beta):
    w = stable_softmax(beta * scores)
    return -np.nansum(w * np.log(w), axis=-1) / scores.shape[-1]


def e_torch_naive(scores, beta):  # torch's softmax, then w·log w: nan where w underflows
    w = torch.softmax(beta * torch.as_tensor(scores, dtype=torch.float64), dim=-1)
    return -(w * w.log()).sum(-1)


def e_keeps_last_axis(scores, beta):
    return weight_entropy(scores, beta)[..., None]


def e_float16(scores, beta):
    return weight_entropy(scores, beta).astype(np.float16)


def e_unshifted_log_sum_exp(scores, beta):  # log-weights without the max shift: exp overflows
    z = beta * scores
    log_w = z - np.log(np.exp(z).sum(-1, keepdims=True))
    return -(np.exp(log_w) * log_w).sum(-1)


def e_shift_before_beta(scores, beta):  # shifts the scores, then multiplies by beta
    z = beta * (scores - scores.max(axis=-1, keepdims=True))
    log_w = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return -(np.exp(log_w) * log_w).sum(-1)


def e_nan_to_num(scores, beta):  # w · ln w with its nan set to 0, but the naive softmax
    w = np.exp(beta * scores) / np.exp(beta * scores).sum(-1, keepdims=True)
    return -np.nan_to_num(w * np.log(w)).sum(-1)


def e_normalised(scores, beta):  # divides by ln n: a "normalised entropy"
    return weight_entropy(scores, beta) / np.log(scores.shape[-1])


ENTROPY_WRONG = [
    ("unshifted-log-sum-exp", e_unshifted_log_sum_exp, "every failing case is one where", "overflow"),
    ("shift-before-beta", e_shift_before_beta, "it looks like you shifted the scores", "negative-beta"),
    ("nan-to-num-naive", e_nan_to_num, "every failing case is one where", "overflow"),
    ("normalised", e_normalised, "it looks like you divided by ln n"),
    ("in-place", e_in_place, "changed its argument `scores` in place"),
    ("fixed-beta", e_fixed_beta, "ignores its argument `beta`"),
    ("big-epsilon", e_eps_in_wrong_place, "wrong on test case"),
    ("mean-not-sum", e_mean_not_sum, "wrong on test case"),
    ("torch-naive", e_torch_naive, "it looks like you computed w · ln w from the weights"),
    ("keeps-last-axis", e_keeps_last_axis, "shape"),
    ("float16", e_float16, "float16"),
]


def e_torch_special(scores, beta):
    w = torch.softmax(beta * torch.as_tensor(scores, dtype=torch.float32), dim=-1)
    return -torch.special.xlogy(w, w).sum(-1)  # xlogy(0, 0) = 0


def e_log_sum_exp_identity(scores, beta):  # H = ln Σ e^z - Σ w z
    z = beta * scores
    m = z.max(axis=-1, keepdims=True)
    e = np.exp(z - m)
    w = e / e.sum(-1, keepdims=True)
    return (np.log(e.sum(-1)) + m[..., 0]) - (w * z).sum(-1)


def e_nansum_loop(scores, beta):  # one row at a time; nansum drops the 0 · (-inf) terms
    out = np.empty(scores.shape[:-1])
    for i in np.ndindex(out.shape):
        z = beta * scores[i] - (beta * scores[i]).max()
        w = np.exp(z) / np.exp(z).sum()
        with np.errstate(divide="ignore", invalid="ignore"):
            out[i] = -np.nansum(w * np.log(w))
    return out


ENTROPY_RIGHT = [("torch-xlogy-float32", e_torch_special), ("log-sum-exp-identity", e_log_sum_exp_identity),
                 ("nansum-loop", e_nansum_loop)]

test_entropy_wrong_fails, test_entropy_variant_passes = table_tests(
    ch00.check_weight_entropy, ENTROPY_WRONG, ENTROPY_RIGHT)
