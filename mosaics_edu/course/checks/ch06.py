"""Checks for chapter 06 (In-context learning on stories): the paired bootstrap band.

- ``paired_band(losses_a, losses_b, idx, level)`` — the mean over windows of the per-position
  difference of two models' losses and its percentile bootstrap band for the given replicates
  (reference: :func:`mosaics_edu.course.icl.band_from_indices` of ``losses_a - losses_b``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..icl import band_from_indices
from . import Case, compare, notebook_check

CHAPTER = "06_in_context_learning"
H1, H2, H3 = "(see hint 1 above)", "(see hint 2 above)", "(see hint 3 above)"

__all__ = [
    "check_paired_band",
    "PAIRED_MISTAKES",
    "PAIRED_REGIMES",
    "paired_cases",
]


# exercise 6.1: the paired bootstrap band
# --------------------------------------------------------------------------------------------


def reference_paired_band(losses_a: np.ndarray, losses_b: np.ndarray, idx: np.ndarray,
                          level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, lo, hi), each (T,): the package's band of the paired difference ``a - b``."""
    band = band_from_indices(np.asarray(losses_a) - np.asarray(losses_b), idx, level)
    return band.mean, band.lo, band.hi


def _replicates(d: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return np.stack([d[row].mean(axis=0) for row in np.asarray(idx)])  # (n_boot, T)


def _quantiles(reps: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    tail = (1 - level) / 2
    return np.quantile(reps, tail, axis=0), np.quantile(reps, 1 - tail, axis=0)


def _unpaired(a, b, idx, level):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    lo_a, hi_a = _quantiles(_replicates(a, idx), level)
    lo_b, hi_b = _quantiles(_replicates(b, idx), level)
    return a.mean(axis=0) - b.mean(axis=0), lo_a - hi_b, hi_a - lo_b


def _window_spread(a, b, idx, level):
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    return (d.mean(axis=0), *_quantiles(d, level))


def _level_as_tail(a, b, idx, level):
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    reps = _replicates(d, idx)
    return d.mean(axis=0), np.quantile(reps, 1 - level, axis=0), np.quantile(reps, level, axis=0)


def _normal(a, b, idx, level):
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    z = float(torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor((1 + level) / 2, dtype=torch.float64)))
    half = z * d.std(axis=0, ddof=1) / np.sqrt(len(d))
    return d.mean(axis=0), d.mean(axis=0) - half, d.mean(axis=0) + half


def _replicate_mean(a, b, idx, level):
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    reps = _replicates(d, idx)
    return (reps.mean(axis=0), *_quantiles(reps, level))


PAIRED_MISTAKES: dict[str, Callable[..., tuple]] = {
    f"made two bands, one per model, and subtracted them (lo_a - hi_b, hi_a - lo_b): that ignores "
    f"that both models read the same windows; resample the difference a - b itself {H1}": _unpaired,
    f"took the spread of the windows' own differences (quantiles over the N windows) instead of the "
    f"spread of the replicate means: that is how much one window varies, not how sure we are of the "
    f"mean {H2}": _window_spread,
    f"returned the (1 - level) and level quantiles: the band keeps the central level, so each tail "
    f"holds (1 - level) / 2 {H3}": _level_as_tail,
    f"returned a normal band (mean ± z·sd/√N): the exercise asks for the percentile band of the "
    f"replicates idx {H2}": _normal,
    f"returned the mean of the replicates as the curve: the curve is the mean of all N windows; "
    f"the replicates only give the band {H3}": _replicate_mean,
    f"subtracted the other way round (b - a): the difference is losses_a - losses_b {H1}":
        lambda a, b, idx, level: reference_paired_band(b, a, idx, level),
}

PAIRED_REGIMES = {
    "level": f"a level other than 0.9: the tails hold (1 - level) / 2 each {H3}",
    "one-position": f"T = 1: a single position, still a (T,) array {H2}",
    "same-windows": f"identical windows: every replicate mean equals the mean, the band has no width {H2}",
}


def paired_cases() -> list[Case]:
    """(losses_a, losses_b, idx, level): small hand-checkable cases and story-sized ones."""
    rng = np.random.default_rng(6)
    a3 = np.array([[1.0, 2.0], [3.0, 1.0], [2.0, 4.0]])
    b3 = np.array([[0.5, 1.0], [2.0, 2.0], [2.5, 1.0]])
    idx3 = np.array([[0, 0, 1], [2, 2, 2], [0, 1, 2], [1, 1, 0], [2, 0, 0]])

    def story(n: int, t: int, n_boot: int, shift: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        common = rng.gamma(2.0, 1.0, size=(n, t))  # what both models find hard in a window
        a = common + rng.normal(0.0, 0.3, size=(n, t)) + shift
        b = common + rng.normal(0.0, 0.3, size=(n, t))
        return a, b, rng.integers(0, n, size=(n_boot, n))

    flat = np.tile(np.array([[2.0, 3.0, 1.0]]), (4, 1))
    return [
        Case(a3, b3, idx3, 0.8, regime="level",
             why="3 windows, 5 replicates: the band can be computed by hand"),
        Case(*story(40, 6, 200, 0.1), 0.9,
             why="windows that share most of their difficulty: pairing makes the band far narrower"),
        Case(*story(25, 1, 150, -0.2), 0.5, regime=("one-position", "level"),
             why="one position and a 50 % band"),
        Case(flat + 1.0, flat, rng.integers(0, 4, size=(30, 4)), 0.9, regime="same-windows",
             why="identical windows: mean 1, no width"),
        Case(*story(96, 12, 400, 0.05), 0.95, regime="level",
             why="story-sized: 96 windows, 400 replicates"),
    ]


@notebook_check
def check_paired_band(paired_band_fn: Callable[..., tuple]) -> None:
    """Exercise 6.1: the paired bootstrap band, against the package's for the same replicates."""
    compare(CHAPTER, "paired_band", paired_band_fn, reference_paired_band, paired_cases(),
            mistakes=PAIRED_MISTAKES, arg_names=("losses_a", "losses_b", "idx", "level"),
            regimes=PAIRED_REGIMES, rebuild="ch06.paired_cases()[{k}]", items=("mean", "lo", "hi"),
            hint=f"d = losses_a - losses_b; replicate r is d[idx[r]].mean(axis=0); lo, hi are the "
                 f"(1 - level) / 2 and (1 + level) / 2 quantiles of the replicates over r; mean is "
                 f"d.mean(axis=0) {H2}.")  # fmt: skip
