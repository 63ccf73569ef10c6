"""Checks for chapter 08 (Memory Mosaics v2, and training at scale).

Three exercises, each compared with the package's v2 modules (:mod:`mosaics_edu.v2`):

- ``adaptive_beta(n, theta0, theta1, theta_alpha)`` — β(n) = min(β₁ n^α + β₀, e^10) with
  β₀ = e^{min(θ₀, 10)}, β₁ = e^{min(θ₁, 10)}, α = min(|θ_α|, 1), an empty memory counted as n = 1
  (reference :class:`mosaics_edu.v2.bandwidth.AdaptiveBandwidth`);
- ``gated_keys(k_tilde, log_gate, log_decay)`` — unit keys of the gated recursion
  k̄_t = e^{b_t} k̃_t + e^{a_t} k̄_{t-1} (reference :func:`mosaics_edu.v2.gated_keys.gated_leaky_plain`,
  normalised);
- ``window_masks(T, window, delay)`` — the short-term (1 ≤ t-s ≤ h-1) and long-term (t-s ≥ m)
  masks (reference :func:`mosaics_edu.v2.windows.short_term_mask` / ``long_term_mask``), compared
  as booleans: a mask of 0/1 numbers is named as such.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..v2.bandwidth import AdaptiveBandwidth
from ..v2.gated_keys import gated_leaky_plain
from ..v2.windows import long_term_mask, short_term_mask
from . import Case, compare, notebook_check

CHAPTER = "08_v2_and_scaling"
H1, H2, H3 = "(see hint 1 above)", "(see hint 2 above)", "(see hint 3 above)"

__all__ = [
    "check_adaptive_beta",
    "check_gated_keys",
    "check_window_masks",
    "reference_adaptive_beta",
    "reference_gated_keys",
    "reference_window_masks",
    "BETA_CASES",
    "BETA_REGIMES",
    "keys_cases",
    "KEYS_REGIMES",
    "MASKS_CASES",
    "MASKS_REGIMES",
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


_E10 = float(np.exp(10.0))


def _beta_variant(n, theta0, theta1, theta_alpha, *, clamp_alpha=True, abs_alpha=True, clamp_n=True,
                  swap=False, cap=True, cap_value=_E10, clamp_first=False):  # fmt: skip
    n = np.asarray(n, dtype=np.float64)
    t0, t1 = (min(theta0, 10.0), min(theta1, 10.0)) if cap else (theta0, theta1)
    b0, b1 = np.exp(t0), np.exp(t1)
    if swap:
        b0, b1 = b1, b0
    if clamp_first:  # min(θ_α, 1) first, then |·|: a θ_α below -1 escapes the cap
        a = abs(min(theta_alpha, 1.0))
    else:
        a = abs(theta_alpha) if abs_alpha else theta_alpha
        a = min(a, 1.0) if clamp_alpha else a
    n = np.maximum(n, 1.0) if clamp_n else n
    beta = b1 * n**a + b0
    return np.minimum(beta, cap_value) if cap else beta


BETA_MISTAKES: dict[str, Callable] = {
    f"did not cap α at 1: α = min(|θ_α|, 1), so β grows at most linearly in n {H2}":
        lambda *a: _beta_variant(*a, clamp_alpha=False),
    f"used θ_α itself as the exponent; α = min(|θ_α|, 1) is never negative {H2}":
        lambda *a: _beta_variant(*a, abs_alpha=False),
    f"capped θ_α at 1 before taking its absolute value: a θ_α below -1 then gives α > 1; take "
    f"|θ_α| first, then min(·, 1) {H3}": lambda *a: _beta_variant(*a, clamp_first=True),
    f"let an empty memory (n = 0) give β = β₀; count it as n = 1, as the package does (its answer "
    f"is 0 anyway, and n^α's gradient stays finite) {H2}":
        lambda *a: _beta_variant(*a, clamp_n=False),
    f"swapped β₀ and β₁: β(n) = β₁·n^α + β₀, with β₀ the constant term {H1}":
        lambda *a: _beta_variant(*a, swap=True),
    f"did not cap β: β₀ = e^{{min(θ₀,10)}}, β₁ = e^{{min(θ₁,10)}}, and β itself at most e^10 ≈ 22,026 "
    f"(so that logits stay finite in float16) {H2}": lambda *a: _beta_variant(*a, cap=False),
    f"capped β at 10 instead of e^10 ≈ 22,026: the cap is on β itself, at e^10 (the 10 caps the "
    f"θ's, in the exponent) {H2}": lambda *a: _beta_variant(*a, cap_value=10.0),
}  # fmt: skip

BETA_REGIMES = {
    "cap-binds": f"β₁·n^α + β₀ exceeds e^10 for some n, so the cap on β binds {H2}",
    "theta-cap": f"θ₀ or θ₁ exceeds 10, so its cap binds {H2}",
    "alpha-cap": f"|θ_α| exceeds 1, so α = 1 {H3}",
    "alpha-below-minus-one": f"θ_α < -1: only min(|θ_α|, 1), in that order, gives α = 1 {H3}",
    "negative-alpha": f"θ_α is negative, and α = |θ_α| is not {H2}",
    "empty": f"n contains 0, an empty memory counted as n = 1 {H2}",
    "two-d": f"n is a 2-D array: β(n) has its shape {H1}",
    "mid-range": f"β lies between 10 and e^10, where a cap at 10 would bind but the cap at e^10 does "
                 f"not {H2}",
}

BETA_CASES = [
    Case(np.array([0.0, 1.0, 2.0, 10.0, 255.0]), 1.5, 1.5, 1 / 3, regime=("empty", "mid-range"),
         why="the papers' initialisation"),
    Case(np.arange(0.0, 40.0), -0.5, 0.7, -0.6, regime=("empty", "negative-alpha"), why="θ_α < 0"),
    Case(np.array([0.0, 3.0, 100.0, 4096.0]), 12.0, 11.0, 1.7,
         regime=("empty", "theta-cap", "alpha-cap", "cap-binds"), why="every cap binds"),
    Case(np.array([1.0, 50.0, 4096.0]), 2.0, 8.5, 0.9, regime=("cap-binds", "mid-range"),
         why="β crosses e^10 as n grows"),
    Case(np.array([1.0, 10.0, 1000.0]), 0.0, 0.0, 1.4, regime=("alpha-cap", "mid-range"),
         why="α capped at 1"),
    Case(np.array([[0.0, 2.0], [30.0, 700.0]]), 1.0, 2.0, -1.7,
         regime=("empty", "alpha-below-minus-one", "alpha-cap", "negative-alpha", "mid-range",
                 "two-d"),
         why="θ_α = -1.7; a 2-D array of counts"),
]


@notebook_check
def check_adaptive_beta(adaptive_beta: Callable) -> None:
    """Exercise 8.1: ``adaptive_beta(n, theta0, theta1, theta_alpha)`` against the package."""
    compare(CHAPTER, "adaptive_beta", adaptive_beta, reference_adaptive_beta, BETA_CASES,
            mistakes=BETA_MISTAKES, regimes=BETA_REGIMES, rebuild="ch08.BETA_CASES[{k}]",
            arg_names=["n", "theta0", "theta1", "theta_alpha"],
            hint=f"β(n) = min(e^{{min(θ₁,10)}}·max(n,1)^{{min(|θ_α|,1)}} + e^{{min(θ₀,10)}}, "
                 f"e^10) {H2}")


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
                  decay_sign=1.0, carry_unit=False):  # fmt: skip
    k_tilde, b, a = k_tilde.double(), log_gate.double(), decay_sign * log_decay.double()
    T = k_tilde.shape[0]
    state = torch.zeros_like(k_tilde[0])
    out = []
    for t in range(T):
        ta = min(max(t + decay_index, 0), T - 1)
        g, lam = b[t].exp(), a[ta].exp()
        if gate_on == "new":
            state = g * k_tilde[t] + lam * state
        elif gate_on == "both":  # g_t (k̃_t + λ_t k̄_{t-1})
            state = g * (k_tilde[t] + lam * state)
        else:  # the gate on the past
            state = k_tilde[t] + g * lam * state
        out.append(state)
        if carry_unit:  # the normalised key carried as the state
            state = state / state.norm()
    k = torch.stack(out)
    return _unit(k) if normalise else k


KEYS_MISTAKES: dict[str, Callable] = {
    f"put the gate on the past (k̃_t + g_t λ_t k̄_{{t-1}}); the gate g_t scales the new input: "
    f"k̄_t = g_t k̃_t + λ_t k̄_{{t-1}} {H2}": lambda *a: _keys_variant(*a, gate_on="past"),
    f"multiplied the whole sum by the gate, g_t (k̃_t + λ_t k̄_{{t-1}}); the gate scales the new "
    f"input alone {H2}": lambda *a: _keys_variant(*a, gate_on="both"),
    f"decayed with the previous step's λ_{{t-1}}; step t keeps λ_t = e^{{a_t}} of the past {H2}":
        lambda *a: _keys_variant(*a, decay_index=-1),
    f"returned k̄ without normalising; the key is k̄_t / ‖k̄_t‖ {H3}":
        lambda *a: _keys_variant(*a, normalise=False),
    f"used e^{{-a_t}} as the decay; log_decay a_t ≤ 0 is already the log of λ_t, so "
    f"λ_t = e^{{a_t}} {H2}": lambda *a: _keys_variant(*a, decay_sign=-1.0),
    f"carried the normalised key from step to step; the recursion carries k̄_{{t-1}} itself, and "
    f"only the returned key is divided by its norm {H3}": lambda *a: _keys_variant(*a, carry_unit=True),
}  # fmt: skip

KEYS_REGIMES = {
    "closed-gate": f"some gate is nearly closed (b_t ≤ -4): whatever multiplies the gate decides "
                   f"what survives {H2}",
    "no-decay": f"some step keeps the whole past (a_t = 0, λ_t = 1) {H2}",
    "single": f"T = 1: the key is k̃_0, normalised {H1}",
}


def keys_cases() -> list[Case]:
    g = torch.Generator().manual_seed(8)
    cases = []
    for T, d in ((6, 3), (12, 4)):
        cases.append(Case(torch.randn(T, d, generator=g), 0.7 * torch.randn(T, generator=g),
                          -torch.rand(T, generator=g) * 1.5, why=f"T = {T}, d = {d}"))  # fmt: skip
    gates = torch.tensor([0.5, -6.0, -5.0, 1.0, -4.0, 0.2, -7.0, 0.0])
    decays = torch.tensor([-0.3, 0.0, 0.0, -1.2, 0.0, -0.5, -0.05, -2.0])
    cases.append(Case(torch.randn(8, 3, generator=g), gates, decays, regime=("closed-gate", "no-decay"),
                      why="closed gates that keep the whole past"))
    cases.append(Case(torch.randn(1, 5, generator=g), torch.tensor([0.3]), torch.tensor([-0.7]),
                      regime="single", why="a single step"))
    return cases


@notebook_check
def check_gated_keys(gated_keys: Callable) -> None:
    """Exercise 8.2: ``gated_keys(k_tilde, log_gate, log_decay)`` against the package."""
    compare(CHAPTER, "gated_keys", gated_keys, reference_gated_keys, keys_cases(),
            mistakes=KEYS_MISTAKES, regimes=KEYS_REGIMES, rebuild="ch08.keys_cases()[{k}]",
            arg_names=["k_tilde", "log_gate", "log_decay"],
            hint=f"loop over t: state = exp(b_t)·k̃_t + exp(a_t)·state, then divide by its norm "
                 f"{H2}")


# --------------------------------------------------------------------------------------------
# exercise 8.3: short- and long-term masks
# --------------------------------------------------------------------------------------------


def reference_window_masks(T: int, window: int, delay: int) -> tuple[np.ndarray, np.ndarray]:
    """(short-term mask, long-term mask), each (T, T) boolean [query t, pair s]."""
    return short_term_mask(T, window).numpy(), long_term_mask(T, delay).numpy()


def _masks_variant(T, window, delay, *, short_lo=1, short_hi_offset=-1, long_offset=0, transpose=False,
                   long_from="delay"):
    lag = np.arange(T)[:, None] - np.arange(T)[None, :]
    short = (lag >= short_lo) & (lag <= window + short_hi_offset)
    long = lag >= (delay if long_from == "delay" else window) + long_offset
    return (short.T, long.T) if transpose else (short, long)


MASKS_MISTAKES: dict[str, Callable] = {
    f"let the short-term memory read its own position (t - s = 0); a value at s peeks at "
    f"x_{{s+1}}, so s = t would read the token being predicted: 1 ≤ t-s ≤ h-1 {H2}":
        lambda *a: _masks_variant(*a, short_lo=0),
    f"gave the short-term memory h pairs (t-s ≤ h); it holds the last h-1 positions, t-s ≤ h-1 {H2}":
        lambda *a: _masks_variant(*a, short_hi_offset=0),
    f"made the long-term delay one too long (t-s > m); it reads every s ≤ t-m, i.e. t-s ≥ m {H2}":
        lambda *a: _masks_variant(*a, long_offset=1),
    f"made the long-term delay one too short (t-s ≥ m-1); it reads s ≤ t-m {H2}":
        lambda *a: _masks_variant(*a, long_offset=-1),
    f"transposed the masks: rows are queries t, columns pairs s (mask[t, s]) {H1}":
        lambda *a: _masks_variant(*a, transpose=True),
    f"made the two windows disjoint, the long-term memory starting where the short-term one ends "
    f"(t-s ≥ h); it starts at the delay m, and since m < h the two overlap {H1}":
        lambda *a: _masks_variant(*a, long_from="window"),
}  # fmt: skip

MASKS_REGIMES = {
    "overlap": f"the delay m is shorter than the window h, so the two windows overlap {H1}",
    "delay-one": f"m = 1: the long-term memory reads every s < t {H2}",
    "window-two": f"h = 2: the short-term memory reads the previous position alone {H2}",
    "short-sequence": f"T ≤ h: the short-term window reaches back to the start of every row {H2}",
}

MASKS_CASES = [Case(10, 4, 2, regime="overlap", why="h = 4, m = 2: the windows overlap"),
               Case(16, 6, 6, why="m = h: the windows meet"),
               Case(7, 3, 1, regime=("overlap", "delay-one"), why="m = 1"),
               Case(20, 8, 5, regime="overlap", why="h = 8, m = 5"),
               Case(6, 2, 1, regime=("window-two", "overlap", "delay-one"), why="h = 2, m = 1"),
               Case(5, 8, 2, regime=("overlap", "short-sequence"), why="T = 5 < h = 8")]


@notebook_check
def check_window_masks(window_masks: Callable) -> None:
    """Exercise 8.3: ``window_masks(T, window, delay) -> (short, long)``, boolean, against the package."""
    compare(CHAPTER, "window_masks", window_masks, reference_window_masks, MASKS_CASES,
            mistakes=MASKS_MISTAKES, regimes=MASKS_REGIMES, float32_probe=False,
            arg_names=["T", "window", "delay"], items=("the short-term mask", "the long-term mask"),
            hint=f"with lag = t - s: short = 1 <= lag <= window-1, long = lag >= delay {H3}")  # fmt: skip
