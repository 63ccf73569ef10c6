"""Memory Mosaics v2 pieces: gated keys (recursion vs chunked scan), β(n), the windows."""

from __future__ import annotations

import math

import pytest
import torch

from mosaics_edu.core.memory import softmax_attention
from mosaics_edu.core.v2.bandwidth import MAX_BETA, AdaptiveBandwidth
from mosaics_edu.core.v2.gated_keys import (
    GatedKeyExtractor,
    gated_leaky_plain,
    gated_leaky_recurrent,
    gated_leaky_scan,
)
from mosaics_edu.core.v2.windows import (
    long_term_mask,
    long_term_range,
    pair_counts,
    short_term_mask,
    short_term_range,
    window_retrieval,
)


def _unit(u: torch.Tensor) -> torch.Tensor:
    return u / u.norm(dim=-1, keepdim=True)


def _inputs(T, gate_scale, decay_scale, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    k = torch.randn(2, 3, T, 8, generator=g, dtype=dtype)
    b = torch.randn(2, 3, T, generator=g, dtype=dtype) * gate_scale
    a = -(torch.randn(2, 3, T, generator=g, dtype=dtype) * decay_scale).abs()
    return k, b, a


# ---- gated keys -------------------------------------------------------------------------------


@pytest.mark.parametrize("T", [1, 5, 64, 65, 200])
def test_log_scaled_recursion_is_the_textbook_recursion(T):
    k, b, a = _inputs(T, 1.0, 1.0)
    u, m = gated_leaky_recurrent(k, b, a)
    plain = gated_leaky_plain(k, b, a)
    torch.testing.assert_close(m.exp()[..., None] * u, plain, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("T", [1, 7, 64, 130])
@pytest.mark.parametrize("chunk", [2, 3, 16, 64])
def test_scan_equals_recursion_small(T, chunk):
    k, b, a = _inputs(T, 1.0, 1.0)
    u1, m1 = gated_leaky_recurrent(k, b, a)
    u2, m2 = gated_leaky_scan(k, b, a, chunk=chunk)
    torch.testing.assert_close(m2.exp()[..., None] * u2, m1.exp()[..., None] * u1,
                               rtol=1e-10, atol=1e-12)


# strong decays (λ down to e^-60 per step: the product over 2048 steps is e^-40000, far below
# the smallest double), weak decays (λ ≈ 1 - 1e-4: the state sums ~2048 terms), huge gates
# (e^±90 overflows float32 and, summed, would overflow everything)
REGIMES = {"moderate": (1.0, 1.0), "strong decay": (1.0, 30.0), "weak decay": (1.0, 1e-4),
           "huge gates": (60.0, 0.5), "both extreme": (60.0, 30.0)}


@pytest.mark.parametrize("regime", sorted(REGIMES))
def test_scan_equals_recursion_at_2048_in_float32(regime):
    gate_scale, decay_scale = REGIMES[regime]
    k, b, a = _inputs(2048, gate_scale, decay_scale, dtype=torch.float32, seed=1)
    # the reference: the recursion in float64 on the same (float32) inputs. (The float32
    # recursion itself drifts by up to ~4e-5 with huge gates; the scan stays within ~4e-6.)
    u_ref, m_ref = gated_leaky_recurrent(k.double(), b.double(), a.double())
    u64, _ = gated_leaky_scan(k.double(), b.double(), a.double())
    assert (_unit(u64) - _unit(u_ref)).abs().max().item() <= 1e-10
    u, m = gated_leaky_scan(k, b, a)
    assert torch.isfinite(u).all() and torch.isfinite(m).all()
    err = (_unit(u).double() - _unit(u_ref)).abs().max().item()
    assert err <= 1e-5, f"{regime}: unit keys differ by {err:.2e}"
    # the log of the key's length, log ‖k̄‖ = M + log ‖u‖, agrees too (the scale the unit key drops)
    log_len = m.double() + u.double().norm(dim=-1).log()
    log_len_ref = m_ref + u_ref.norm(dim=-1).log()
    rel = ((log_len - log_len_ref).abs() / log_len_ref.abs().clamp_min(1.0)).max().item()
    assert rel <= 1e-5, f"{regime}: log-lengths differ by {rel:.2e} (relative)"


def test_chunk_log_weights_add_exactly_the_terms_of_each_segment():
    # W[i, j] = b_j + a_{j+1} + ... + a_i below the diagonal, -inf above: checked against the
    # definition, with one huge decay before small ones (a difference of prefix sums would
    # return 0 for the small sums after it; each entry must keep them to the last digit)
    from mosaics_edu.core.v2 import gated_keys as gk

    g = torch.Generator().manual_seed(3)
    L = 8
    a = -torch.rand(2, 3, L, generator=g, dtype=torch.float32) * 1e-3
    a[..., 1] = -3e5  # a huge decay at r = 1
    b = torch.randn(2, 3, L, generator=g, dtype=torch.float32)
    w = gk._chunk_log_weights(a, b)
    assert w.shape == (2, 3, L, L)
    for i in range(L):
        for j in range(L):
            if j > i:
                assert torch.isneginf(w[..., i, j]).all()
            else:
                expected = b[..., j] + a[..., j + 1 : i + 1].double().sum(-1).float()
                torch.testing.assert_close(w[..., i, j], expected, rtol=1e-6, atol=0)
    # entries that leave the huge term out are as small as their own terms
    assert w[..., 5, 2].sub(b[..., 2]).abs().max() < 5e-3


def test_plain_recursion_over_and_underflows_where_the_log_scaled_forms_do_not():
    k, b, a = _inputs(300, 1.0, 1.0, dtype=torch.float32)
    plain = gated_leaky_plain(k, b + 100.0, a)  # g = e^100 > float32 max
    assert not torch.isfinite(plain).all()
    u, m = gated_leaky_scan(k, b + 100.0, a)
    assert torch.isfinite(u).all() and torch.isfinite(m).all()
    torch.testing.assert_close(_unit(u), _unit(gated_leaky_scan(k, b, a)[0]), atol=1e-5, rtol=0)


def test_gradients_of_the_scan_are_finite_and_match_the_recursion():
    k, b, a = _inputs(150, 2.0, 3.0)
    grads = []
    for fn in (gated_leaky_recurrent, lambda *t: gated_leaky_scan(*t, chunk=32)):
        leaves = [t.clone().requires_grad_() for t in (k, b, a)]
        u, _ = fn(*leaves)
        (_unit(u) * torch.linspace(-1, 1, 8, dtype=u.dtype)).sum().backward()
        grads.append([t.grad for t in leaves])
    for g_rec, g_scan in zip(*grads, strict=True):
        assert torch.isfinite(g_scan).all()
        torch.testing.assert_close(g_scan, g_rec, rtol=1e-8, atol=1e-10)


def test_gated_key_extractor_forms_agree_and_keys_are_unit():
    torch.manual_seed(0)
    ext = GatedKeyExtractor(32, 4, chunk=16)
    x = torch.randn(2, 50, 32)
    k_scan = ext(x)
    k_rec = ext(x, method="recurrent")
    assert k_scan.shape == (2, 4, 50, 8)
    torch.testing.assert_close(k_scan, k_rec, atol=1e-5, rtol=0)
    torch.testing.assert_close(k_scan.norm(dim=-1), torch.ones(2, 4, 50))
    # the step form (generation) gives the same keys, one position at a time
    state, steps = None, []
    for t in range(50):
        k_t, state = ext.step(x[:, t : t + 1], state)
        steps.append(k_t)
    torch.testing.assert_close(torch.cat(steps, dim=2), k_scan, atol=1e-5, rtol=0)
    decay = ext.decay(x)
    assert decay.shape == (2, 4, 50) and (decay > 0).all() and (decay <= 1).all()


def test_gates_make_keys_input_dependent_unlike_a_fixed_decay():
    """A filler token whose decay is 1 and gate is ~0 leaves the key unchanged: the key after
    "a - - b" equals the key after "a b" (v1's fixed decay would shrink a's share)."""
    k = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 1.0]])  # a, -, -, b
    b = torch.tensor([0.0, -50.0, -50.0, 0.0])  # fillers: gate e^-50
    a = torch.tensor([0.0, 0.0, 0.0, -0.5])  # fillers keep the whole past
    u, _ = gated_leaky_scan(k, b, a)
    short = gated_leaky_scan(k[[0, 3]], b[[0, 3]], a[[0, 3]])[0]
    torch.testing.assert_close(_unit(u[-1]), _unit(short[-1]), atol=1e-6, rtol=0)


def test_gated_inputs_are_validated():
    k, b, a = _inputs(10, 1.0, 1.0)
    with pytest.raises(ValueError, match="log_decay must be <= 0"):
        gated_leaky_scan(k, b, -a)
    with pytest.raises(ValueError, match="log_gate must be a tensor of shape"):
        gated_leaky_scan(k, b[..., :5], a)
    with pytest.raises(ValueError, match="chunk must be an integer >= 2"):
        gated_leaky_scan(k, b, a, chunk=1)
    with pytest.raises(ValueError, match="not divisible by n_head"):
        GatedKeyExtractor(10, 3)
    with pytest.raises(ValueError, match="method must be"):
        GatedKeyExtractor(8, 2).leaky_keys(torch.randn(1, 3, 8), method="matrix")


# ---- adaptive bandwidth -----------------------------------------------------------------------


def test_adaptive_bandwidth_init_and_formula():
    bw = AdaptiveBandwidth(3)
    torch.testing.assert_close(bw.beta0, torch.full((3,), math.exp(1.5)))
    torch.testing.assert_close(bw.beta1, torch.full((3,), math.exp(1.5)))
    torch.testing.assert_close(bw.alpha, torch.full((3,), 1 / 3))
    n = torch.tensor([0, 1, 8, 1000])
    beta = bw(n)  # (3, 4)
    expected = math.exp(1.5) * torch.tensor([1.0, 1.0, 2.0, 10.0]) + math.exp(1.5)  # n=0 -> as n=1
    torch.testing.assert_close(beta, expected.expand(3, 4))
    assert (beta[:, 1:].diff(dim=-1) > 0).all(), "β grows with n"


def test_adaptive_bandwidth_constraints_hold_for_any_raw_parameter():
    bw = AdaptiveBandwidth(4)
    with torch.no_grad():
        bw.log_beta0.copy_(torch.tensor([-50.0, 0.0, 20.0, 3.0]))
        bw.log_beta1.copy_(torch.tensor([-50.0, 0.0, 20.0, 3.0]))
        bw.alpha_param.copy_(torch.tensor([-0.5, 0.2, 7.0, -3.0]))
    assert (bw.beta0 > 0).all() and (bw.beta1 > 0).all()
    assert (bw.beta0 <= math.exp(10) * (1 + 1e-6)).all()
    torch.testing.assert_close(bw.alpha, torch.tensor([0.5, 0.2, 1.0, 1.0]))
    assert (bw(torch.arange(0, 5000)) <= MAX_BETA).all()


def test_adaptive_bandwidth_gradient_is_finite_at_an_empty_memory():
    bw = AdaptiveBandwidth(2)
    bw(torch.tensor([0, 0, 3])).sum().backward()
    for p in bw.parameters():
        assert torch.isfinite(p.grad).all()
    with pytest.raises(ValueError, match="must be >= 0"):
        bw(torch.tensor([-1]))
    with pytest.raises(ValueError, match="n_head must be a positive integer"):
        AdaptiveBandwidth(0)


# ---- windows ----------------------------------------------------------------------------------


def test_short_and_long_term_masks_read_the_stated_pairs():
    T, h, m = 12, 4, 3
    st, lt = short_term_mask(T, h), long_term_mask(T, m)
    for t in range(T):
        assert set(st[t].nonzero().flatten().tolist()) == set(range(max(0, t - h + 1), t))
        assert set(lt[t].nonzero().flatten().tolist()) == set(range(0, t - m + 1))
        assert short_term_range(t, h) == (max(0, t - h + 1), t)
        assert long_term_range(t, m) == (0, max(0, t - m + 1))
    assert not (st | lt).triu().any(), "no query reads itself or its future"
    assert pair_counts(st).tolist() == [min(t, h - 1) for t in range(T)]
    assert pair_counts(lt).tolist() == [max(0, t - m + 1) for t in range(T)]
    with pytest.raises(ValueError, match="window must be an integer >= 2"):
        short_term_mask(5, 1)
    with pytest.raises(ValueError, match="delay must be an integer >= 1"):
        long_term_mask(5, 0)


@pytest.mark.parametrize("which", ["short", "long", "none"])
def test_window_retrieval_equals_the_package_masked_attention(which):
    """Fused path and written-out weights against mosaics_edu.core.memory.softmax_attention (which
    computes softmax(beta·q·k) with a mask; a per-row β is a scaled query)."""
    g = torch.Generator().manual_seed(0)
    B, H, T, d = 2, 3, 20, 8
    k = torch.nn.functional.normalize(torch.randn(B, H, T, d, generator=g), dim=-1)
    v = torch.randn(B, H, T, d, generator=g)
    mask = {"short": short_term_mask(T, 5), "long": long_term_mask(T, 4), "none": None}[which]
    beta = torch.rand(H, T, generator=g) * 10 + 1
    y = window_retrieval(k, v, k, beta, mask)
    y_w, w = window_retrieval(k, v, k, beta, mask, return_weights=True)
    ref = softmax_attention(k, v, k * beta[None, :, :, None], 1.0, mask=mask)
    torch.testing.assert_close(y, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(y_w, ref, atol=1e-5, rtol=1e-5)
    if mask is not None:
        empty = ~mask.any(dim=-1)
        assert empty.any() and (y[:, :, empty] == 0).all() and (w[:, :, empty] == 0).all()
        assert (w[..., ~mask] == 0).all()


def test_bench_gated_section_reports_agreement_and_a_ratio(capsys):
    from mosaics_edu import bench

    r = bench.bench_gated_keys(T=64, batch=1, n_head=2, head_size=4, repeats=1)
    assert r["max_abs_diff"] <= 1e-5 and r["speedup"] > 0 and r["shape"] == (1, 2, 64, 4)
    assert bench.main(["--quick", "--only", "gated"]) == 0
    out = capsys.readouterr().out
    assert "v2 gated keys scan vs recursion" in out and "recursion / scan" in out
