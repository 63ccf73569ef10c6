"""mosaics_edu.course.inspection on hand-made models whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mosaics_edu import models
from mosaics_edu.course import inspection as insp
from mosaics_edu.data import CharTokenizer, name_spans


def _small(kind: str, n_layer: int = 2, vocab: int = 40, seed: int = 0):
    torch.manual_seed(seed)
    if kind == "mosaic":
        return models.MemoryMosaicLM(
            models.MosaicConfig(vocab_size=vocab, block_size=32, n_layer=n_layer, n_head=4, n_embd=32)
        )
    return models.GPT(models.GPTConfig(vocab_size=vocab, block_size=32, n_layer=n_layer, n_head=4, n_embd=32))


def _perturb(model):
    """Move every parameter a little, so no test passes on an untouched init by accident."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return model


def _induction_mosaic() -> models.MemoryMosaicLM:
    """One block; head 0 keys = the current token only (λ ≈ e^-50, β = e^10): a perfect
    induction head; head 1 has all-zero keys, so it spreads its weight uniformly."""
    m = models.MemoryMosaicLM(
        models.MosaicConfig(vocab_size=8, block_size=32, n_layer=1, n_head=2, n_embd=16)
    )
    with torch.no_grad():
        m.wte.weight.zero_()
        m.wte.weight[:, :8] = torch.eye(8)
        keys = m.blocks[0].cmem.keys
        keys.proj.weight.zero_()
        keys.proj.weight[:8, :8] = torch.eye(8)  # head 0 reads the token's one-hot part
        keys.decay_logit.fill_(5.0)  # λ = e^-50: the key is the current token alone
        keys.beta_logit.fill_(0.5)  # s = e^5, β = e^10: nearest neighbour
    return m


REPEATS = torch.tensor([[3, 1, 7, 0, 5, 2, 6, 4] * 3])  # (1, 24): a permutation, three times


# ---- the traced forward ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["mosaic", "gpt"])
def test_trace_reproduces_the_model_and_its_parts_add_up(kind):
    model = _perturb(_small(kind))
    idx = torch.randint(0, 40, (2, 20), generator=torch.Generator().manual_seed(0))
    tr = insp.trace(model, idx)
    logits, _ = model(idx)
    torch.testing.assert_close(tr.logits, logits, atol=1e-5, rtol=1e-5)
    assert list(tr.components) == insp.component_names(model)
    torch.testing.assert_close(sum(tr.components.values()), tr.residual, atol=1e-5, rtol=1e-5)
    first = "cmem" if kind == "mosaic" else "attn"
    for i, heads in enumerate(tr.heads):
        assert heads.shape == (2, 4, 20, 32)
        torch.testing.assert_close(heads.sum(1), tr.components[f"block{i}.{first}"], atol=1e-5, rtol=1e-5)
    for w in tr.maps:
        assert w.shape == (2, 4, 20, 20)
        rows = w.sum(-1)
        if kind == "mosaic":  # position 0 reads an empty memory; s < t only
            assert torch.all(rows[..., 0] == 0) and torch.allclose(rows[..., 1:], torch.ones(()))
            assert torch.all(w.triu() == 0)
        else:  # s ≤ t
            assert torch.allclose(rows, torch.ones(())) and torch.all(w.triu(1) == 0)


def test_mosaic_maps_are_the_models_own_retrieval_weights():
    model = _perturb(_small("mosaic"))
    idx = torch.randint(0, 40, (1, 16), generator=torch.Generator().manual_seed(2))
    tr = insp.trace(model, idx)
    for mine, theirs in zip(tr.maps, model.retrieval_weights(idx), strict=True):
        torch.testing.assert_close(mine, theirs["cmem"])


def test_trace_leaves_training_mode_alone_and_rejects_bad_ablations():
    model = _small("mosaic").train()
    insp.trace(model, torch.zeros(1, 4, dtype=torch.long))
    assert model.training
    with pytest.raises(ValueError, match="kind"):
        insp.trace(model, torch.zeros(1, 4, dtype=torch.long), ablate=[(0, "attn", 1)])
    with pytest.raises(ValueError, match="block"):
        insp.trace(model, torch.zeros(1, 4, dtype=torch.long), ablate=[(5, "cmem", 1)])
    with pytest.raises(ValueError, match="single heads"):
        insp.trace(model, torch.zeros(1, 4, dtype=torch.long), ablate=[(0, "pmem", 1)])
    with pytest.raises(TypeError, match="MemoryMosaicLM or a GPT"):
        insp.value_offset(torch.nn.Linear(2, 2))


# ---- head scores ---------------------------------------------------------------------------


def test_a_perfect_induction_head_scores_one_and_a_uniform_head_does_not():
    model = _induction_mosaic()
    tr = insp.trace(model, REPEATS)
    scores = insp.head_scores(tr.maps[0], REPEATS, insp.value_offset(model))
    assert scores["induction"][0] > 0.999
    np.testing.assert_allclose(scores["same_token"], scores["induction"])  # same by construction
    # head 1 (zero keys) reads every past pair equally: mass on the earlier copies = copies / t
    t = np.arange(8, 24)
    uniform = np.mean((t // 8) / t)
    assert scores["induction"][1] == pytest.approx(uniform, rel=1e-5)
    assert scores["recency"][1] == pytest.approx(np.mean((np.arange(1, 24) + 1) / 2), rel=1e-5)
# the induction head reads one period back (two copies: 8 and 16 back, half each); before the
    # first repeat every key differs equally from the query, so it reads uniformly
    expect = [(t + 1) / 2 for t in range(1, 8)] + [8.0] * 8 + [12.0] * 8
    assert scores["recency"][0] == pytest.approx(np.mean(expect), rel=1e-4)


def test_scores_of_hand_made_maps():
    T = 12
    ids = np.array([0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5])
    prev = np.zeros((1, T, T))
    for t in range(1, T):
        prev[0, t, t - 1] = 1.0
    s = insp.head_scores(prev, ids, offset=1)
    assert s["previous_token"][0] == 1.0 and s["recency"][0] == 1.0 and s["induction"][0] == 0.0
    # a GPT induction head reads the position after the earlier copy: s = t - 6 + 1
    gpt = np.zeros((1, T, T))
    gpt[0, :, 0] = 1.0  # rows without an earlier copy: anywhere
    for t in range(6, T):
        gpt[0, t, 0] = 0.0
        gpt[0, t, t - 5] = 1.0
    g = insp.head_scores(gpt, ids, offset=0)
    assert g["induction"][0] == 1.0 and g["same_token"][0] == 0.0
    # the same map read as a mosaic's (value at s peeks s + 1) is no induction head
    assert insp.head_scores(gpt, ids, offset=1)["induction"][0] == 0.0
    with pytest.raises(ValueError, match="offset"):
        insp.head_scores(gpt, ids, offset=2)
    with pytest.raises(ValueError, match="same B and T"):
        insp.head_scores(gpt, ids[:5], offset=0)


def test_head_parameters_start_at_their_initial_values():
    model = _small("mosaic")
    p = insp.head_parameters(model)
    assert len(p) == 2
    np.testing.assert_allclose(p[0]["decay"], p[0]["decay_init"], rtol=1e-5)
    np.testing.assert_allclose(p[0]["beta"], math.exp(2), rtol=1e-5)
    np.testing.assert_allclose(p[0]["beta_init"], math.exp(2), rtol=1e-12)


# ---- attribution ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["mosaic", "gpt"])
def test_attributions_sum_to_the_logit(kind):
    model = _perturb(_small(kind))
    idx = torch.randint(0, 40, (2, 16), generator=torch.Generator().manual_seed(3))
    targets = torch.roll(idx, -1, 1)
    att = insp.logit_attribution(model, idx, targets)
    total = sum(v for k, v in att.items() if k != "logit")
    # the LayerNorm has no bias: with σ held fixed the split is exact (float32 rounding only)
    torch.testing.assert_close(total, att["logit"], atol=1e-4, rtol=1e-4)
    heads = insp.head_logit_attribution(model, idx, targets)  # (L, H, B, T)
    first = "cmem" if kind == "mosaic" else "attn"
    for i in range(2):
        torch.testing.assert_close(heads[i].sum(0), att[f"block{i}.{first}"], atol=1e-5, rtol=1e-5)


def test_a_zeroed_head_contributes_nothing_and_its_ablation_changes_nothing():
    model = _perturb(_small("mosaic"))
    hs = 8
    with torch.no_grad():
        model.blocks[1].cmem.c_proj.weight[:, 2 * hs : 3 * hs] = 0.0  # head 2 of block 1 writes nothing
    idx = torch.randint(0, 40, (2, 16), generator=torch.Generator().manual_seed(4))
    targets = torch.roll(idx, -1, 1)
    heads = insp.head_logit_attribution(model, idx, targets)
    assert torch.all(heads[1, 2] == 0)
    assert torch.all(heads[1, 1, :, 1:] != 0)  # position 0 reads an empty memory: 0 for every head
    assert torch.all(heads[:, :, :, 0] == 0)
    full = insp.per_token_loss(model, idx, targets)
    torch.testing.assert_close(insp.per_token_loss(model, idx, targets, ablate=[(1, "cmem", 2)]), full)
    assert not torch.allclose(insp.per_token_loss(model, idx, targets, ablate=[(1, "cmem", 1)]), full)
    # zeroing a whole memory kind equals zeroing all its heads
    all_heads = [(0, "cmem", h) for h in range(4)]
    torch.testing.assert_close(
        insp.per_token_loss(model, idx, targets, ablate=all_heads),
        insp.per_token_loss(model, idx, targets, ablate=[(0, "cmem", None)]),
    )


def test_ablation_loss_change_splits_the_change_by_mask():
    model = _perturb(_small("mosaic"))
    idx = torch.randint(0, 40, (2, 12), generator=torch.Generator().manual_seed(6))
    targets = torch.roll(idx, -1, 1)
    mask = torch.zeros_like(idx, dtype=torch.bool)
    mask[:, 5:] = True
    diff = insp.per_token_loss(model, idx, targets, ablate=[(1, "cmem", 0)]) - insp.per_token_loss(
        model, idx, targets
    )
    got = insp.ablation_loss_change(model, idx, targets, (1, "cmem", 0), mask)
    assert got == pytest.approx((float(diff[:, 5:].mean()), float(diff[:, :5].mean())), rel=1e-6)
    with pytest.raises(ValueError, match="mask"):
        insp.ablation_loss_change(model, idx, targets, (1, "cmem", 0), mask.long())


def test_per_token_loss_is_the_models_loss_and_ignores_minus_one():
    model = _perturb(_small("gpt"))
    idx = torch.randint(0, 40, (2, 10), generator=torch.Generator().manual_seed(5))
    targets = torch.roll(idx, -1, 1)
    targets[:, -1] = -1
    loss = insp.per_token_loss(model, idx, targets)
    with torch.no_grad():
        _, want = model(idx, targets)
    assert torch.isnan(loss[:, -1]).all()
    assert float(loss.nanmean()) == pytest.approx(want.item(), rel=1e-5)


def test_pmem_logit_lens_finds_the_token_a_row_writes():
    m = models.MemoryMosaicLM(
        models.MosaicConfig(vocab_size=8, block_size=8, n_layer=1, n_head=2, n_embd=8, pmem_size=5)
    )
    pm = m.blocks[0].pmem
    with torch.no_grad():
        m.wte.weight.copy_(torch.eye(8))
        pm.c_proj.weight.copy_(torch.eye(8))
        pm.table_values.zero_()
        for p, j in enumerate([0, 3, 2, 1, 3]):  # head 0's row p writes token j (dims 0..3)
            pm.table_values[0, p, j] = 1.0
        pm.table_values[1, 0, 1] = 1.0  # head 1 lives in dims 4..7: its row 0 writes token 5
    top, val = insp.pmem_logit_lens(m, 0, 0, k=2)
    assert top[:, 0].tolist() == [0, 3, 2, 1, 3]
    assert np.all(val[:, 0] > val[:, 1])
    assert insp.pmem_logit_lens(m, 0, 1, k=1)[0][0, 0] == 5


# ---- one position, and names -----------------------------------------------------------------


def test_top_pairs_and_the_explorer_view():
    w = np.array([0.0, 0.1, 0.6, 0.3, 0.0])
    pairs = insp.top_pairs(w, [9, 8, 7, 6, 5], offset=1, k=3)
    assert [p["s"] for p in pairs] == [2, 3, 1] and [p["peeked"] for p in pairs] == [6, 5, 7]
    assert insp.top_pairs(w, [9, 8, 7, 6, 5], offset=1, k=10)[-1]["s"] == 1  # zero weights left out
    text = "abcabcabcabc"
    tok = CharTokenizer.train(text)
    model = _induction_mosaic()
    view = insp.explorer_view(model, tok, text, position=100, layer=0, head=0, k=3)
    assert view["position"] == len(text) - 1  # clipped
    assert view["row"].sum() == pytest.approx(1.0, abs=1e-5)
    assert all(p["token"] == view["ids"][view["position"]] for p in view["top"])  # same letter
    assert view["vote"][0][0] == "a" and view["vote"][0][1] > 0.99  # after 'c' came 'a'
    assert "[c]" in view["top"][0]["context"]
    with pytest.raises(ValueError, match="head"):
        insp.explorer_view(model, tok, text, 3, 0, 7)


def test_repeated_name_mask_marks_the_targets_of_repeated_names():
    text = "Ann saw Bo. Bo saw Ann."
    tok = CharTokenizer.train(text)
    ids = tok.encode(text)
    mask = insp.repeated_name_mask(tok, ids, name_spans(text, ["Ann", "Bo"]))
    marked = "".join(text[t + 1] for t in np.flatnonzero(mask))
    assert marked == "BoAnn"


# ---- the chapter's views ---------------------------------------------------------------------


def test_distance_profile_and_head_card_and_their_drawings():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mosaics_edu.course.inspection_views import distance_profile, draw_explorer, draw_head_card, head_card

    model = _induction_mosaic()
    tr = insp.trace(model, REPEATS)
    prof = distance_profile(tr.maps[0].numpy(), 10)  # (H, 11), queries t ≥ 10
    assert prof.shape == (2, 11)
    # head 0 reads 8 back (half of it 16 back, out of range, in the third copy): nothing at distance 0
    assert prof[0, 0] == 0 and prof[0, 8] == pytest.approx(prof[0].sum()) and prof[0, 8] > 0.5
    np.testing.assert_allclose(prof[1, 1:], prof[1, 1])  # the uniform head: flat
    scores = {"mosaic": [insp.head_scores(tr.maps[0], REPEATS, 1)]}
    card = head_card(scores, {"mosaic": [prof]}, {"mosaic": [tr.maps[0][0].numpy()]}, "mosaic", 0, 1)
    assert card["index"] == 1 and card["own"]["induction"] == scores["mosaic"][0]["induction"][1]
    assert card["all"]["recency"].shape == (2,)
    with pytest.raises(ValueError, match="head"):
        head_card(scores, {"mosaic": [prof]}, {"mosaic": [tr.maps[0][0].numpy()]}, "mosaic", 0, 2)
    with pytest.raises(ValueError, match="max_distance"):
        distance_profile(tr.maps[0].numpy(), 24)
    fig = plt.figure()
    draw_head_card(card, fig)
    text = "abcabcabc\nabc"
    tok = CharTokenizer.train(text)
    fig2 = plt.figure()
    draw_explorer(insp.explorer_view(model, tok, text, 5, 0, 0), fig2)
    assert len(fig.axes) == 6 and len(fig2.axes) == 3
    plt.close("all")
