"""mosaics_edu.course.copying on a hand-labelled story, hand-made retrieval maps and a hand-made mosaic
that copies, whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mosaics_edu import models
from mosaics_edu.course import copying, inspection
from mosaics_edu.data import STORY_SEPARATOR, CharTokenizer
from mosaics_edu.data.stories import Story

# "Ab saw Cd. Ab met Cd and Ab."  Ab at 0, 11, 25; Cd at 7, 18 (character = token)
STORY = Story(text="Ab saw Cd. Ab met Cd and Ab.", names=("Ab", "Cd"), place="", thing="", n_paragraphs=1)
FILLER = Story(text="z" * 80, names=("Ab",), place="", thing="", n_paragraphs=1)  # what follows
TOK = CharTokenizer.train(STORY.text + STORY_SEPARATOR + FILLER.text)
BLOCK = 40
# the later-mention queries with a source pair: t predicts the name token at t + 1. (t = 10, a
# space before the second "Ab", has none: the first "Ab" opens the text, nothing precedes it.)
QUERIES = [11, 17, 18, 24, 25]
# the pairs that bring the target from an earlier mention: a GPT's pair s brings the token at s,
# a mosaic's the token at s + 1
SOURCES_GPT = {11: [1], 17: [7], 18: [8], 24: [11], 25: [1, 12]}
SOURCES_MOSAIC = {t: [s - 1 for s in ss] for t, ss in SOURCES_GPT.items()}


def _names() -> copying.NameTokens:
    return copying.name_tokens(TOK, [STORY, FILLER], BLOCK, n_windows=1)


def _copier() -> models.MemoryMosaicLM:
    """One block that copies: head 0's key is the current token alone (λ ≈ e^-50, β = e^10),
    its value the next token (γ = 0), written onto the next token's embedding; head 1 and the
    persistent memory write nothing. The final LayerNorm's gain sharpens the prediction."""
    V = TOK.vocab_size
    m = models.MemoryMosaicLM(models.MosaicConfig(vocab_size=V, block_size=BLOCK, n_layer=1, n_head=2,
                                                  n_embd=32))
    cmem = m.blocks[0].cmem
    with torch.no_grad():
        m.wte.weight.zero_()
        m.wte.weight[:, :V] = torch.eye(V)  # tied: the head reads the same one-hot rows
        for extractor in (cmem.keys, cmem.values):
            extractor.proj.weight.zero_()
            extractor.proj.weight[:V, :V] = torch.eye(V)  # head 0 (features 0…15) sees the token
        cmem.keys.decay_logit.fill_(5.0)
        cmem.keys.beta_logit.fill_(0.5)
        cmem.values.gamma.fill_(0.0)
        cmem.values.alpha_logit.fill_(0.0)  # α = 1
        cmem.c_proj.weight.zero_()
        cmem.c_proj.weight[:V, :V] = 10 * torch.eye(V)  # head 0 -> the next token's embedding
        m.blocks[0].pmem.c_proj.weight.zero_()
        m.ln_f.weight.fill_(40.0)
    return m.eval()


# ---- labels ------------------------------------------------------------------------------------


def test_name_tokens_label_each_mention():
    nt = _names()
    assert nt.windows.shape == (1, BLOCK + 1)
    name, mention, later = nt.name[0], nt.mention[0], nt.later[0]
    want = {0: (0, 0, False), 1: (0, 0, False), 7: (1, 7, False), 8: (1, 7, False), 11: (0, 11, True),
            12: (0, 11, True), 18: (1, 18, True), 19: (1, 18, True), 25: (0, 25, True), 26: (0, 25, True)}
    for p in range(BLOCK + 1):
        assert (name[p], mention[p], later[p]) == want.get(p, (-1, -1, False)), p
    assert nt.in_story[0].tolist() == [p < len(STORY.text) for p in range(BLOCK + 1)]
    # position t predicts the token at t + 1
    assert torch.nonzero(nt.target_mask("later")[0]).flatten().tolist() == [10, 11, 17, 18, 24, 25]
    assert torch.nonzero(nt.target_mask("first")[0]).flatten().tolist() == [0, 6, 7]
    other = torch.nonzero(nt.target_mask("other")[0]).flatten().tolist()
    assert other == [t for t in range(len(STORY.text) - 1) if t not in (0, 6, 7, 10, 11, 17, 18, 24, 25)]
    torch.testing.assert_close(nt.idx, nt.windows[:, :-1])
    torch.testing.assert_close(nt.targets, nt.windows[:, 1:])
    # a window that cuts "Cd" at 18-19 labels the mentions before it only
    short = copying.name_tokens(TOK, [STORY, FILLER], 18, n_windows=1)
    assert sorted(set(short.mention[0][short.name[0] >= 0].tolist())) == [0, 7, 11]
    with pytest.raises(ValueError, match="group"):
        nt.target_mask("names")
    with pytest.raises(TypeError, match="Story"):
        copying.name_tokens(TOK, [STORY.text], BLOCK)
    with pytest.raises(ValueError, match="block_size"):
        copying.name_tokens(TOK, [STORY, FILLER], 1)


# ---- prefix matching -------------------------------------------------------------------------


def _maps(sources: dict[int, list[int]], offset: int) -> np.ndarray:
    """(1, 3, T, T): head 0 on each query's nearest source pair, head 1 on the pair after it,
    head 2 uniform over the pairs it may read."""
    T = BLOCK
    maps = np.zeros((1, 3, T, T))
    for t in range(1, T):
        near = max(sources.get(t, [0]))
        maps[0, 0, t, near] = 1.0
        maps[0, 1, t, near + 1] = 1.0
        n = t if offset == 1 else t + 1
        maps[0, 2, t, :n] = 1.0 / n
    maps[0, :2, 0, 0] = 1.0 if offset == 0 else 0.0
    if offset == 0:
        maps[0, 2, 0, 0] = 1.0
    return maps


@pytest.mark.parametrize("offset", [0, 1])
def test_prefix_matching_on_hand_made_maps(offset):
    sources = SOURCES_GPT if offset == 0 else SOURCES_MOSAIC
    pm = copying.prefix_matching(_maps(sources, offset), _names(), offset)
    assert pm.position.tolist() == QUERIES and pm.window.tolist() == [0] * 5
    assert pm.distance.tolist() == [t - max(sources[t]) for t in QUERIES]
    n_read = [t if offset == 1 else t + 1 for t in QUERIES]
    chance = [len(sources[t]) / n for t, n in zip(QUERIES, n_read, strict=True)]
    np.testing.assert_allclose(pm.chance, chance)
    np.testing.assert_allclose(pm.weight[:, 0], 1.0)  # the nearest source pair
    np.testing.assert_allclose(pm.weight[:, 1], 0.0)  # one pair too late
    np.testing.assert_allclose(pm.weight[:, 2], chance)  # a uniform head is the chance level
    assert pm.mean[0] == 1.0 and pm.chance_mean == pytest.approx(np.mean(chance))
    # the same maps read with the other convention miss every source pair
    other = copying.prefix_matching(_maps(sources, offset), _names(), 1 - offset)
    np.testing.assert_allclose(other.weight[:, 0], 0.0)
    means, counts = pm.by_distance([0, 12, 40])
    assert counts.tolist() == [sum(d < 12 for d in pm.distance), sum(d >= 12 for d in pm.distance)]
    np.testing.assert_allclose(means[:, 0], 1.0)


def test_prefix_matching_refuses_bad_arguments_and_handles_no_queries():
    nt = _names()
    with pytest.raises(ValueError, match="offset"):
        copying.prefix_matching(_maps(SOURCES_GPT, 0), nt, 2)
    with pytest.raises(ValueError, match="maps must be"):
        copying.prefix_matching(_maps(SOURCES_GPT, 0)[:, :, :-1, :-1], nt, 0)
    with pytest.raises(TypeError, match="NameTokens"):
        copying.prefix_matching(_maps(SOURCES_GPT, 0), nt.windows, 0)
    with pytest.raises(ValueError, match="edges"):
        copying.prefix_matching(_maps(SOURCES_GPT, 0), nt, 0).by_distance([5, 5])
    once = Story(text="Ab saw Cd.", names=("Ab", "Cd"), place="", thing="", n_paragraphs=1)
    lone = copying.name_tokens(TOK, [once, FILLER], BLOCK, n_windows=1)
    pm = copying.prefix_matching(np.zeros((1, 2, BLOCK, BLOCK)), lone, 1)
    assert pm.weight.shape == (0, 2) and np.isnan(pm.mean).all() and np.isnan(pm.chance_mean)


def test_prefix_matching_of_a_head_that_matches_the_current_token():
    """The copier's head 0 reads every earlier copy of the current token equally: 1 where the
    query token occurs only in the name, 1/4 and 1/6 at the spaces before a later mention (the
    earlier spaces are 4 and 6, one of them before an earlier mention of the name)."""
    model = _copier()
    nt = _names()
    maps = inspection.trace(model, nt.idx).maps[0]
    pm = copying.prefix_matching(maps, nt, inspection.value_offset(model))
    assert pm.position.tolist() == QUERIES
    np.testing.assert_allclose(pm.weight[:, 0], [1.0, 1 / 4, 1.0, 1 / 6, 1.0], atol=1e-5)


# ---- ablations ---------------------------------------------------------------------------------


def test_the_copying_head_is_found_and_carries_the_gain():
    model = _copier()
    nt = _names()
    costs = copying.head_name_costs(model, nt)
    assert set(costs) == {"later", "first", "other", "specific"} and costs["later"].shape == (1, 2)
    np.testing.assert_allclose(costs["specific"], costs["later"] - costs["other"])
    np.testing.assert_allclose(costs["later"][0, 1], 0.0, atol=1e-6)  # head 1 writes nothing
    assert costs["later"][0, 0] > 5.0  # without head 0 the model predicts the current token
    assert copying.copying_heads(costs, k=1) == [(0, 0)]
    assert copying.copying_heads(costs, k=2) == [(0, 0), (0, 1)]
    # the same numbers from the package's ablation, group by group
    later = nt.target_mask("later")
    full = inspection.per_token_loss(model, nt.idx, nt.targets)
    ablated = inspection.per_token_loss(model, nt.idx, nt.targets, ablate=[(0, "cmem", 0)])
    assert costs["later"][0, 0] == pytest.approx(float((ablated - full)[later].mean()), rel=1e-5)

    share = copying.copying_share(model, nt, [(0, 0)])
    first = nt.target_mask("first")
    assert share["later"] == pytest.approx(float(full[later].mean()), rel=1e-5)
    assert share["first_ablated"] == pytest.approx(float(ablated[first].mean()), rel=1e-5)
    assert share["gain"] == pytest.approx(share["first"] - share["later"])
    assert share["gain"] > 5.0  # the copier copies: a name's second letter is certain
    assert float(full[0, [11, 18, 25]].max()) < 1e-3
    assert share["carried"] == pytest.approx(1 - share["gain_ablated"] / share["gain"])
    # without head 0 the model predicts the current token, and every target (none repeats its
    # predecessor) costs the same: a later mention is exactly as hard as a first one
    assert share["later_ablated"] == pytest.approx(share["first_ablated"], rel=1e-6)
    assert share["carried"] == pytest.approx(1.0, abs=1e-6)
    nothing = copying.copying_share(model, nt, [(0, 1)])
    assert nothing["carried"] == pytest.approx(0.0, abs=1e-5)


def test_ablation_functions_refuse_bad_arguments():
    model, nt = _copier(), _names()
    costs = copying.head_name_costs(model, nt)
    with pytest.raises(ValueError, match="k must be"):
        copying.copying_heads(costs, k=3)
    with pytest.raises(ValueError, match="specific"):
        copying.copying_heads({"later": costs["later"]})
    with pytest.raises(ValueError, match="empty"):
        copying.copying_share(model, nt, [])
    with pytest.raises(ValueError, match="pairs"):
        copying.copying_share(model, nt, [(0, "cmem", 0)])
    with pytest.raises(ValueError, match="head must be"):
        copying.copying_share(model, nt, [(0, 5)])
    with pytest.raises(TypeError, match="MemoryMosaicLM or a GPT"):
        copying.head_name_costs(torch.nn.Linear(2, 2), nt)
    once = Story(text="Ab saw Cd.", names=("Ab", "Cd"), place="", thing="", n_paragraphs=1)
    with pytest.raises(ValueError, match="no 'later' targets"):
        copying.copying_share(model, copying.name_tokens(TOK, [once, FILLER], BLOCK, 1), [(0, 0)])


def test_a_gpt_is_measured_the_same_way_and_an_untrained_one_does_not_copy():
    torch.manual_seed(0)
    gpt = models.GPT(models.GPTConfig(vocab_size=TOK.vocab_size, block_size=BLOCK, n_layer=2, n_head=2,
                                      n_embd=16)).eval()
    nt = _names()
    costs = copying.head_name_costs(gpt, nt)
    assert costs["later"].shape == (2, 2)
    heads = copying.copying_heads(costs, k=2)
    assert heads[0] == tuple(int(i) for i in np.unravel_index(np.argmax(costs["specific"]), (2, 2)))
    full = inspection.per_token_loss(gpt, nt.idx, nt.targets)
    layer, head = heads[0]
    ablated = inspection.per_token_loss(gpt, nt.idx, nt.targets, ablate=[(layer, "attn", head)])
    later = nt.target_mask("later")
    top = costs["later"][heads[0]]
    assert top == pytest.approx(float((ablated - full)[later].mean()), rel=1e-5, abs=1e-6)
    # untrained, it finds a later mention no easier than a first one: no gain to share
    assert full[nt.target_mask("first")].mean() <= full[later].mean()
    with pytest.raises(ValueError, match="does not copy"):
        copying.copying_share(gpt, nt, heads)
    # its attention maps: the weight on the GPT's source pairs (the token itself, s = b)
    maps = inspection.trace(gpt, nt.idx).maps[1]
    pm = copying.prefix_matching(maps, nt, 0)
    want = [[sum(float(maps[0, h, t, s]) for s in SOURCES_GPT[t]) for h in range(2)] for t in QUERIES]
    np.testing.assert_allclose(pm.weight, want, rtol=1e-5)
