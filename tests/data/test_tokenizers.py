"""Character, byte-pair and GPT-2 tokenizers: round trips, compression, save/load, errors."""

from __future__ import annotations

import sys
import types

import pytest

from mosaics_edu.data import (
    BPETokenizer,
    CharTokenizer,
    GPT2Tokenizer,
    load_tokenizer,
    make_tokenizer,
    story_corpus,
)

TEXT = 'Once, Brelo saw a "red" kite.\nBrelo smiled!  12 apples_x\n\n'


@pytest.fixture(scope="module")
def corpus() -> str:
    return story_corpus(n_train=300, n_valid=10, seed=0)["train"]


def test_char_round_trip_and_errors(tmp_path):
    tok = CharTokenizer.train(TEXT)
    assert tok.vocab_size == len(set(TEXT))
    assert tok.decode(tok.encode(TEXT)) == TEXT
    with pytest.raises(ValueError, match="'Z' is not in this tokenizer"):
        tok.encode("Z")
    with pytest.raises(ValueError, match="ids must be ints"):
        tok.decode([tok.vocab_size])
    tok.save(tmp_path / "t.json")
    assert load_tokenizer(tmp_path / "t.json").encode(TEXT) == tok.encode(TEXT)


def test_bpe_round_trip_any_text(corpus, tmp_path):
    tok = BPETokenizer.train(corpus, vocab_size=400)
    assert tok.vocab_size == 400
    for text in (TEXT, corpus[:5000], "héllo wörld ☃ tabs\tand\r\nnewlines", ""):
        assert tok.decode(tok.encode(text)) == text
    tok.save(tmp_path / "b.json")
    again = load_tokenizer(tmp_path / "b.json")
    assert again.encode(corpus[:2000]) == tok.encode(corpus[:2000])


def test_bpe_compresses_and_is_deterministic(corpus):
    tok = BPETokenizer.train(corpus, vocab_size=512)
    n_bytes = len(corpus.encode("utf-8"))
    n_tokens = len(tok.encode(corpus))
    assert n_bytes / n_tokens > 2.0, f"only {n_bytes / n_tokens:.2f} bytes per token"
    bigger = BPETokenizer.train(corpus, vocab_size=1024)
    assert len(bigger.encode(corpus)) < n_tokens  # more merges, fewer tokens
    assert BPETokenizer.train(corpus, vocab_size=512).merges == tok.merges
    # the first merges are frequent pairs of this corpus
    learned = {tok.token_bytes(i) for i in range(256, 300)}
    assert b"he" in learned or b" t" in learned


def test_bpe_stops_when_nothing_repeats():
    tok = BPETokenizer.train("abcd", vocab_size=1000)
    assert tok.vocab_size == 256  # no pair occurs twice


def test_bpe_validation():
    with pytest.raises(ValueError, match="vocab_size"):
        BPETokenizer.train("aa", vocab_size=10)
    with pytest.raises(ValueError, match="merge 0"):
        BPETokenizer([(300, 1)])
    with pytest.raises(TypeError, match="text must be a str"):
        BPETokenizer.train(b"bytes")


def test_make_and_load_errors(tmp_path):
    with pytest.raises(ValueError, match="kind must be one of"):
        make_tokenizer("word", "x")
    with pytest.raises(ValueError, match="pass text="):
        make_tokenizer("char")
    with pytest.raises(ValueError, match="unknown tokenizer kind"):
        load_tokenizer({"kind": "nope"})
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_tokenizer(tmp_path / "bad.json")


def test_gpt2_clear_error_when_tiktoken_cannot_load(monkeypatch):
    fake = types.ModuleType("tiktoken")

    def get_encoding(name):
        raise ConnectionError("no network")

    fake.get_encoding = get_encoding
    monkeypatch.setitem(sys.modules, "tiktoken", fake)
    with pytest.raises(RuntimeError, match="could not load the 'gpt2' encoding.*'char' or 'bpe'"):
        GPT2Tokenizer()
    monkeypatch.setitem(sys.modules, "tiktoken", None)  # not installed
    with pytest.raises(ImportError, match="pip install tiktoken"):
        GPT2Tokenizer()


def test_gpt2_round_trip_when_available():
    try:
        tok = GPT2Tokenizer()
    except (ImportError, RuntimeError) as err:
        pytest.skip(f"GPT-2 tokenizer not loadable here: {str(err)[:80]}")
    assert tok.vocab_size == 50257 and tok.eot_id == 50256
    assert tok.decode(tok.encode(TEXT)) == TEXT
    assert load_tokenizer(tok.to_dict()).encode(TEXT) == tok.encode(TEXT)
