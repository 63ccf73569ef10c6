"""Samples, the fixed held-out sets, the training sets and the batches of RegBench-mini.

A *sample* (one "problem instance") is several strings from one automaton joined by ``|``:
``string | string | … | string``, no leading or trailing separator. The model must infer the
language from the strings it has read so far. The benchmark's sizes (10–19 strings of 1–49
symbols, ≈ 374 tokens) are too long for a 2-core CPU; RegBench-mini keeps the automata exactly
and shrinks the samples to :data:`CPU_SIZES` = 5–10 strings of 1–20 symbols (≈ 86 tokens,
at most 209).

Splits, all drawn once from fixed seeds and compared by canonical form (see :mod:`.automata`):

- :func:`test_automata`: 500 distinct automata, the same for every training size N;
- :func:`validation_automata`: 200 distinct automata, none in the test set (checkpoint choice);
- :func:`training_automata`: N distinct automata, none in the test or validation set. The
  training sets are *nested*: the first 100 of N = 500 are the N = 100 set (one stream per seed).

Each automaton gets one fixed sample (:func:`draw_samples`), replayed every epoch as in the
original. :func:`make_batch` turns samples into ``(x, y)`` with ``y = -1`` (ignored by the
package's models) at separator targets and at padding.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .automata import Automaton, random_automaton
from .vocab import PAD, SEP, VOCAB_SIZE, decode

__all__ = [
    "SampleSizes",
    "CPU_SIZES",
    "PAPER_SIZES",
    "Sample",
    "draw_sample",
    "draw_samples",
    "test_automata",
    "validation_automata",
    "training_automata",
    "training_set",
    "make_batch",
    "IGNORE_INDEX",
    "N_TEST",
    "N_VALIDATION",
    "TRAINING_SIZES",
]

IGNORE_INDEX = -1  # the target value the package's models ignore in their cross-entropy
N_TEST, N_VALIDATION = 500, 200
TRAINING_SIZES = (100, 500, 2500, 10000)  # N, the number of distinct training automata
# one random stream per purpose: np.random.default_rng((purpose, seed))
_TRAIN, _TEST, _VALIDATION, _TRAIN_SAMPLES, _EVAL_SAMPLES = 0, 1, 2, 3, 4
_HELD_OUT_SEED = 0


def _check_int(name: str, value: Any, lo: int) -> int:
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class SampleSizes:
    """How many strings per sample and how long each is (both ranges inclusive, uniform)."""

    min_strings: int = 5
    max_strings: int = 10
    min_length: int = 1
    max_length: int = 20

    def __post_init__(self) -> None:
        for name in ("min_strings", "max_strings", "min_length", "max_length"):
            _check_int(name, getattr(self, name), 1)
        if self.min_strings > self.max_strings or self.min_length > self.max_length:
            raise ValueError(f"need min_strings <= max_strings and min_length <= max_length, got {self}")
        if self.min_strings * (self.min_length + 1) - 1 < 2:
            raise ValueError(
                "the shortest sample must have 2 tokens (an input and a target): raise "
                "min_strings or min_length above 1"
            )

    @property
    def max_tokens(self) -> int:
        """The longest possible sample: every string at max_length, separators between them."""
        return self.max_strings * self.max_length + self.max_strings - 1


CPU_SIZES = SampleSizes(5, 10, 1, 20)  # RegBench-mini (regbench.md §4): ≈ 86 tokens per sample
PAPER_SIZES = SampleSizes(10, 19, 1, 49)  # the benchmark's own sizes: ≈ 374 tokens per sample


@dataclass(frozen=True)
class Sample:
    """One problem instance: ``tokens`` (ids, strings joined by ``SEP``) drawn from ``automaton``."""

    automaton: Automaton
    tokens: tuple[int, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.automaton, Automaton):
            raise TypeError(f"automaton must be an Automaton, got {type(self.automaton).__name__}")
        tokens = tuple(int(t) for t in self.tokens)
        if len(tokens) < 2:
            raise ValueError(f"a sample needs at least 2 tokens (one input, one target), got {len(tokens)}")
        if any(not 0 <= t < VOCAB_SIZE for t in tokens) or PAD in tokens:
            raise ValueError("sample tokens must be symbol ids 1..18 or the separator 19 (no pad 0)")
        if tokens[0] == SEP or tokens[-1] == SEP:
            raise ValueError("a sample neither starts nor ends with the separator '|'")
        strings = decode(tokens).split("|")
        if "" in strings:
            raise ValueError("a sample has an empty string (two separators in a row)")
        object.__setattr__(self, "tokens", tokens)

    @property
    def strings(self) -> list[str]:
        return decode(self.tokens).split("|")

    def __str__(self) -> str:
        return decode(self.tokens)


def draw_sample(automaton: Automaton, rng: np.random.Generator, sizes: SampleSizes = CPU_SIZES) -> Sample:
    """One sample: k strings (k uniform in the sizes' range), each a random walk of random length."""
    if not isinstance(automaton, Automaton):
        raise TypeError(f"automaton must be an Automaton, got {type(automaton).__name__}")
    if not isinstance(sizes, SampleSizes):
        raise TypeError(f"sizes must be a SampleSizes (e.g. CPU_SIZES), got {type(sizes).__name__}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy Generator (np.random.default_rng(seed)), got {type(rng).__name__}"
        )
    k = int(rng.integers(sizes.min_strings, sizes.max_strings + 1))
    lengths = rng.integers(sizes.min_length, sizes.max_length + 1, size=k)
    tokens: list[int] = []
    for i, length in enumerate(lengths):
        if i:
            tokens.append(SEP)
        tokens.extend(automaton.sample_string(int(length), rng))
    return Sample(automaton, tuple(tokens))


def draw_samples(
    automata: Sequence[Automaton], seed: int = 0, sizes: SampleSizes = CPU_SIZES
) -> list[Sample]:
    """One sample per automaton, drawn in order from the *evaluation* stream of ``seed`` (so a
    prefix of ``automata`` gets the same samples as the whole list does). This is how
    :func:`~mosaics_edu.course.regbench.metrics.evaluate` turns automata into samples."""
    automata = _check_automata(automata)
    rng = np.random.default_rng((_EVAL_SAMPLES, _check_int("seed", seed, 0)))
    return [draw_sample(a, rng, sizes) for a in automata]


def training_set(n: int, seed: int = 0, sizes: SampleSizes = CPU_SIZES) -> list[Sample]:
    """The training data for N = ``n``: :func:`training_automata`, one fixed sample each (drawn
    from the training-sample stream of ``seed``; nested like the automata)."""
    automata = training_automata(n, seed)
    rng = np.random.default_rng((_TRAIN_SAMPLES, seed))
    return [draw_sample(a, rng, sizes) for a in automata]


def _check_automata(automata: Any) -> list[Automaton]:
    if not isinstance(automata, Sequence) or isinstance(automata, str | bytes):
        raise TypeError("automata must be a list of Automaton (e.g. test_automata(), or load_automata(path))")
    for i, a in enumerate(automata):
        if not isinstance(a, Automaton):
            raise TypeError(f"automata[{i}] must be an Automaton, got {type(a).__name__}")
    return list(automata)


def _distinct_automata(rng: np.random.Generator, n: int, exclude: frozenset[Automaton]) -> list[Automaton]:
    """``n`` automata with distinct canonical forms, none in ``exclude`` (canonical forms)."""
    out: list[Automaton] = []
    seen = set(exclude)
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 20 * n + 1000:  # the space is huge: this would mean a broken generator
            raise RuntimeError(f"drew {tries} automata but found only {len(out)} new ones out of {n}")
        a = random_automaton(rng)  # already minimal, numbered breadth-first: canonical
        if a not in seen:
            seen.add(a)
            out.append(a)
    return out


@functools.lru_cache(maxsize=1)
def _held_out() -> tuple[tuple[Automaton, ...], tuple[Automaton, ...]]:
    test = _distinct_automata(np.random.default_rng((_TEST, _HELD_OUT_SEED)), N_TEST, frozenset())
    val = _distinct_automata(
        np.random.default_rng((_VALIDATION, _HELD_OUT_SEED)), N_VALIDATION, frozenset(test)
    )
    return tuple(test), tuple(val)


def test_automata() -> list[Automaton]:
    """The fixed test set: 500 distinct automata (canonical forms), the same for every N."""
    return list(_held_out()[0])


def validation_automata() -> list[Automaton]:
    """The fixed validation set: 200 distinct automata, disjoint from the test set."""
    return list(_held_out()[1])


test_automata.__test__ = False  # type: ignore[attr-defined]  # not a pytest test function


def training_automata(n: int, seed: int = 0) -> list[Automaton]:
    """``n`` distinct training automata, none with the language of a test or validation automaton.

    The first ``m`` automata of ``training_automata(n, seed)`` are ``training_automata(m, seed)``
    for every m <= n, so the training sets of a sweep over N are nested.
    """
    n = _check_int("n", n, 1)
    seed = _check_int("seed", seed, 0)
    test, val = _held_out()
    return _distinct_automata(np.random.default_rng((_TRAIN, seed)), n, frozenset(test) | frozenset(val))


def make_batch(
    samples: Sequence[Sample], length: int | None = None, device: torch.device | str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Samples -> inputs ``x`` and targets ``y``, both (B, T) int64.

    ``x = tokens[:-1]``, ``y = tokens[1:]``; targets equal to the separator are set to
    ``IGNORE_INDEX`` (-1): the model sees ``|`` but is never trained to predict it (the reference
    distribution ignores where strings end). Rows are right-padded to ``length`` (default: the
    longest row) with ``PAD`` in ``x`` and ``-1`` in ``y``.
    """
    if not isinstance(samples, Sequence) or len(samples) == 0:
        raise ValueError("samples must be a non-empty list of Sample (see draw_samples)")
    for i, s in enumerate(samples):
        if not isinstance(s, Sample):
            raise TypeError(f"samples[{i}] must be a Sample, got {type(s).__name__}")
    longest = max(len(s.tokens) - 1 for s in samples)
    if length is None:
        length = longest
    elif _check_int("length", length, 1) < longest:
        raise ValueError(f"length={length} is shorter than the longest sample ({longest} inputs): raise it")
    x = torch.full((len(samples), length), PAD, dtype=torch.long)  # (B, T)
    y = torch.full((len(samples), length), IGNORE_INDEX, dtype=torch.long)  # (B, T)
    for i, s in enumerate(samples):
        tok = torch.tensor(s.tokens, dtype=torch.long)  # (L,)
        x[i, : len(tok) - 1] = tok[:-1]
        y[i, : len(tok) - 1] = tok[1:].masked_fill(tok[1:] == SEP, IGNORE_INDEX)
    return x.to(device), y.to(device)
