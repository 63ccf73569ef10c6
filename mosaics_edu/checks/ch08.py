"""Checks for chapter 08 (Memory Mosaics v2, and training at scale).

Three exercises, each compared with the package's v2 modules (:mod:`mosaics_edu.v2`):

- ``adaptive_beta(n, theta0, theta1, theta_alpha)`` — β(n) = min(β₁ n^α + β₀, e^10) with
  β₀ = e^{min(θ₀, 10)}, β₁ = e^{min(θ₁, 10)}, α = min(|θ_α|, 1), an empty memory counted as n = 1
  (reference :class:`mosaics_edu.v2.bandwidth.AdaptiveBandwidth`);
- ``gated_keys(k_tilde, log_gate, log_decay)`` — unit keys of the gated recursion
  k̄_t = e^{b_t} k̃_t + e^{a_t} k̄_{t-1} (reference :func:`mosaics_edu.v2.gated_keys.gated_leaky_plain`,
  normalised);
- ``window_masks(T, window, delay)`` — the short-term (1 ≤ t-s ≤ h-1) and long-term (t-s ≥ m)
  masks (reference :func:`mosaics_edu.v2.windows.short_term_mask` / ``long_term_mask``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import torch

from ..v2.bandwidth import AdaptiveBandwidth
from ..v2.gated_keys import gated_leaky_plain
from ..v2.windows import long_term_mask, short_term_mask
from . import as_numpy, compare

CHAPTER = "08_v2_and_scaling"

__all__ = [
    "check_adaptive_beta",
    "check_gated_keys",
    "check_window_masks",
    "reference_adaptive_beta",
    "reference_gated_keys",
    "reference_window_masks",
]


# --------------------------------------------------------------------------------------------
# exercise 8.1: β(n)
# --------------------------------------------------------------------------------------------


def reference_adaptive_beta(n: np.ndarray, theta0: float, theta1: float, theta_alpha: float) -> np.ndarray:
    """β(n) of one head with raw parameters (θ₀, θ₁, θ_α), through the package's module."""
    module = AdaptiveBandwidth(1)
    with torch.no_grad():
        module.log_beta0.fill_(theta0)
        module.log_beta1.fill_(theta1)
        module.alpha_param.fill_(theta_alpha)
        module.double()
        return module(torch.as_tensor(n, dtype=torch.float64))[0].numpy()


def _beta_variant(n, theta0, theta1, theta_alpha, *, clamp_alpha=True, abs_alpha=True, clamp_n=True,
                  swap=False, cap=True):  # fmt: skip
    n = np.asarray(n, dtype=np.float64)
    t0, t1 = (min(theta0, 10.0), min(theta1, 10.0)) if cap else (theta0, theta1)
    b0, b1 = np.exp(t0), np.exp(t1)
    if swap:
        b0, b1 = b1, b0
    a = abs(theta_alpha) if abs_alpha else theta_alpha
    a = min(a, 1.0) if clamp_alpha else a
    n = np.maximum(n, 1.0) if clamp_n else n
    beta = b1 * n**a + b0
    return np.minimum(beta, np.exp(10.0)) if cap else beta


BETA_MISTAKES: dict[str, Callable] = {
    "did not cap α at 1: α = min(|θ_α|, 1), so β grows at most linearly in n":
        lambda *a: _beta_variant(*a, clamp_alpha=False),
    "used θ_α itself as the exponent; α = min(|θ_α|, 1) is never negative":
        lambda *a: _beta_variant(*a, abs_alpha=False),
    "let an empty memory (n = 0) give β = β₀; count it as n = 1, as the package does (its answer "
    "is 0 anyway, and n^α's gradient stays finite)": lambda *a: _beta_variant(*a, clamp_n=False),
    "swapped β₀ and β₁: β(n) = β₁·n^α + β₀, with β₀ the constant term":
        lambda *a: _beta_variant(*a, swap=True),
    "did not cap β: β₀ = e^{min(θ₀,10)}, β₁ = e^{min(θ₁,10)}, and β itself at most e^10 ≈ 22,026 "
    "(so that logits stay finite in float16)": lambda *a: _beta_variant(*a, cap=False),
}  # fmt: skip

BETA_CASES = [
    (np.array([0.0, 1.0, 2.0, 10.0, 255.0]), 1.5, 1.5, 1 / 3),
    (np.arange(0.0, 40.0), -0.5, 0.7, -0.6),
    (np.array([0.0, 3.0, 100.0, 4096.0]), 12.0, 11.0, 1.7),
    (np.array([1.0, 50.0, 4096.0]), 2.0, 8.5, 0.9),
    (np.array([1.0, 10.0, 1000.0]), 0.0, 0.0, 1.4),
]


def check_adaptive_beta(adaptive_beta: Callable) -> None:
    """Exercise 8.1: ``adaptive_beta(n, theta0, theta1, theta_alpha)`` against the package."""
    compare(CHAPTER, "adaptive_beta", adaptive_beta, reference_adaptive_beta, BETA_CASES,
            mistakes=BETA_MISTAKES,
            hint="β(n) = min(e^{min(θ₁,10)}·max(n,1)^{min(|θ_α|,1)} + e^{min(θ₀,10)}, e^10)")  # fmt: skip


# --------------------------------------------------------------------------------------------
# exercise 8.2: the gated-key recursion
# --------------------------------------------------------------------------------------------


def _unit(k: torch.Tensor) -> torch.Tensor:
    return k / k.norm(dim=-1, keepdim=True)


def reference_gated_keys(
    k_tilde: torch.Tensor, log_gate: torch.Tensor, log_decay: torch.Tensor
) -> torch.Tensor:
    """Unit keys of k̄_t = e^{b_t} k̃_t + e^{a_t} k̄_{t-1}. k_tilde (T, d), gates (T,) -> (T, d)."""
    return _unit(gated_leaky_plain(k_tilde.double(), log_gate.double(), log_decay.double()))


def _keys_variant(k_tilde, log_gate, log_decay, *, gate_on="new", decay_index=0, normalise=True,
                  decay_sign=1.0):  # fmt: skip
    k_tilde, b, a = k_tilde.double(), log_gate.double(), decay_sign * log_decay.double()
    T = k_tilde.shape[0]
    state = torch.zeros_like(k_tilde[0])
    out = []
    for t in range(T):
        ta = min(max(t + decay_index, 0), T - 1)
        g, lam = b[t].exp(), a[ta].exp()
        if gate_on == "new":
            state = g * k_tilde[t] + lam * state
        else:  # the gate on the past
            state = k_tilde[t] + g * lam * state
        out.append(state)
    k = torch.stack(out)
    return _unit(k) if normalise else k


KEYS_MISTAKES: dict[str, Callable] = {
    "put the gate on the past (k̃_t + g_t λ_t k̄_{t-1}); the gate g_t scales the new input: "
    "k̄_t = g_t k̃_t + λ_t k̄_{t-1}": lambda *a: _keys_variant(*a, gate_on="past"),
    "decayed with the previous step's λ_{t-1}; step t keeps λ_t = e^{a_t} of the past":
        lambda *a: _keys_variant(*a, decay_index=-1),
    "returned k̄ without normalising; the key is k̄_t / ‖k̄_t‖":
        lambda *a: _keys_variant(*a, normalise=False),
    "used e^{-a_t} as the decay; log_decay a_t ≤ 0 is already the log of λ_t, so λ_t = e^{a_t}":
        lambda *a: _keys_variant(*a, decay_sign=-1.0),
}  # fmt: skip


def _keys_cases() -> list[tuple]:
    g = torch.Generator().manual_seed(8)
    cases = []
    for T, d in ((6, 3), (12, 4)):
        cases.append((torch.randn(T, d, generator=g), 0.7 * torch.randn(T, generator=g),
                      -torch.rand(T, generator=g) * 1.5))  # fmt: skip
    return cases


def check_gated_keys(gated_keys: Callable) -> None:
    """Exercise 8.2: ``gated_keys(k_tilde, log_gate, log_decay)`` against the package."""
    compare(CHAPTER, "gated_keys", gated_keys, reference_gated_keys, _keys_cases(),
            mistakes=KEYS_MISTAKES,
            hint="loop over t: state = exp(b_t)·k̃_t + exp(a_t)·state, then divide by its norm")  # fmt: skip


# --------------------------------------------------------------------------------------------
# exercise 8.3: short- and long-term masks
# --------------------------------------------------------------------------------------------


def reference_window_masks(T: int, window: int, delay: int) -> tuple[np.ndarray, np.ndarray]:
    """(short-term mask, long-term mask), each (T, T) boolean [query t, pair s]."""
    return short_term_mask(T, window).numpy(), long_term_mask(T, delay).numpy()


def _as_01(masks_fn: Callable) -> Callable:
    """The same function with its masks as 0/1 integers (the comparison measures differences)."""

    @functools.wraps(masks_fn)
    def wrapped(T, window, delay):
        out = masks_fn(T, window, delay)
        if not isinstance(out, tuple | list) or len(out) != 2:
            return out  # compared as is: the check says what is wrong with its shape
        return tuple(np.asarray(as_numpy(m)).astype(np.int64) for m in out)

    return wrapped


def _masks_variant(T, window, delay, *, short_lo=1, short_hi_offset=-1, long_offset=0, transpose=False):
    lag = np.arange(T)[:, None] - np.arange(T)[None, :]
    short = (lag >= short_lo) & (lag <= window + short_hi_offset)
    long = lag >= delay + long_offset
    return (short.T, long.T) if transpose else (short, long)


MASKS_MISTAKES: dict[str, Callable] = {
    "let the short-term memory read its own position (t - s = 0); a value at s peeks at "
    "x_{s+1}, so s = t would read the token being predicted: 1 ≤ t-s ≤ h-1":
        lambda *a: _masks_variant(*a, short_lo=0),
    "gave the short-term memory h pairs (t-s ≤ h); it holds the last h-1 positions, t-s ≤ h-1":
        lambda *a: _masks_variant(*a, short_hi_offset=0),
    "made the long-term delay one too long (t-s > m); it reads every s ≤ t-m, i.e. t-s ≥ m":
        lambda *a: _masks_variant(*a, long_offset=1),
    "made the long-term delay one too short (t-s ≥ m-1); it reads s ≤ t-m":
        lambda *a: _masks_variant(*a, long_offset=-1),
    "transposed the masks: rows are queries t, columns pairs s (mask[t, s])":
        lambda *a: _masks_variant(*a, transpose=True),
}  # fmt: skip

MASKS_CASES = [(10, 4, 2), (16, 6, 6), (7, 3, 1), (20, 8, 5)]


def check_window_masks(window_masks: Callable) -> None:
    """Exercise 8.3: ``window_masks(T, window, delay) -> (short, long)`` against the package."""
    mistakes = {what: _as_01(fn) for what, fn in MASKS_MISTAKES.items()}
    compare(CHAPTER, "window_masks", _as_01(window_masks), _as_01(reference_window_masks), MASKS_CASES,
            mistakes=mistakes, float32_probe=False,
            hint="with lag = t - s: short = 1 <= lag <= window-1, long = lag >= delay")  # fmt: skip
