"""The chapter 08 checks pass correct answers (written several ways) and diagnose wrong ones."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

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


@pytest.mark.parametrize("answer", [beta_numpy, beta_torch_float32, beta_list])
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
        (lambda T, h, m: masks_torch(T, h, 1), "window_masks"),  # ignores delay
        (lambda T, h, m: masks_torch(T, h, m)[::-1], "window_masks"),  # swapped order
    ],
)
def test_masks_wrong_answers_fail_with_a_diagnosis(answer, match):
    with pytest.raises(CheckFailed, match=match):
        ch08.check_window_masks(answer)
