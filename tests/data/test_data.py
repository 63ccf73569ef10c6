"""The story generator, name spans, token datasets on disk, and random-window batches."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from mosaics_edu.data import (
    STORY_SEPARATOR,
    RandomWindows,
    generate_stories,
    get_batch,
    load_token_dataset,
    make_names,
    name_spans,
    prepare_stories,
    save_token_dataset,
    story_corpus,
)
from mosaics_edu.data.stories import _template_words, generate_story
from mosaics_edu.data.tokenizers import CharTokenizer


def test_names_are_thousands_distinct_and_deterministic():
    names = make_names(4000, seed=0)
    assert len(names) == 4000 == len(set(names))
    assert names == make_names(4000, seed=0)
    assert make_names(100, seed=0) == names[:100]  # a prefix of the longer list
    assert make_names(100, seed=1) != names[:100]
    assert all(n[0].isupper() and n[1:].islower() and 3 <= len(n) <= 8 for n in names)
    assert not {n.lower() for n in names} & _template_words()


def test_stories_deterministic_prefix_stable_and_split():
    a = generate_stories(50, seed=3)
    assert [s.text for s in a] == [s.text for s in generate_stories(50, seed=3)]
    assert [s.text for s in generate_stories(20, seed=3)] == [s.text for s in a[:20]]
    assert [s.text for s in generate_stories(10, seed=3, start=5)] == [s.text for s in a[5:15]]
    assert a[0].text != generate_stories(1, seed=4)[0].text
    valid = generate_stories(50, seed=3, split="valid")
    assert not {s.text for s in a} & {s.text for s in valid}


def test_story_shape():
    for s in generate_stories(200, seed=0):
        paragraphs = s.text.split("\n")
        assert 3 <= s.n_paragraphs == len(paragraphs) <= 5
        assert s.place in s.text and s.thing in s.text
        assert STORY_SEPARATOR not in s.text
        # the main character is named at least three times, so later mentions can be copied
        assert s.text.count(s.names[0]) >= 3
        if s.n_paragraphs >= 4:
            assert len(s.names) == 2 and s.names[1] in s.text


def test_corpus_size_and_name_diversity():
    corpus = story_corpus(n_train=2000, n_valid=100, seed=0)
    assert 1_000_000 < len(corpus["train"]) < 1_800_000
    assert corpus["train"].count(STORY_SEPARATOR) == 2000
    assert corpus["valid"].count(STORY_SEPARATOR) == 100
    main_names = {s.names[0] for s in generate_stories(2000, seed=0)}
    assert len(main_names) > 1500  # thousands of names: almost every story has a new hero
    assert story_corpus(10, 2, seed=0) == story_corpus(10, 2, seed=0)


def test_name_spans_marks_repeats():
    story = generate_stories(1, seed=0)[0]
    spans = name_spans(story.text, story.names)
    assert spans, "a story names its characters"
    for sp in spans:
        assert story.text[sp.start : sp.end] == sp.name
    firsts = [sp for sp in spans if not sp.repeated]
    assert sorted(sp.name for sp in firsts) == sorted(story.names)
    assert spans[0].name == story.names[0] and not spans[0].repeated
    assert name_spans("Ann met Annie. Ann!", ["Ann"]) == [
        (0, 3, "Ann", False),
        (15, 18, "Ann", True),
    ]
    with pytest.raises(ValueError, match="names is empty"):
        name_spans("x", [])


def test_story_input_validation():
    with pytest.raises(ValueError, match="n_stories"):
        generate_stories(-1)
    with pytest.raises(ValueError, match="split"):
        generate_stories(1, split="validation")
    with pytest.raises(ValueError, match="n must be"):
        make_names(0)
    with pytest.raises(TypeError, match="rng"):
        generate_story(0, ["A", "B"])
    with pytest.raises(ValueError, match="at least 2"):
        generate_story(random.Random(0), ["A"])


def test_token_dataset_round_trip_and_corruption(tmp_path):
    tok = CharTokenizer.train("abc\n")
    ds = save_token_dataset(tmp_path / "d", tok.encode("abcabc\n" * 10), [0, 1, 2], tok)
    assert ds.train.dtype == np.uint16 and len(ds.train) == 70 and len(ds.valid) == 3
    again = load_token_dataset(tmp_path / "d")
    assert tok.decode(again.train[:7].tolist()) == "abcabc\n"
    assert again.tokenizer.to_dict() == tok.to_dict()
    # chunked input gives the same file
    ds2 = save_token_dataset(tmp_path / "e", iter([np.array([0, 1]), np.array([2])]), [0], tok)
    assert ds2.train.tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 4\)"):
        save_token_dataset(tmp_path / "f", [0, 9], [0], tok)
    with open(tmp_path / "d" / "train.bin", "ab") as f:  # truncated/extended file is refused
        f.write(b"\x00")
    with pytest.raises(ValueError, match="incomplete or corrupt"):
        load_token_dataset(tmp_path / "d")
    with pytest.raises(ValueError, match="no meta.json"):
        load_token_dataset(tmp_path / "nothing")


def test_prepare_stories_caches(tmp_path):
    ds = prepare_stories(tmp_path / "s", tokenizer="char", n_train=30, n_valid=5, seed=1)
    text = ds.tokenizer.decode(ds.train.tolist())
    assert text == story_corpus(30, 5, seed=1)["train"]
    mtime = (tmp_path / "s" / "train.bin").stat().st_mtime_ns
    ds2 = prepare_stories(tmp_path / "s", tokenizer="char", n_train=30, n_valid=5, seed=1)
    assert (tmp_path / "s" / "train.bin").stat().st_mtime_ns == mtime  # reused, not rebuilt
    assert np.array_equal(ds.valid, ds2.valid)
    ds3 = prepare_stories(tmp_path / "s", tokenizer="bpe", n_train=30, n_valid=5, seed=1,
                          bpe_vocab_size=300)  # other settings: rebuilt
    assert ds3.tokenizer.kind == "bpe" and ds3.vocab_size == 300


def test_batches_shapes_shift_and_determinism():
    tokens = np.arange(1000, dtype=np.uint16)
    g = torch.Generator().manual_seed(0)
    x, y = get_batch(tokens, 4, 16, g)
    assert x.shape == y.shape == (4, 16) and x.dtype == torch.int64
    assert torch.equal(x[:, 1:], y[:, :-1])  # targets are inputs shifted by one
    assert torch.equal(y - x, torch.ones_like(x))  # consecutive windows of the stream
    x2, _ = get_batch(tokens, 4, 16, torch.Generator().manual_seed(0))
    assert torch.equal(x, x2)
    x3, _ = get_batch(tokens, 4, 16, torch.Generator().manual_seed(1))
    assert not torch.equal(x, x3)
    with pytest.raises(ValueError, match="fewer than block_size"):
        get_batch(tokens[:10], 2, 16, g)
    with pytest.raises(TypeError, match="generator"):
        get_batch(tokens, 2, 4, 0)


def test_random_windows_state_resumes_the_stream():
    tokens = np.arange(500, dtype=np.uint16)
    a = RandomWindows(tokens, 3, 8, seed=5)
    for _ in range(3):
        a.next_batch()
    state = a.state_dict()
    expected = [a.next_batch()[0] for _ in range(3)]
    b = RandomWindows(tokens, 3, 8, seed=999)
    b.load_state_dict(state)
    got = [b.next_batch()[0] for _ in range(3)]
    assert all(torch.equal(e, g) for e, g in zip(expected, got, strict=True))
    assert b.batches_drawn == 6
    buf = __import__("io").BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    assert torch.equal(torch.load(buf, weights_only=True)["generator"], state["generator"])
