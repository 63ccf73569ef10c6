"""Contextual memory, persistent memory and the mosaic block: equations, causality, caches."""

import math

import pytest
import torch

from mosaics_edu.core.layers import ContextMemory, MosaicBlock, PersistentMemory
from mosaics_edu.core.memory import kernel_regression


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_context_memory_init_values():
    cm = ContextMemory(96, 12)
    torch.testing.assert_close(cm.beta, torch.full((12,), math.e**2))
    torch.testing.assert_close(cm.alpha, torch.full((12,), math.exp(-0.5)))
    expected_decay = torch.exp(-torch.linspace(0.5, 5.0, 12))
    torch.testing.assert_close(cm.decay, expected_decay)
    assert cm.decay.max().item() == pytest.approx(math.exp(-0.5))
    assert cm.decay.min().item() == pytest.approx(math.exp(-5.0))
    assert torch.all((cm.gamma >= 0) & (cm.gamma <= 1))
    pm = PersistentMemory(96, 12, 336)
    torch.testing.assert_close(pm.beta, torch.full((12,), math.e**2))
    torch.testing.assert_close(pm.alpha, torch.full((12,), math.exp(-0.5)))
    assert pm.table_keys.std().item() == pytest.approx(1 / math.sqrt(8), rel=0.05)


def test_fused_and_explicit_paths_agree_and_weights_are_strictly_causal():
    cm = ContextMemory(32, 4)
    x = torch.randn(2, 11, 32)
    y_fast = cm(x)
    y_slow, w = cm(x, return_weights=True)
    torch.testing.assert_close(y_fast, y_slow, atol=1e-5, rtol=1e-5)
    assert w.shape == (2, 4, 11, 11)
    assert torch.all(w[:, :, 0] == 0)  # empty memory at position 0
    assert torch.all(w.triu() == 0)  # no pair s >= t is ever read
    torch.testing.assert_close(w[:, :, 1:].sum(-1), torch.ones(2, 4, 10))


def test_context_memory_is_the_kernel_regression_of_its_keys_and_values():
    """Logits β k̂_t·k̂_s are Gaussian smoothing of unit keys with bandwidth β/2."""
    cm = ContextMemory(24, 3).double()
    x = torch.randn(2, 9, 24, dtype=torch.float64)
    k_hat = cm.keys.unit(cm.keys.leaky_keys(x))  # (B, H, T, hs), unit norm
    v = cm.values(x)
    strict = torch.ones(9, 9, dtype=torch.bool).tril(-1)
    y_heads = kernel_regression(k_hat, v, k_hat, cm.beta.detach() / 2, mask=strict)
    expected = cm.c_proj(y_heads.transpose(1, 2).reshape(2, 9, 24))
    torch.testing.assert_close(cm(x), expected)


def test_context_memory_output_at_position_0_is_exactly_zero():
    cm = ContextMemory(16, 2)
    y = cm(torch.randn(3, 7, 16))
    assert torch.all(y[:, 0] == 0)
    assert torch.all(cm(torch.randn(1, 1, 16)) == 0)  # a one-token sequence


@pytest.mark.parametrize("module", ["cmem", "pmem", "block"])
def test_no_peeking(module):
    """Changing the input at positions >= t+1 leaves the outputs at positions <= t unchanged."""
    layer = {
        "cmem": lambda: ContextMemory(16, 4),
        "pmem": lambda: PersistentMemory(16, 4, 56),
        "block": lambda: MosaicBlock(16, 4, 56),
    }[module]()
    x = torch.randn(2, 12, 16)
    y = layer(x)
    for t in (0, 4, 10):
        x2 = x.clone()
        x2[:, t + 1 :] = torch.randn_like(x2[:, t + 1 :])
        y2 = layer(x2)
        assert torch.equal(y[:, : t + 1], y2[:, : t + 1]), f"position <= {t} saw the future"
        assert not torch.allclose(y[:, t + 1 :], y2[:, t + 1 :])


def test_persistent_memory_equation():
    pm = PersistentMemory(16, 2, 40).double()
    x = torch.randn(1, 5, 16, dtype=torch.float64)
    k_hat = pm.keys.unit(pm.keys.leaky_keys(x))  # (1, 2, 5, 8)
    q = pm.beta[:, None, None] * k_hat
    w = torch.softmax(q @ pm.table_keys.transpose(-1, -2), dim=-1)  # (1, 2, 5, 40)
    y = pm.alpha[:, None, None] * (w @ pm.table_values)
    expected = pm.c_proj(y.transpose(1, 2).reshape(1, 5, 16))
    torch.testing.assert_close(pm(x), expected)
    y2, w2 = pm(x, return_weights=True)
    torch.testing.assert_close(y2, expected)
    torch.testing.assert_close(w2, w)


def test_block_structure_and_weights():
    block = MosaicBlock(32, 4, 112)
    x = torch.randn(2, 6, 32)
    expected = x + block.cmem(block.ln_1(x))
    expected = expected + block.pmem(block.ln_2(expected))
    torch.testing.assert_close(block(x), expected)
    y, w = block(x, return_weights=True)
    torch.testing.assert_close(y, expected, atol=1e-5, rtol=1e-5)
    assert w["cmem"].shape == (2, 4, 6, 6) and w["pmem"].shape == (2, 4, 6, 112)
    assert block.ln_1.bias is None and block.ln_2.bias is None
    assert set(block.decay) == {"cmem", "pmem"} and block.gamma.shape == (4,)


def test_block_parameter_count_matches_gpt2_block_formula():
    d, H, P = 768, 12, 2688
    with torch.device("meta"):
        block = MosaicBlock(d, H, P)
    n = sum(p.numel() for p in block.parameters())
    assert n == 2 * d + 3 * d * d + 4 * H + 2 * H * P * (d // H) + 2 * d * d + 3 * H == 7_079_508
    assert n - (12 * d * d + 2 * d) == 7 * H  # a bias-free GPT-2 block, plus 7 scalars per head


@pytest.mark.parametrize("module", ["cmem", "pmem", "block"])
def test_prefill_then_steps_equal_the_full_forward(module):
    layer = {
        "cmem": lambda: ContextMemory(16, 4),
        "pmem": lambda: PersistentMemory(16, 4, 56),
        "block": lambda: MosaicBlock(16, 4, 56),
    }[module]().eval()
    x = torch.randn(2, 10, 16)
    full = layer(x)
    y, cache = layer.prefill(x[:, :4])
    outs = [y]
    for t in range(4, 10):
        y_t, cache = layer.step(x[:, t : t + 1], cache)
        outs.append(y_t)
    torch.testing.assert_close(torch.cat(outs, dim=1), full, atol=1e-5, rtol=1e-5)


def test_half_precision_autocast_long_sequence_is_finite():
    block = MosaicBlock(32, 4, 112)
    with torch.no_grad():  # push the bandwidths to their clamp: the largest possible logits
        block.cmem.keys.beta_logit.fill_(10.0)
        block.pmem.keys.beta_logit.fill_(10.0)
    x = torch.randn(1, 2048, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = block(x)
    assert torch.isfinite(y.float()).all()


@pytest.mark.parametrize(
    "make, error, words",
    [
        (lambda: ContextMemory(30, 4), ValueError, "divisible"),
        (lambda: ContextMemory(32, 0), ValueError, "positive"),
        (lambda: ContextMemory(32, 4, dropout=1.5), ValueError, "dropout"),
        (lambda: PersistentMemory(32, 4, 0), ValueError, "pmem_size"),
        (lambda: ContextMemory(32, 4)(torch.randn(2, 5, 31)), ValueError, "n_embd=32"),
        (lambda: ContextMemory(32, 4)(torch.randn(5, 32)), ValueError, "batch, time"),
        (lambda: PersistentMemory(32, 4, 8)(torch.ones(1, 5, 32, dtype=torch.long)), TypeError,
         "floating"),
    ],
)
def test_invalid_inputs_raise_clear_errors(make, error, words):
    with pytest.raises(error, match=words):
        make()
