"""The chapter 04 checks pass the reference answers and diagnose every known mistake."""

from __future__ import annotations

import pytest
import torch

from mosaics_edu.checks import CheckFailed, ch04
from mosaics_edu.features import leaky_average

# ---- answers written the way a learner would (float32, plain torch) --------------------------


def _heads(x, W, n_head):
    B, T, d = x.shape
    return (x @ W.T).view(B, T, n_head, d // n_head).transpose(1, 2)  # (B, H, T, hs)


def context_memory(x, p, n_head, diagonal=-1, normalise_keys=True, peek=True, use_beta=True,
                   zero_first=True):
    B, T, d = x.shape
    k = leaky_average(_heads(x, p["W_phi"], n_head), p["decay"])  # (B, H, T, hs)
    if normalise_keys:
        k = k / k.norm(dim=-1, keepdim=True)
    logits = k @ k.transpose(-1, -2)  # (B, H, T, T)
    if use_beta:
        logits = logits * p["beta"][:, None, None]
    v_now = _heads(x, p["W_psi"], n_head)
    v_next = torch.cat([v_now[:, :, 1:], torch.zeros_like(v_now[:, :, :1])], dim=2)
    g = p["gamma"][:, None, None]
    v = g * v_now + (1 - g) * v_next if peek else v_now
    v = p["alpha"][:, None, None] * v / v.norm(dim=-1, keepdim=True)
    mask = torch.ones(T, T, dtype=torch.bool).tril(diagonal=diagonal)
    w = torch.softmax(logits.masked_fill(~mask, float("-inf")), dim=-1)
    if zero_first:
        w = w.nan_to_num(0.0)
    y = (w @ v).transpose(1, 2).reshape(B, T, d)
    return y @ p["W_o"].T


def persistent_memory(x, p, n_head, square=True, leaky=True):
    B, T, d = x.shape
    q = _heads(x, p["W_phi"], n_head)
    if leaky:
        q = leaky_average(q, p["decay"])
    q = q / q.norm(dim=-1, keepdim=True)
    q = q * (p["beta"] if square else p["beta"].sqrt())[:, None, None]
    w = torch.softmax(q @ p["M_k"].transpose(-1, -2), dim=-1)  # (B, H, T, P)
    y = (w @ p["M_v"]) * p["alpha"][:, None, None]
    return y.transpose(1, 2).reshape(B, T, d) @ p["W_o"].T


def mosaic_block(x, block):
    x = x + block.cmem(block.ln_1(x))
    return x + block.pmem(block.ln_2(x))


def block_sizes(d, H, P):
    mosaic = 2 * d + 3 * d * d + 4 * H + 2 * d * d + 2 * P * d + 3 * H
    gpt = 2 * d + 4 * d * d + 8 * d * d
    return mosaic, gpt


def _raises(check, fn, *fragments):
    with pytest.raises(CheckFailed) as err:
        check(fn)
    for f in fragments:
        assert f in str(err.value), str(err.value)
    return str(err.value)


# ---- 4.1 -----------------------------------------------------------------------------------


def test_context_memory_reference_passes(capsys):
    ch04.check_context_memory(context_memory)
    assert "passed" in capsys.readouterr().out


def test_weights_reproduce_the_package_layer():
    layer = ch04.random_context_memory(16, 4, seed=3)
    x = torch.randn(2, 7, 16)
    with torch.no_grad():
        want = layer(x)
    got = context_memory(x, ch04.context_memory_weights(layer), 4)
    assert torch.allclose(got, want, atol=1e-5)
    assert torch.equal(want[:, 0], torch.zeros_like(want[:, 0]))


@pytest.mark.parametrize("kw, fragment", [
    ({"diagonal": 0}, "read its own pair"),
    ({"diagonal": -2}, "one step too many"),
    ({"normalise_keys": False}, "normalise the keys"),
    ({"peek": False}, "forgot the peek"),
    ({"use_beta": False}, "forgot the bandwidth"),
    ({"zero_first": False}, "position 0"),
])
def test_context_memory_mistakes_are_named(kw, fragment):
    _raises(ch04.check_context_memory, lambda x, p, H: context_memory(x, p, H, **kw), fragment)


@pytest.mark.parametrize("diagnosis", list(ch04.CMEM_MISTAKES))
def test_every_modelled_cmem_mistake_is_diagnosed(diagnosis):
    flags = ch04.CMEM_MISTAKES[diagnosis]
    _raises(ch04.check_context_memory,
            lambda x, p, H: ch04._cmem(x, p, H, **flags).float(), diagnosis)


def test_position_zero_averaging_the_future_is_named():
    _raises(ch04.check_context_memory,
            lambda x, p, H: ch04._cmem(x, p, H, first_row="uniform").float(),
            "position 0", "uniform softmax")


def test_context_memory_stub_and_wrong_shape():
    def stub(x, p, H):
        raise NotImplementedError()

    _raises(ch04.check_context_memory, stub, "not implemented")
    _raises(ch04.check_context_memory, lambda x, p, H: x[:, :-1], "shape")


# ---- 4.2 -----------------------------------------------------------------------------------


def test_persistent_memory_reference_passes(capsys):
    ch04.check_persistent_memory(persistent_memory)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("kw, fragment", [
    ({"square": False}, "instead of β_h"),
    ({"leaky": False}, "leaky average"),
])
def test_persistent_memory_mistakes_are_named(kw, fragment):
    _raises(ch04.check_persistent_memory,
            lambda x, p, H: persistent_memory(x, p, H, **kw), fragment)


@pytest.mark.parametrize("diagnosis", list(ch04.PMEM_MISTAKES))
def test_every_modelled_pmem_mistake_is_diagnosed(diagnosis):
    flags = ch04.PMEM_MISTAKES[diagnosis]
    _raises(ch04.check_persistent_memory,
            lambda x, p, H: ch04._pmem(x, p, H, **flags).float(), diagnosis)


# ---- 4.3 -----------------------------------------------------------------------------------


def test_mosaic_block_reference_passes(capsys):
    ch04.check_mosaic_block(mosaic_block)
    assert "passed" in capsys.readouterr().out


def test_reference_block_is_the_package_block():
    block = ch04.random_block(16, 4, 56, seed=5)
    x = torch.randn(2, 6, 16)
    with torch.no_grad():
        assert torch.allclose(mosaic_block(x, block), block(x), atol=1e-6)


@pytest.mark.parametrize("diagnosis", list(ch04.BLOCK_MISTAKES))
def test_every_block_mistake_is_diagnosed(diagnosis):
    _raises(ch04.check_mosaic_block, ch04.BLOCK_MISTAKES[diagnosis], diagnosis)


# ---- 4.4 -----------------------------------------------------------------------------------


def test_block_sizes_reference_passes(capsys):
    ch04.check_block_sizes(block_sizes)
    assert "passed" in capsys.readouterr().out


def test_block_sizes_match_the_paper_numbers():
    assert ch04.reference_block_sizes(768, 12, 2688) == (7_079_508, 7_079_424)


@pytest.mark.parametrize("diagnosis", list(ch04.SIZE_MISTAKES))
def test_every_size_mistake_is_diagnosed(diagnosis):
    _raises(ch04.check_block_sizes, ch04.SIZE_MISTAKES[diagnosis], diagnosis)


def test_block_sizes_rejects_floats_and_non_pairs():
    _raises(ch04.check_block_sizes, lambda d, H, P: tuple(float(v) for v in block_sizes(d, H, P)),
            "integers")
    _raises(ch04.check_block_sizes, lambda d, H, P: sum(block_sizes(d, H, P)), "pair")


def test_weight_extractors_validate_their_argument():
    with pytest.raises(TypeError, match="ContextMemory"):
        ch04.context_memory_weights(torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match="PersistentMemory"):
        ch04.persistent_memory_weights(torch.nn.Linear(2, 2))
