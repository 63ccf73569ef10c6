"""The chapter 09 checks pass correct answers (written several ways) and diagnose wrong ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from check_contract import table_tests

from mosaics_edu.course.checks import CheckFailed, ch09

# ---- exercise 9.1: how fast the best β grows --------------------------------------------------


def growth_polyfit(sizes, betas, mse_grid, n_min):
    best = betas[np.argmin(mse_grid, axis=1)]
    keep = sizes >= n_min
    return best, np.polyfit(np.log(sizes[keep]), np.log(best[keep]), 1)[0]


def test_growth_reference_passes_and_a_stub_fails(capsys):
    ch09.check_beta_growth_exponent(growth_polyfit)
    assert "passed" in capsys.readouterr().out
    with pytest.raises(CheckFailed, match="not implemented yet"):
        ch09.check_beta_growth_exponent(lambda *a: (_ for _ in ()).throw(NotImplementedError()))


@pytest.mark.parametrize("diagnosis", list(ch09.GROWTH_MISTAKES))
def test_growth_mistakes_are_diagnosed(diagnosis):
    with np.errstate(all="ignore"), pytest.raises(CheckFailed) as err:
        ch09.check_beta_growth_exponent(ch09.GROWTH_MISTAKES[diagnosis])
    assert diagnosis in str(err.value)


# ---- exercise 9.2: gated keys ----------------------------------------------------------------


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
    ch09.check_gated_keys(answer)


def keys_in_place(k_tilde, log_gate, log_decay):
    log_decay.exp_()  # overwrites the caller's tensor
    return keys_loop(k_tilde, log_gate, log_decay.log())


def keys_ignore_gate(k_tilde, log_gate, log_decay):
    return keys_loop(k_tilde, torch.zeros_like(log_gate), log_decay)


@pytest.mark.parametrize(
    "answer, match",
    [
        (lambda k, b, a: ch09._keys_variant(k, b, a, gate_on="past"), "gate on the past"),
        (lambda k, b, a: ch09._keys_variant(k, b, a, decay_index=-1), "previous step"),
        (lambda k, b, a: ch09._keys_variant(k, b, a, normalise=False), "without normalising"),
        (lambda k, b, a: ch09._keys_variant(k, b, a, decay_sign=-1.0), "e\\^\\{-a_t\\}"),
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
        ch09.check_gated_keys(answer)


# ---- exercise 9.3: the masks -----------------------------------------------------------------


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
    ch09.check_window_masks(answer)


@pytest.mark.parametrize(
    "answer, match",
    [
        (lambda T, h, m: ch09._masks_variant(T, h, m, short_lo=0), "its own position"),
        (lambda T, h, m: ch09._masks_variant(T, h, m, short_hi_offset=0), "h pairs"),
        (lambda T, h, m: ch09._masks_variant(T, h, m, long_offset=1), "one too long"),
        (lambda T, h, m: ch09._masks_variant(T, h, m, long_offset=-1), "one too short"),
        (lambda T, h, m: ch09._masks_variant(T, h, m, transpose=True), "transposed"),
        (lambda T, h, m: ch09._masks_variant(T, h, m, long_from="window"), "disjoint"),
    ],
)
def test_masks_wrong_answers_fail_with_a_diagnosis(answer, match):
    with pytest.raises(CheckFailed, match=match):
        ch09.check_window_masks(answer)


# ---- tables: wrong answers (several in the regimes of the cases) and correct variants -----------


def g_wrong_axis(sizes, betas, mse_grid, n_min):  # the argmin down each column
    best = betas[np.argmin(mse_grid, axis=0)]
    keep = sizes >= n_min
    return best, np.polyfit(np.log(sizes[keep]), np.log(best[keep]), 1)[0]


def g_strictly_above(sizes, betas, mse_grid, n_min):  # off by one: n > n_min
    best = betas[np.argmin(mse_grid, axis=1)]
    keep = sizes > n_min
    return best, np.polyfit(np.log(sizes[keep]), np.log(best[keep]), 1)[0]


def g_every_size(sizes, betas, mse_grid, n_min):  # n_min forgotten in the fit
    best = betas[np.argmin(mse_grid, axis=1)]
    return best, np.polyfit(np.log(sizes), np.log(best), 1)[0]


def g_fixed_n_min(sizes, betas, mse_grid, n_min):  # the chapter's 16 typed in
    return growth_polyfit(sizes, betas, mse_grid, 16)


def g_last_of_a_tie(sizes, betas, mse_grid, n_min):  # the largest β among equal errors
    best = betas[len(betas) - 1 - np.argmin(mse_grid[:, ::-1], axis=1)]
    keep = sizes >= n_min
    return best, np.polyfit(np.log(sizes[keep]), np.log(best[keep]), 1)[0]


def g_log10_beta(sizes, betas, mse_grid, n_min):  # log10 on one axis, ln on the other
    best = betas[np.argmin(mse_grid, axis=1)]
    keep = sizes >= n_min
    return best, np.polyfit(np.log(sizes[keep]), np.log10(best[keep]), 1)[0]


def g_intercept(sizes, betas, mse_grid, n_min):
    best = betas[np.argmin(mse_grid, axis=1)]
    keep = sizes >= n_min
    return best, np.polyfit(np.log(sizes[keep]), np.log(best[keep]), 1)[1]


def g_against_index(sizes, betas, mse_grid, n_min):  # log β against the position of n, not log n
    best = betas[np.argmin(mse_grid, axis=1)]
    keep = sizes >= n_min
    return best, np.polyfit(np.arange(len(sizes))[keep], np.log(best[keep]), 1)[0]


def g_in_place(sizes, betas, mse_grid, n_min):  # log of the errors written over the caller's grid
    np.log(mse_grid, out=mse_grid)
    return growth_polyfit(sizes, betas, mse_grid, n_min)


def g_float16(sizes, betas, mse_grid, n_min):
    best, slope = growth_polyfit(sizes, betas, mse_grid, n_min)
    return best, np.float16(slope)


def g_lowest_errors(sizes, betas, mse_grid, n_min):  # the errors, not the β's
    best = mse_grid.min(axis=1)
    keep = sizes >= n_min
    return best, np.polyfit(np.log(sizes[keep]), np.log(best[keep]), 1)[0]


GROWTH_WRONG = [
    ("wrong-axis", g_wrong_axis, "took the argmin down each column", "square"),
    ("n-above-n-min", g_strictly_above, "left out the size n = n_min", "n-min-is-a-size"),
    ("every-size", g_every_size, "fitted every size", "below-n-min"),
    ("fixed-n-min", g_fixed_n_min, "ignores its argument `n_min`"),
    ("last-of-a-tie", g_last_of_a_tie, "the first (smaller) one is the best", "tie"),
    ("log10-beta", g_log10_beta, "mixed bases divide the slope"),
    ("intercept", g_intercept, "returned the fit's intercept"),
    ("against-index", g_against_index, "the slope is wrong"),
    ("in-place", g_in_place, "in place"),
    ("float16", g_float16, "float16"),
    ("lowest-errors", g_lowest_errors, "returned the lowest error of each size"),
]


def g_log10_both(sizes, betas, mse_grid, n_min):  # one base for both axes: the same slope
    best = np.array([betas[min(range(len(betas)), key=lambda j: row[j])] for row in mse_grid])
    x, y = np.log10(sizes[sizes >= n_min]), np.log10(best[sizes >= n_min])
    return best, ((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum()


def g_torch_float32(sizes, betas, mse_grid, n_min):
    sizes, betas, grid = (torch.as_tensor(a, dtype=torch.float32) for a in (sizes, betas, mse_grid))
    best = betas[grid.argmin(dim=1)]
    keep = sizes >= n_min
    x = torch.stack([sizes[keep].log(), torch.ones(int(keep.sum()))], dim=1)  # (K, 2)
    slope = torch.linalg.lstsq(x, best[keep].log()[:, None]).solution[0, 0]
    return best, slope


def g_log2_lstsq(sizes, betas, mse_grid, n_min):
    best = betas[mse_grid.argmin(axis=1)]
    keep = np.flatnonzero(sizes >= n_min)
    x = np.stack([np.log2(sizes[keep]), np.ones(len(keep))], axis=1)
    return best, float(np.linalg.lstsq(x, np.log2(best[keep]), rcond=None)[0][0])


GROWTH_RIGHT = [("polyfit", growth_polyfit), ("log10-both-loops", g_log10_both),
                ("torch-float32", g_torch_float32), ("log2-lstsq", g_log2_lstsq)]


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
              ("package", lambda k, b, a: ch09.reference_gated_keys(k, b, a).float())]


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

test_growth_wrong, test_growth_right = table_tests(ch09.check_beta_growth_exponent, GROWTH_WRONG,
                                                   GROWTH_RIGHT)
test_keys_wrong, test_keys_right = table_tests(ch09.check_gated_keys, KEYS_WRONG, KEYS_RIGHT)
test_masks_wrong, test_masks_right = table_tests(ch09.check_window_masks, MASKS_WRONG, MASKS_RIGHT)


def test_cases_are_in_the_regimes_they_name():
    for k, case in enumerate(ch09.growth_cases()):
        sizes, betas, grid, n_min = case
        slope = ch09.reference_beta_growth(*case)[1]
        for regime in case.regime:
            assert regime in ch09.GROWTH_REGIMES
            assert {"below-n-min": abs(ch09._growth_variant(*case, keep="all")[1] - slope) > 0.01,
                    "n-min-is-a-size": n_min in sizes, "square": grid.shape[0] == grid.shape[1],
                    "tie": any((row == row.min()).sum() > 1 for row in grid),
                    "circle": k == 1}[regime], regime
    for case in ch09.keys_cases():
        k, b, a = case
        for regime in case.regime:
            assert regime in ch09.KEYS_REGIMES
            assert {"closed-gate": bool((b <= -4).any()), "no-decay": bool((a == 0).any()),
                    "single": len(k) == 1}[regime], regime
    for case in ch09.MASKS_CASES:
        T, h, m = case
        for regime in case.regime:
            assert regime in ch09.MASKS_REGIMES
            assert {"overlap": m < h, "delay-one": m == 1, "window-two": h == 2,
                    "short-sequence": T <= h}[regime], regime
