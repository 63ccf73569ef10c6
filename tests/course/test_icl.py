"""mosaics_edu.course.icl (per-position loss, bootstrap bands, crossings, name recall) on hand-made
models whose answers are known, and the out-of-distribution stories of mosaics_edu.data.stories."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
import torch.nn as nn

from mosaics_edu.course import icl
from mosaics_edu.data import STORY_SEPARATOR, CharTokenizer, generate_stories, make_names, name_spans
from mosaics_edu.data.stories import (
    Story,
    _template_words,
    generate_ood_stories,
    make_heldout_names,
    story_corpus,
)
from mosaics_edu.data.tokenizers import BPETokenizer

# --------------------------------------------------------------------------------------------
# hand-made models
# --------------------------------------------------------------------------------------------


class Uniform(nn.Module):
    """Zero logits: every token has probability 1/V at every position."""

    def __init__(self, vocab: int):
        super().__init__()
        self.vocab = vocab
        self.eval()

    def forward(self, idx: torch.Tensor) -> tuple[torch.Tensor, None]:
        return torch.zeros(*idx.shape, self.vocab), None


class Oracle(nn.Module):
    """Knows the text: at position t it gives the true next token ``seq[t+1]`` the logit
    ``strength[t]`` (others 0), so p_t = e^s / (e^s + V - 1), exactly."""

    def __init__(self, seq: list[int], vocab: int, strength: np.ndarray):
        super().__init__()
        self.seq, self.vocab, self.strength = seq, vocab, strength
        self.eval()

    def p(self, t: int) -> float:
        s = float(self.strength[t])
        return math.exp(s) / (math.exp(s) + self.vocab - 1)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        B, T = idx.shape
        logits = torch.zeros(B, T, self.vocab)
        for t in range(T):
            if t + 1 < len(self.seq):
                logits[:, t, self.seq[t + 1]] = float(self.strength[t])
        return logits


# --------------------------------------------------------------------------------------------
# per-position loss and windows
# --------------------------------------------------------------------------------------------


def test_uniform_model_has_log_v_at_every_position():
    windows = torch.randint(0, 50, (6, 11))
    loss = icl.per_position_loss(Uniform(50), windows, batch_size=4)
    assert loss.shape == (6, 10)
    np.testing.assert_allclose(loss, math.log(50), rtol=1e-6)


def test_per_position_loss_is_aligned_with_positions():
    seq = list(range(1, 13))  # 12 distinct tokens
    strength = np.arange(11) * 0.5  # a different probability at every position
    oracle = Oracle(seq, 20, strength)
    loss = icl.per_position_loss(oracle, torch.tensor([seq, seq]))
    expected = [-math.log(oracle.p(t)) for t in range(11)]
    np.testing.assert_allclose(loss[0], expected, rtol=1e-5)
    np.testing.assert_allclose(loss[1], expected, rtol=1e-5)


def test_per_position_loss_averages_to_the_models_own_loss():
    from mosaics_edu.models import MemoryMosaicLM, MosaicConfig

    torch.manual_seed(0)
    model = MemoryMosaicLM(MosaicConfig(vocab_size=30, block_size=16, n_layer=1, n_head=2, n_embd=8)).eval()
    windows = torch.randint(0, 30, (5, 17))
    loss = icl.per_position_loss(model, windows, batch_size=2)
    with torch.no_grad():
        _, mean = model(windows[:, :-1], windows[:, 1:])
    assert loss.mean() == pytest.approx(float(mean), rel=1e-5)
    with pytest.raises(ValueError, match="training mode"):
        icl.per_position_loss(model.train(), windows)


def test_story_windows_start_at_story_starts_and_match_the_joined_stream():
    stories = generate_stories(12, seed=0, split="test")
    text = "".join(s.text + STORY_SEPARATOR for s in stories)
    tok = CharTokenizer.train(text)
    w = icl.story_windows(tok, stories, block_size=40, n_windows=5)
    assert w.shape == (5, 41)
    stream = tok.encode(text)
    start = 0
    for i, s in enumerate(stories[:5]):
        assert w[i].tolist() == stream[start : start + 41]
        assert tok.decode(w[i].tolist()) == s.text[:41]
        start += len(s.text) + len(STORY_SEPARATOR)
    # BPE: story-by-story encoding is the encoding of the joined stream
    bpe = BPETokenizer.train(story_corpus(n_train=200, n_valid=1)["train"], vocab_size=300)
    wb = icl.story_windows(bpe, stories, block_size=30)
    joined = bpe.encode(text)
    assert wb[0].tolist() == joined[:31]
    with pytest.raises(ValueError, match="too few"):
        icl.story_windows(tok, stories[:1], block_size=5000)


# --------------------------------------------------------------------------------------------
# bootstrap and crossings
# --------------------------------------------------------------------------------------------


def test_bootstrap_band_known_cases():
    rows = np.tile(np.array([1.0, 2.0, 3.0]), (10, 1))  # identical windows: no uncertainty
    band = icl.bootstrap_band(rows, n_boot=200)
    np.testing.assert_allclose(band.mean, [1, 2, 3])
    np.testing.assert_allclose(band.lo, [1, 2, 3])
    np.testing.assert_allclose(band.hi, [1, 2, 3])
    rng = np.random.default_rng(1)
    small = rng.normal(5.0, 1.0, size=(100, 4))
    big = rng.normal(5.0, 1.0, size=(1600, 4))
    b_small, b_big = icl.bootstrap_band(small, seed=3), icl.bootstrap_band(big, seed=3)
    assert np.all(b_small.lo <= b_small.mean) and np.all(b_small.mean <= b_small.hi)
    # the band's width is ~ 2 * 1.645 / sqrt(N) for a 90 % band: 0.33 at N=100, 0.08 at N=1600
    np.testing.assert_allclose(b_small.hi - b_small.lo, 2 * 1.645 / 10, rtol=0.25)
    np.testing.assert_allclose(b_big.hi - b_big.lo, 2 * 1.645 / 40, rtol=0.25)
    again = icl.bootstrap_band(small, seed=3)
    np.testing.assert_array_equal(again.lo, b_small.lo)  # deterministic in the seed
    with pytest.raises(ValueError, match="level"):
        icl.bootstrap_band(small, level=90)
    with pytest.raises(ValueError, match="N >= 2"):
        icl.bootstrap_band(small[:1])


def test_band_from_indices_is_the_replicate_loop_and_bootstrap_bands_draws():
    rng = np.random.default_rng(4)
    losses = rng.normal(size=(7, 3))
    idx = rng.integers(0, 7, size=(50, 7))
    band = icl.band_from_indices(losses, idx, level=0.8)
    reps = np.stack([losses[row].mean(axis=0) for row in idx])  # one replicate per row, by hand
    np.testing.assert_allclose(band.lo, np.quantile(reps, 0.1, axis=0), rtol=1e-12)
    np.testing.assert_allclose(band.hi, np.quantile(reps, 0.9, axis=0), rtol=1e-12)
    np.testing.assert_allclose(band.mean, losses.mean(axis=0))
    drawn = icl.bootstrap_band(losses, n_boot=50, level=0.8, seed=5)
    again = icl.band_from_indices(losses, icl.resample_indices(7, 50, seed=5), level=0.8)
    np.testing.assert_array_equal(drawn.lo, again.lo)
    np.testing.assert_array_equal(drawn.hi, again.hi)
    for bad, match in ((idx[:, :6], "idx must be"), (idx + 7, r"\[0, 7\)"), (idx * 1.0, "integer")):
        with pytest.raises(ValueError, match=match):
            icl.band_from_indices(losses, bad)
    with pytest.raises(ValueError, match="level"):
        icl.band_from_indices(losses, idx, level=1.0)


def test_curve_crossings():
    a = np.array([3.0, 2.0, 1.0, 0.0])
    b = np.array([0.0, 1.0, 2.0, 3.0])
    assert icl.curve_crossings(a, b) == [2]
    assert icl.curve_crossings(a, a + 1) == []  # never crosses
    assert icl.curve_crossings(np.array([1.0, 0.0, -1.0]), np.zeros(3)) == [2]  # a tie keeps order
    noisy = np.array([1.0, 1.0, 1.0, -0.5, 1.0, 1.0, 1.0, 1.0, -1.0, -1.0, -1.0, -1.0])
    assert icl.curve_crossings(noisy, np.zeros(12)) == [3, 4, 8]
    assert icl.curve_crossings(noisy, np.zeros(12), smooth=3) == [8]  # a one-position dip is noise
    with pytest.raises(ValueError, match="one length"):
        icl.curve_crossings(a, b[:3])


# --------------------------------------------------------------------------------------------
# name recall
# --------------------------------------------------------------------------------------------


def test_name_recall_distances_and_probabilities_char_level():
    story = Story(text="Ab saw Cd. Ab met Cd and Ab.", names=("Ab", "Cd"), place="", thing="", n_paragraphs=1)
    filler = Story(text="z" * 80, names=("Ab",), place="", thing="", n_paragraphs=1)  # what follows
    stream = story.text + STORY_SEPARATOR + filler.text + STORY_SEPARATOR
    tok = CharTokenizer.train(stream)
    seq = tok.encode(stream)
    strength = np.linspace(0.0, 3.0, len(seq))
    oracle = Oracle(seq, tok.vocab_size, strength)
    mentions = icl.name_recall(oracle, tok, [story, filler], block_size=40)
    # "Ab" at chars 0 (token 0: nothing predicts it, skipped), 11, 25; "Cd" at 7, 18
    got = [(m.story, m.name, m.first, m.position, m.distance) for m in mentions]
    assert got == [
        (0, "Cd", True, 7, -1),
        (0, "Ab", False, 11, 9),
        (0, "Cd", False, 18, 9),
        (0, "Ab", False, 25, 12),
    ]
    for m in mentions:  # a 2-letter name: tokens p and p+1, predicted at positions p-1 and p
        expected = math.log(oracle.p(m.position - 1)) + math.log(oracle.p(m.position))
        assert m.log_prob == pytest.approx(expected, rel=1e-5)
        assert m.prob == pytest.approx(math.exp(expected), rel=1e-5)
    uni = icl.name_recall(Uniform(tok.vocab_size), tok, [story, filler], block_size=40)
    assert all(m.log_prob == pytest.approx(-2 * math.log(tok.vocab_size)) for m in uni)
    # precomputed losses give the same answer without calling the model
    windows = icl.story_windows(tok, [story, filler], 40)
    losses = icl.per_position_loss(oracle, windows)
    assert icl.name_recall(None, tok, [story, filler], 40, losses=losses) == mentions
    with pytest.raises(ValueError, match="losses must be"):
        icl.name_recall(None, tok, [story, filler], 40, losses=losses[:, :-1])
    # a window that cuts the text: only mentions that fit
    short = icl.name_recall(oracle, tok, [story, filler], block_size=20)
    assert [(m.name, m.position) for m in short] == [("Cd", 7), ("Ab", 11), ("Cd", 18)]


def test_name_recall_with_bpe_covers_the_whole_name():
    stories = generate_ood_stories(8, mode="names")
    bpe = BPETokenizer.train(story_corpus(n_train=200, n_valid=1)["train"], vocab_size=400)
    mentions = icl.name_recall(Uniform(bpe.vocab_size), bpe, stories, block_size=512)
    n_windows = icl.story_windows(bpe, stories, 512).shape[0]
    assert n_windows >= 2 and {m.story for m in mentions} == set(range(n_windows))
    for k in range(n_windows):
        s = stories[k]
        assert len(bpe.encode(s.text)) <= 512  # the whole story is in its window
        mine = [m for m in mentions if m.story == k]
        spans = name_spans(s.text, s.names)
        assert len(mine) == len(spans)  # the story opens with a word, not a name
        for m, sp in zip(mine, spans, strict=True):
            n_tokens = round(-m.log_prob / math.log(bpe.vocab_size))
            piece = bpe.decode(bpe.encode(s.text)[m.position : m.position + n_tokens])
            assert piece.strip() == sp.name  # exactly the name's tokens (with its leading space)
            assert m.first == (not sp.repeated)


def test_recall_by_distance_bins():
    M = icl.NameMention
    mentions = [
        M(0, "A", True, 3, -1, math.log(0.01)),
        M(0, "A", False, 10, 2, math.log(0.5)),
        M(0, "A", False, 20, 8, math.log(0.3)),
        M(1, "B", True, 2, -1, math.log(0.03)),
        M(1, "B", False, 9, 5, math.log(0.7)),
    ]
    r = icl.recall_by_distance(mentions, [0, 4, 16, 64])
    np.testing.assert_allclose(r["mean_prob"][:2], [0.5, 0.5])
    assert np.isnan(r["mean_prob"][2])
    assert r["count"].tolist() == [1, 2, 0]
    assert r["first_mean_prob"][0] == pytest.approx(0.02)
    with pytest.raises(ValueError, match="increasing"):
        icl.recall_by_distance(mentions, [4, 0])


# --------------------------------------------------------------------------------------------
# out-of-distribution stories
# --------------------------------------------------------------------------------------------


def test_heldout_names_are_disjoint_from_training_names_and_deterministic():
    train = set(make_names(4000, seed=0))
    held = make_heldout_names(2000, seed=0)
    assert len(held) == len(set(held)) == 2000
    assert not train & set(held)
    assert held == make_heldout_names(2000, seed=0)
    assert make_heldout_names(50, seed=0) == held[:50]  # prefix-stable
    assert make_heldout_names(50, seed=1) != held[:50]
    assert not set(make_heldout_names(500, seed=1)) & set(make_names(4000, seed=1))
    assert not {n.lower() for n in held} & _template_words()
    assert all(n[0].isupper() and n[1:].islower() and 3 <= len(n) <= 8 for n in held)
    with pytest.raises(ValueError, match="train_n_names"):
        make_heldout_names(10, train_n_names=0)


def test_ood_stories_have_new_names_and_a_new_structure_in_known_words():
    train_names = set(make_names(4000, seed=0))
    train_text = story_corpus(n_train=2000, n_valid=1)["train"]
    game = generate_ood_stories(100, seed=0, mode="game")
    assert [s.text for s in game] == [s.text for s in generate_ood_stories(100, seed=0)]
    assert [s.text for s in generate_ood_stories(10, start=5)] == [s.text for s in game[5:15]]
    # each frame has a phrase no training story contains; a story repeats its frame 5-7 times
    frames = ('"Can you', "What is near", " and saw a ")
    for phrase in frames:
        assert phrase not in train_text
    seen = set()
    for s in game:
        assert not set(s.names) & train_names
        assert s.text.count(s.names[1]) >= 5  # the friend answers in every turn
        used = [p for p in frames if p in s.text]
        per_turn = 2 if used == [" and saw a "] else 1  # that frame has two halves
        assert len(used) == 1 and 5 <= s.text.count(used[0]) / per_turn <= 7
        seen.add(used[0])
        words = {w.lower() for w in re.findall(r"[A-Za-z]+", s.text) if w not in s.names}
        assert words <= _template_words(), words - _template_words()  # no word new to a model
    assert seen == set(frames)
    names_mode = generate_ood_stories(50, seed=0, mode="names")
    for s in names_mode:
        assert not set(s.names) & train_names
        assert " named " in s.text and not any(p in s.text for p in frames)  # the training grammar
    with pytest.raises(ValueError, match="mode"):
        generate_ood_stories(2, mode="poem")


def test_walk_stories_use_training_words_say_each_name_once_and_repeat_no_frame():
    train_names = set(make_names(4000, seed=0))
    train_words = set(re.findall(r"[A-Za-z]+", story_corpus(n_train=4000, n_valid=1)["train"]))
    walk = generate_ood_stories(200, seed=0, mode="walk")
    later = generate_ood_stories(5, seed=0, mode="walk", start=3)
    assert [s.text for s in later] == [s.text for s in walk[3:8]]
    game = generate_ood_stories(200, seed=0, mode="game")
    for s in walk:
        assert not set(s.names) & train_names
        for name in s.names:
            assert len(re.findall(rf"\b{name}\b", s.text)) == 1  # each name said once
        sentences = re.findall(r"[^.!?]+[.!?]", s.text)
        assert len(sentences) == len(set(sentences)) >= 16  # no sentence twice
        # every word, capitalised as written, occurs in the training stories
        assert {w for w in re.findall(r"[A-Za-z]+", s.text) if w not in s.names} <= train_words
    assert "Soon, she walked to" not in story_corpus(n_train=4000, n_valid=1)["train"]  # a new grammar
    # the walk rewards copying far less than the question game, and less than the training grammar
    sets = {"walk": walk, "game": game, "test": generate_stories(60, split="test")}
    tok = CharTokenizer.train("".join(st.text for stories in sets.values() for st in stories))
    rate = {name: icl.copyable_fraction(icl.story_windows(tok, stories, 400, n_windows=48), context=6)
            for name, stories in sets.items()}
    assert rate["walk"] < rate["test"] < rate["game"], rate


def test_copyable_fraction_is_the_accuracy_of_a_pure_copier():
    # [1 2 3 1 2 3]: with a context of 2 the targets at t = 2..5 are 3, 1, 2, 3; the copier has
    # seen (1, 2) -> 3 before t = 5 only: 1 hit of 4
    assert icl.copyable_fraction(torch.tensor([[1, 2, 3, 1, 2, 3]]), context=2) == pytest.approx(1 / 4)
    # context 1: targets 2, 3, 1, 2, 3; seen before: 1 -> 2 (t = 4), 2 -> 3 (t = 5): 2 of 5
    assert icl.copyable_fraction(np.array([[1, 2, 3, 1, 2, 3]]), context=1) == pytest.approx(2 / 5)
    assert icl.copyable_fraction(np.arange(20)[None], context=1) == 0.0  # nothing repeats
    # the latest occurrence wins: (7) -> 1, then (7) -> 2; at the end 7 is followed by 2 again
    assert icl.copyable_fraction(np.array([[7, 1, 7, 2, 7, 2]]), context=1) == pytest.approx(1 / 5)
    with pytest.raises(ValueError, match="windows"):
        icl.copyable_fraction(np.array([1, 2, 3]))
    with pytest.raises(ValueError, match="context"):
        icl.copyable_fraction(np.array([[1, 2, 3]]), context=0)


def test_test_split_is_a_new_stream_and_existing_outputs_are_unchanged():
    test = generate_stories(20, seed=0, split="test")
    train = generate_stories(20, seed=0, split="train")
    valid = generate_stories(20, seed=0, split="valid")
    assert not {s.text for s in test} & ({s.text for s in train} | {s.text for s in valid})
    # fixed points of the training corpus (the story models were trained on exactly this)
    corpus = story_corpus()
    assert corpus["train"].startswith(train[0].text)
    assert len(corpus["train"]) == 2_723_967 and len(corpus["valid"]) == 269_811
