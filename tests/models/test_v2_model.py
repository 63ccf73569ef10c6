"""Memory Mosaic v2 language model: config, causality, exact cached generation, sizes, errors."""

from __future__ import annotations

import pytest
import torch

from mosaics_edu.core.v2.layers import LongTermMemory, MosaicV2Block, ShortTermMemory
from mosaics_edu.models import GPT, GPTConfig, count_parameters
from mosaics_edu.models.registry import MODEL_KINDS
from mosaics_edu.models.v2 import MemoryMosaicV2LM, MosaicV2Config

# small enough for milliseconds, long enough that both windows matter: h = 8, m ∈ [2, 8], m = 3
SMALL = dict(vocab_size=50, block_size=64, n_layer=2, n_head=2, n_embd=16, short_window=8,
             delay_min=2, delay_max=8, delay=3)  # fmt: skip


def _model(seed=0, **overrides) -> MemoryMosaicV2LM:
    torch.manual_seed(seed)
    return MemoryMosaicV2LM(MosaicV2Config.preset("cpu-tiny", **{**SMALL, **overrides}))


def test_presets_defaults_and_registry():
    c = MosaicV2Config.preset("cpu-tiny")
    assert (c.block_size, c.short_window, c.delay_min, c.delay_max, c.delay) == (128, 32, 8, 32, 8)
    assert c.ffn_size == 2 * c.n_embd and c.long_term
    g = MosaicV2Config.preset("gpu-small")
    assert (g.short_window, g.delay_min, g.delay_max, g.delay) == (128, 32, 128, 32)
    d = MosaicV2Config(block_size=4096, n_embd=64, n_head=4)  # the paper's context -> its h, m
    assert (d.short_window, d.delay_min, d.delay_max, d.delay) == (256, 64, 256, 64)
    assert MODEL_KINDS["mosaic-v2"] == (MemoryMosaicV2LM, MosaicV2Config)


@pytest.mark.parametrize("overrides, match", [
    (dict(delay_min=9, delay_max=4), "delay_min=9 > delay_max=4"),
    (dict(short_window=1), "short_window .* must be >= 2"),
    (dict(delay=0), "delay must be a positive integer"),
    (dict(long_term="yes"), "long_term must be True or False"),
    (dict(ffn_size=-3), "ffn_size must be a positive integer"),
    (dict(n_embd=30, n_head=4), "not divisible by n_head"),
])  # fmt: skip
def test_config_refuses_bad_values_by_name(overrides, match):
    with pytest.raises(ValueError, match=match):
        MosaicV2Config.preset("cpu-tiny", **overrides)


def test_bad_inputs_are_named():
    m = _model()
    with pytest.raises(TypeError, match="config must be a MosaicV2Config"):
        MemoryMosaicV2LM(GPTConfig())
    with pytest.raises(ValueError, match="exceeds block_size=64"):
        m(torch.zeros(1, 65, dtype=torch.long))
    with pytest.raises(ValueError, match=r"ids must lie in \[0, vocab_size\)"):
        m(torch.full((1, 4), 50))
    with pytest.raises(TypeError, match="integer token ids"):
        m(torch.zeros(1, 4))
    with pytest.raises(ValueError, match="targets must have the shape of idx"):
        m(torch.zeros(1, 4, dtype=torch.long), torch.zeros(1, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="n_embd=16"):
        m.blocks[0](torch.zeros(1, 4, 8))
    with pytest.raises(ValueError, match=r"window \(h\) must be an integer >= 2"):
        ShortTermMemory(16, 2, window=1)
    with pytest.raises(ValueError, match=r"delay_min \(m\) must be an integer >= 1"):
        LongTermMemory(16, 2, delay_min=0, delay_max=3, delay=1)


def test_forward_shapes_loss_and_finite_gradients():
    m = _model().train()
    idx = torch.randint(0, 50, (3, 40))
    logits, loss = m(idx, idx)
    assert logits.shape == (3, 40, 50) and loss.ndim == 0
    assert loss.item() == pytest.approx(torch.log(torch.tensor(50.0)).item(), abs=0.5)
    loss.backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        if "bandwidth" in name or "gate" in name or "decay_proj" in name:
            assert p.grad.abs().sum() > 0, f"{name} gets no gradient"


@pytest.mark.parametrize("mode", ["eval", "train"])
@pytest.mark.parametrize("long_term", [True, False])
def test_strict_causality_a_future_token_never_changes_past_logits(mode, long_term):
    m = _model(long_term=long_term)
    m.train(mode == "train")
    idx = torch.randint(0, 50, (2, 48), generator=torch.Generator().manual_seed(1))
    for j in (0, 5, 20, 47):
        changed = idx.clone()
        changed[:, j] = (changed[:, j] + 1) % 50
        m.set_delay_step(3)  # the same training delay m for both runs (step 3 of seed 0)
        a, _ = m(idx)
        b, _ = m(changed)
        assert torch.equal(a[:, :j], b[:, :j]), f"a change at {j} reached earlier logits"
        assert not torch.allclose(a[:, j], b[:, j]), "the change must reach its own position"


def test_training_draws_the_long_term_delay_and_eval_fixes_it():
    m = _model().train()
    draws = set()
    for _ in range(40):
        draws.add(m.blocks[0].long.current_delay())
    assert draws <= set(range(2, 9)) and len(draws) >= 4
    m.eval()
    assert {m.blocks[0].long.current_delay() for _ in range(5)} == {3}
    idx = torch.randint(0, 50, (1, 48))
    torch.testing.assert_close(m(idx)[0], m(idx)[0], rtol=0, atol=0)
    m.train()
    torch.manual_seed(0)
    outs = {tuple(m(idx)[0][0, -1, :3].tolist()) for _ in range(6)}
    assert len(outs) > 1, "a random delay changes what the long-term memory reads"


@pytest.mark.parametrize("long_term", [True, False])
def test_cached_generation_is_exact_against_the_full_forward(long_term):
    m = _model(long_term=long_term).eval()
    prompt = torch.randint(0, 50, (2, 20), generator=torch.Generator().manual_seed(2))
    cached = m.generate(prompt, 30, temperature=0)
    full = m.generate(prompt, 30, temperature=0, use_cache=False)
    assert torch.equal(cached, full)
    # every step's logits against the full forward of the final sequence
    with torch.no_grad():
        ref, _ = m(cached[:, :-1])
        logits, cache = m._prefill(cached[:, :20])
        errs = [(logits - ref[:, 19]).abs().max().item()]
        for t in range(20, 49):
            logits, cache = m._step(cached[:, t : t + 1], cache)
            errs.append((logits - ref[:, t]).abs().max().item())
    assert max(errs) <= 1e-5, f"cached logits differ by up to {max(errs):.2e}"


def test_generation_past_block_size_and_sampling_reuse_v1():
    m = _model(block_size=24).eval()
    prompt = torch.randint(0, 50, (1, 20))
    a = m.generate(prompt, 10, temperature=0.9, top_k=5, generator=torch.Generator().manual_seed(0))
    b = m.generate(prompt, 10, temperature=0.9, top_k=5, generator=torch.Generator().manual_seed(0),
                   use_cache=False)
    assert torch.equal(a, b) and a.shape == (1, 30)


def test_retrieval_weights_read_only_their_windows():
    m = _model().eval()
    idx = torch.randint(0, 50, (1, 30))
    weights = m.retrieval_weights(idx)
    assert len(weights) == 2
    w = weights[0]
    short, long = w["short"][0], w["long"][0]  # (H, T, T)
    lag = torch.arange(30)[:, None] - torch.arange(30)[None, :]
    assert (short[:, (lag < 1) | (lag > 7)] == 0).all()
    assert (long[:, lag < 3] == 0).all()
    rows = short.sum(-1)
    torch.testing.assert_close(rows[:, 1:], torch.ones(2, 29))
    assert (rows[:, 0] == 0).all() and (long.sum(-1)[:, :3] == 0).all()


def test_parameter_counts_next_to_a_gpt_of_the_same_budget():
    """A v2 block is 12 d² + 4 d·H (+ per-head scalars), a GPT-2 block 12 d²; GPT adds its
    position table. Tolerances: 6 % at cpu-tiny (d = 64), 1 % at the larger presets."""
    counts = {}
    for preset, tol in (("cpu-tiny", 0.06), ("gpu-small", 0.01), ("paper-gpt2-small", 0.01)):
        with torch.device("meta"):
            v2 = count_parameters(MemoryMosaicV2LM(MosaicV2Config.preset(preset)))
            gpt = count_parameters(GPT(GPTConfig.preset(preset)))
        counts[preset] = (v2, gpt)
        assert abs(v2 / gpt - 1) <= tol, f"{preset}: v2 {v2:,} vs GPT {gpt:,}"
    c = MosaicV2Config.preset("cpu-tiny")
    d, H, L, V = c.n_embd, c.n_head, c.n_layer, c.vocab_size
    block = 2 * d + 2 * (2 * d * d + 2 * d * H + 5 * H) + 2 * d * d + 3 * d * c.ffn_size
    assert counts["cpu-tiny"][0] == V * d + L * block + d  # embedding (tied) + blocks + final LN
    print({k: f"v2 {a:,} / GPT {b:,} ({a / b - 1:+.2%})" for k, (a, b) in counts.items()})


def test_block_without_long_term_memory_is_smaller_and_runs():
    block = MosaicV2Block(16, 2, 32, window=4, delay_min=1, delay_max=2, delay=1, long_term=False)
    assert block.long is None and block.c_proj.in_features == 16
    assert block(torch.randn(2, 9, 16)).shape == (2, 9, 16)


def test_one_token_prompt_and_empty_windows_generate_exactly():
    m = _model().eval()
    prompt = torch.randint(0, 50, (2, 1))
    cached = m.generate(prompt, 12, temperature=0)
    assert torch.equal(cached, m.generate(prompt, 12, temperature=0, use_cache=False))


def test_bf16_autocast_on_cpu_is_finite_and_close_to_float32():
    m = _model()
    idx = torch.randint(0, 50, (2, 40))
    m.set_delay_step(1)  # the same training delay m in both runs
    ref, _ = m(idx, idx)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, loss = m(idx, idx)
    loss.backward()
    assert torch.isfinite(logits).all() and all(torch.isfinite(p.grad).all() for p in m.parameters())
    assert (logits.float() - ref).abs().max().item() < 0.1 * ref.abs().max().item()
