"""The chapter 02 checks: reference solutions pass, declared mistakes are named, and tables of wrong
answers written here (none of them the checks' own mistake functions) fail while correct answers
written differently — float32 and torch included — pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from check_contract import contract_tests, table_tests

from mosaics_edu.core import memory
from mosaics_edu.course import toys
from mosaics_edu.course.checks import CheckFailed, ch02

# --- the chapter's solutions -------------------------------------------------------------------


def leaky_keys(features, decay):
    out, acc = np.zeros_like(features, dtype=np.float64), np.zeros(features.shape[1])
    for t in range(len(features)):
        acc = features[t] + decay * acc
        out[t] = acc
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


def causal_predict(keys, x, beta, gamma):
    T = len(keys)
    values = gamma * x + (1 - gamma) * np.concatenate([x[1:], np.zeros_like(x[:1])])
    scores = -beta * ((keys[:, None] - keys[None]) ** 2).sum(-1)  # (T, T)
    out = np.zeros((T, x.shape[1]))
    for t in range(1, T):
        w = np.exp(scores[t, :t] - scores[t, :t].max())
        out[t] = (w / w.sum()) @ values[:t]
    return out


def no_peeking(predict, x, t):
    changed = x.copy()
    changed[t + 1:] += 1.0 + np.arange(len(x) - t - 1)
    return bool(np.allclose(predict(x)[: t + 1], predict(changed)[: t + 1], rtol=0, atol=1e-12))


def memory_unit_lm(model, tokens):
    T = tokens.shape[1]
    x = model.embed(tokens)  # (B, T, d)
    k = model.keys(x)[:, 0]  # (B, T, d)
    v = model.values(x)[:, 0]  # (B, T, d)
    scores = k @ k.transpose(-1, -2)  # (B, T, T)
    past = torch.ones(T, T, dtype=torch.bool).tril(-1)
    w = torch.softmax(scores.masked_fill(~past, float("-inf")), dim=-1).nan_to_num(0.0)
    h = x + model.proj(w @ v)
    return model.unembed(model.ln(h))


EXERCISES = [
    (ch02.check_leaky_keys, leaky_keys, ch02.KEYS_MISTAKES),
    (ch02.check_causal_predict, causal_predict, ch02.PREDICT_MISTAKES),
    (ch02.check_no_peeking, no_peeking, {}),
    (ch02.check_memory_unit_lm, memory_unit_lm, ch02.LM_MISTAKES),
]
test_reference_passes, test_stub_fails, test_each_mistake_is_diagnosed = contract_tests(EXERCISES)


# --- exercise 2.1: leaky_keys --------------------------------------------------------------------


def k_in_place(features, decay):
    for t in range(1, len(features)):
        features[t] += decay * features[t - 1]
    return features / np.linalg.norm(features, axis=-1, keepdims=True)


def k_double_first(features, decay):  # the state starts at features[0], then adds it again
    acc, out = features[0].astype(np.float64), []
    for t in range(len(features)):
        acc = features[t] + decay * acc
        out.append(acc)
    out = np.array(out)
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


def k_fixed_decay(features, decay):
    return leaky_keys(features, 0.5)


def k_l1(features, decay):
    out, acc = np.zeros(features.shape), np.zeros(features.shape[1])
    for t in range(len(features)):
        acc = features[t] + decay * acc
        out[t] = acc
    return out / np.abs(out).sum(-1, keepdims=True)


def k_cumsum(features, decay):  # λ = 1 whatever decay is
    c = np.cumsum(features, axis=0)
    return c / np.linalg.norm(c, axis=-1, keepdims=True)


def k_two_sided_matrix(features, decay):  # λ^|t-s| for every s: the future leaks in
    T = len(features)
    C = decay ** np.abs(np.arange(T)[:, None] - np.arange(T)[None, :])
    out = C @ features
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


def k_float16(features, decay):
    return leaky_keys(features, decay).astype(np.float16)


def k_ema_swapped(features, decay):  # acc = λ f_t + (1-λ) acc: the decay on the wrong side
    out, acc = np.zeros(features.shape), np.zeros(features.shape[1])
    for t in range(len(features)):
        acc = decay * features[t] + (1 - decay) * acc
        out[t] = acc
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


def k_power_formula(features, decay):  # k̄_t = λ^t Σ_s f_s / λ^s: divides by 0 when λ = 0
    T = len(features)
    p = decay ** np.arange(T, dtype=np.float64)
    out = p[:, None] * np.cumsum(features / p[:, None], axis=0)
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


def k_masked_powers(features, decay):  # λ^(t-s) times a 0/1 mask: 0^(negative) = inf, inf·0 = nan
    t = np.arange(len(features), dtype=np.float64)
    C = decay ** (t[:, None] - t[None, :]) * (t[:, None] >= t[None, :])
    out = C @ features
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


def k_previous_input(features, decay):  # adds λ times the previous input, not the state
    prev = np.vstack([np.zeros((1, features.shape[1])), features[:-1]])
    out = features + decay * prev
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


KEYS_WRONG = [
    ("power-formula", k_power_formula, "every failing case is one where λ = 0", "lambda-zero"),
    ("masked-powers", k_masked_powers, "every failing case is one where λ = 0", "lambda-zero"),
    ("previous-input", k_previous_input, "it looks like you added λ times the previous *input*", "long-past"),
    ("in-place", k_in_place, "changed its argument `features` in place"),
    ("double-first", k_double_first, "entries differ"),
    ("fixed-decay", k_fixed_decay, "ignores its argument `decay`"),
    ("l1", k_l1, "it looks like you divided by the sum of absolute values"),
    ("cumsum", k_cumsum, "ignores its argument `decay`"),
    ("two-sided", k_two_sided_matrix, "entries differ"),
    ("float16", k_float16, "float16"),
    ("ema-swapped", k_ema_swapped, "it looks like you used 1 - λ as the decay"),
]


def k_ema(features, decay):
    out, acc = np.zeros(features.shape), np.zeros(features.shape[1])
    for t in range(len(features)):
        acc = (1 - decay) * features[t] + decay * acc
        out[t] = acc
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


def k_matrix_float32(features, decay):
    f = torch.tensor(features, dtype=torch.float32)
    T = len(f)
    t = torch.arange(T, dtype=torch.float32)
    C = torch.tril(float(decay) ** (t[:, None] - t[None, :]).clamp_min(0))  # (T, T)
    return torch.nn.functional.normalize(C @ f, dim=-1)


def k_package_torch(features, decay):  # the package's leaky average, on a torch tensor
    from mosaics_edu.core.features import leaky_average

    k = leaky_average(torch.as_tensor(features, dtype=torch.float32), decay)
    return torch.nn.functional.normalize(k, dim=-1)


KEYS_RIGHT = [("ema", k_ema), ("matrix-float32", k_matrix_float32), ("package-torch", k_package_torch)]


# --- exercise 2.2: causal_predict ----------------------------------------------------------------


def _peek(x, gamma):
    return gamma * x + (1 - gamma) * np.concatenate([x[1:], np.zeros_like(x[:1])])


def p_in_place(keys, x, beta, gamma):
    x[:-1] = gamma * x[:-1] + (1 - gamma) * x[1:]
    x[-1] = gamma * x[-1]
    return memory.kernel_regression(keys, x, keys, beta, mask=np.tri(len(keys), k=-1, dtype=bool))


def p_unstable(keys, x, beta, gamma):
    T = len(keys)
    w = np.exp(-beta * ((keys[:, None] - keys[None]) ** 2).sum(-1)) * np.tri(T, k=-1)
    with np.errstate(invalid="ignore"):
        w = w / w.sum(1, keepdims=True)
    return np.nan_to_num(w) @ _peek(x, gamma) if beta < 100 else w @ _peek(x, gamma)


def p_first_reads_itself(keys, x, beta, gamma):  # position 0 reads pair 0 "to avoid 0/0"
    mask = np.tri(len(keys), k=-1, dtype=bool)
    mask[0, 0] = True
    return memory.kernel_regression(keys, _peek(x, gamma), keys, beta, mask=mask)


def p_papers_beta(keys, x, beta, gamma):  # softmax(β k·k') on unit keys: half the bandwidth
    T = len(keys)
    return memory.softmax_attention(keys, _peek(x, gamma), keys, beta,
                                    mask=np.tri(T, k=-1, dtype=bool))


def p_loop_inclusive(keys, x, beta, gamma):
    v, out = _peek(x, gamma), np.zeros(x.shape)
    for t in range(1, len(keys)):
        s = -beta * ((keys[: t + 1] - keys[t]) ** 2).sum(1)
        w = np.exp(s - s.max())
        out[t] = w @ v[: t + 1] / w.sum()
    return out


def p_fixed_beta(keys, x, beta, gamma):
    return causal_predict(keys, x, 5.0, gamma)


def p_difference_values(keys, x, beta, gamma):
    v = np.concatenate([x[1:] - x[:-1], np.zeros_like(x[:1])])
    return memory.kernel_regression(keys, v, keys, beta, mask=np.tri(len(keys), k=-1, dtype=bool))


def p_nan_to_num(keys, x, beta, gamma):  # the literal softmax over s < t, nan set to 0
    T = len(keys)
    with np.errstate(invalid="ignore"):
        w = np.exp(-beta * ((keys[:, None] - keys[None]) ** 2).sum(-1)) * np.tri(T, k=-1)
        w = np.nan_to_num(w / w.sum(1, keepdims=True))
    return w @ _peek(x, gamma)


def p_renormalise_after(keys, x, beta, gamma):  # softmax over every pair, mask, renormalise
    T = len(keys)
    s = -beta * ((keys[:, None] - keys[None]) ** 2).sum(-1)
    w = np.exp(s - s.max(1, keepdims=True)) * np.tri(T, k=-1)
    with np.errstate(invalid="ignore"):
        w = w / w.sum(1, keepdims=True)
    w[0] = 0.0
    return w @ _peek(x, gamma)


def p_clipped(keys, x, beta, gamma):  # scores clipped at -700 so that exp stays above 0
    T = len(keys)
    s = np.maximum(-beta * ((keys[:, None] - keys[None]) ** 2).sum(-1), -700.0)
    w = np.exp(s) * np.tri(T, k=-1)
    w[1:] /= w[1:].sum(1, keepdims=True)
    return w @ _peek(x, gamma)


PREDICT_WRONG = [
    ("nan-to-num", p_nan_to_num, "every failing case is one where every exp(-β ||k_t - k_s||²)", "underflow"),
    ("renormalise-after", p_renormalise_after, "2 explanations fit every case", "underflow"),
    ("clipped", p_clipped, "every failing case is one where every exp", "underflow"),
    ("in-place", p_in_place, "changed its argument `x` in place"),
    ("unstable", p_unstable, "inf or NaN"),
    ("first-reads-itself", p_first_reads_itself, "let position 0 read its own pair"),
    ("papers-beta", p_papers_beta, "it looks like you used the papers' softmax(beta k.k_s)"),
    ("loop-inclusive", p_loop_inclusive, "entries differ"),
    ("fixed-beta", p_fixed_beta, "ignores its argument `beta`"),
    ("difference-values", p_difference_values, "ignores its argument `gamma`"),
]


def p_dot_form(keys, x, beta, gamma):  # unit keys: Gaussian = softmax(2β k·k')
    T = len(keys)
    s = np.where(np.tri(T, k=-1, dtype=bool), 2 * beta * keys @ keys.T, -np.inf)
    with np.errstate(invalid="ignore"):
        w = np.exp(s - s.max(1, keepdims=True))
        w = np.nan_to_num(w / w.sum(1, keepdims=True))
    return w @ _peek(x, gamma)


def p_torch_float32(keys, x, beta, gamma):
    k, xx = torch.tensor(keys, dtype=torch.float32), torch.tensor(x, dtype=torch.float32)
    v = torch.lerp(torch.nn.functional.pad(xx[1:], (0, 0, 0, 1)), xx, gamma)
    s = (-beta * torch.cdist(k, k) ** 2).masked_fill(~torch.ones(len(k), len(k)).tril(-1).bool(),
                                                    float("-inf"))
    return torch.softmax(s, 1).nan_to_num(0.0) @ v


def p_loop(keys, x, beta, gamma):
    T, v = len(keys), _peek(x, gamma)
    out = np.zeros(x.shape, dtype=np.float64)
    for t in range(1, T):
        s = -beta * ((keys[:t] - keys[t]) ** 2).sum(1)
        w = np.exp(s - s.max())
        out[t] = w @ v[:t] / w.sum()
    return out


PREDICT_RIGHT = [("dot-form", p_dot_form), ("torch-float32", p_torch_float32), ("loop", p_loop),
                 ("package", lambda k, x, b, g: memory.kernel_regression(
                     k, toys.peek_values(x, g), k, b, mask=toys.causal_mask(len(k))))]


# --- exercise 2.3: no_peeking ----------------------------------------------------------------------


def n_in_place(predict, x, t):
    before = predict(x.copy())[: t + 1]
    x[t + 1:] += 1.0
    return bool(np.allclose(before, predict(x)[: t + 1]))


def n_changes_present(predict, x, t):
    changed = x.copy()
    changed[t:] += 1.0
    return bool(np.allclose(predict(x)[: t + 1], predict(changed)[: t + 1]))


def n_compares_future(predict, x, t):
    changed = x.copy()
    changed[t + 1:] += 1.0
    return bool(np.allclose(predict(x)[t + 1:], predict(changed)[t + 1:]))


def n_only_next(predict, x, t):
    changed = x.copy()
    changed[t + 1] += 1.0
    return bool(np.allclose(predict(x)[: t + 1], predict(changed)[: t + 1]))


def n_excludes_t(predict, x, t):
    changed = x.copy()
    changed[t + 1:] += 1.0
    return bool(np.allclose(predict(x)[:t], predict(changed)[:t]))


def n_stops_before_end(predict, x, t):
    changed = x.copy()
    changed[t + 1: -1] += 1.0
    return bool(np.allclose(predict(x)[: t + 1], predict(changed)[: t + 1]))


def n_returns_array(predict, x, t):
    changed = x.copy()
    changed[t + 1:] += 1.0
    return np.isclose(predict(x)[: t + 1], predict(changed)[: t + 1])


def n_default_tolerance(predict, x, t):  # np.allclose's default tolerance hides a small leak
    changed = x.copy()
    changed[t + 1:] = np.random.default_rng(0).normal(0.0, 3.0, size=len(x) - t - 1)
    return bool(np.allclose(predict(x)[: t + 1], predict(changed)[: t + 1]))


def n_refuses_last(predict, x, t):  # "t must have a future"
    if t >= len(x) - 1:
        raise ValueError("t must be below T - 1")
    return no_peeking(predict, x, t)


NO_PEEKING_WRONG = [
    ("default-tolerance", n_default_tolerance, "missed a leak of 1e-6", "small-leak"),
    ("refuses-last", n_refuses_last, "your function raised ValueError: t must be below T - 1", "last"),
    ("in-place", n_in_place, "changed its argument `x` in place"),
    ("changes-present", n_changes_present, ch02.PEEKING_CASES[0][4]),
    ("compares-future", n_compares_future, ch02.PEEKING_CASES[0][4]),
    ("only-next", n_only_next, ch02.PEEKING_CASES[3][4]),
    ("excludes-t", n_excludes_t, ch02.PEEKING_CASES[2][4]),
    ("stops-before-end", n_stops_before_end, ch02.PEEKING_CASES[3][4]),
    ("always-true", lambda p, x, t: True, ch02.PEEKING_CASES[2][4]),
    ("always-false", lambda p, x, t: False, ch02.PEEKING_CASES[0][4]),
    ("returns-array", n_returns_array, "return True"),
]

def n_scaled_future(predict, x, t):  # the future doubled and shifted; exact comparison
    changed = np.concatenate([x[: t + 1], 2 * x[t + 1:] + 7.0])
    return bool(np.array_equal(np.asarray(predict(x))[: t + 1], np.asarray(predict(changed))[: t + 1]))


NO_PEEKING_RIGHT = [("package", toys.no_peeking), ("random-future", lambda p, x, t: bool(np.array_equal(
    p(x)[: t + 1], p(np.concatenate([x[: t + 1], np.random.default_rng(1).normal(size=len(x) - t - 1)]))[
        : t + 1]))), ("scaled-future", n_scaled_future)]


# --- exercise 2.4: memory_unit_lm ------------------------------------------------------------------


def lm_in_place(model, tokens):
    with torch.no_grad():
        model.keys.beta_logit.clamp_(max=0.05)  # "tame" the bandwidth, in the caller's model
    return memory_unit_lm(model, tokens)


def lm_values_are_keys(model, tokens):
    T = tokens.shape[1]
    x = model.embed(tokens)
    k = model.keys(x)[:, 0]
    s = (k @ k.transpose(-1, -2)).masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(-1), float("-inf"))
    return model.unembed(model.ln(x + model.proj(torch.softmax(s, -1).nan_to_num(0.0) @ k)))


def lm_normalised_residual(model, tokens):
    T = tokens.shape[1]
    x = model.embed(tokens)
    k, v = model.keys(x)[:, 0], model.values(x)[:, 0]
    s = (k @ k.transpose(-1, -2)).masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(-1), float("-inf"))
    return model.unembed(model.ln(x) + model.proj(torch.softmax(s, -1).nan_to_num(0.0) @ v))


def lm_zero_after_softmax(model, tokens):  # future weights zeroed after the softmax
    T = tokens.shape[1]
    x = model.embed(tokens)
    k, v = model.keys(x)[:, 0], model.values(x)[:, 0]
    w = torch.softmax(k @ k.transpose(-1, -2), -1) * torch.ones(T, T).tril(-1)
    return model.unembed(model.ln(x + model.proj(w @ v)))


def lm_sdpa_causal(model, tokens):  # the transformer's causal attention: s <= t and 1/sqrt(d)
    x = model.embed(tokens)
    k, v = model.keys(x), model.values(x)
    y = torch.nn.functional.scaled_dot_product_attention(k, k, v, is_causal=True)[:, 0]
    return model.unembed(model.ln(x + model.proj(y)))


def lm_float16(model, tokens):
    return memory_unit_lm(model, tokens).half()


def lm_probabilities(model, tokens):
    return torch.softmax(memory_unit_lm(model, tokens), -1)


def lm_gaussian_beta_one(model, tokens):  # exp(-||k - k'||²): twice the papers' logit
    T = tokens.shape[1]
    x = model.embed(tokens)
    k, v = model.keys(x)[:, 0], model.values(x)[:, 0]
    s = -torch.cdist(k, k) ** 2
    s = s.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(-1), float("-inf"))
    return model.unembed(model.ln(x + model.proj(torch.softmax(s, -1).nan_to_num(0.0) @ v)))


def lm_manual_softmax(model, tokens):  # exp / sum by hand, without the row maximum
    T = tokens.shape[1]
    x = model.embed(tokens)
    k, v = model.keys(x)[:, 0], model.values(x)[:, 0]
    e = torch.exp(k @ k.transpose(-1, -2)) * torch.ones(T, T).tril(-1)
    w = (e / e.sum(-1, keepdim=True)).nan_to_num(0.0)
    return model.unembed(model.ln(x + model.proj(w @ v)))


def lm_finite_mask(model, tokens):  # masked with -1e4 (a transformer habit), row 0 zeroed by hand
    T = tokens.shape[1]
    x = model.embed(tokens)
    k, v = model.keys(x)[:, 0], model.values(x)[:, 0]
    s = (k @ k.transpose(-1, -2)).masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(-1), -1e4)
    w = torch.softmax(s, -1)
    w[:, 0] = 0.0
    return model.unembed(model.ln(x + model.proj(w @ v)))


LM_WRONG = [
    ("manual-softmax", lm_manual_softmax, "every failing case is one where the scores k_t·k_s", "sharp"),
    ("finite-mask", lm_finite_mask, "every failing case is one where the scores k_t·k_s", "sharp"),
    ("in-place", lm_in_place, "changed its argument `model` in place"),
    ("values-are-keys", lm_values_are_keys, "retrieved the keys instead of the values"),
    ("normalised-residual", lm_normalised_residual, "normalised x alone"),
    ("zero-after-softmax", lm_zero_after_softmax, "applied the mask after the softmax"),
    ("sdpa-causal", lm_sdpa_causal, "used torch's causal attention"),
    ("float16", lm_float16, "float16"),
    ("probabilities", lm_probabilities, "returned probabilities"),
    ("gaussian-beta-one", lm_gaussian_beta_one, "it looks like you multiplied the scores by 2"),
]


def lm_package_attention(model, tokens):
    T = tokens.shape[1]
    x = model.embed(tokens)
    k, v = model.keys(x), model.values(x)  # (B, 1, T, d)
    mask = torch.ones(T, T, dtype=torch.bool).tril(-1)
    y = memory.softmax_attention(k, v, k, 1.0, mask=mask)[:, 0]
    return model.unembed(model.ln(x + model.proj(y)))


def lm_loop(model, tokens):
    x = model.embed(tokens)
    k, v = model.keys(x)[:, 0], model.values(x)[:, 0]
    ys = [torch.zeros_like(x[:, 0])]
    for t in range(1, tokens.shape[1]):
        w = torch.softmax(torch.einsum("bd,bsd->bs", k[:, t], k[:, :t]), dim=-1)  # (B, t)
        ys.append(torch.einsum("bs,bsd->bd", w, v[:, :t]))
    return model.unembed(model.ln(x + model.proj(torch.stack(ys, 1))))


def lm_float64(model, tokens):  # the whole model in float64, on a copy
    import copy

    m = copy.deepcopy(model).double()
    return memory_unit_lm(m, tokens).float()


LM_RIGHT = [("package-attention", lm_package_attention), ("loop", lm_loop), ("float64", lm_float64)]


test_keys_wrong_fails, test_keys_variant_passes = table_tests(ch02.check_leaky_keys, KEYS_WRONG, KEYS_RIGHT)
test_predict_wrong_fails, test_predict_variant_passes = table_tests(
    ch02.check_causal_predict, PREDICT_WRONG, PREDICT_RIGHT)
test_no_peeking_wrong_fails, test_no_peeking_variant_passes = table_tests(
    ch02.check_no_peeking, NO_PEEKING_WRONG, NO_PEEKING_RIGHT)
test_lm_wrong_fails, test_lm_variant_passes = table_tests(ch02.check_memory_unit_lm, LM_WRONG, LM_RIGHT)


def test_cases_vary_every_argument():
    assert len({c[0].shape for c in ch02.KEYS_CASES}) >= 5 and len({c[1] for c in ch02.KEYS_CASES}) >= 5
    assert any(c[0].dtype == np.float32 for c in ch02.KEYS_CASES)
    p = ch02.PREDICT_CASES
    assert len({c[0].shape for c in p}) >= 5 and len({c[1].shape[1] for c in p}) >= 3
    assert len({c[2] for c in p}) >= 5 and len({c[3] for c in p}) >= 5
    assert any(c[0].dtype == np.float32 for c in p)
    lm = ch02.LM_CASES
    assert len({tuple(c[1].shape) for c in lm}) == len(lm) and len({c[0].vocab for c in lm}) == len(lm)
    assert len({c[0].embed.embedding_dim for c in lm}) >= 3
    ts = {(len(c[1]), c[2]) for c in ch02.PEEKING_CASES}
    assert len(ts) >= 5 and any(t == 0 for _, t in ts) and any(t == n - 2 for n, t in ts)


def test_cases_are_in_the_regimes_they_name():
    with np.errstate(all="ignore"):
        for case in ch02.KEYS_CASES:
            f, decay = case
            for regime in case.regime:
                assert regime in ch02.KEYS_REGIMES, regime
                one_step = ch02.KEYS_MISTAKES[next(d for d in ch02.KEYS_MISTAKES if "previous *input*" in d)]
                holds = {
                    "lambda-zero": decay == 0,
                    "single": len(f) == 1,
                    "far": decay > 0.9 and np.abs(f.mean()) > 1.0,
                    "long-past": not np.allclose(one_step(f, decay), ch02._ref_keys(f, decay)),
                }[regime]
                assert holds, (regime, case.why)
        for case in ch02.PREDICT_CASES:
            k, x, beta, gamma = case
            T = len(k)
            s = np.where(np.tri(T, k=-1, dtype=bool), -beta * ((k[:, None] - k[None]) ** 2).sum(-1), -np.inf)
            for regime in case.regime:
                assert regime in ch02.PREDICT_REGIMES, regime
                holds = {
                    "underflow": (np.exp(s[1:]) == 0).all(1).any(),
                    "short": T <= 2,
                    "single": T == 1,
                    "gamma-zero": gamma == 0,
                    "beta-zero": beta == 0,
                }[regime]
                assert holds, (regime, case.why)
    for case in ch02.LM_CASES:
        model, tokens = case
        with torch.no_grad():
            k = model.keys(model.embed(tokens))[:, 0]
            scores = k @ k.transpose(-1, -2)
        for regime in case.regime:
            assert regime in ch02.LM_REGIMES, regime
            holds = {
                "single": tokens.shape[1] == 1,
                "repeats": any(len(set(row.tolist())) < len(row) for row in tokens),
                "sharp": bool(scores.abs().max() > 709),
            }[regime]
            assert holds, regime
    t_values = {(len(c[1]), c[2]) for c in ch02.PEEKING_CASES}
    assert any(t == n - 1 for n, t in t_values) and any(t == 0 for _, t in t_values)  # the edges


def test_no_peeking_must_return_a_bool():
    with pytest.raises(CheckFailed, match="return True"):
        ch02.check_no_peeking(lambda p, x, t: "yes")
