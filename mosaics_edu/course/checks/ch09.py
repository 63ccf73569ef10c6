"""Checks for chapter 09 (Memory Mosaics v2, and training at scale).

Three exercises, each compared with the package's v2 modules (:mod:`mosaics_edu.core.v2` and
:mod:`mosaics_edu.models.v2`):

- ``beta_growth_exponent(sizes, betas, mse_grid, n_min)`` — the best β of each memory size on a
  grid of test errors, and the slope of log best β against log n over n ≥ n_min (reference
  :func:`mosaics_edu.course.v2_experiments.beta_growth_exponent`), compared with the MISE-optimal exponent;
- ``gated_keys(k_tilde, log_gate, log_decay)`` — unit keys of the gated recursion
  k̄_t = e^{b_t} k̃_t + e^{a_t} k̄_{t-1} (reference :func:`mosaics_edu.core.v2.gated_keys.gated_leaky_plain`,
  normalised);
- ``window_masks(T, window, delay)`` — the short-term (1 ≤ t-s ≤ h-1) and long-term (t-s ≥ m)
  masks (reference :func:`mosaics_edu.core.v2.windows.short_term_mask` / ``long_term_mask``), compared
  as booleans: a mask of 0/1 numbers is named as such.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ...core.v2.gated_keys import gated_leaky_plain
from ...core.v2.windows import long_term_mask, short_term_mask
from ..v2_experiments import beta_growth_exponent, circle_memories, retrieval_mse
from . import Case, compare, notebook_check

CHAPTER = "09_v2_and_scaling"
H1, H2, H3 = "(see hint 1 above)", "(see hint 2 above)", "(see hint 3 above)"

__all__ = [
    "check_beta_growth_exponent",
    "check_gated_keys",
    "check_window_masks",
    "reference_beta_growth",
    "reference_gated_keys",
    "reference_window_masks",
    "growth_cases",
    "GROWTH_REGIMES",
    "keys_cases",
    "KEYS_REGIMES",
    "MASKS_CASES",
    "MASKS_REGIMES",
]


# --------------------------------------------------------------------------------------------
# exercise 9.1: how fast the best β grows
# --------------------------------------------------------------------------------------------


def reference_beta_growth(sizes: np.ndarray, betas: np.ndarray, mse_grid: np.ndarray,
                          n_min: int) -> tuple[np.ndarray, float]:
    """The best β per size and the log–log slope over n ≥ n_min (the package's own fit)."""
    return beta_growth_exponent(sizes, betas, mse_grid, n_min)


def _growth_variant(sizes, betas, mse_grid, n_min, *, pick=np.argmin, keep="ge", log_x=np.log, log_y=np.log,
                    swap_axes=False, intercept=False, return_mse=False, axis_ok=True):  # fmt: skip
    sizes, betas, grid = (np.asarray(x, dtype=np.float64) for x in (sizes, betas, mse_grid))
    best = grid.min(axis=1) if return_mse else betas[pick(grid, axis=1 if axis_ok else 0)]
    mask = {"ge": sizes >= n_min, "gt": sizes > n_min, "all": np.ones(len(sizes), dtype=bool)}[keep]
    x, y = log_x(sizes[mask]), log_y(best[mask])
    if swap_axes:
        x, y = y, x
    slope, offset = np.polyfit(x, y, 1)
    return best, float(offset if intercept else slope)


_LN10 = "ln 10 ≈ 2.303"
GROWTH_MISTAKES: dict[str, Callable] = {
    f"picked the β of the *largest* error on each row (argmax): the best β is the argmin {H1}":
        lambda *a: _growth_variant(*a, pick=np.argmax),
    f"took the argmin down each column (axis 0, over the sizes): the best β of a size is the argmin "
    f"along its row of mse_grid (axis 1), over the β's {H2}": lambda *a: _growth_variant(*a, axis_ok=False),
    f"returned the lowest error of each size, not the β that gives it: index `betas` with the "
    f"argmin {H2}": lambda *a: _growth_variant(*a, return_mse=True),
    f"left out the size n = n_min: the fit keeps n ≥ n_min, not n > n_min {H2}":
        lambda *a: _growth_variant(*a, keep="gt"),
    f"fitted every size, including those below n_min (there the best β sits at the grid's edge "
    f"and flattens the slope) {H2}": lambda *a: _growth_variant(*a, keep="all"),
    f"took log10 of β but the natural log of n: mixed bases divide the slope by {_LN10}; "
    f"use one base for both axes {H3}": lambda *a: _growth_variant(*a, log_y=np.log10),
    f"took the natural log of β but log10 of n: mixed bases multiply the slope by {_LN10}; "
    f"use one base for both axes {H3}": lambda *a: _growth_variant(*a, log_x=np.log10),
    f"fitted log n against log β (the axes swapped): the slope we want is d log β / d log n, with "
    f"log n on the x axis {H3}": lambda *a: _growth_variant(*a, swap_axes=True),
    f"returned the fit's intercept: np.polyfit(x, y, 1) returns [slope, intercept], highest "
    f"power first {H3}": lambda *a: _growth_variant(*a, intercept=True),
    f"fitted β itself, not log β, against log n {H3}": lambda *a: _growth_variant(*a, log_y=lambda b: b),
}  # fmt: skip

GROWTH_REGIMES = {
    "below-n-min": f"some sizes lie below n_min, and fitting them too changes the slope {H2}",
    "n-min-is-a-size": f"n_min is one of the sizes, so n ≥ n_min and n > n_min keep different sizes {H2}",
    "square": f"the grid is square (as many sizes as β's), so an argmin over the wrong axis keeps "
              f"the shape {H1}",
    "tie": f"two β's of one row share the lowest error: the first (smaller) one is the best {H1}",
    "circle": f"the errors are the chapter's kernel regression on the unit circle {H1}",
}


def _synthetic_grid(sizes: np.ndarray, betas: np.ndarray, exponent: float, offset: float,
                    seed: int) -> np.ndarray:
    """An error grid whose valley follows log β = offset + exponent·log n, with a little noise."""
    rng = np.random.default_rng(seed)
    log_b, log_n = np.log(betas)[None, :], np.log(sizes)[:, None]
    noise = rng.uniform(0, 0.004, (len(sizes), len(betas)))
    return 0.05 + 0.02 * (log_b - offset - exponent * log_n) ** 2 + noise  # (S, G)


def _circle_grid(sizes: tuple[int, ...], betas: np.ndarray, seed: int) -> np.ndarray:
    """Test errors of every β at every size on the chapter's unit-circle toy (small, a second)."""
    gen = torch.Generator().manual_seed(seed)
    grid = np.zeros((len(sizes), len(betas)))
    for i, n in enumerate(sizes):
        mem = circle_memories(8, n, 32, 0.5, gen)
        grid[i] = [float(retrieval_mse(*mem, float(b))) for b in betas]
    return grid


def growth_cases() -> list[Case]:
    """The cases of exercise 9.1 (built on demand: one runs the circle toy)."""
    circle_sizes, circle_betas = (4, 8, 16, 32, 64, 128, 256), np.logspace(0, 3, 13)
    sq_sizes, sq_betas = np.array([10.0, 20, 40, 80, 160, 320]), np.logspace(0.5, 2.5, 6)
    tie_sizes, tie_betas = np.array([16.0, 64, 256, 1024]), np.logspace(0, 3, 7)
    tie = _synthetic_grid(tie_sizes, tie_betas, 0.3, 0.5, seed=3)
    tie[1, 3] = tie[1, 2] = tie[1].min() - 0.001  # two equal lowest errors in row 1
    odd_sizes, odd_betas = np.array([5.0, 12, 30, 70, 150, 400, 900]), np.logspace(0, 3.5, 15)
    return [
        Case(sq_sizes, sq_betas, _synthetic_grid(sq_sizes, sq_betas, 0.4, 0.8, seed=1), 20,
             regime=("square", "below-n-min", "n-min-is-a-size"), why="a square grid"),
        Case(np.array(circle_sizes, dtype=np.float64), circle_betas,
             _circle_grid(circle_sizes, circle_betas, 5), 16,
             regime=("circle", "below-n-min", "n-min-is-a-size"), why="the chapter's toy, n ≥ 16"),
        Case(tie_sizes, tie_betas, tie, 16, regime=("tie",), why="a tie in row 1"),
        Case(odd_sizes, odd_betas, _synthetic_grid(odd_sizes, odd_betas, 0.25, 1.2, seed=2), 50,
             regime=("below-n-min",), why="sizes that are not powers of two, n_min between two"),
    ]  # fmt: skip


@notebook_check
def check_beta_growth_exponent(beta_growth_exponent: Callable) -> None:
    """Exercise 9.1: ``beta_growth_exponent(sizes, betas, mse_grid, n_min)`` against the package."""
    compare(CHAPTER, "beta_growth_exponent", beta_growth_exponent, reference_beta_growth, growth_cases(),
            mistakes=GROWTH_MISTAKES, regimes=GROWTH_REGIMES, rebuild="ch09.growth_cases()[{k}]",
            arg_names=["sizes", "betas", "mse_grid", "n_min"], items=["the best β per size", "the slope"],
            hint=f"best β = betas[argmin over each row]; the slope of log best β against log n "
                 f"over n ≥ n_min {H2}")


# --------------------------------------------------------------------------------------------
# exercise 9.2: the gated-key recursion
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
        g, decay = b[t].exp(), a[ta].exp()
        if gate_on == "new":
            state = g * k_tilde[t] + decay * state
        elif gate_on == "both":  # g_t (k̃_t + λ_t k̄_{t-1})
            state = g * (k_tilde[t] + decay * state)
        else:  # the gate on the past
            state = k_tilde[t] + g * decay * state
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
    """Exercise 9.2: ``gated_keys(k_tilde, log_gate, log_decay)`` against the package."""
    compare(CHAPTER, "gated_keys", gated_keys, reference_gated_keys, keys_cases(),
            mistakes=KEYS_MISTAKES, regimes=KEYS_REGIMES, rebuild="ch09.keys_cases()[{k}]",
            arg_names=["k_tilde", "log_gate", "log_decay"],
            hint=f"loop over t: state = exp(b_t)·k̃_t + exp(a_t)·state, then divide by its norm "
                 f"{H2}")


# --------------------------------------------------------------------------------------------
# exercise 9.3: short- and long-term masks
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
    """Exercise 9.3: ``window_masks(T, window, delay) -> (short, long)``, boolean, against the package."""
    compare(CHAPTER, "window_masks", window_masks, reference_window_masks, MASKS_CASES,
            mistakes=MASKS_MISTAKES, regimes=MASKS_REGIMES, float32_probe=False,
            arg_names=["T", "window", "delay"], items=("the short-term mask", "the long-term mask"),
            hint=f"with lag = t - s: short = 1 <= lag <= window-1, long = lag >= delay {H3}")  # fmt: skip
