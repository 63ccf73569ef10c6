"""Leaky averages three ways, key and value extractors."""

import math

import numpy as np
import pytest
import torch

from mosaics_edu.core.features import KeyExtractor, ValueExtractor, leaky_average


@pytest.mark.parametrize("T", [1, 5, 17, 64, 300])
def test_three_methods_agree(T):
    torch.manual_seed(T)
    x = torch.randn(2, 3, T, 4)
    decay = torch.rand(3)
    rec = leaky_average(x, decay, method="recurrent")
    mat = leaky_average(x, decay, method="matrix")
    scan = leaky_average(x, decay, method="scan")
    assert rec.shape == x.shape
    torch.testing.assert_close(mat, rec, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(scan, rec, atol=1e-5, rtol=1e-5)


def test_recursion_by_hand_and_edge_decays():
    x = torch.tensor([[1.0], [2.0], [3.0]])
    expected = torch.tensor([[1.0], [2.5], [4.25]])  # 1; 2 + .5; 3 + 1.25
    for method in ("recurrent", "matrix", "scan"):
        torch.testing.assert_close(leaky_average(x, 0.5, method=method), expected)
        torch.testing.assert_close(leaky_average(x, 0.0, method=method), x)  # keep only now
        torch.testing.assert_close(leaky_average(x, 1.0, method=method), x.cumsum(0))


def test_numpy_in_numpy_out_and_time_dim():
    x = np.random.default_rng(0).normal(size=(6, 2, 3))  # time first
    out = leaky_average(x, 0.3, dim=0)
    assert isinstance(out, np.ndarray) and out.shape == x.shape
    ref = leaky_average(torch.from_numpy(x).movedim(0, -2), 0.3, method="recurrent")
    np.testing.assert_allclose(out, ref.movedim(-2, 0).numpy(), rtol=1e-12)


@pytest.mark.parametrize("method", ["recurrent", "matrix", "scan"])
def test_gradcheck_float64(method):
    torch.manual_seed(0)
    x = torch.randn(2, 40, 3, dtype=torch.float64, requires_grad=True)
    decay = torch.tensor([0.3, 0.8], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: leaky_average(a, b, method=method), (x, decay))


def test_gradients_of_the_three_methods_agree():
    torch.manual_seed(1)
    x = torch.randn(3, 150, 5, dtype=torch.float64)
    w = torch.randn(3, 150, 5, dtype=torch.float64)
    grads = []
    for method in ("recurrent", "matrix", "scan"):
        xi = x.clone().requires_grad_()
        di = torch.tensor([0.2, 0.6, 0.95], dtype=torch.float64, requires_grad=True)
        (leaky_average(xi, di, method=method) * w).sum().backward()
        grads.append((xi.grad, di.grad))
    for gx, gd in grads[1:]:
        torch.testing.assert_close(gx, grads[0][0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(gd, grads[0][1], atol=1e-5, rtol=1e-5)


def test_half_precision_long_sequence_is_finite():
    x = torch.randn(2, 2048, 8).to(torch.bfloat16)
    out = leaky_average(x, 0.999)
    assert out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        (dict(x=torch.randn(4, 3), decay=-0.1), ValueError, r"\[0, 1\]"),
        (dict(x=torch.randn(4, 3), decay=1.5), ValueError, r"\[0, 1\]"),
        (dict(x=torch.randn(4, 3), decay=0.5, method="fft"), ValueError, "method"),
        (dict(x=torch.randn(4), decay=0.5), ValueError, "shape"),
        (dict(x=torch.ones(4, 3, dtype=torch.long), decay=0.5), TypeError, "floating"),
        (dict(x=[1.0, 2.0], decay=0.5), TypeError, "tensor"),
        (dict(x=torch.randn(2, 4, 3), decay=torch.rand(2, 2)), ValueError, "broadcast"),
        (dict(x=torch.randn(4, 3), decay=0.5, dim=-1), ValueError, "time axis"),
        (dict(x=torch.randn(4, 3), decay="slow"), TypeError, "decay"),
    ],
)
def test_invalid_inputs_raise_clear_errors(kwargs, error, words):
    with pytest.raises(error, match=words):
        leaky_average(**kwargs)


def test_key_extractor_init_and_keys():
    torch.manual_seed(0)
    ke = KeyExtractor(48, 12)
    assert torch.allclose(ke.beta, torch.full((12,), math.e**2))
    assert torch.allclose(ke.decay[0], torch.tensor(math.exp(-0.5)))
    assert torch.allclose(ke.decay[-1], torch.tensor(math.exp(-5.0)))
    assert torch.all(ke.decay[1:] < ke.decay[:-1])  # decays spread across heads
    x = torch.randn(2, 9, 48)
    k = ke(x)
    assert k.shape == (2, 12, 9, 4)
    torch.testing.assert_close(k.norm(dim=-1), torch.full((2, 12, 9), math.e))
    # the same keys by the paper's recursion, step by step
    state, steps = None, []
    for t in range(9):
        k_hat, state = ke.step(x[:, t : t + 1], state)
        steps.append(k_hat * ke.scale[:, None, None])
    torch.testing.assert_close(torch.cat(steps, dim=2), k, atol=1e-5, rtol=1e-5)
    # the key scale is clamped so logits stay below e^10 (fp16-safe)
    with torch.no_grad():
        ke.beta_logit.fill_(3.0)
    assert torch.allclose(ke.beta, torch.full((12,), math.exp(10.0)))


def test_value_extractor_peeks_one_step():
    torch.manual_seed(0)
    ve = ValueExtractor(12, 3)
    assert torch.all((ve.gamma >= 0) & (ve.gamma <= 1))
    assert torch.allclose(ve.alpha, torch.full((3,), math.exp(-0.5)))
    x = torch.randn(1, 6, 12)
    v = ve(x)
    assert v.shape == (1, 3, 6, 4)
    torch.testing.assert_close(v.norm(dim=-1), torch.full((1, 3, 6), math.exp(-0.5)))
    x2 = x.clone()
    x2[:, 3] += 1.0  # changes the values of positions 2 (peek) and 3 only
    v2 = ve(x2)
    changed = (v2 - v).abs().amax(dim=(0, 1, 3)) > 0
    assert changed.tolist() == [False, False, True, True, False, False]


def test_extractors_validate_inputs():
    with pytest.raises(ValueError, match="divisible"):
        KeyExtractor(10, 3)
    with pytest.raises(ValueError, match="n_embd=8"):
        KeyExtractor(8, 2)(torch.randn(2, 3, 7))
    with pytest.raises(TypeError, match="floating"):
        ValueExtractor(8, 2)(torch.ones(2, 3, 8, dtype=torch.long))


@pytest.mark.parametrize("T", [1, 7, 16, 33, 200])
def test_layer_scan_layout_agrees_with_the_recursion(T):
    """The layers run the scan in the projection's (B, T, H, hs) layout; same numbers."""
    torch.manual_seed(T)
    ke = KeyExtractor(12, 3)
    with torch.no_grad():
        ke.decay_logit.copy_(torch.tensor([0.01, 0.05, 0.3]))  # slow, medium, fast decays
    x = torch.randn(2, T, 12)
    torch.testing.assert_close(ke.leaky_keys(x), ke.leaky_keys(x, method="recurrent"),
                               atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ke(x), ke(x, method="matrix"), atol=1e-5, rtol=1e-5)


def test_layer_scan_layout_gradcheck():
    from mosaics_edu.core.features import _leaky_heads_scan

    torch.manual_seed(0)
    x = torch.randn(2, 37, 3, 2, dtype=torch.float64, requires_grad=True)
    decay = torch.tensor([0.2, 0.7, 0.95], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: _leaky_heads_scan(a, b, chunk=8), (x, decay))


def test_checkpoints_with_the_old_name_leak_logit_still_load():
    """θ of the decay was saved as ``leak_logit`` before the rename to ``decay_logit``."""
    torch.manual_seed(0)
    ke = KeyExtractor(8, 2)
    old = {("leak_logit" if k == "decay_logit" else k): v + 0.01 for k, v in ke.state_dict().items()}
    fresh = KeyExtractor(8, 2)
    fresh.load_state_dict(old)  # strict: nothing missing, nothing unexpected
    torch.testing.assert_close(fresh.decay_logit.detach(), old["leak_logit"])
    assert "leak_logit" in old  # the caller's dict is left as it was


@pytest.mark.parametrize("T", [1, 5, 37])
def test_fused_keys_and_values_match_the_plain_operations(T, monkeypatch):
    """On the CPU the extractors run as single autograd nodes with hand-written backwards
    (features._ScaledLeakyUnit, _PeekUnit): the forward is bit-identical to the plain
    operations, the gradients of the input and of every parameter agree (float64)."""
    import mosaics_edu.core.features as features

    torch.manual_seed(T)
    ke, ve = KeyExtractor(12, 3).double(), ValueExtractor(12, 3).double()
    with torch.no_grad():
        ke.decay_logit.copy_(torch.tensor([0.01, 0.05, 0.3]))
    x = torch.randn(2, T, 12, dtype=torch.float64)
    x[0, 0] = 0.0  # an all-zero input: a clamped norm
    w = torch.randn(2, 3, T, 4, dtype=torch.float64)

    def run(module):
        xx = x.clone().requires_grad_()
        y = module(xx)
        params = [p for p in module.parameters()]
        grads = torch.autograd.grad((y * w).sum(), [xx, *params])
        return y.detach(), grads

    for module in (ke, ve):
        fused = run(module)
        monkeypatch.setattr(features, "_fused_ok", lambda t: False)
        plain = run(module)
        monkeypatch.undo()
        assert torch.equal(fused[0], plain[0])
        for a, b in zip(fused[1], plain[1], strict=True):
            torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-9)


def test_fused_keys_gradcheck():
    from mosaics_edu.core.features import _PeekUnit, _ScaledLeakyUnit

    torch.manual_seed(0)
    x = torch.randn(2, 7, 3, 4, dtype=torch.float64, requires_grad=True)
    a = torch.tensor([0.2, 0.7, 0.95], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([0.5, 2.0, 7.4], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(_ScaledLeakyUnit.apply, (x, a, b))
    assert torch.autograd.gradcheck(_PeekUnit.apply, (x, a, b))
