"""The chapter 06 checks pass correct answers (several ways of writing them) and name the mistakes."""

from __future__ import annotations

import numpy as np
import pytest

from mosaics_edu.checks import CheckFailed, ch06
from mosaics_edu.regbench import SEP, reference_distribution
from mosaics_edu.regbench.vocab import VOCAB_SIZE


def _raises(check, fn, *fragments):
    with pytest.raises(CheckFailed) as err:
        check(fn)
    for f in fragments:
        assert f in str(err.value), str(err.value)


# ---- 6.1 sampling ----------------------------------------------------------------------------


def sample_with_integers(automaton, length, rng):
    out, state = [], 0
    for _ in range(length):
        syms = automaton.out_symbols(state)
        a = syms[int(rng.integers(len(syms)))]
        out.append(a)
        state = automaton.step(state, a)
    return out


def sample_with_choice(automaton, length, rng):
    out, state = [], 0
    for _ in range(length):
        a = int(rng.choice(automaton.out_symbols(state)))
        out.append(a)
        state = automaton.step(state, a)
    return np.array(out)  # an array is accepted too


def test_sampling_correct_variants_pass(capsys):
    ch06.check_sample_string(sample_with_integers)
    ch06.check_sample_string(sample_with_choice)
    ch06.check_sample_string(lambda a, n, rng: a.sample_string(n, rng))
    assert "passed" in capsys.readouterr().out


def test_sampling_mistakes():
    def no_step(automaton, length, rng):  # never leaves state 0
        syms = automaton.out_symbols(0)
        return [syms[int(rng.integers(len(syms)))] for _ in range(length)]

    def off_by_one(automaton, length, rng):
        return sample_with_integers(automaton, length + 1, rng)

    def first_only(automaton, length, rng):  # deterministic walk: always the first symbol
        out, state = [], 0
        for _ in range(length):
            a = automaton.out_symbols(state)[0]
            out.append(a)
            state = automaton.step(state, a)
        return out

    def never_last(automaton, length, rng):  # rng.integers(k - 1): the last symbol is never drawn
        out, state = [], 0
        for _ in range(length):
            syms = automaton.out_symbols(state)
            a = syms[int(rng.integers(max(1, len(syms) - 1)))]
            out.append(a)
            state = automaton.step(state, a)
        return out

    def own_seed(automaton, length, rng):
        return sample_with_integers(automaton, length, np.random.default_rng(0))

    def global_random(automaton, length, rng):
        return sample_with_integers(automaton, length, np.random.default_rng())

    def stub(automaton, length, rng):
        raise NotImplementedError()

    _raises(ch06.check_sample_string, no_step, "cannot be read", "automaton.step")
    _raises(ch06.check_sample_string, off_by_one, "asked for length=1", "off-by-one")
    _raises(ch06.check_sample_string, first_only, "ignores its argument `rng`")
    _raises(ch06.check_sample_string, never_last, "equally likely")
    _raises(ch06.check_sample_string, own_seed, "ignores its argument `rng`")
    _raises(ch06.check_sample_string, global_random, "same seed gave different strings")
    _raises(ch06.check_sample_string, stub, "not implemented")
    _raises(ch06.check_sample_string, lambda a, n, rng: "ab", "list of symbol ids")


# ---- 6.2 the reference distribution ----------------------------------------------------------


def reference_rows(sample):
    tokens = sample.tokens
    ref = np.zeros((len(tokens) - 1, VOCAB_SIZE))
    state = 0
    for t in range(len(tokens) - 1):
        state = 0 if tokens[t] == SEP else sample.automaton.step(state, tokens[t])
        syms = list(sample.automaton.out_symbols(state))
        ref[t, syms] = 1 / len(syms)
    return ref


def reference_rows_float32(sample):
    return reference_rows(sample).astype(np.float32)


def test_reference_correct_variants_pass(capsys):
    ch06.check_reference_rows(reference_rows)
    ch06.check_reference_rows(reference_rows_float32)
    ch06.check_reference_rows(reference_distribution)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("diagnosis", list(ch06.REFERENCE_MISTAKES))
def test_every_reference_mistake_is_diagnosed(diagnosis):
    _raises(ch06.check_reference_rows, ch06.REFERENCE_MISTAKES[diagnosis], diagnosis)


def test_reference_hand_written_mistakes():
    def no_reset(sample):  # keeps the state across '|': reading '|' has no transition -> crash
        tokens, state = sample.tokens, 0
        ref = np.zeros((len(tokens) - 1, VOCAB_SIZE))
        for t in range(len(tokens) - 1):
            state = sample.automaton.step(state, tokens[t])
            ref[t, list(sample.automaton.out_symbols(state))] = 1
        return ref

    def in_place_float16(sample):
        return reference_rows(sample).astype(np.float16)

    _raises(ch06.check_reference_rows, no_reset, "your function raised")
    _raises(ch06.check_reference_rows, in_place_float16, "float16")


# ---- 6.3 accuracy and TVD --------------------------------------------------------------------


def accuracy_and_tvd(probs, reference):
    valid = reference[np.arange(len(probs)), probs.argmax(axis=1)] > 0
    return float(valid.mean()), float(0.5 * np.abs(probs - reference).sum(axis=1).mean())


def accuracy_and_tvd_loop(probs, reference):
    hits = tvd = 0.0
    for p, r in zip(probs, reference, strict=True):
        hits += r[int(np.argmax(p))] > 0
        tvd += 0.5 * sum(abs(a - b) for a, b in zip(p, r, strict=True))
    return hits / len(probs), tvd / len(probs)


def test_scores_correct_variants_pass(capsys):
    ch06.check_accuracy_and_tvd(accuracy_and_tvd)
    ch06.check_accuracy_and_tvd(accuracy_and_tvd_loop)
    ch06.check_accuracy_and_tvd(lambda p, r: np.array(accuracy_and_tvd(p, r)))
    ch06.check_accuracy_and_tvd(ch06.reference_accuracy_and_tvd)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("diagnosis", list(ch06.SCORE_MISTAKES))
def test_every_score_mistake_is_diagnosed(diagnosis):
    _raises(ch06.check_accuracy_and_tvd, ch06.SCORE_MISTAKES[diagnosis], diagnosis)


def test_score_hand_written_mistakes():
    def in_place(probs, reference):
        probs -= reference  # changes the caller's array
        return 0.5, float(0.5 * np.abs(probs).sum(axis=1).mean())

    def float16(probs, reference):
        acc, tvd = accuracy_and_tvd(probs, reference)
        return np.float16(acc), np.float16(tvd)

    def sampled_token(probs, reference):  # "correct" = argmax is the first valid symbol only
        return float((probs.argmax(1) == (reference > 0).argmax(1)).mean()), accuracy_and_tvd(
            probs, reference
        )[1]

    _raises(ch06.check_accuracy_and_tvd, in_place, "in place")
    _raises(ch06.check_accuracy_and_tvd, float16, "float16")
    _raises(ch06.check_accuracy_and_tvd, sampled_token, "wrong on test case")
    _raises(ch06.check_accuracy_and_tvd, lambda p, r: None, "return")


# ---- 6.4 the in-context bigram ---------------------------------------------------------------


def bigram_next(tokens):
    follow, unigram = {}, {}
    prev, out = 0, np.zeros((len(tokens), VOCAB_SIZE))
    for t, tok in enumerate(tokens):
        if tok == SEP:
            prev = 0
        else:
            follow.setdefault(prev, {})
            follow[prev][tok] = follow[prev].get(tok, 0) + 1
            unigram[tok] = unigram.get(tok, 0) + 1
            prev = tok
        counts = follow.get(prev) or unigram
        total = sum(counts.values())
        for a, c in counts.items():
            out[t, a] = c / total
    return out


def bigram_next_matrix(tokens):  # counts in a (20, 20) matrix, context 0 = start of a string
    counts = np.zeros((VOCAB_SIZE, VOCAB_SIZE))
    prev, rows = 0, []
    for tok in tokens:
        if tok == SEP:
            prev = 0
        else:
            counts[prev, tok] += 1
            prev = tok
        row = counts[prev] if counts[prev].sum() else counts.sum(axis=0)
        rows.append(row / row.sum())
    return np.array(rows, dtype=np.float32)


def test_bigram_correct_variants_pass(capsys):
    ch06.check_bigram(bigram_next)
    ch06.check_bigram(bigram_next_matrix)
    ch06.check_bigram(ch06.reference_bigram)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("diagnosis", list(ch06.BIGRAM_MISTAKES))
def test_every_bigram_mistake_is_diagnosed(diagnosis):
    _raises(ch06.check_bigram, ch06.BIGRAM_MISTAKES[diagnosis], diagnosis)


def test_bigram_hand_written_mistakes():
    def in_place(tokens):
        tokens.append(SEP)  # changes the caller's list
        return bigram_next(tokens[:-1])

    def float16(tokens):
        return bigram_next(tokens).astype(np.float16)

    def stub(tokens):
        raise NotImplementedError()

    def shifted(tokens):  # row t predicts token t instead of token t + 1
        out = bigram_next(tokens)
        return np.vstack([np.full((1, VOCAB_SIZE), 0.0), out[:-1]])

    _raises(ch06.check_bigram, in_place, "in place")
    _raises(ch06.check_bigram, float16, "float16")
    _raises(ch06.check_bigram, stub, "not implemented")
    _raises(ch06.check_bigram, shifted, "wrong on test case 0")
