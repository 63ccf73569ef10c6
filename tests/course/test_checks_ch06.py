"""The chapter 06 checks pass correct answers (several ways of writing them) and name the mistakes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from check_contract import table_tests

from mosaics_edu.course.checks import CheckFailed, ch06


def _raises(check, fn, *fragments):
    with pytest.raises(CheckFailed) as err:
        check(fn)
    for f in fragments:
        assert f in str(err.value), str(err.value)


# ---- 6.1 the paired bootstrap band ---------------------------------------------------------
def band_loop(a, b, idx, level):
    d = a - b
    reps = np.array([d[row].mean(axis=0) for row in idx])
    lo, hi = np.quantile(reps, (1 - level) / 2, axis=0), np.quantile(reps, (1 + level) / 2, axis=0)
    return d.mean(axis=0), lo, hi


def band_percentile(a, b, idx, level):
    d = np.subtract(a, b)
    reps = d[idx].mean(axis=1)  # (n_boot, N, T) -> (n_boot, T)
    lo, hi = np.percentile(reps, [50 * (1 - level), 50 * (1 + level)], axis=0)
    return d.mean(0), lo, hi


def band_weights(a, b, idx, level):  # each replicate as window weights (how often each is drawn)
    d = a - b
    w = np.stack([np.bincount(row, minlength=len(d)) for row in idx]) / idx.shape[1]  # (n_boot, N)
    reps = w @ d
    return d.mean(axis=0), *np.quantile(reps, [(1 - level) / 2, (1 + level) / 2], axis=0)


def band_torch_f32(a, b, idx, level):
    d = torch.tensor(a - b, dtype=torch.float32)
    reps = d[torch.as_tensor(idx)].mean(dim=1)
    q = torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float32)
    lo, hi = torch.quantile(reps, q, dim=0)
    return d.mean(0).numpy(), lo.numpy(), hi.numpy()


def p_unpaired(a, b, idx, level):  # one band per model, then the difference of the bands
    ma, la, ha = band_loop(a, np.zeros_like(a), idx, level)
    mb, lb, hb = band_loop(b, np.zeros_like(b), idx, level)
    return ma - mb, la - hb, ha - lb


def p_windows(a, b, idx, level):  # the spread of the windows, not of the replicate means
    d = a - b
    return d.mean(0), np.quantile(d, (1 - level) / 2, axis=0), np.quantile(d, (1 + level) / 2, axis=0)


def p_tails(a, b, idx, level):  # 0.1 and 0.9 for a 90 % band
    d = a - b
    reps = d[idx].mean(axis=1)
    return d.mean(0), np.quantile(reps, 1 - level, axis=0), np.quantile(reps, level, axis=0)


def p_normal(a, b, idx, level):
    d = a - b
    half = {0.5: 0.674, 0.8: 1.2816, 0.9: 1.6449, 0.95: 1.96}[level] * d.std(0, ddof=1) / np.sqrt(len(d))
    return d.mean(0), d.mean(0) - half, d.mean(0) + half


def p_reversed(a, b, idx, level):
    return band_loop(b, a, idx, level)


def p_positions(a, b, idx, level):  # averaged each replicate over positions, not windows
    d = a - b
    reps = d[idx].mean(axis=2)  # (n_boot, N)
    return d.mean(1), np.quantile(reps, (1 - level) / 2, axis=0), np.quantile(reps, (1 + level) / 2, axis=0)


def p_fixed_level(a, b, idx, level):
    return band_loop(a, b, idx, 0.9)


def p_own_draws(a, b, idx, level):
    fresh = np.random.default_rng(0).integers(0, len(a), size=idx.shape)
    return band_loop(a, b, fresh, level)


def p_permutation(a, b, idx, level):  # resampled without replacement: every replicate is the mean
    fresh = np.stack([np.random.default_rng(r).permutation(len(a)) for r in range(len(idx))])
    return band_loop(a, b, fresh, level)


def p_squeezed(a, b, idx, level):  # .squeeze() turns the (1,) arrays of T = 1 into scalars
    return tuple(np.squeeze(x) for x in band_loop(a, b, idx, level))


def p_in_place(a, b, idx, level):
    a -= b  # changes the caller's losses_a
    return band_loop(a, np.zeros_like(a), idx, level)


PAIRED_WRONG = [
    ("unpaired", p_unpaired, "made two bands, one per model"),
    ("window-spread", p_windows, "spread of the windows' own differences"),
    ("level-as-tail", p_tails, "the (1 - level) and level quantiles"),
    ("normal-band", p_normal, "lo is wrong"),
    ("reversed", p_reversed, "subtracted the other way round"),
    ("wrong-axis", p_positions, "shape"),
    ("fixed-level", p_fixed_level, "level", "level"),
    ("own-draws", p_own_draws, "idx"),
    ("permutation", p_permutation, "wrong on test case"),
    ("squeezed", p_squeezed, "shape", "one-position"),
    ("in-place", p_in_place, "in place"),
    ("float16", lambda a, b, idx, level: tuple(x.astype(np.float16) for x in band_loop(a, b, idx, level)),
     "float16"),
]
PAIRED_RIGHT = [("loop", band_loop), ("percentile", band_percentile), ("weights", band_weights),
                ("torch-float32", band_torch_f32)]
test_paired_wrong, test_paired_right = table_tests(ch06.check_paired_band, PAIRED_WRONG, PAIRED_RIGHT)


@pytest.mark.parametrize("diagnosis", list(ch06.PAIRED_MISTAKES))
def test_every_paired_mistake_is_diagnosed(diagnosis):
    _raises(ch06.check_paired_band, ch06.PAIRED_MISTAKES[diagnosis], diagnosis)


def test_paired_cases_are_in_their_regimes():
    cases = ch06.paired_cases()
    for case in cases:
        a, b, idx, level = case
        assert a.shape == b.shape and idx.shape[1] == len(a) and idx.min() >= 0 and idx.max() < len(a)
        if "level" in case.regime:
            assert level != 0.9
        if "one-position" in case.regime:
            assert a.shape[1] == 1
        if "same-windows" in case.regime:
            assert np.all(a == a[0]) and np.all(b == b[0])
        assert any(len(set(row)) < len(row) for row in idx.tolist()), "drawn with replacement"
    assert {r for c in cases for r in c.regime} == set(ch06.PAIRED_REGIMES)
