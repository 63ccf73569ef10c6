"""Tokenizers: text <-> integer ids, with one small interface.

Three kinds, all with ``encode(text) -> list[int]``, ``decode(ids) -> str``, ``vocab_size``,
``to_dict()`` / ``save(path)`` and ``load_tokenizer(path_or_dict)``:

- ``CharTokenizer``: one id per distinct character of the training text. The CPU default: tiny
  vocabulary, so a tiny model spends its parameters on the mosaic, not on the embedding table.
- ``BPETokenizer``: byte-pair encoding trained here, on the corpus. Starts from the 256 byte
  values (so any text can be encoded) and repeatedly merges the most frequent adjacent pair
  inside a word. Fewer tokens per story than characters: a window of the same length sees more
  of the story.
- ``GPT2Tokenizer``: GPT-2's 50,257-token BPE through ``tiktoken`` — what the papers use on
  BabiStories. ``tiktoken`` downloads the vocabulary once and caches it; offline without a
  cache it cannot load, and we say so.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

__all__ = [
    "Tokenizer",
    "CharTokenizer",
    "BPETokenizer",
    "GPT2Tokenizer",
    "load_tokenizer",
    "make_tokenizer",
]

# A word = optional leading space + a run of letters, or of digits, or of other symbols;
# whitespace runs stay separate. Merges never cross these boundaries (as in GPT-2's tokenizer).
_PRETOKEN_RE = re.compile(r" ?[^\W\d_]+| ?\d+| ?[^\s\w]+| ?_+|\s+(?!\S)|\s+")


class Tokenizer:
    """The common interface. Subclasses set ``kind`` and implement the four methods."""

    kind: str = "base"
    eot_id: int | None = None  # a dedicated end-of-text id, if the vocabulary has one

    @property
    def vocab_size(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def encode(self, text: str) -> list[int]:  # pragma: no cover - abstract
        raise NotImplementedError

    def decode(self, ids: Any) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def to_dict(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def save(self, path: str | os.PathLike) -> None:
        """Write ``to_dict()`` as JSON (reload with ``load_tokenizer(path)``)."""
        Path(path).write_text(json.dumps(self.to_dict()), encoding="utf-8")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"


def _check_text(text: Any) -> str:
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return text


def _as_id_list(ids: Any, vocab_size: int) -> list[int]:
    if hasattr(ids, "tolist"):  # torch tensor or numpy array
        ids = ids.tolist()
    ids = list(ids)
    for i in ids:
        if not isinstance(i, int) or not 0 <= i < vocab_size:
            raise ValueError(f"ids must be ints in [0, {vocab_size}), found {i!r}")
    return ids


class CharTokenizer(Tokenizer):
    """One id per character; ids follow the sorted order of the characters."""

    kind = "char"

    def __init__(self, chars: list[str] | str):
        chars = list(chars)
        if not chars:
            raise ValueError("chars is empty: train the tokenizer on a non-empty text")
        if any(not isinstance(ch, str) or len(ch) != 1 for ch in chars):
            raise ValueError("chars must be single characters")
        if len(set(chars)) != len(chars):
            raise ValueError("chars must be distinct")
        self.chars = chars
        self._index = {ch: i for i, ch in enumerate(chars)}

    @classmethod
    def train(cls, text: str) -> CharTokenizer:
        """The vocabulary = the sorted distinct characters of ``text``."""
        text = _check_text(text)
        if not text:
            raise ValueError("text is empty: a character vocabulary needs some text")
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        text = _check_text(text)
        try:
            return [self._index[ch] for ch in text]
        except KeyError as err:
            raise ValueError(
                f"character {err.args[0]!r} is not in this tokenizer's vocabulary of "
                f"{self.vocab_size} characters: train it on a text that contains it"
            ) from None

    def decode(self, ids: Any) -> str:
        return "".join(self.chars[i] for i in _as_id_list(ids, self.vocab_size))

    def to_dict(self) -> dict:
        return {"kind": self.kind, "chars": self.chars}


class BPETokenizer(Tokenizer):
    """Byte-level byte-pair encoding, trained on a corpus by ``BPETokenizer.train``.

    Id ``b < 256`` is the byte ``b``; id ``256 + r`` is the token made by merge number ``r``.
    Encoding a word applies the merges in the order they were learned (lowest rank first).
    """

    kind = "bpe"

    def __init__(self, merges: list[tuple[int, int]] | list[list[int]]):
        self.merges: list[tuple[int, int]] = []
        for r, pair in enumerate(merges):
            if len(pair) != 2 or any(
                not isinstance(t, int) or not 0 <= t < 256 + r for t in pair
            ):
                raise ValueError(
                    f"merge {r} = {pair!r} must be two ids below {256 + r} (earlier tokens)"
                )
            self.merges.append((int(pair[0]), int(pair[1])))
        self._rank = {pair: r for r, pair in enumerate(self.merges)}
        self._bytes: list[bytes] = [bytes([b]) for b in range(256)]
        for a, b in self.merges:
            self._bytes.append(self._bytes[a] + self._bytes[b])
        self._cache: dict[str, list[int]] = {}

    @classmethod
    def train(cls, text: str, vocab_size: int = 1024, min_count: int = 2) -> BPETokenizer:
        """Learn ``vocab_size - 256`` merges from ``text``.

        Counts words once, then keeps pair counts up to date incrementally: each merge only
        touches the words that contain the merged pair, so ~1 MB trains in seconds.
        Stops early when no pair occurs at least ``min_count`` times.
        """
        text = _check_text(text)
        if not isinstance(vocab_size, int) or not 256 <= vocab_size <= 65_536:
            raise ValueError(f"vocab_size must be an int in [256, 65536], got {vocab_size!r}")
        if not text:
            raise ValueError("text is empty: BPE needs a corpus to learn merges from")
        word_counts = Counter(_PRETOKEN_RE.findall(text))
        words = [list(w.encode("utf-8")) for w in word_counts]
        freqs = list(word_counts.values())
        pair_counts: Counter = Counter()
        where: dict[tuple[int, int], set[int]] = {}
        for wi, (w, f) in enumerate(zip(words, freqs, strict=True)):
            for pair in zip(w, w[1:], strict=False):
                pair_counts[pair] += f
                where.setdefault(pair, set()).add(wi)
        merges: list[tuple[int, int]] = []
        while len(merges) < vocab_size - 256 and pair_counts:
            # most frequent pair; ties broken by the smaller pair, so training is deterministic
            best = max(pair_counts.items(), key=lambda kv: (kv[1], -kv[0][0], -kv[0][1]))
            pair, count = best
            if count < min_count:
                break
            new_id = 256 + len(merges)
            merges.append(pair)
            for wi in list(where.get(pair, ())):
                w, f = words[wi], freqs[wi]
                for old in zip(w, w[1:], strict=False):  # remove this word's old pairs
                    pair_counts[old] -= f
                    if pair_counts[old] <= 0:
                        del pair_counts[old]
                merged, i = [], 0
                while i < len(w):
                    if i + 1 < len(w) and (w[i], w[i + 1]) == pair:
                        merged.append(new_id)
                        i += 2
                    else:
                        merged.append(w[i])
                        i += 1
                words[wi] = merged
                for new in zip(merged, merged[1:], strict=False):  # add its new pairs
                    pair_counts[new] += f
                    where.setdefault(new, set()).add(wi)
            where.pop(pair, None)
            pair_counts.pop(pair, None)
        return cls(merges)

    @property
    def vocab_size(self) -> int:
        return 256 + len(self.merges)

    def _encode_word(self, word: str) -> list[int]:
        ids = self._cache.get(word)
        if ids is not None:
            return ids
        ids = list(word.encode("utf-8"))
        while len(ids) > 1:
            ranked = [
                (self._rank.get(pair, len(self._rank)), i)
                for i, pair in enumerate(zip(ids, ids[1:], strict=False))
            ]
            rank, i = min(ranked)
            if rank == len(self._rank):  # no learned merge applies any more
                break
            ids = ids[:i] + [256 + rank] + ids[i + 2 :]
        if len(self._cache) < 200_000:
            self._cache[word] = ids
        return ids

    def encode(self, text: str) -> list[int]:
        text = _check_text(text)
        out: list[int] = []
        for word in _PRETOKEN_RE.findall(text):
            out.extend(self._encode_word(word))
        return out

    def decode(self, ids: Any) -> str:
        data = b"".join(self._bytes[i] for i in _as_id_list(ids, self.vocab_size))
        return data.decode("utf-8", errors="replace")

    def token_bytes(self, i: int) -> bytes:
        """The bytes that token ``i`` stands for (to look at what BPE learned)."""
        return self._bytes[_as_id_list([i], self.vocab_size)[0]]

    def to_dict(self) -> dict:
        return {"kind": self.kind, "merges": [list(p) for p in self.merges]}


class GPT2Tokenizer(Tokenizer):
    """GPT-2's tokenizer through ``tiktoken`` (``pip install tiktoken``); needs its vocabulary
    files, which tiktoken downloads once and caches (``TIKTOKEN_CACHE_DIR``)."""

    kind = "gpt2"
    eot_id = 50256

    def __init__(self) -> None:
        try:
            import tiktoken
        except ImportError:
            raise ImportError(
                "the GPT-2 tokenizer needs the tiktoken package: pip install tiktoken "
                "(or use the 'char' or 'bpe' tokenizer, which need nothing)"
            ) from None
        try:
            self._enc = tiktoken.get_encoding("gpt2")
        except Exception as err:  # network errors come in many types
            raise RuntimeError(
                "tiktoken could not load the 'gpt2' encoding "
                f"({type(err).__name__}: {str(err)[:200]}). It downloads two vocabulary files "
                "once and caches them: run once with network access (or copy a filled "
                "TIKTOKEN_CACHE_DIR from another machine), or use the 'char' or 'bpe' tokenizer."
            ) from None

    @property
    def vocab_size(self) -> int:
        return int(self._enc.n_vocab)

    def encode(self, text: str) -> list[int]:
        return self._enc.encode_ordinary(_check_text(text))

    def decode(self, ids: Any) -> str:
        return self._enc.decode(_as_id_list(ids, self.vocab_size))

    def to_dict(self) -> dict:
        return {"kind": self.kind}


def load_tokenizer(source: str | os.PathLike | dict) -> Tokenizer:
    """Rebuild a tokenizer from ``to_dict()`` output or from a file written by ``save``."""
    if isinstance(source, dict):
        d = source
    else:
        path = Path(source)
        if not path.is_file():
            raise ValueError(f"no tokenizer file at {path}: pass a path written by .save()")
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"tokenizer file {path} is not valid JSON ({err})") from None
    kind = d.get("kind") if isinstance(d, dict) else None
    if kind == "char":
        return CharTokenizer(d["chars"])
    if kind == "bpe":
        return BPETokenizer([tuple(p) for p in d["merges"]])
    if kind == "gpt2":
        return GPT2Tokenizer()
    raise ValueError(f"unknown tokenizer kind {kind!r}: expected 'char', 'bpe' or 'gpt2'")


TOKENIZER_KINDS = ("char", "bpe", "gpt2")


def make_tokenizer(kind: str, text: str | None = None, vocab_size: int = 1024) -> Tokenizer:
    """A tokenizer by name; ``char`` and ``bpe`` are trained on ``text``."""
    if kind not in TOKENIZER_KINDS:
        raise ValueError(f"kind must be one of {TOKENIZER_KINDS}, got {kind!r}")
    if kind == "gpt2":
        return GPT2Tokenizer()
    if text is None:
        raise ValueError(f"a {kind!r} tokenizer is trained on a corpus: pass text=")
    if kind == "char":
        return CharTokenizer.train(text)
    return BPETokenizer.train(text, vocab_size=vocab_size)
