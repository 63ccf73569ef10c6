"""Checks for chapter 07 (In-context learning on RegBench-mini): sampling, the reference, the
scores, the in-context bigram and the bigram as one memory unit.

- ``sample_string(automaton, length, rng)`` — a uniform random walk of ``length`` symbols from
  state 0 (reference: :meth:`mosaics_edu.course.regbench.Automaton.sample_string`, but any use of
  ``rng`` that draws each outgoing symbol with equal probability passes: the check tests
  validity, length, reproducibility and the frequencies, not the exact draws);
- ``reference_rows(sample)`` — the (L-1, 20) reference distributions of a sample (reference
  :func:`mosaics_edu.course.regbench.reference_distribution`);
- ``accuracy_and_tvd(probs, reference)`` — the micro-averaged accuracy and TVD of (P, 20)
  predictions (reference: :func:`mosaics_edu.course.regbench.metrics.score_probabilities` / P);
- ``bigram_next(tokens)`` — the in-context bigram's (L, 20) predictions (reference:
  :func:`mosaics_edu.course.regbench.ngram.ngram_distributions` with n = 2);
- ``memory_bigram(symbols, vocab, beta)`` — one memory unit (one-hot keys, values peeking at the
  next symbol) read at every position: (T, vocab) (reference:
  :func:`mosaics_edu.course.regbench.ngram.memory_bigram`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np
import torch

from ..regbench import Automaton, Sample, draw_samples, memory_bigram, reference_distribution, test_automata
from ..regbench.metrics import score_probabilities
from ..regbench.vocab import SYMBOLS, VOCAB_SIZE, encode
from . import Case, call_checked, call_learner, compare, fail, notebook_check, passed
from . import ch07_wrong as wrong

CHAPTER = "07_regbench"
H1, H2, H3 = "(see hint 1 above)", "(see hint 2 above)", "(see hint 3 above)"

__all__ = [
    "check_sample_string",
    "check_reference_rows",
    "check_accuracy_and_tvd",
    "check_bigram",
    "reference_bigram",
    "BIGRAM_MISTAKES",
    "bigram_cases",
    "reference_accuracy_and_tvd",
    "REFERENCE_MISTAKES",
    "SCORE_MISTAKES",
    "reference_cases",
    "score_cases",
    "SAMPLE_CASES",
    "REFERENCE_REGIMES",
    "SCORE_REGIMES",
    "BIGRAM_REGIMES",
    "check_memory_bigram",
    "MEMORY_MISTAKES",
    "MEMORY_REGIMES",
    "memory_cases",
]


# --------------------------------------------------------------------------------------------
# exercise 7.1: sample a string
# --------------------------------------------------------------------------------------------


def _walk_states(automaton: Automaton, string: Sequence[int]) -> tuple[int | None, list[int]]:
    """(first position without a transition or None, states visited before each symbol)."""
    state, visited = 0, []
    for t, a in enumerate(string):
        visited.append(state)
        nxt = automaton.step(state, int(a))
        if nxt is None:
            return t, visited
        state = nxt
    return None, visited


def _branchy() -> Automaton:
    """A small automaton with 1, 2 and 3 outgoing symbols: frequencies are easy to test."""
    return Automaton([{"a": 1, "b": 2, "c": 0}, {"d": 2, "a": 0}, {"b": 0}])


def _loop() -> Automaton:
    """Two states, one of them with a single way out: a string of length 1 is 'a' or 'b'."""
    return Automaton([{"a": 0, "b": 1}, {"c": 0}])


# (automaton, length, seed): every string must be readable, of that length, and reproducible
SAMPLE_CASES = [Case(_branchy(), 1, 0, regime="length-one", why="length 1: a single symbol from state 0"),
                Case(_branchy(), 20, 1, regime=("one-way", "three-way"),
                     why="states with 1, 2 and 3 ways out"),
                Case(_loop(), 7, 2, regime="one-way", why="a state with a single way out"),
                *[Case(a, n, 3 + k, why=f"test automaton {k}") for k, a in enumerate(test_automata()[:3])
                  for n in (1, 20)]]


@notebook_check
def check_sample_string(sample_string: Callable[[Automaton, int, np.random.Generator], list[int]]) -> None:
    """Exercise 7.1: strings of the right length that the automaton accepts, drawn from ``rng``,
    with every outgoing symbol of a state equally likely."""
    ex = "sample_string"
    for k, (a, length, seed) in enumerate(SAMPLE_CASES):
        where = f"on test case {k} of {len(SAMPLE_CASES)} ({SAMPLE_CASES[k].why})"
        rebuild = (f"\n  To rebuild it: from mosaics_edu.course.checks import ch07; "
                   f"automaton, length, seed = "
                   f"ch07.SAMPLE_CASES[{k}]; rng = np.random.default_rng(seed)")
        got = call_checked(CHAPTER, ex, sample_string, (a, length, np.random.default_rng(seed)),
                           ("automaton", "length", "rng"), where=where, inputs=rebuild[1:])
        if isinstance(got, torch.Tensor | np.ndarray):
            got = got.tolist()
        if not isinstance(got, list | tuple) or not all(
            isinstance(s, int | np.integer) and not isinstance(s, bool) for s in got
        ):
            fail(CHAPTER, ex, f"must return a list of symbol ids (ints 1..18), got {got!r:.80} {H2}", "type")
        if len(got) != length:
            fail(CHAPTER, ex, f"{where}: asked for length={length}, your string has {len(got)} symbols "
                 f"(an off-by-one in the loop?) {H2}{rebuild}", "shape")
        bad, visited = _walk_states(a, got)
        if bad is not None:
            s, sym = visited[bad], int(got[bad])
            letter = SYMBOLS[sym - 1] if 1 <= sym <= len(SYMBOLS) else str(sym)
            start = (" The walk starts in state 0." if bad == 0
                     else " Did you move to the next state (automaton.step) after each symbol?")
            fail(CHAPTER, ex, f"{where}: your string {got} cannot be read by the automaton: symbol {bad} "
                 f"({letter!r}) has no transition from state {s}, whose valid next symbols are "
                 f"{[SYMBOLS[x - 1] for x in a.out_symbols(s)]}.{start} {H3}{rebuild}", "mistake")
    a = test_automata()[0]
    one = call_checked(CHAPTER, ex, sample_string, (a, 30, np.random.default_rng(5)))
    again = call_checked(CHAPTER, ex, sample_string, (a, 30, np.random.default_rng(5)))
    other = call_checked(CHAPTER, ex, sample_string, (a, 30, np.random.default_rng(6)))
    if list(one) != list(again):
        fail(CHAPTER, ex, "two calls with generators of the same seed gave different strings: draw "
             f"every random number from the argument `rng` (not np.random.* or a new generator) {H2}",
             "ignored")
    if list(one) == list(other):
        fail(CHAPTER, ex, "generators with different seeds gave the same string: your function ignores "
             f"its argument `rng` (a fixed seed or a fixed choice inside?) {H2}", "ignored")
    # frequencies: each outgoing symbol of each state equally likely
    b, rng = _branchy(), np.random.default_rng(123)
    counts: dict[int, Counter[int]] = {s: Counter() for s in range(b.n_states)}
    for _ in range(600):
        string = [int(x) for x in call_learner(CHAPTER, ex, sample_string, b, 8, rng)]  # rng advances
        _, visited = _walk_states(b, string)
        for s, sym in zip(visited, string, strict=True):
            counts[s][sym] += 1
    for s in range(b.n_states):
        total, syms = sum(counts[s].values()), b.out_symbols(s)
        for sym in syms:
            share, want = counts[s][sym] / total, 1 / len(syms)
            spread = 5 * np.sqrt(want * (1 - want) / total)  # five standard errors
            if abs(share - want) > spread:
                fail(CHAPTER, ex, f"in state {s} (symbols {[SYMBOLS[x - 1] for x in syms]}) your strings "
                     f"chose {SYMBOLS[sym - 1]!r} {share:.0%} of the {total} times, expected "
                     f"{want:.0%}: every outgoing symbol must be equally likely (rng.integers(k) "
                     f"picks one of k; check the upper bound) {H3}", "mistake")
    passed(CHAPTER, ex)


# --------------------------------------------------------------------------------------------
# exercise 7.2: the reference distribution
# --------------------------------------------------------------------------------------------


REFERENCE_MISTAKES: dict[str, Callable[[Sample], np.ndarray]] = {
    f"used the state *before* token t for row t; row t is about the symbol after tokens[:t+1], so "
    f"read token t first {H3}": wrong.shifted,
    f"returned one row per token (L rows); there is one per input position, L-1 (the last token "
    f"is no input) {H1}": wrong.one_row_too_many,
    f"gave the separator '|' the mass where a string ends; the reference is uniform over the "
    f"state's outgoing symbols even there ('|' and '.' always get 0) {H2}": wrong.sep_at_end,
    f"spread the mass over the automaton's whole alphabet; only the symbols leaving the current "
    f"state are valid {H2}": wrong.whole_alphabet,
    f"put all the mass on the token that actually came next; every valid next symbol gets an equal "
    f"share {H1}": wrong.one_hot_next,
    f"marked the valid symbols with 1 without dividing by their number (rows must sum to 1) {H2}":
        wrong.unnormalised,
    f"did not reset the automaton at '|': the next string starts again in state 0, so the row of a "
    f"'|' is uniform over state 0's outgoing symbols {H3}": wrong.no_reset,
    f"reset the automaton one token late: the row of a '|' itself already uses state 0 {H3}":
        wrong.late_reset,
}

REFERENCE_REGIMES = {
    "separator": f"the sample holds several strings: at each '|' the automaton starts again in "
                 f"state 0 {H3}",
    "one-string": f"the sample is a single string, with no '|' {H1}",
    "two-tokens": f"the sample has two tokens, so a single row {H1}",
}


def reference_cases() -> list[Case]:
    """Hand-made samples (several strings, one string, two tokens) and three evaluation samples."""
    a = Automaton([{"a": 1, "b": 2}, {"c": 0}, {"a": 0, "d": 1}])
    show = 'sample = Sample(Automaton([{"a": 1, "b": 2}, {"c": 0}, {"a": 0, "d": 1}]), encode(%r))'
    hand = [("acba|bd|a", ("separator",), "three strings: the state resets at each '|'"),
            ("acbd", ("one-string",), "one string, no '|'"),
            ("ba", ("one-string", "two-tokens"), "two tokens: one row")]
    return [*[Case(Sample(a, encode(text)), regime=regime, why=why, show=show % text)
              for text, regime, why in hand],
            *[Case(s, regime="separator", why=f"an evaluation sample of test automaton {k}")
              for k, s in enumerate(draw_samples(test_automata()[:3]))]]


@notebook_check
def check_reference_rows(reference_rows: Callable[[Sample], np.ndarray]) -> None:
    """Exercise 7.2: the reference distribution of four samples, against the package's."""
    compare(CHAPTER, "reference_rows", reference_rows, reference_distribution, reference_cases(),
            mistakes=REFERENCE_MISTAKES, arg_names=("sample",), regimes=REFERENCE_REGIMES,
            rebuild="ch07.reference_cases()[{k}]",
            hint=f"Row t: run the automaton over the current string up to and including token t "
                 f"(a '|' resets it to state 0), then spread 1 equally over that state's outgoing "
                 f"symbols {H2}.")  # fmt: skip


# --------------------------------------------------------------------------------------------
# exercise 7.3: accuracy and TVD
# --------------------------------------------------------------------------------------------


def reference_accuracy_and_tvd(probs: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """(share of positions whose argmax is a valid next symbol, mean TVD). probs, reference: (P, V)."""
    correct, tvd = score_probabilities(torch.as_tensor(np.asarray(probs, dtype=np.float64)),
                                       torch.as_tensor(np.asarray(reference, dtype=np.float64)))  # fmt: skip
    return correct / len(probs), tvd / len(probs)


def _l1(probs, reference):
    acc, tvd = reference_accuracy_and_tvd(probs, reference)
    return acc, 2 * tvd


def _sums(probs, reference):
    acc, tvd = reference_accuracy_and_tvd(probs, reference)
    return acc * len(probs), tvd * len(probs)


def _max_diff(probs, reference):
    acc, _ = reference_accuracy_and_tvd(probs, reference)
    return acc, float(np.abs(probs - reference).max(axis=1).mean())


def _argmax_match(probs, reference):
    _, tvd = reference_accuracy_and_tvd(probs, reference)
    return float((probs.argmax(axis=1) == reference.argmax(axis=1)).mean()), tvd


def _wrong_axis(probs, reference):
    acc, _ = reference_accuracy_and_tvd(probs, reference)
    return acc, float(0.5 * np.abs(probs - reference).sum(axis=0).mean())


def _no_abs(probs, reference):
    acc, _ = reference_accuracy_and_tvd(probs, reference)
    return acc, float(0.5 * (probs - reference).sum(axis=1).mean())


def _swapped(probs, reference):
    acc, tvd = reference_accuracy_and_tvd(probs, reference)
    return tvd, acc


def _last_max(probs, reference):  # ties broken towards the last symbol
    _, tvd = reference_accuracy_and_tvd(probs, reference)
    last = probs.shape[1] - 1 - np.argmax(probs[:, ::-1], axis=1)
    return float((reference[np.arange(len(probs)), last] > 0).mean()), tvd


def _any_tied_max(probs, reference):  # a hit if any of the tied maxima is valid
    _, tvd = reference_accuracy_and_tvd(probs, reference)
    top = probs == probs.max(axis=1, keepdims=True)
    return float(((reference > 0) & top).any(axis=1).mean()), tvd


SCORE_MISTAKES: dict[str, Callable[[np.ndarray, np.ndarray], tuple[float, float]]] = {
    "left out the ½ of the TVD: that is the L1 distance (which the benchmark's training logs "
    "report), twice the TVD": _l1,
    "summed over positions; both scores are means over the positions": _sums,
    "took the largest difference |p(v) - ref(v)| of each position; the TVD is half their sum": _max_diff,
    "counted a hit only when the model's argmax equals the reference's argmax; any symbol with "
    "reference probability > 0 is a valid next symbol": _argmax_match,
    "summed the differences over positions (axis 0) and averaged over the vocabulary; sum over the "
    "vocabulary (axis 1), then average over positions": _wrong_axis,
    "left out the absolute value: p and ref both sum to 1, so p - ref sums to 0": _no_abs,
    "returned (tvd, accuracy); the order is (accuracy, tvd)": _swapped,
    "broke ties towards the last symbol: when several symbols share the top probability the first "
    "one counts, as np.argmax picks it": _last_max,
    "counted a hit when any of several tied top symbols is valid; only the first of them (np.argmax) "
    "counts": _any_tied_max,
}
SCORE_MISTAKES = {f"{d} {H2}": f for d, f in SCORE_MISTAKES.items()}

SCORE_REGIMES = {
    "ties": f"several symbols share the top probability; the first one (np.argmax's) is the "
            f"prediction {H2}",
    "one-position": f"there is a single position, P = 1: a mean over positions is that position's "
                    f"value {H1}",
    "invalid-top": f"the top symbol is invalid at some positions ('|' for example) {H2}",
}


def score_cases() -> list[tuple[np.ndarray, np.ndarray]]:
    """Model-like probabilities (a peaked Dirichlet) against real references, and a hand-made one."""
    rng = np.random.default_rng(0)
    cases = []
    for sample in draw_samples(test_automata()[:2]):
        ref = reference_distribution(sample)  # (P, V)
        noise = rng.dirichlet(np.full(VOCAB_SIZE, 0.3), size=len(ref))  # (P, V), peaked at random
        probs = 0.5 * noise + 0.5 * ref * rng.random((len(ref), 1))  # some argmaxes valid, some not
        cases.append((probs / probs.sum(axis=1, keepdims=True), ref))
    hand_ref = np.zeros((3, VOCAB_SIZE))
    hand_ref[0, [1, 2]] = 0.5
    hand_ref[1, [3]] = 1.0
    hand_ref[2, [1, 4, 5]] = 1 / 3
    hand_p = np.full((3, VOCAB_SIZE), 0.01)
    hand_p[0, 2], hand_p[1, 19], hand_p[2, 4] = 0.6, 0.5, 0.3  # valid, invalid ('|'), valid
    hand_p /= hand_p.sum(axis=1, keepdims=True)
    tie_ref = np.zeros((1, VOCAB_SIZE))
    tie_ref[0, [5, 9]] = 0.5
    tie_p = np.zeros((1, VOCAB_SIZE))
    tie_p[0, [2, 5, 9]] = 0.3  # 'b', 'e' and 'i' tie for the top: the first, 'b' (invalid), counts
    tie_p[0, 0] = 0.1
    return [*[Case(*c, regime="invalid-top", why=f"model-like predictions on test automaton {k}")
              for k, c in enumerate(cases)],
            Case(hand_p, hand_ref, regime="invalid-top", why="three hand-made positions, one predicting '|'"),
            Case(tie_p, tie_ref, regime=("ties", "one-position", "invalid-top"),
                 why="one position where 'b', 'e' and 'i' tie for the top; the first, 'b', is invalid")]


@notebook_check
def check_accuracy_and_tvd(accuracy_and_tvd: Callable[[np.ndarray, np.ndarray], tuple[float, float]]) -> None:
    """Exercise 7.3: both scores on model-like predictions, against the package's metric."""
    compare(CHAPTER, "accuracy_and_tvd", accuracy_and_tvd, reference_accuracy_and_tvd, score_cases(),
            mistakes=SCORE_MISTAKES, arg_names=("probs", "reference"), regimes=SCORE_REGIMES,
            rebuild="ch07.score_cases()[{k}]", items=("the accuracy", "the TVD"),
            hint=f"accuracy: mean over positions of [reference[t, argmax probs[t]] > 0]; TVD: mean over "
                 f"positions of ½ Σ_v |probs[t, v] - reference[t, v]| {H2}.")  # fmt: skip


# --------------------------------------------------------------------------------------------
# exercise 7.4: the in-context bigram
# --------------------------------------------------------------------------------------------

def reference_bigram(tokens: Sequence[int]) -> np.ndarray:
    """(L, 20): row t = the package's in-context bigram prediction of token t+1 (see ngram.py)."""
    from ..regbench.ngram import ngram_distributions

    out = np.zeros((len(tokens), VOCAB_SIZE))
    for t, dist in enumerate(ngram_distributions([int(x) for x in tokens], 2)):
        out[t, list(dist)] = list(dist.values())
    return out


BIGRAM_MISTAKES: dict[str, Callable[[Sequence[int]], np.ndarray]] = {
    f"carried the previous symbol across '|': after a separator the context is the start of a "
    f"string, not the last symbol of the previous one {H2}": lambda tk: wrong.bigram_variant(tk, reset=False),
    f"gave the start of a string no context of its own (backing off to the unigram there); use a "
    f"start marker as the context of a string's first symbol {H2}":
        lambda tk: wrong.bigram_variant(tk, start=False),
    f"predicted uniformly when the context has not been seen yet; back off to the unigram counts of "
    f"everything read so far {H2}": lambda tk: wrong.bigram_variant(tk, backoff=False),
    f"counted the pair ending at token t only after predicting from it (one step late); row t may "
    f"use every pair up to and including token t {H3}": lambda tk: wrong.bigram_variant(tk, lag=True),
    f"counted '|' as a symbol (so it gets predicted); the separator is never predicted, it only "
    f"starts a new string {H1}": lambda tk: wrong.bigram_variant(tk, count_sep=True),
    f"smoothed the counts (added 1 to every symbol): the in-context n-gram predicts from the raw "
    f"counts, so a symbol never seen after the context gets 0 {H1}":
        lambda tk: wrong.bigram_variant(tk, smooth=1.0),
}

BIGRAM_REGIMES = {
    "separator": f"the sample holds several strings: after a '|' the context is the start marker {H2}",
    "unseen": f"some context is met for the first time, where the prediction backs off to the "
              f"unigram counts of everything read so far {H2}",
    "one-string": f"the sample is a single string, with no '|' {H1}",
}


def bigram_cases() -> list[Case]:
    """Hand-made samples and three evaluation samples of test automata (as lists of token ids)."""
    hand = [("abac|bab|aba", ("separator", "unseen"), "three strings; 'c' and the start are new contexts"),
            ("abcabd", ("one-string", "unseen"), "one string: no '|' at all"),
            ("aa|b", ("separator", "unseen"), "a repeated symbol, then a string whose start was seen")]
    return [*[Case(encode(text), regime=regime, why=why) for text, regime, why in hand],
            *[Case(list(s.tokens), regime=("separator", "unseen"), why=f"an evaluation sample of test "
                   f"automaton {k}") for k, s in enumerate(draw_samples(test_automata()[:3]))]]


@notebook_check
def check_bigram(bigram_next: Callable[[Sequence[int]], np.ndarray]) -> None:
    """Exercise 7.4: the in-context bigram's predictions on four samples, against the package's."""
    compare(CHAPTER, "bigram_next", bigram_next, reference_bigram, bigram_cases(),
            mistakes=BIGRAM_MISTAKES, arg_names=("tokens",), float32_probe=False, regimes=BIGRAM_REGIMES,
            rebuild="ch07.bigram_cases()[{k}]",
            hint=f"Row t: after reading tokens[: t + 1], the counts of what followed the current "
                 f"context (the last symbol, or the start of the string) within strings, normalised; "
                 f"if that context was never seen, the counts of every symbol read so far {H2}.")  # fmt: skip


# --------------------------------------------------------------------------------------------
# exercise 7.5: the bigram as one memory unit
# --------------------------------------------------------------------------------------------


MEMORY_MISTAKES: dict[str, Callable[..., np.ndarray]] = {
    f"read the pair s = t too: its value is x[t + 1], the very symbol row t must predict (peeking at "
    f"the answer); row t reads the pairs s < t only {H2}":
        lambda x, v, b: wrong.memory_variant(x, v, b, peek=True),
    f"stored one-hot(x[s]) as the value of pair s; the value peeks at the next symbol, one-hot(x[s + 1]) "
    f"{H1}": lambda x, v, b: wrong.memory_variant(x, v, b, value_now=True),
    f"left out the most recent pair (s = t - 1, value x[t]): row t reads every pair s < t, "
    f"s = t - 1 included {H2}": lambda x, v, b: wrong.memory_variant(x, v, b, late=True),
    f"did not subtract the largest score before exp: exp(β) overflows for β > 709 and the row "
    f"becomes nan {H3}": lambda x, v, b: wrong.memory_variant(x, v, b, shift=False),
    f"returned counts (how often each symbol followed x[t]) instead of the normalised retrieval, "
    f"whose rows sum to 1 {H2}": lambda x, v, b: wrong.memory_variant(x, v, b, counted=True),
    f"counted the followers of x[t] whatever β: the weights are a softmax of β·k_t·k_s, so with a "
    f"small β the pairs of other symbols keep some weight (β = 0: all the same) {H2}":
        lambda x, v, b: wrong.memory_variant(x, v, b, hard=True),
    f"returned zeros for row 0: an empty memory is defined as uniform, 1 / vocab {H1}":
        lambda x, v, b: wrong.memory_variant(x, v, b, empty_zero=True),
    f"predicted uniformly for a symbol not seen before: it matches no pair, so every stored pair "
    f"gets the same weight and the row is the average of all the next symbols so far {H2}":
        lambda x, v, b: wrong.memory_variant(x, v, b, unseen_uniform=True),
}

MEMORY_REGIMES = {
    "one-symbol": f"a single symbol: row 0 reads an empty memory, which is uniform {H1}",
    "unseen": f"a symbol met for the first time (t >= 1): it matches no stored pair, so all of them "
              f"share the weight {H2}",
    "repeats": f"a symbol met again after earlier occurrences followed by different symbols: they "
               f"tie and share the weight equally {H2}",
    "overflow": f"β > 709: exp(β) overflows unless the largest score is subtracted first {H3}",
    "beta-zero": f"β = 0: every stored pair gets the same weight, matching or not {H2}",
}


def _longest_string(k: int) -> np.ndarray:
    """The longest string of the evaluation sample of test automaton k, as symbol ids."""
    sample = draw_samples(test_automata()[k : k + 1])[0]
    return np.array(encode(max(sample.strings, key=len)), dtype=np.int64)


def memory_cases() -> list[Case]:
    """(symbols, vocab, beta): hand-made strings in each regime and two RegBench-mini strings."""
    abacab = np.array([1, 2, 1, 3, 1, 2, 4, 1])  # 'a' followed by b, c, b: the last row is (2b + c) / 3
    return [
        Case(np.array([3]), 5, 4.0, regime="one-symbol",
             why="one symbol: row 0 reads an empty memory (uniform, not zeros, no crash)"),
        Case(abacab, 5, 50.0, regime=("unseen", "repeats"),
             why="large β: the average of what followed each earlier 'a' (peeking, x[s] as value, "
                 "a missing last pair all change it)"),
        Case(abacab, 5, 0.0, regime=("unseen", "repeats", "beta-zero"),
             why="β = 0: every pair weighs the same, matching or not (counting ignores β)"),
        Case(np.array([2, 2, 2, 1, 2, 2]), 4, 1000.0, regime=("overflow", "unseen", "repeats"),
             why="β = 1000: exp(β) overflows unless the scores are shifted"),
        Case(np.array([4, 0, 1, 3]), 5, 10.0, regime="unseen",
             why="every symbol new (id 0 included): each row averages all the next symbols so far"),
        Case(_longest_string(0), VOCAB_SIZE, 1.5, regime=("unseen", "repeats"),
             why="a RegBench-mini string at a moderate β: the other symbols' pairs keep some weight"),
        Case(_longest_string(1), VOCAB_SIZE, 30.0, regime=("unseen", "repeats"),
             why="a RegBench-mini string at a large β: the in-context bigram of the string"),
    ]


@notebook_check
def check_memory_bigram(memory_bigram_fn: Callable[[np.ndarray, int, float], np.ndarray]) -> None:
    """Exercise 7.5: one memory unit's predictions, against the package's reference."""
    compare(CHAPTER, "memory_bigram", memory_bigram_fn, memory_bigram, memory_cases(),
            mistakes=MEMORY_MISTAKES, arg_names=("symbols", "vocab", "beta"), regimes=MEMORY_REGIMES,
            rebuild="ch07.memory_cases()[{k}]",
            hint=f"Row t: weights softmax_s(β·[x[s] == x[t]]) over s = 0 … t-1 (shifted by their "
                 f"largest score), times one-hot(x[s + 1]); row 0 uniform {H2}.")  # fmt: skip
