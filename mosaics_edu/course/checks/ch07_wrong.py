"""What chapter 07's known mistakes compute: each is a function with the learner's signature.

The tables of :mod:`mosaics_edu.course.checks.ch07` name them: the reference rows of a sample computed
from the wrong state (exercise 7.2), and the in-context bigram (7.4) and its memory unit (7.5)
with one mistake switched on (every switch at its default: the right answer).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from ..regbench import Sample, reference_distribution
from ..regbench.vocab import SEP, VOCAB_SIZE

__all__ = ["bigram_variant", "late_reset", "memory_variant", "no_reset", "one_hot_next", "one_row_too_many",
           "sep_at_end", "shifted", "unnormalised", "whole_alphabet"]


# the reference rows from the wrong state (exercise 7.2)


def _rows_from_states(sample: Sample, states: list[int], rows: int) -> np.ndarray:
    ref = np.zeros((rows, VOCAB_SIZE))
    for t in range(rows):
        syms = list(sample.automaton.out_symbols(states[t]))
        ref[t, syms] = 1.0 / len(syms)
    return ref


def _states_after(sample: Sample) -> list[int]:
    """The state after each token (a separator resets to 0)."""
    out, state = [], 0
    for tok in sample.tokens:
        state = 0 if tok == SEP else sample.automaton.step(state, tok)
        out.append(state)
    return out


def shifted(sample: Sample) -> np.ndarray:  # row t from the state *before* token t
    return _rows_from_states(sample, [0, *_states_after(sample)[:-1]], len(sample.tokens) - 1)


def one_row_too_many(sample: Sample) -> np.ndarray:
    return _rows_from_states(sample, _states_after(sample), len(sample.tokens))


def sep_at_end(sample: Sample) -> np.ndarray:
    ref = reference_distribution(sample)
    for t in range(len(ref)):
        if sample.tokens[t + 1] == SEP:
            ref[t] = 0.0
            ref[t, SEP] = 1.0
    return ref


def whole_alphabet(sample: Sample) -> np.ndarray:
    ref = np.zeros((len(sample.tokens) - 1, VOCAB_SIZE))
    ref[:, list(sample.automaton.alphabet)] = 1.0 / len(sample.automaton.alphabet)
    return ref


def one_hot_next(sample: Sample) -> np.ndarray:
    ref = np.zeros((len(sample.tokens) - 1, VOCAB_SIZE))
    ref[np.arange(len(ref)), list(sample.tokens[1:])] = 1.0
    return ref


def unnormalised(sample: Sample) -> np.ndarray:
    return (reference_distribution(sample) > 0).astype(float)


def no_reset(sample: Sample) -> np.ndarray:  # '|' skipped: the state of the last string carries on
    out, state = [], 0
    for tok in sample.tokens:
        state = state if tok == SEP else sample.automaton.step(state, tok)
        out.append(state)
    return _rows_from_states(sample, out, len(sample.tokens) - 1)


def late_reset(sample: Sample) -> np.ndarray:  # the reset comes one token late
    out, state, pending = [], 0, False
    for tok in sample.tokens:
        if pending:
            state, pending = 0, False
        if tok == SEP:
            pending = True
        else:
            state = sample.automaton.step(state, tok)
        out.append(state)
    return _rows_from_states(sample, out, len(sample.tokens) - 1)



# the in-context bigram (exercise 7.4)

_START = 0  # the start-of-string context (the pad id, never a content symbol)


def bigram_variant(tokens, *, reset=True, start=True, backoff=True, lag=False, count_sep=False,
                    smooth=0.0):
    """The in-context bigram with one mistake switched on (all flags at their defaults: correct)."""
    pairs: dict[int, Counter[int]] = {}
    unigram: Counter[int] = Counter()
    prev = _START
    out = np.zeros((len(tokens), VOCAB_SIZE))
    pending: list[tuple[int, int]] = []
    for t, tok in enumerate(int(x) for x in tokens):
        if tok == SEP and not count_sep:
            if reset:
                prev = _START if start else -1
            out[t] = _predict(pairs, unigram, prev, backoff, smooth)
            continue
        pending.append((prev, tok))
        if not lag:  # count the pair read at t before predicting t + 1
            for p, a in pending:
                pairs.setdefault(p, Counter())[a] += 1
                unigram[a] += 1
            pending = []
        prev = tok if (tok != SEP or not reset) else (_START if start else -1)
        out[t] = _predict(pairs, unigram, prev, backoff, smooth)
        if lag:
            for p, a in pending:
                pairs.setdefault(p, Counter())[a] += 1
                unigram[a] += 1
            pending = []
    return out


def _predict(pairs, unigram, prev, backoff, smooth=0.0) -> np.ndarray:
    row = np.zeros(VOCAB_SIZE)
    seen = pairs.get(prev)
    counts = seen if seen else (unigram if backoff else None)
    if not counts:
        row[1:SEP] = 1.0 / (SEP - 1)  # nothing read yet: uniform over the 18 symbols
        return row
    for a, c in counts.items():
        row[a] = c
    row[1:SEP] += smooth  # add-one smoothing, when it is the mistake
    return row / row.sum()



# the bigram as one memory unit (exercise 7.5)


def memory_variant(symbols, vocab, beta, *, peek=False, late=False, value_now=False, shift=True,
                    counted=False, hard=False, empty_zero=False, unseen_uniform=False):
    """The memory unit with one mistake switched on (all flags at their defaults: correct)."""
    x = [int(a) for a in symbols]
    T, out = len(x), np.zeros((len(symbols), vocab))
    for t in range(T):
        last = t + 1 if peek else (t - 1 if late else t)  # the pairs s < last are read
        pairs = list(range(max(0, min(last, T - 1))))  # pair s needs a next symbol x[s + 1]
        match = np.array([x[s] == x[t] for s in pairs], dtype=bool)
        if not pairs or (unseen_uniform and not match.any()):
            out[t] = 0.0 if empty_zero else 1.0 / vocab
            continue
        values = np.eye(vocab)[[x[s] if value_now else x[s + 1] for s in pairs]]  # (S, vocab)
        if counted:  # the number of times each symbol followed x_t: no softmax, no division
            out[t] = values[match].sum(axis=0)
            continue
        scores = beta * match.astype(np.float64)
        if hard:  # counting: all the weight on the matches when there is one, whatever β
            scores = np.where(match, 0.0, -np.inf) if match.any() else np.zeros(len(pairs))
        w = np.exp(scores - scores.max()) if shift else np.exp(scores)
        out[t] = (w / w.sum()) @ values
    return out
