"""The chapter 08 checks pass correct answers (written several ways) and diagnose wrong ones."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from check_contract import table_tests

from mosaics_edu.checks import CheckFailed, ch08

# ---- exercise 8.1: β(n) ----------------------------------------------------------------------


def beta_numpy(n, theta0, theta1, theta_alpha):
    alpha = min(abs(theta_alpha), 1.0)
    beta = math.exp(min(theta1, 10)) * np.maximum(n, 1) ** alpha + math.exp(min(theta0, 10))
    return np.minimum(beta, math.exp(10))


def beta_torch_float32(n, theta0, theta1, theta_alpha):
    n = torch.as_tensor(n, dtype=torch.float32).clamp_min(1)
    t = torch.tensor([theta0, theta1, theta_alpha], dtype=torch.float32)
    beta = t[1].clamp(max=10).exp() * n ** t[2].abs().clamp(max=1) + t[0].clamp(max=10).exp()
    return beta.clamp(max=math.exp(10))


def beta_list(n, theta0, theta1, theta_alpha):  # a plain list is an answer too
    return [beta_numpy(np.array(float(x)), theta0, theta1, theta_alpha) for x in n]


@pytest.mark.parametrize("answer", [beta_numpy, beta_torch_float32])
def test_beta_correct_variants_pass(answer):
    ch08.check_adaptive_beta(answer)


def beta_in_place(n, theta0, theta1, theta_alpha):
    np.maximum(n, 1, out=n)  # modifies the caller's array
    return beta_numpy(n, theta0, theta1, theta_alpha)


def beta_ignores_theta0(n, theta0, theta1, theta_alpha):
    return beta_numpy(n, 1.5, theta1, theta_alpha)


def beta_float16(n, theta0, theta1, theta_alpha):
    return beta_numpy(n, theta0, theta1, theta_alpha).astype(np.float16)


@pytest.mark.parametrize(
    "answer, match",
    [
        (lambda n, a, b, c: ch08._beta_variant(n, a, b, c, clamp_alpha=False), "did not cap α at 1"),
        (lambda n, a, b, c: ch08._beta_variant(n, a, b, c, abs_alpha=False), "θ_α itself"),
        (lambda n, a, b, c: ch08._beta_variant(n, a, b, c, clamp_n=False), "empty memory"),
        (lambda n, a, b, c: ch08._beta_variant(n, a, b, c, swap=True), "swapped β₀ and β₁"),
        (lambda n, a, b, c: ch08._beta_variant(n, a, b, c, cap=False), "did not cap β"),
        (beta_in_place, "in place"),
        (beta_ignores_theta0, "adaptive_beta"),
        (beta_float16, "adaptive_beta"),
    ],
)
def test_beta_wrong_answers_fail_with_a_diagnosis(answer, match):
    with pytest.raises(CheckFailed, match=match):
        ch08.check_adaptive_beta(answer)


# ---- exercise 8.2: gated keys ----------------------------------------------------------------


def keys_loop(k_tilde, log_gate, log_decay):
    state = torch.zeros(k_tilde.shape[1])
    out = []
    for t in range(k_tilde.shape[0]):
        state = log_gate[t].exp() * k_tilde[t] + log_decay[t].exp() * state
        out.append(state / state.norm())
    return torch.stack(out)


def keys_numpy_float64(k_tilde, log_gate, log_decay):
    k, b, a = (np.asarray(x, dtype=np.float64) for x in (k_tilde, log_gate, log_decay))
    out = np.zeros_like(k)
    for t in range(len(k)):
        out[t] = np.exp(b[t]) * k[t] + (np.exp(a[t]) * out[t - 1] if t else 0)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def keys_closed_form(k_tilde, log_gate, log_decay):
    """Weights exp(b_s + Σ_{r=s+1..t} a_r), written as a matrix."""
    T = k_tilde.shape[0]
    c = torch.cumsum(log_decay, 0)
    logw = log_gate[None, :] + c[:, None] - c[None, :]
    logw = logw.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
    k = logw.exp() @ k_tilde
    return k / k.norm(dim=1, keepdim=True)


@pytest.mark.parametrize("answer", [keys_loop, keys_numpy_float64, keys_closed_form])
def test_keys_correct_variants_pass(answer):
    ch08.check_gated_keys(answer)


def keys_in_place(k_tilde, log_gate, log_decay):
    log_decay.exp_()  # overwrites the caller's tensor
    return keys_loop(k_tilde, log_gate, log_decay.log())


def keys_ignore_gate(k_tilde, log_gate, log_decay):
    return keys_loop(k_tilde, torch.zeros_like(log_gate), log_decay)


@pytest.mark.parametrize(
    "answer, match",
    [
        (lambda k, b, a: ch08._keys_variant(k, b, a, gate_on="past"), "gate on the past"),
        (lambda k, b, a: ch08._keys_variant(k, b, a, decay_index=-1), "previous step"),
        (lambda k, b, a: ch08._keys_variant(k, b, a, normalise=False), "without normalising"),
        (lambda k, b, a: ch08._keys_variant(k, b, a, decay_sign=-1.0), "e\\^\\{-a_t\\}"),
        # λ_t (k̄_{t-1} + g_t k̃_t) normalises to the same keys as decaying with λ_{t-1}
        (lambda k, b, a: [s := torch.zeros(k.shape[1])] and torch.stack(
            [(s := a[t].exp() * (s + b[t].exp() * k[t])) / s.norm() for t in range(len(k))]),
         "previous step"),
        (keys_in_place, "in place"),
        (keys_ignore_gate, "gated_keys"),
        (lambda k, b, a: keys_loop(k, b, a).T, "gated_keys"),  # wrong axis
    ],
)
def test_keys_wrong_answers_fail_with_a_diagnosis(answer, match):
    with pytest.raises(CheckFailed, match=match):
        ch08.check_gated_keys(answer)


# ---- exercise 8.3: the masks -----------------------------------------------------------------


def masks_torch(T, window, delay):
    t = torch.arange(T)
    lag = t[:, None] - t[None, :]
    return (lag >= 1) & (lag < window), lag >= delay


def masks_loops(T, window, delay):
    short = [[0 < t - s < window for s in range(T)] for t in range(T)]
    long = [[t - s >= delay for s in range(T)] for t in range(T)]
    return np.array(short), np.array(long)


def masks_tril(T, window, delay):
    ones = np.ones((T, T), dtype=bool)
    return np.tril(ones, -1) & ~np.tril(ones, -window), np.tril(ones, -delay)


@pytest.mark.parametrize("answer", [masks_torch, masks_loops, masks_tril])
def test_masks_correct_variants_pass(answer):
    ch08.check_window_masks(answer)


@pytest.mark.parametrize(
    "answer, match",
    [
        (lambda T, h, m: ch08._masks_variant(T, h, m, short_lo=0), "its own position"),
        (lambda T, h, m: ch08._masks_variant(T, h, m, short_hi_offset=0), "h pairs"),
        (lambda T, h, m: ch08._masks_variant(T, h, m, long_offset=1), "one too long"),
        (lambda T, h, m: ch08._masks_variant(T, h, m, long_offset=-1), "one too short"),
        (lambda T, h, m: ch08._masks_variant(T, h, m, transpose=True), "transposed"),
        (lambda T, h, m: ch08._masks_variant(T, h, m, long_from="window"), "disjoint"),
    ],
)
def test_masks_wrong_answers_fail_with_a_diagnosis(answer, match):
    with pytest.raises(CheckFailed, match=match):
        ch08.check_window_masks(answer)


# ---- tables: wrong answers (several in the regimes of the cases) and correct variants -----------


def b_cap_ten(n, theta0, theta1, theta_alpha):  # "the cap is 10"
    return np.minimum(beta_numpy(n, theta0, theta1, theta_alpha), 10.0)


def b_clamp_then_abs(n, theta0, theta1, theta_alpha):
    alpha = abs(min(theta_alpha, 1.0))
    beta = math.exp(min(theta1, 10)) * np.maximum(n, 1) ** alpha + math.exp(min(theta0, 10))
    return np.minimum(beta, math.exp(10))


def b_no_theta_cap(n, theta0, theta1, theta_alpha):  # only β itself capped
    alpha = min(abs(theta_alpha), 1.0)
    return np.minimum(math.exp(theta1) * np.maximum(n, 1) ** alpha + math.exp(theta0), math.exp(10))


def b_n_plus_one(n, theta0, theta1, theta_alpha):  # n + 1 instead of max(n, 1)
    return beta_numpy(np.asarray(n) + 1, theta0, theta1, theta_alpha)


def b_torch_float16(n, theta0, theta1, theta_alpha):
    return torch.as_tensor(beta_numpy(n, theta0, theta1, theta_alpha)).half()


BETA_WRONG = [
    ("cap-ten", b_cap_ten, "capped β at 10 instead of e^10", "mid-range"),
    ("clamp-then-abs", b_clamp_then_abs, "capped θ_α at 1 before taking its absolute value",
     "alpha-below-minus-one"),
    ("list-of-scalars", beta_list, "your function raised TypeError", "two-d"),
    ("n-plus-one", b_n_plus_one, "entries differ"),
    ("float16", b_torch_float16, "float16"),
    ("in-place", beta_in_place, "in place"),
    ("ignores-theta0", beta_ignores_theta0, "ignores its argument `theta0`"),
]


def b_torch_float64_loop(n, theta0, theta1, theta_alpha):
    out = np.empty(np.shape(n))
    for i in np.ndindex(out.shape):
        out[i] = min(math.exp(min(theta1, 10)) * max(float(np.asarray(n)[i]), 1.0)
                     ** min(abs(theta_alpha), 1.0) + math.exp(min(theta0, 10)), math.exp(10))
    return out


BETA_RIGHT = [("numpy", beta_numpy), ("torch-float32", beta_torch_float32), ("loop", b_torch_float64_loop),
              ("no-theta-cap", b_no_theta_cap)]  # e^θ > e^10 makes β > e^10: β's own cap covers it


def k_gate_both(k_tilde, log_gate, log_decay):
    state, out = torch.zeros(k_tilde.shape[1]), []
    for t in range(len(k_tilde)):
        state = log_gate[t].exp() * (k_tilde[t] + log_decay[t].exp() * state)
        out.append(state / state.norm())
    return torch.stack(out)


def k_carry_unit(k_tilde, log_gate, log_decay):
    state, out = torch.zeros(k_tilde.shape[1]), []
    for t in range(len(k_tilde)):
        state = log_gate[t].exp() * k_tilde[t] + log_decay[t].exp() * state
        state = state / state.norm()
        out.append(state)
    return torch.stack(out)


def k_sigmoid_gate(k_tilde, log_gate, log_decay):  # a sigmoid instead of exp
    state, out = torch.zeros(k_tilde.shape[1]), []
    for t in range(len(k_tilde)):
        state = torch.sigmoid(log_gate[t]) * k_tilde[t] + log_decay[t].exp() * state
        out.append(state / state.norm())
    return torch.stack(out)


def k_decay_minus(k_tilde, log_gate, log_decay):
    return keys_loop(k_tilde, log_gate, -log_decay)


KEYS_WRONG = [
    ("gate-both", k_gate_both, "multiplied the whole sum by the gate", "closed-gate"),
    ("carry-unit", k_carry_unit, "carried the normalised key", "no-decay"),
    ("sigmoid-gate", k_sigmoid_gate, "entries differ"),
    ("decay-minus", k_decay_minus, "used e^{-a_t} as the decay"),
    ("no-norm", lambda k, b, a: keys_loop(k, b, a) * keys_loop(k, b, a).norm(), "entries differ"),
    ("in-place", lambda k, b, a: keys_loop(k.mul_(1.0).add_(0.0).sub_(k * 0 - 1), b, a), "in place"),
    ("float16", lambda k, b, a: keys_loop(k, b, a).half(), "float16"),
]


def k_cumulative(k_tilde, log_gate, log_decay):  # closed form: prefix sums of the log decays
    logs = torch.cumsum(log_decay.double(), 0)  # Σ_{r≤t} a_r
    w = torch.exp(logs[:, None] - logs[None, :] + log_gate.double()[None, :]).tril()  # (T, T)
    k = w @ k_tilde.double()
    return k / k.norm(dim=-1, keepdim=True)


KEYS_RIGHT = [("loop", keys_loop), ("closed-form", k_cumulative),
              ("package", lambda k, b, a: ch08.reference_gated_keys(k, b, a).float())]


def m_disjoint(T, window, delay):  # the long-term window starts where the short-term one ends
    lag = np.arange(T)[:, None] - np.arange(T)[None, :]
    return (lag >= 1) & (lag <= window - 1), lag >= window


def m_float(T, window, delay):  # 0/1 floats instead of booleans
    short, long = masks_torch(T, window, delay)
    return short.float().numpy(), long.float().numpy()


def m_short_from_delay(T, window, delay):  # the short-term window starts at the delay too
    lag = np.arange(T)[:, None] - np.arange(T)[None, :]
    return (lag >= delay) & (lag <= window - 1), lag >= delay


def m_window_exclusive(T, window, delay):  # lag < window - 1
    lag = np.arange(T)[:, None] - np.arange(T)[None, :]
    return (lag >= 1) & (lag < window - 1), lag >= delay


MASKS_WRONG = [
    ("disjoint", m_disjoint, "made the two windows disjoint", "overlap"),
    ("short-from-delay", m_short_from_delay, "the short-term mask is wrong", "delay-one"),
    ("float-masks", m_float, "booleans (True/False) are expected"),
    ("window-exclusive", m_window_exclusive, "the short-term mask is wrong"),
    ("ignores-delay", lambda T, h, m: masks_torch(T, h, 1), "ignores its argument"),
    ("swapped-order", lambda T, h, m: masks_torch(T, h, m)[::-1], "the short-term mask is wrong"),
    ("one-mask", lambda T, h, m: masks_torch(T, h, m)[0], "expected a tuple of 2"),
]
MASKS_RIGHT = [("torch", masks_torch), ("loops", masks_loops), ("tril", masks_tril)]

test_beta_wrong, test_beta_right = table_tests(ch08.check_adaptive_beta, BETA_WRONG, BETA_RIGHT)
test_keys_wrong, test_keys_right = table_tests(ch08.check_gated_keys, KEYS_WRONG, KEYS_RIGHT)
test_masks_wrong, test_masks_right = table_tests(ch08.check_window_masks, MASKS_WRONG, MASKS_RIGHT)


def test_cases_are_in_the_regimes_they_name():
    for case in ch08.BETA_CASES:
        n, t0, t1, ta = case
        beta = ch08._beta_variant(n, t0, t1, ta, cap=False)
        capped = ch08.reference_adaptive_beta(n, t0, t1, ta)
        for regime in case.regime:
            assert regime in ch08.BETA_REGIMES
            assert {"cap-binds": bool((beta > math.exp(10)).any()), "theta-cap": max(t0, t1) > 10,
                    "alpha-cap": abs(ta) > 1, "alpha-below-minus-one": ta < -1, "negative-alpha": ta < 0,
                    "empty": bool((np.asarray(n) == 0).any()), "two-d": np.ndim(n) == 2,
                    "mid-range": bool(((capped > 10) & (capped < math.exp(10))).any())}[regime], regime
    for case in ch08.keys_cases():
        k, b, a = case
        for regime in case.regime:
            assert regime in ch08.KEYS_REGIMES
            assert {"closed-gate": bool((b <= -4).any()), "no-decay": bool((a == 0).any()),
                    "single": len(k) == 1}[regime], regime
    for case in ch08.MASKS_CASES:
        T, h, m = case
        for regime in case.regime:
            assert regime in ch08.MASKS_REGIMES
            assert {"overlap": m < h, "delay-one": m == 1, "window-two": h == 2,
                    "short-sequence": T <= h}[regime], regime
