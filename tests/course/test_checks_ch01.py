"""The chapter 01 checks: reference solutions pass, declared mistakes are named, and tables of wrong
answers written here (none of them the checks' own mistake functions) fail while correct answers
written differently — float32 and torch included — pass."""

from __future__ import annotations

import numpy as np
import torch
from check_contract import contract_tests, table_tests

from mosaics_edu.course.checks import ch01


def retrieve(keys, values, queries, beta, form="gaussian"):  # the chapter's solution
    if form == "gaussian":
        scores = -beta * ((queries[:, None, :] - keys[None, :, :]) ** 2).sum(-1)  # (m, n)
    else:
        scores = 2 * beta * queries @ keys.T  # (m, n)
    w = np.exp(scores - scores.max(axis=1, keepdims=True))
    return (w / w.sum(axis=1, keepdims=True)) @ values


def leave_one_out_error(keys, values, beta):  # the chapter's solution
    scores = -beta * ((keys[:, None, :] - keys[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(scores, -np.inf)
    w = np.exp(scores - scores.max(axis=1, keepdims=True))
    answers = (w / w.sum(axis=1, keepdims=True)) @ values
    return float(np.mean(((answers - values) ** 2).sum(axis=1)))


EXERCISES = [
    (ch01.check_retrieve, retrieve, ch01.RETRIEVE_MISTAKES),
    (ch01.check_leave_one_out_error, leave_one_out_error, ch01.LOO_MISTAKES),
]
test_reference_passes, test_stub_fails, test_each_mistake_is_diagnosed = contract_tests(EXERCISES)


# --- exercise 1.1: wrong answers -----------------------------------------------------------------


def _softmax_rows(s):
    w = np.exp(s - s.max(axis=1, keepdims=True))
    return w / w.sum(axis=1, keepdims=True)


def r_normalises_keys_in_place(keys, values, queries, beta, form="gaussian"):
    keys /= np.linalg.norm(keys, axis=1, keepdims=True)
    return retrieve(keys, values, queries, beta, form)


def r_ignores_form(keys, values, queries, beta, form="gaussian"):
    return retrieve(keys, values, queries, beta, "gaussian")


def r_ignores_beta(keys, values, queries, beta, form="gaussian"):
    return retrieve(keys, values, queries, 1.0, form)


def r_transposed_product(keys, values, queries, beta, form="gaussian"):
    s = -beta * ((queries[:, None, :] - keys[None, :, :]) ** 2).sum(-1)
    return values.T @ _softmax_rows(s).T  # (d_v, m)


def r_l1_distance(keys, values, queries, beta, form="gaussian"):
    if form == "dot":
        return retrieve(keys, values, queries, beta, form)
    s = -beta * np.abs(queries[:, None, :] - keys[None, :, :]).sum(-1)
    return _softmax_rows(s) @ values


def r_half_precision(keys, values, queries, beta, form="gaussian"):
    return retrieve(keys, values, queries, beta, form).astype(np.float16)


def r_no_max_numerator_only(keys, values, queries, beta, form="gaussian"):
    s = -beta * ((queries[:, None, :] - keys[None, :, :]) ** 2).sum(-1) if form == "gaussian" \
        else 2 * beta * queries @ keys.T
    w = np.exp(s)  # the written-out unstable form
    return (w / np.sum(w, axis=1)[:, None]) @ values


def r_expansion_missing_key_norm(keys, values, queries, beta, form="gaussian"):
    # the Gaussian form through the expansion, forgetting the ||k_i||² term (= the dot form)
    s = 2 * beta * queries @ keys.T
    return _softmax_rows(s) @ values


def r_unit_keys_dot(keys, values, queries, beta, form="gaussian"):
    if form == "gaussian":
        return retrieve(keys, values, queries, beta, form)
    k = keys / np.linalg.norm(keys, axis=1, keepdims=True)
    return _softmax_rows(2 * beta * queries @ k.T) @ values


def r_mean_shift(keys, values, queries, beta, form="gaussian"):  # shifted by the row mean
    s = -beta * ((queries[:, None, :] - keys[None, :, :]) ** 2).sum(-1) if form == "gaussian" \
        else 2 * beta * queries @ keys.T
    w = np.exp(s - s.mean(axis=1, keepdims=True))
    return (w / w.sum(axis=1, keepdims=True)) @ values


def r_nearest_value(keys, values, queries, beta, form="gaussian"):  # a hard lookup
    d2 = ((queries[:, None, :] - keys[None, :, :]) ** 2).sum(-1)
    return values[d2.argmin(axis=1)] if form == "gaussian" else values[(queries @ keys.T).argmax(1)]


def r_nan_to_num(keys, values, queries, beta, form="gaussian"):  # the naive formula, nan -> 0
    s = -beta * ((queries[:, None, :] - keys[None, :, :]) ** 2).sum(-1) if form == "gaussian" \
        else 2 * beta * queries @ keys.T
    w = np.exp(s)
    return np.nan_to_num(w / w.sum(axis=1, keepdims=True)) @ values


def r_dot_unstable(keys, values, queries, beta, form="gaussian"):  # stable for one form only
    if form == "gaussian":
        return retrieve(keys, values, queries, beta, form)
    w = np.exp(2 * beta * queries @ keys.T)
    return (w / w.sum(axis=1, keepdims=True)) @ values


RETRIEVE_WRONG = [
    ("mean-shift", r_mean_shift, "it looks like you subtracted each row's mean score", "spread"),
    ("nearest-value", r_nearest_value, "answered with the value of the nearest key alone", "tie"),
    ("nan-to-num", r_nan_to_num, "every failing case is one where exp of a raw score", "unstable"),
    ("dot-unstable", r_dot_unstable, "every failing case is one where some 2β k·k_i exceeds 709", "overflow"),
    ("in-place", r_normalises_keys_in_place, "changed its argument `keys` in place"),
    ("ignores-form", r_ignores_form, "ignored the argument `form`: your answer is the Gauss"),
    ("ignores-beta", r_ignores_beta, "ignores its argument `beta`"),
    ("transposed", r_transposed_product, "shape"),
    ("l1-distance", r_l1_distance, "entries differ"),
    ("float16", r_half_precision, "float16"),
    ("unstable", r_no_max_numerator_only, "it looks like you computed the exponentials without"),
    ("expansion-no-norm", r_expansion_missing_key_norm, "argument `form`: your answer is the dot"),
    ("unit-keys-dot", r_unit_keys_dot, "entries differ"),
]


# --- exercise 1.1: correct variants ----------------------------------------------------------------


def r_torch_float32(keys, values, queries, beta, form="gaussian"):
    k, v, q = (torch.tensor(a, dtype=torch.float32) for a in (keys, values, queries))
    s = -beta * torch.cdist(q, k) ** 2 if form == "gaussian" else 2 * beta * q @ k.T
    return torch.softmax(s, dim=1) @ v


def r_expansion(keys, values, queries, beta, form="gaussian"):
    s = 2 * beta * queries @ keys.T
    if form == "gaussian":  # -β||q - k||² = 2β q·k - β||k||² - β||q||² (the last cancels)
        s = s - beta * (keys**2).sum(1)[None, :]
    return _softmax_rows(s) @ values


def r_loop(keys, values, queries, beta, form="gaussian"):
    out = []
    for q in queries:
        s = -beta * ((keys - q) ** 2).sum(1) if form == "gaussian" else 2 * beta * keys @ q
        w = np.exp(s - s.max())
        out.append(w @ values / w.sum())
    return np.array(out)


RETRIEVE_RIGHT = [("torch-float32", r_torch_float32), ("expansion", r_expansion), ("loop", r_loop)]


# --- exercise 1.2: wrong answers -----------------------------------------------------------------


def loo_in_place(keys, values, beta):
    s = -beta * ((keys[:, None, :] - keys[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(s, -np.inf)
    values -= _softmax_rows(s) @ values  # the residuals, written into the argument
    return float(np.mean((values**2).sum(1)))


def loo_zero_distance(keys, values, beta):  # "excludes" i by zeroing its distance
    d2 = ((keys[:, None, :] - keys[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d2, 0.0)
    return float(np.mean(((_softmax_rows(-beta * d2) @ values - values) ** 2).sum(1)))


def loo_mean_everything(keys, values, beta):
    s = -beta * ((keys[:, None, :] - keys[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(s, -np.inf)
    return float(np.mean((_softmax_rows(s) @ values - values) ** 2))


def loo_fixed_beta(keys, values, beta):
    return leave_one_out_error(keys, values, 10.0)


def loo_per_pair(keys, values, beta):
    s = -beta * ((keys[:, None, :] - keys[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(s, -np.inf)
    return ((_softmax_rows(s) @ values - values) ** 2).sum(1)


def loo_skips_last_pair(keys, values, beta):
    errs = []
    for i in range(len(keys) - 1):
        others = np.arange(len(keys)) != i
        s = -beta * ((keys[others] - keys[i]) ** 2).sum(1)
        w = np.exp(s - s.max())
        errs.append((((w / w.sum()) @ values[others] - values[i]) ** 2).sum())
    return float(np.mean(errs))


def loo_float16(keys, values, beta):
    return np.float16(leave_one_out_error(keys, values, beta))


def loo_absolute_error(keys, values, beta):
    s = -beta * ((keys[:, None, :] - keys[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(s, -np.inf)
    return float(np.mean(np.abs(_softmax_rows(s) @ values - values).sum(1)))


def loo_excludes_distance_zero(keys, values, beta):  # "itself" found by its distance 0
    d2 = ((keys[:, None, :] - keys[None, :, :]) ** 2).sum(-1)
    s = np.where(d2 == 0, -np.inf, -beta * d2)
    return float(np.mean(((_softmax_rows(s) @ values - values) ** 2).sum(1)))


def loo_nan_to_num(keys, values, beta):  # the naive formula with nan set to 0
    s = -beta * ((keys[:, None, :] - keys[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(s, -np.inf)
    w = np.exp(s)
    w = np.nan_to_num(w / w.sum(1, keepdims=True))
    return float(np.mean(((w @ values - values) ** 2).sum(1)))


def loo_renormalised(keys, values, beta):  # zero the diagonal after the softmax, then renormalise
    w = _softmax_rows(-beta * ((keys[:, None, :] - keys[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(w, 0.0)
    w = w / w.sum(1, keepdims=True)
    return float(np.mean(((w @ values - values) ** 2).sum(1)))


LOO_WRONG = [
    ("renormalised-after", loo_renormalised, "zeroed the pair's own weight after the softmax and "
     "renormalised", "underflow"),
    ("excludes-distance-zero", loo_excludes_distance_zero, "left out every pair whose key is at distance 0",
     "duplicate"),
    ("nan-to-num", loo_nan_to_num, "every failing case is one where the keys are far apart", "underflow"),
    ("in-place", loo_in_place, "changed its argument `values` in place"),
    ("zero-distance", loo_zero_distance, "it looks like you did not leave the pair out"),
    ("mean-everything", loo_mean_everything, "it looks like you averaged the squared error"),
    ("fixed-beta", loo_fixed_beta, "ignores its argument `beta`"),
    ("per-pair", loo_per_pair, "shape"),
    ("skips-last", loo_skips_last_pair, "got "),
    ("float16", loo_float16, "float16"),
    ("absolute", loo_absolute_error, "got "),
]


# --- exercise 1.2: correct variants ----------------------------------------------------------------


def loo_loop(keys, values, beta):
    errs = []
    for i in range(len(keys)):
        others = np.arange(len(keys)) != i
        s = -beta * ((keys[others] - keys[i]) ** 2).sum(1)
        w = np.exp(s - s.max())
        errs.append((((w / w.sum()) @ values[others] - values[i]) ** 2).sum())
    return float(np.mean(errs))


def loo_torch_float32(keys, values, beta):
    k, v = torch.tensor(keys, dtype=torch.float32), torch.tensor(values, dtype=torch.float32)
    s = -beta * torch.cdist(k, k) ** 2
    s = s.masked_fill(torch.eye(len(k), dtype=torch.bool), float("-inf"))
    return ((torch.softmax(s, 1) @ v - v) ** 2).sum(1).mean()


def loo_expansion(keys, values, beta):  # ||k_i - k_j||² = |k_i|² + |k_j|² - 2 k_i·k_j
    sq = (keys**2).sum(1)
    s = -beta * (sq[:, None] + sq[None, :] - 2 * keys @ keys.T)
    np.fill_diagonal(s, -np.inf)
    return float(np.mean(((_softmax_rows(s) @ values - values) ** 2).sum(1)))


LOO_RIGHT = [("loop", loo_loop), ("torch-float32", loo_torch_float32), ("expansion", loo_expansion)]

test_retrieve_wrong_fails, test_retrieve_variant_passes = table_tests(
    ch01.check_retrieve, RETRIEVE_WRONG, RETRIEVE_RIGHT)
test_loo_wrong_fails, test_loo_variant_passes = table_tests(
    ch01.check_leave_one_out_error, LOO_WRONG, LOO_RIGHT)


def test_cases_are_in_the_regimes_they_name():
    with np.errstate(all="ignore"):
        for case in ch01.RETRIEVE_CASES:
            k, v, q, beta, form = case
            k, q = k.astype(np.float64), q.astype(np.float64)
            d2 = ((q[:, None] - k[None]) ** 2).sum(-1)
            s = -beta * d2 if form == "gaussian" else 2 * beta * q @ k.T
            norms = np.linalg.norm(k, axis=1)
            for regime in case.regime:
                assert regime in ch01.RETRIEVE_REGIMES, regime
                holds = {
                    "unstable": np.isinf(np.exp(s)).any() or (np.exp(s) == 0).all(1).any(),
                    "underflow": (np.exp(s) == 0).all(1).any(),
                    "overflow": np.isinf(np.exp(s)).any(),
                    "spread": np.isinf(np.exp(s - s.mean(1, keepdims=True))).any(),
                    "norms": norms.max() - norms.min() > 0.1,
                    "tie": any(np.sum(np.isclose(row, row.min())) > 1 for row in d2),
                    "single-query": len(q) == 1,
                    "single-pair": len(k) == 1,
                    "beta-zero": beta == 0,
                }[regime]
                assert holds, (regime, case.why)
        for case in ch01.LOO_CASES:
            k, v, beta = case
            k = k.astype(np.float64)
            d2 = ((k[:, None] - k[None]) ** 2).sum(-1)
            s = np.where(np.eye(len(k), dtype=bool), -np.inf, -beta * d2)
            for regime in case.regime:
                assert regime in ch01.LOO_REGIMES, regime
                holds = {
                    "underflow": (np.exp(s) == 0).all(1).any(),
                    "duplicate": (d2[~np.eye(len(k), dtype=bool)] == 0).any(),
                    "two-pairs": len(k) == 2,
                    "beta-zero": beta == 0,
                }[regime]
                assert holds, (regime, case.why)


def test_cases_vary_every_argument():
    cases = ch01.RETRIEVE_CASES
    for i in range(3):  # n, m, d each take several values
        assert len({c[0].shape[1] if i == 2 else (c[0].shape[0] if i == 0 else c[2].shape[0])
                    for c in cases}) >= 3
    assert len({c[1].shape[1] for c in cases}) >= 3  # d_v
    assert {c[4] for c in cases} == {"gaussian", "dot"}
    assert min(c[3] for c in cases) == 0.0 and max(c[3] for c in cases) >= 100
    assert any(c[0].dtype == np.float32 for c in cases)
    loo = ch01.LOO_CASES
    assert len({c[0].shape for c in loo}) >= 5 and len({c[2] for c in loo}) >= 5
    assert any(c[0].dtype == np.float32 for c in loo)
