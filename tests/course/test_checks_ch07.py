"""The chapter 07 checks pass correct answers (several ways of writing them) and name the mistakes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from check_contract import table_tests

from mosaics_edu.course.checks import CheckFailed, ch07
from mosaics_edu.course.regbench import SEP, reference_distribution
from mosaics_edu.course.regbench.vocab import SYMBOLS, VOCAB_SIZE


def _raises(check, fn, *fragments):
    with pytest.raises(CheckFailed) as err:
        check(fn)
    for f in fragments:
        assert f in str(err.value), str(err.value)


# ---- 7.1 sampling ----------------------------------------------------------------------------


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
    ch07.check_sample_string(sample_with_integers)
    ch07.check_sample_string(sample_with_choice)
    ch07.check_sample_string(lambda a, n, rng: a.sample_string(n, rng))
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

    _raises(ch07.check_sample_string, no_step, "cannot be read", "automaton.step")
    _raises(ch07.check_sample_string, off_by_one, "asked for length=1", "off-by-one")
    _raises(ch07.check_sample_string, first_only, "ignores its argument `rng`")
    _raises(ch07.check_sample_string, never_last, "equally likely")
    _raises(ch07.check_sample_string, own_seed, "ignores its argument `rng`")
    _raises(ch07.check_sample_string, global_random, "same seed gave different strings")
    _raises(ch07.check_sample_string, stub, "not implemented")
    _raises(ch07.check_sample_string, lambda a, n, rng: "ab", "list of symbol ids")


# ---- 7.2 the reference distribution ----------------------------------------------------------


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
    ch07.check_reference_rows(reference_rows)
    ch07.check_reference_rows(reference_rows_float32)
    ch07.check_reference_rows(reference_distribution)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("diagnosis", list(ch07.REFERENCE_MISTAKES))
def test_every_reference_mistake_is_diagnosed(diagnosis):
    _raises(ch07.check_reference_rows, ch07.REFERENCE_MISTAKES[diagnosis], diagnosis)


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

    _raises(ch07.check_reference_rows, no_reset, "your function raised")
    _raises(ch07.check_reference_rows, in_place_float16, "float16")


# ---- 7.3 accuracy and TVD --------------------------------------------------------------------


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
    ch07.check_accuracy_and_tvd(accuracy_and_tvd)
    ch07.check_accuracy_and_tvd(accuracy_and_tvd_loop)
    ch07.check_accuracy_and_tvd(lambda p, r: np.array(accuracy_and_tvd(p, r)))
    ch07.check_accuracy_and_tvd(ch07.reference_accuracy_and_tvd)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("diagnosis", list(ch07.SCORE_MISTAKES))
def test_every_score_mistake_is_diagnosed(diagnosis):
    _raises(ch07.check_accuracy_and_tvd, ch07.SCORE_MISTAKES[diagnosis], diagnosis)


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

    _raises(ch07.check_accuracy_and_tvd, in_place, "in place")
    _raises(ch07.check_accuracy_and_tvd, float16, "float16")
    _raises(ch07.check_accuracy_and_tvd, sampled_token, "wrong on test case")
    _raises(ch07.check_accuracy_and_tvd, lambda p, r: None, "return")


# ---- 7.4 the in-context bigram ---------------------------------------------------------------


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
    ch07.check_bigram(bigram_next)
    ch07.check_bigram(bigram_next_matrix)
    ch07.check_bigram(ch07.reference_bigram)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("diagnosis", list(ch07.BIGRAM_MISTAKES))
def test_every_bigram_mistake_is_diagnosed(diagnosis):
    _raises(ch07.check_bigram, ch07.BIGRAM_MISTAKES[diagnosis], diagnosis)


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

    _raises(ch07.check_bigram, in_place, "in place")
    _raises(ch07.check_bigram, float16, "float16")
    _raises(ch07.check_bigram, stub, "not implemented")
    _raises(ch07.check_bigram, shifted, "wrong on test case 0")


# ---- tables: wrong answers (several in the regimes of the cases) and correct variants -----------


def _walk(automaton, length, rng, pick):
    out, state = [], 0
    for _ in range(length):
        syms = automaton.out_symbols(state)
        a = pick(syms, rng)
        out.append(int(a))
        state = automaton.step(state, a)
    return out


def s_one_too_short(automaton, length, rng):  # range(1, length)
    return _walk(automaton, length - 1, rng, lambda syms, r: syms[int(r.integers(len(syms)))])


def s_random_module(automaton, length, rng):  # np.random instead of the argument
    return _walk(automaton, length, rng, lambda syms, r: syms[np.random.randint(len(syms))])


def s_restart_each_symbol(automaton, length, rng):  # never moves on: stays in state 0
    syms = automaton.out_symbols(0)
    return [int(syms[int(rng.integers(len(syms)))]) for _ in range(length)]


def s_weighted_by_id(automaton, length, rng):  # larger ids more likely
    return _walk(automaton, length, rng,
                 lambda syms, r: r.choice(syms, p=np.array(syms, float) / sum(syms)))


def s_first_symbol_state(automaton, length, rng):  # steps with the previous symbol
    out, state, prev = [], 0, None
    for _ in range(length):
        syms = automaton.out_symbols(state)
        a = syms[int(rng.integers(len(syms)))]
        out.append(int(a))
        state = automaton.step(state, prev if prev in syms else a)
        prev = a
    return out


def s_letters(automaton, length, rng):  # returns the letters, not the ids
    return "".join(SYMBOLS[a - 1] for a in automaton.sample_string(length, rng))


def s_skips_single_way(automaton, length, rng):  # "nothing to choose": skips a state with one way out
    out, state = [], 0
    while len(out) < length:
        syms = automaton.out_symbols(state)
        a = syms[int(rng.integers(len(syms)))]
        if len(syms) > 1 or not out:
            out.append(int(a))
        state = automaton.step(state, a)
    return out


SAMPLE_WRONG = [
    ("one-too-short", s_one_too_short, "asked for length=1, your string has 0 symbols", "length-one"),
    ("skips-single-way", s_skips_single_way, "cannot be read by the automaton", "one-way"),
    ("random-module", s_random_module, "same seed gave different strings"),
    ("stays-in-state-0", s_restart_each_symbol, "cannot be read by the automaton"),
    ("weighted-by-id", s_weighted_by_id, "equally likely"),
    ("steps-with-previous", s_first_symbol_state, "cannot be read"),
    ("letters", s_letters, "list of symbol ids"),
]
SAMPLE_RIGHT = [("integers", sample_with_integers), ("choice-array", sample_with_choice),
                ("permutation", lambda a, n, rng: _walk(a, n, rng, lambda syms, r: r.permutation(syms)[0]))]


def r_no_reset_skip(sample):  # skips '|' but keeps the state of the string before
    ref = np.zeros((len(sample.tokens) - 1, VOCAB_SIZE))
    state = 0
    for t in range(len(sample.tokens) - 1):
        if sample.tokens[t] != SEP:
            state = sample.automaton.step(state, sample.tokens[t])
        ref[t, list(sample.automaton.out_symbols(state))] = 1 / len(sample.automaton.out_symbols(state))
    return ref


def r_reset_late(sample):  # resets on the token after '|'
    ref = np.zeros((len(sample.tokens) - 1, VOCAB_SIZE))
    state, prev = 0, None
    for t in range(len(sample.tokens) - 1):
        state = 0 if prev == SEP else state
        if sample.tokens[t] != SEP:
            state = sample.automaton.step(state, sample.tokens[t])
        prev = sample.tokens[t]
        ref[t, list(sample.automaton.out_symbols(state))] = 1 / len(sample.automaton.out_symbols(state))
    return ref


def r_sep_column(sample):  # gives '|' a share at the end of every string
    ref = reference_rows(sample)
    ends = [t for t in range(len(ref)) if sample.tokens[t + 1] == SEP]
    ref[ends] *= 0.5
    ref[ends, SEP] = 0.5
    return ref


def r_alphabet(sample):
    alphabet = sorted({a for a in sample.tokens if a != SEP})  # the symbols seen in the sample
    ref = np.zeros((len(sample.tokens) - 1, VOCAB_SIZE))
    ref[:, alphabet] = 1 / len(alphabet)
    return ref


def r_counts(sample):
    return (reference_rows(sample) > 0).astype(np.int64)


REFERENCE_WRONG = [
    ("no-reset-skip", r_no_reset_skip, "did not reset the automaton at '|'", "separator"),
    ("reset-late", r_reset_late, "reset the automaton one token late", "separator"),
    ("sep-column", r_sep_column, "entries differ"),
    ("alphabet-of-sample", r_alphabet, "entries differ"),
    ("counts", r_counts, "marked the valid symbols with 1 without dividing"),
    ("crash-no-reset", lambda s: [s.automaton.out_symbols(s.automaton.step(0, t)) for t in s.tokens],
     "your function raised"),
    ("float16", lambda s: reference_rows(s).astype(np.float16), "float16"),
]
REFERENCE_RIGHT = [("loop", reference_rows), ("float32", reference_rows_float32),
                   ("package", reference_distribution)]


def a_last_max(probs, reference):  # argmax over the reversed row: ties go to the last symbol
    top = probs.shape[1] - 1 - probs[:, ::-1].argmax(axis=1)
    return float((reference[np.arange(len(probs)), top] > 0).mean()), accuracy_and_tvd(probs, reference)[1]


def a_max_valid_prob(probs, reference):  # "a hit when the valid symbols hold the top probability"
    top = probs.max(axis=1)
    hit = [(p[r > 0] >= m).any() for p, r, m in zip(probs, reference, top, strict=True)]
    return float(np.mean(hit)), accuracy_and_tvd(probs, reference)[1]


def a_torch_argmax_tvd_sum(probs, reference):  # TVD without the ½
    p, r = torch.as_tensor(probs), torch.as_tensor(reference)
    acc = (r.gather(1, p.argmax(1, keepdim=True)) > 0).double().mean()
    return float(acc), float((p - r).abs().sum(1).mean())


SCORE_WRONG = [
    ("last-max", a_last_max, "broke ties towards the last symbol", "ties"),
    ("max-valid-prob", a_max_valid_prob, "counted a hit when any of several tied top symbols", "ties"),
    ("tvd-no-half", a_torch_argmax_tvd_sum, "left out the ½"),
    ("in-place", lambda p, r: (p.__isub__(r), (0.5, 0.5))[1], "in place"),
    ("float16", lambda p, r: tuple(np.float16(v) for v in accuracy_and_tvd(p, r)), "float16"),
    ("none", lambda p, r: None, "return"),
    ("sums", lambda p, r: tuple(v * len(p) for v in accuracy_and_tvd(p, r)), "summed over positions"),
]
SCORE_RIGHT = [("vectorised", accuracy_and_tvd), ("loop", accuracy_and_tvd_loop),
               ("array", lambda p, r: np.array(accuracy_and_tvd(p, r)))]


def b_no_reset(tokens):  # the previous symbol stays the context across '|'
    counts = np.zeros((VOCAB_SIZE, VOCAB_SIZE))
    prev, rows = 0, []
    for tok in tokens:
        if tok != SEP:
            counts[prev, tok] += 1
            prev = tok
        row = counts[prev] if counts[prev].sum() else counts.sum(axis=0)
        rows.append(row / row.sum())
    return np.array(rows)


def b_uniform_backoff(tokens):  # an unseen context predicts uniformly
    out = bigram_next_matrix(tokens).astype(np.float64)
    counts, prev = np.zeros((VOCAB_SIZE, VOCAB_SIZE)), 0
    for t, tok in enumerate(tokens):
        prev = 0 if tok == SEP else prev
        if tok != SEP:
            counts[prev, tok] += 1
            prev = tok
        if not counts[prev].sum():
            out[t] = np.r_[0.0, np.full(18, 1 / 18), 0.0]
    return out


def b_laplace(tokens):  # add-one smoothing over the 18 symbols
    counts, prev, rows = np.zeros((VOCAB_SIZE, VOCAB_SIZE)), 0, []
    for tok in tokens:
        if tok == SEP:
            prev = 0
        else:
            counts[prev, tok] += 1
            prev = tok
        row = (counts[prev] if counts[prev].sum() else counts.sum(axis=0)).copy()
        row[1:SEP] += 1
        rows.append(row / row.sum())
    return np.array(rows)


def b_l_minus_one(tokens):  # one row per input position but the last (like 7.2)
    return bigram_next(tokens)[:-1]


def b_counts_before(tokens):  # predicts before counting the pair that ends at token t
    counts, prev, rows = np.zeros((VOCAB_SIZE, VOCAB_SIZE)), 0, []
    for tok in tokens:
        nxt = 0 if tok == SEP else tok
        row = counts[nxt] if counts[nxt].sum() else counts.sum(axis=0)
        rows.append(row / row.sum() if row.sum() else np.r_[0.0, np.full(18, 1 / 18), 0.0])
        if tok != SEP:
            counts[prev, tok] += 1
        prev = nxt
    return np.array(rows)


BIGRAM_WRONG = [
    ("no-reset", b_no_reset, "carried the previous symbol across '|'", "separator"),
    ("uniform-backoff", b_uniform_backoff, "predicted uniformly when the context has not been seen",
     "unseen"),
    ("laplace", b_laplace, "smoothed the counts"),
    ("l-minus-one", b_l_minus_one, "shape"),
    ("counts-after-predicting", b_counts_before, "one step late"),
    ("in-place", lambda tk: (tk.append(SEP), bigram_next(tk[:-1]))[1], "in place"),
    ("float16", lambda tk: bigram_next(tk).astype(np.float16), "float16"),
]


def b_dict_loop(tokens):  # Counter of pairs, rebuilt row by row
    from collections import Counter

    pairs, seen, prev, rows = Counter(), Counter(), 0, []
    for tok in tokens:
        if tok == SEP:
            prev = 0
        else:
            pairs[(prev, tok)] += 1
            seen[tok] += 1
            prev = tok
        ctx = {a: c for (p, a), c in pairs.items() if p == prev} or dict(seen)
        row = np.zeros(VOCAB_SIZE)
        row[list(ctx)] = list(ctx.values())
        rows.append(row / row.sum())
    return np.array(rows)


BIGRAM_RIGHT = [("dicts", bigram_next), ("matrix-float32", bigram_next_matrix), ("counter", b_dict_loop)]

def memory_loop(symbols, vocab, beta):  # one row at a time, the softmax written out
    x = [int(a) for a in symbols]
    out = np.full((len(x), vocab), 1.0 / vocab)
    for t in range(1, len(x)):
        scores = np.array([beta * (x[s] == x[t]) for s in range(t)], dtype=float)
        w = np.exp(scores - scores.max())
        w /= w.sum()
        out[t] = 0.0
        for s in range(t):
            out[t, x[s + 1]] += w[s]
    return out


def memory_matrix_f32(symbols, vocab, beta):  # one-hot keys and values, masked (T, T) scores, float32
    x = np.asarray(symbols)
    keys = np.eye(vocab, dtype=np.float32)[x]  # (T, vocab)
    values = np.vstack([keys[1:], np.zeros((1, vocab), np.float32)])  # pair s peeks at x[s + 1]
    scores = np.float32(beta) * keys @ keys.T
    scores[np.triu_indices(len(x))] = -np.inf  # s < t only
    out = np.full((len(x), vocab), 1 / vocab, dtype=np.float32)
    if len(x) > 1:
        z = scores[1:] - scores[1:].max(axis=1, keepdims=True)
        w = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        out[1:] = w @ values
    return out


def memory_closed_form(symbols, vocab, beta):  # matches weigh 1, the other pairs exp(-β): no exp overflow
    x = np.asarray(symbols)
    out = np.full((len(x), vocab), 1.0 / vocab)
    for t in range(1, len(x)):
        nxt = np.eye(vocab)[x[1 : t + 1]]  # (t, vocab): the values of the pairs s < t
        same = x[:t] == x[t]
        w = np.where(same, 1.0, np.exp(-beta)) if same.any() else np.ones(t)
        out[t] = w @ nxt / w.sum()
    return out


def memory_torch(symbols, vocab, beta):  # chapter 02's causal_retrieval, row 0 set to uniform
    from mosaics_edu.core.memory import causal_retrieval

    x = torch.as_tensor(np.asarray(symbols))
    keys = torch.nn.functional.one_hot(x, vocab).double()[None, None]  # (1, 1, T, vocab)
    values = torch.cat([keys[..., 1:, :], torch.zeros_like(keys[..., :1, :])], dim=-2)
    out = causal_retrieval(keys, values, beta=float(beta), return_weights=True)[0][0, 0].numpy()
    out[0] = 1.0 / vocab
    return out


def m_peek(symbols, vocab, beta):  # reads the pairs s <= t: the answer is among the values
    x = np.asarray(symbols)
    out = np.full((len(x), vocab), 1.0 / vocab)
    for t in range(len(x)):
        n = min(t + 1, len(x) - 1)
        if n == 0:
            continue
        w = np.exp(beta * (x[:n] == x[t]) - beta * (x[:n] == x[t]).any())
        out[t] = w @ np.eye(vocab)[x[1 : n + 1]] / w.sum()
    return out


def m_value_now(symbols, vocab, beta):  # the value is the key's own symbol
    x = np.asarray(symbols)
    out = np.full((len(x), vocab), 1.0 / vocab)
    for t in range(1, len(x)):
        w = np.exp(beta * (x[:t] == x[t]) - beta * (x[:t] == x[t]).any())
        out[t] = w @ np.eye(vocab)[x[:t]] / w.sum()
    return out


def m_no_shift(symbols, vocab, beta):  # exp(β·score) straight: inf / inf = nan at β = 1000
    x = np.asarray(symbols)
    out = np.full((len(x), vocab), 1.0 / vocab)
    for t in range(1, len(x)):
        w = np.exp(beta * (x[:t] == x[t]))
        out[t] = w @ np.eye(vocab)[x[1 : t + 1]] / w.sum()
    return out


def m_unseen_uniform(symbols, vocab, beta):  # a new symbol predicts uniformly
    out = memory_loop(symbols, vocab, beta)
    x = np.asarray(symbols)
    for t in range(1, len(x)):
        if not (x[:t] == x[t]).any():
            out[t] = 1.0 / vocab
    return out


def m_unnormalised(symbols, vocab, beta):  # exp weights (shifted) summed, never divided
    x = np.asarray(symbols)
    out = np.full((len(x), vocab), 1.0 / vocab)
    for t in range(1, len(x)):
        z = beta * (x[:t] == x[t])
        out[t] = np.exp(z - z.max()) @ np.eye(vocab)[x[1 : t + 1]]
    return out


def m_softmax_of_counts(symbols, vocab, beta):  # softmax over the vocabulary of β·counts
    x = np.asarray(symbols)
    out = np.full((len(x), vocab), 1.0 / vocab)
    for t in range(1, len(x)):
        counts = np.eye(vocab)[x[1 : t + 1]][x[:t] == x[t]].sum(axis=0)
        z = beta * counts
        out[t] = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    return out


def m_late(symbols, vocab, beta):  # stores pair s only once x[s + 2] is read: one pair short
    out = memory_loop(symbols, vocab, beta)
    x = np.asarray(symbols)
    for t in range(1, len(x)):
        if t == 1:
            out[t] = 1.0 / vocab
            continue
        w = np.exp(beta * (x[: t - 1] == x[t]) - beta * (x[: t - 1] == x[t]).any())
        out[t] = w @ np.eye(vocab)[x[1:t]] / w.sum()
    return out


def m_row0_zero(symbols, vocab, beta):  # causal_retrieval's empty row kept at 0
    out = memory_loop(symbols, vocab, beta)
    out[0] = 0.0
    return out


def m_in_place(symbols, vocab, beta):
    symbols[0] = symbols[-1]  # changes the caller's array
    return memory_loop(symbols, vocab, beta)


MEMORY_WRONG = [
    ("peek", m_peek, "read the pair s = t too"),
    ("value-now", m_value_now, "stored one-hot(x[s])"),
    ("no-shift", m_no_shift, "did not subtract the largest score", "overflow"),
    ("unseen-uniform", m_unseen_uniform, "predicted uniformly for a symbol not seen before", "unseen"),
    ("one-pair-short", m_late, "left out the most recent pair"),
    ("row0-zero", m_row0_zero, "returned zeros for row 0"),
    ("unnormalised", m_unnormalised, "wrong on test case"),
    ("softmax-of-counts", m_softmax_of_counts, "wrong on test case"),
    ("in-place", m_in_place, "in place"),
    ("float16", lambda x, v, b: memory_loop(x, v, b).astype(np.float16), "float16"),
]
MEMORY_RIGHT = [("loop", memory_loop), ("matrix-float32", memory_matrix_f32),
                ("closed-form", memory_closed_form), ("causal-retrieval", memory_torch)]


test_sample_wrong, test_sample_right = table_tests(ch07.check_sample_string, SAMPLE_WRONG, SAMPLE_RIGHT)
test_reference_wrong, test_reference_right = table_tests(ch07.check_reference_rows, REFERENCE_WRONG,
                                                         REFERENCE_RIGHT)
test_score_wrong, test_score_right = table_tests(ch07.check_accuracy_and_tvd, SCORE_WRONG, SCORE_RIGHT)
test_bigram_wrong, test_bigram_right = table_tests(ch07.check_bigram, BIGRAM_WRONG, BIGRAM_RIGHT)
test_memory_wrong, test_memory_right = table_tests(ch07.check_memory_bigram, MEMORY_WRONG, MEMORY_RIGHT)


@pytest.mark.parametrize("diagnosis", list(ch07.MEMORY_MISTAKES))
def test_every_memory_mistake_is_diagnosed(diagnosis):
    _raises(ch07.check_memory_bigram, ch07.MEMORY_MISTAKES[diagnosis], diagnosis)


def test_memory_stub_fails():
    def stub(symbols, vocab, beta):
        raise NotImplementedError()

    _raises(ch07.check_memory_bigram, stub, "not implemented")


def test_cases_are_in_the_regimes_they_name():
    for case in ch07.SAMPLE_CASES:
        a, length, _ = case
        ways = {len(a.out_symbols(s)) for s in range(a.n_states)}
        for regime in case.regime:
            assert {"length-one": length == 1, "one-way": 1 in ways, "three-way": 3 in ways}[regime], regime
    for case in ch07.reference_cases():
        (sample,) = case
        for regime in case.regime:
            assert regime in ch07.REFERENCE_REGIMES
            assert {"separator": SEP in sample.tokens, "one-string": SEP not in sample.tokens,
                    "two-tokens": len(sample.tokens) == 2}[regime], regime
    for case in ch07.score_cases():
        probs, ref = case
        top = probs == probs.max(axis=1, keepdims=True)
        for regime in case.regime:
            assert regime in ch07.SCORE_REGIMES
            assert {"ties": bool((top.sum(1) > 1).any()), "one-position": len(probs) == 1,
                    "invalid-top": bool((ref[np.arange(len(probs)), probs.argmax(1)] == 0).any())}[regime]
    for case in ch07.bigram_cases():
        (tokens,) = case
        seen, unseen = set(), False
        for tok in tokens:  # a context met before any pair starting with it was counted
            prev = 0 if tok == SEP else tok
            unseen |= prev not in seen
            seen |= {prev}
        for regime in case.regime:
            assert regime in ch07.BIGRAM_REGIMES
            assert {"separator": SEP in tokens, "one-string": SEP not in tokens, "unseen": unseen}[regime]
    for case in ch07.memory_cases():
        x, vocab, beta = case
        x = [int(a) for a in x]
        follow = [{x[s + 1] for s in range(t) if x[s] == x[t]} for t in range(len(x))]  # per t
        for regime in case.regime:
            assert regime in ch07.MEMORY_REGIMES
            assert {"one-symbol": len(x) == 1,
                    "unseen": any(x[t] not in x[:t] for t in range(1, len(x))),
                    "repeats": any(len(f) >= 2 for f in follow),
                    "overflow": beta > np.log(np.finfo(np.float64).max),
                    "beta-zero": beta == 0}[regime], regime
        assert all(0 <= a < vocab for a in x)
