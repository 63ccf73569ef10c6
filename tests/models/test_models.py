"""The Memory Mosaic language model and its GPT twin: parity, causality, generation, precision."""

import math

import pytest
import torch

from mosaics_edu.models import GPT, GPTConfig, MemoryMosaicLM, MosaicConfig, count_parameters

MODELS = [(MemoryMosaicLM, MosaicConfig), (GPT, GPTConfig)]


def _tiny(model_cls, config_cls, **kw):
    torch.manual_seed(0)
    return model_cls(config_cls.preset("cpu-tiny", **kw))


@pytest.mark.parametrize(
    "depth, mosaic_m, gpt_m",
    [(1, 45.71, 46.11), (8, 95.27, 95.66), (12, 123.59, 123.98), (18, 166.07, 166.46)],
)
def test_parameter_parity_with_the_paper(depth, mosaic_m, gpt_m):
    with torch.device("meta"):  # no memory, no init cost
        mosaic = MemoryMosaicLM(MosaicConfig.preset("paper-gpt2-small", n_layer=depth))
        gpt = GPT(GPTConfig.preset("paper-gpt2-small", n_layer=depth))
    assert mosaic.config.pmem_size == 2688 and mosaic.config.vocab_size == 50304
    assert count_parameters(mosaic) / 1e6 == pytest.approx(mosaic_m, abs=0.01)
    assert count_parameters(gpt) / 1e6 == pytest.approx(gpt_m, abs=0.01)
    # the only differences: GPT's position table, the mosaic's 7 scalars per head and block
    assert count_parameters(gpt) - count_parameters(mosaic) == 512 * 768 - 7 * 12 * depth


def test_tied_head_counted_once_and_no_positional_embedding():
    m = _tiny(MemoryMosaicLM, MosaicConfig)
    assert m.lm_head.weight is m.wte.weight
    names = [n for n, _ in m.named_parameters()]
    assert not any("wpe" in n or "pos" in n for n in names)
    assert count_parameters(m) == sum(p.numel() for p in set(m.parameters()))
    g = _tiny(GPT, GPTConfig)
    assert g.lm_head.weight is g.wte.weight
    assert all(p.dim() >= 1 for p in g.parameters()) and all(
        mod.bias is None for mod in g.modules() if isinstance(mod, torch.nn.Linear)
    )


def test_mosaic_init_follows_the_papers():
    m = MemoryMosaicLM(MosaicConfig.preset("cpu-tiny", n_embd=256, n_head=4, n_layer=4))
    d, L = 256, 4
    assert m.wte.weight.std().item() == pytest.approx(1 / math.sqrt(d), rel=0.05)
    assert m.blocks[0].cmem.keys.proj.weight.std().item() == pytest.approx(1 / math.sqrt(d), rel=0.05)
    assert m.blocks[0].cmem.c_proj.weight.std().item() == pytest.approx(
        1 / math.sqrt(d * L), rel=0.05
    )
    for block in m.blocks:
        torch.testing.assert_close(block.cmem.beta, torch.full((4,), math.e**2))
        torch.testing.assert_close(block.pmem.beta, torch.full((4,), math.e**2))
        torch.testing.assert_close(block.cmem.alpha, torch.full((4,), math.exp(-0.5)))


@pytest.mark.parametrize("model_cls, config_cls", MODELS)
def test_forward_shapes_and_loss(model_cls, config_cls):
    m = _tiny(model_cls, config_cls)
    idx = torch.randint(0, 256, (3, 17))
    logits, loss = m(idx)
    assert logits.shape == (3, 17, 256) and loss is None
    logits, loss = m(idx, torch.randint(0, 256, (3, 17)))
    assert loss.dim() == 0 and math.isfinite(loss.item())
    assert loss.item() == pytest.approx(math.log(256), rel=0.1)  # about uniform at init
    targets = idx.clone()
    targets[:, :5] = -1  # ignored positions
    _, loss2 = m(idx, targets)
    assert math.isfinite(loss2.item())


@pytest.mark.parametrize("model_cls, config_cls", MODELS)
def test_strict_causality(model_cls, config_cls):
    m = _tiny(model_cls, config_cls).eval()
    idx = torch.randint(0, 256, (2, 30))
    logits, _ = m(idx)
    for t in (0, 7, 20):
        idx2 = idx.clone()
        idx2[:, t + 1 :] = (idx2[:, t + 1 :] + 1 + torch.randint(0, 200, idx2[:, t + 1 :].shape)) % 256
        logits2, _ = m(idx2)
        assert torch.equal(logits[:, : t + 1], logits2[:, : t + 1])
        assert not torch.allclose(logits[:, t + 1], logits2[:, t + 1])


def test_mosaic_position_zero_reads_nothing_from_context_memory():
    m = _tiny(MemoryMosaicLM, MosaicConfig).eval()
    x = m.wte(torch.randint(0, 256, (2, 9)))
    for block in m.blocks:
        assert torch.all(block.cmem(block.ln_1(x))[:, 0] == 0)
        x = block(x)


@pytest.mark.parametrize("model_cls, config_cls", MODELS)
def test_cached_and_uncached_greedy_generation_agree(model_cls, config_cls):
    m = _tiny(model_cls, config_cls, block_size=48)
    prompt = torch.randint(0, 256, (2, 9))
    # 60 new tokens: the sequence outgrows block_size, so the window slides too
    a = m.generate(prompt, 60, temperature=0.0, use_cache=False)
    b = m.generate(prompt, 60, temperature=0.0, use_cache=True)
    assert a.shape == (2, 69) and torch.equal(a[:, :9], prompt)
    assert torch.equal(a, b)
    assert m.training  # generate restores the mode


@pytest.mark.parametrize("model_cls, config_cls", MODELS)
def test_cached_step_logits_match_full_forward(model_cls, config_cls):
    m = _tiny(model_cls, config_cls).eval()
    idx = torch.randint(0, 256, (2, 20))
    full, _ = m(idx)
    with torch.no_grad():
        logits, cache = m._prefill(idx[:, :5])
        steps = [logits]
        for t in range(5, 20):
            logits, cache = m._step(idx[:, t : t + 1], cache)
            steps.append(logits)
    torch.testing.assert_close(torch.stack(steps, 1), full[:, 4:], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("model_cls, config_cls", MODELS)
def test_sampling_respects_top_k_and_seed(model_cls, config_cls):
    m = _tiny(model_cls, config_cls)
    prompt = torch.randint(0, 256, (1, 4))
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    a = m.generate(prompt, 10, temperature=1.0, top_k=5, generator=g1)
    b = m.generate(prompt, 10, temperature=1.0, top_k=5, generator=g2)
    assert torch.equal(a, b)
    greedy = m.generate(prompt, 10, top_k=1)
    assert torch.equal(greedy, m.generate(prompt, 10, temperature=0.0))


@pytest.mark.parametrize("model_cls, config_cls", MODELS)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_autocast_at_t2048_is_finite(model_cls, config_cls, dtype):
    m = _tiny(model_cls, config_cls, block_size=2048, n_layer=1)
    idx = torch.randint(0, 256, (1, 2048))
    with torch.no_grad(), torch.autocast("cpu", dtype=dtype):
        logits, loss = m(idx, idx)
    assert torch.isfinite(logits.float()).all() and math.isfinite(loss.item())


def test_presets_and_overrides():
    for name in ("cpu-tiny", "gpu-small", "paper-gpt2-small"):
        mc, gc = MosaicConfig.preset(name), GPTConfig.preset(name)
        assert mc.n_embd == gc.n_embd and mc.block_size == gc.block_size
        assert mc.pmem_size == round(3.5 * mc.n_embd)
        assert 0.0 <= mc.dropout < 1
    c = MosaicConfig.preset("cpu-tiny", vocab_size=1000, dropout=0.1)
    assert c.vocab_size == 1000 and c.dropout == 0.1
    assert MosaicConfig.preset("paper-gpt2-small").to_dict()["pmem_size"] == 2688


def test_retrieval_weights_per_block():
    m = _tiny(MemoryMosaicLM, MosaicConfig)
    w = m.retrieval_weights(torch.randint(0, 256, (1, 10)))
    assert len(w) == 2 and w[0]["cmem"].shape == (1, 4, 10, 10)
    assert w[1]["pmem"].shape == (1, 4, 10, 224)


def test_attention_and_embedding_dropout_follow_the_papers_training_model_by_default():
    """Off by default (the papers' runs); on = the authors' plain-PyTorch model, rate ``dropout``."""
    small = dict(vocab_size=32, block_size=8, n_layer=1, n_head=2, n_embd=8, dropout=0.2)
    default = MemoryMosaicLM(MosaicConfig(**small))
    assert default.drop.p == 0.0 and default.blocks[0].cmem.attn_dropout == 0.0
    assert default.blocks[0].cmem.resid_dropout.p == 0.2 and default.blocks[0].pmem.dropout == 0.2
    plain = MemoryMosaicLM(MosaicConfig(**small, attn_dropout=True, embd_dropout=True))
    assert plain.drop.p == 0.2 and plain.blocks[0].cmem.attn_dropout == 0.2
    # a config saved before the two fields existed loads with them off
    saved = {k: v for k, v in MosaicConfig(**small).to_dict().items() if not k.endswith("_dropout")}
    restored = MosaicConfig(**saved)
    assert restored.attn_dropout is False and restored.embd_dropout is False
    # the flags change training only: in eval mode the outputs are the same numbers
    torch.manual_seed(0)
    a = MemoryMosaicLM(MosaicConfig(**small)).eval()
    torch.manual_seed(0)
    b = MemoryMosaicLM(MosaicConfig(**small, attn_dropout=True, embd_dropout=True)).eval()
    idx = torch.randint(0, 32, (2, 8))
    torch.testing.assert_close(a(idx)[0], b(idx)[0], atol=0, rtol=0)
