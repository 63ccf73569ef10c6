"""Checks for chapter 06 (In-context learning): sampling, the reference distribution, the scores.

- ``sample_string(automaton, length, rng)`` — a uniform random walk of ``length`` symbols from
  state 0 (reference: :meth:`mosaics_edu.regbench.Automaton.sample_string`, but any use of
  ``rng`` that draws each outgoing symbol with equal probability passes: the check tests
  validity, length, reproducibility and the frequencies, not the exact draws);
- ``reference_rows(sample)`` — the (L-1, 20) reference distributions of a sample (reference
  :func:`mosaics_edu.regbench.reference_distribution`);
- ``accuracy_and_tvd(probs, reference)`` — the micro-averaged accuracy and TVD of (P, 20)
  predictions (reference: :func:`mosaics_edu.regbench.metrics.score_probabilities` / P);
- ``bigram_next(tokens)`` — the in-context bigram's (L, 20) predictions (reference:
  :func:`mosaics_edu.regbench.ngram.ngram_distributions` with n = 2).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np
import torch

from ..regbench import Automaton, Sample, draw_samples, reference_distribution, test_automata
from ..regbench.metrics import score_probabilities
from ..regbench.vocab import SEP, SYMBOLS, VOCAB_SIZE
from . import call_checked, call_learner, compare, fail, passed

CHAPTER = "06_in_context_learning"

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
]


# --------------------------------------------------------------------------------------------
# exercise 6.1: sample a string
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


def check_sample_string(sample_string: Callable[[Automaton, int, np.random.Generator], list[int]]) -> None:
    """Exercise 6.1: strings of the right length that the automaton accepts, drawn from ``rng``,
    with every outgoing symbol of a state equally likely."""
    ex = "sample_string"
    automata = [_branchy(), *test_automata()[:3]]
    for k, a in enumerate(automata):
        for length in (1, 7, 20):
            got = call_checked(CHAPTER, ex, sample_string, (a, length, np.random.default_rng(k)),
                               ("automaton", "length", "rng"), where=f"with length={length}")  # fmt: skip
            if isinstance(got, torch.Tensor | np.ndarray):
                got = got.tolist()
            if not isinstance(got, list | tuple) or not all(
                isinstance(s, int | np.integer) and not isinstance(s, bool) for s in got
            ):
                fail(CHAPTER, ex, f"must return a list of symbol ids (ints 1..18), got {got!r:.80}")
            if len(got) != length:
                fail(CHAPTER, ex, f"asked for length={length}, your string has {len(got)} symbols "
                     "(an off-by-one in the loop?)")  # fmt: skip
            bad, visited = _walk_states(a, got)
            if bad is not None:
                s, sym = visited[bad], int(got[bad])
                letter = SYMBOLS[sym - 1] if 1 <= sym <= len(SYMBOLS) else str(sym)
                start = (
                    " The walk starts in state 0."
                    if bad == 0
                    else (" Did you move to the next state (automaton.step) after each symbol?")
                )
                fail(CHAPTER, ex, f"your string {got} cannot be read by the automaton: symbol {bad} "
                     f"({letter!r}) has no transition from state {s}, whose valid next symbols are "
                     f"{[SYMBOLS[x - 1] for x in a.out_symbols(s)]}.{start}")  # fmt: skip
    a = test_automata()[0]
    one = call_checked(CHAPTER, ex, sample_string, (a, 30, np.random.default_rng(5)))
    again = call_checked(CHAPTER, ex, sample_string, (a, 30, np.random.default_rng(5)))
    other = call_checked(CHAPTER, ex, sample_string, (a, 30, np.random.default_rng(6)))
    if list(one) != list(again):
        fail(
            CHAPTER,
            ex,
            "two calls with generators of the same seed gave different strings: draw "
            "every random number from the argument `rng` (not np.random.* or a new generator)",
        )
    if list(one) == list(other):
        fail(
            CHAPTER,
            ex,
            "generators with different seeds gave the same string: your function ignores "
            "its argument `rng` (a fixed seed or a fixed choice inside?)",
        )
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
                     "picks one of k; check the upper bound)")  # fmt: skip
    passed(CHAPTER, ex)


# --------------------------------------------------------------------------------------------
# exercise 6.2: the reference distribution
# --------------------------------------------------------------------------------------------


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


def _shifted(sample: Sample) -> np.ndarray:  # row t from the state *before* token t
    return _rows_from_states(sample, [0, *_states_after(sample)[:-1]], len(sample.tokens) - 1)


def _one_row_too_many(sample: Sample) -> np.ndarray:
    return _rows_from_states(sample, _states_after(sample), len(sample.tokens))


def _sep_at_end(sample: Sample) -> np.ndarray:
    ref = reference_distribution(sample)
    for t in range(len(ref)):
        if sample.tokens[t + 1] == SEP:
            ref[t] = 0.0
            ref[t, SEP] = 1.0
    return ref


def _whole_alphabet(sample: Sample) -> np.ndarray:
    ref = np.zeros((len(sample.tokens) - 1, VOCAB_SIZE))
    ref[:, list(sample.automaton.alphabet)] = 1.0 / len(sample.automaton.alphabet)
    return ref


def _one_hot_next(sample: Sample) -> np.ndarray:
    ref = np.zeros((len(sample.tokens) - 1, VOCAB_SIZE))
    ref[np.arange(len(ref)), list(sample.tokens[1:])] = 1.0
    return ref


def _unnormalised(sample: Sample) -> np.ndarray:
    return (reference_distribution(sample) > 0).astype(float)


REFERENCE_MISTAKES: dict[str, Callable[[Sample], np.ndarray]] = {
    "used the state *before* token t for row t; row t is about the symbol after tokens[:t+1], so "
    "read token t first": _shifted,
    "returned one row per token (L rows); there is one per input position, L-1 (the last token "
    "is no input)": _one_row_too_many,
    "gave the separator '|' the mass where a string ends; the reference is uniform over the "
    "state's outgoing symbols even there ('|' and '.' always get 0)": _sep_at_end,
    "spread the mass over the automaton's whole alphabet; only the symbols leaving the current "
    "state are valid": _whole_alphabet,
    "put all the mass on the token that actually came next; every valid next symbol gets an equal "
    "share": _one_hot_next,
    "marked the valid symbols with 1 without dividing by their number (rows must sum to 1)": _unnormalised,
}


def reference_cases() -> list[tuple[Sample]]:
    """A hand-made sample (three strings) and three evaluation samples of test automata."""
    a = Automaton([{"a": 1, "b": 2}, {"c": 0}, {"a": 0, "d": 1}])
    hand = Sample(a, (1, 3, 2, 1, 19, 2, 4, 19, 1))  # "acba|bd|a"
    return [(hand,), *[(s,) for s in draw_samples(test_automata()[:3])]]


def check_reference_rows(reference_rows: Callable[[Sample], np.ndarray]) -> None:
    """Exercise 6.2: the reference distribution of four samples, against the package's."""
    compare(CHAPTER, "reference_rows", reference_rows, reference_distribution, reference_cases(),
            mistakes=REFERENCE_MISTAKES, arg_names=("sample",),
            hint="Row t: run the automaton over the current string up to and including token t "
                 "(a '|' resets it to state 0), then spread 1 equally over that state's outgoing "
                 "symbols.")  # fmt: skip


# --------------------------------------------------------------------------------------------
# exercise 6.3: accuracy and TVD
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
    return [*cases, (hand_p, hand_ref)]


def check_accuracy_and_tvd(accuracy_and_tvd: Callable[[np.ndarray, np.ndarray], tuple[float, float]]) -> None:
    """Exercise 6.3: both scores on model-like predictions, against the package's metric."""
    compare(CHAPTER, "accuracy_and_tvd", accuracy_and_tvd, reference_accuracy_and_tvd, score_cases(),
            mistakes=SCORE_MISTAKES, arg_names=("probs", "reference"),
            hint="accuracy: mean over positions of [reference[t, argmax probs[t]] > 0]; TVD: mean over "
                 "positions of ½ Σ_v |probs[t, v] - reference[t, v]|.")  # fmt: skip


# --------------------------------------------------------------------------------------------
# exercise 6.4: the in-context bigram
# --------------------------------------------------------------------------------------------

_START = 0  # the start-of-string context (the pad id, never a content symbol)


def _bigram_variant(tokens, *, reset=True, start=True, backoff=True, lag=False, count_sep=False):
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
            out[t] = _predict(pairs, unigram, prev, backoff)
            continue
        pending.append((prev, tok))
        if not lag:  # count the pair read at t before predicting t + 1
            for p, a in pending:
                pairs.setdefault(p, Counter())[a] += 1
                unigram[a] += 1
            pending = []
        prev = tok if (tok != SEP or not reset) else (_START if start else -1)
        out[t] = _predict(pairs, unigram, prev, backoff)
        if lag:
            for p, a in pending:
                pairs.setdefault(p, Counter())[a] += 1
                unigram[a] += 1
            pending = []
    return out


def _predict(pairs, unigram, prev, backoff) -> np.ndarray:
    row = np.zeros(VOCAB_SIZE)
    seen = pairs.get(prev)
    counts = seen if seen else (unigram if backoff else None)
    if not counts:
        row[1:SEP] = 1.0 / (SEP - 1)  # nothing read yet: uniform over the 18 symbols
        return row
    total = sum(counts.values())
    for a, c in counts.items():
        row[a] = c / total
    return row


def reference_bigram(tokens: Sequence[int]) -> np.ndarray:
    """(L, 20): row t = the package's in-context bigram prediction of token t+1 (see ngram.py)."""
    from ..regbench.ngram import ngram_distributions

    out = np.zeros((len(tokens), VOCAB_SIZE))
    for t, dist in enumerate(ngram_distributions([int(x) for x in tokens], 2)):
        out[t, list(dist)] = list(dist.values())
    return out


BIGRAM_MISTAKES: dict[str, Callable[[Sequence[int]], np.ndarray]] = {
    "carried the previous symbol across '|': after a separator the context is the start of a "
    "string, not the last symbol of the previous one": lambda tk: _bigram_variant(tk, reset=False),
    "gave the start of a string no context of its own (backing off to the unigram there); use a "
    "start marker as the context of a string's first symbol": lambda tk: _bigram_variant(tk, start=False),
    "predicted uniformly when the context has not been seen yet; back off to the unigram counts of "
    "everything read so far": lambda tk: _bigram_variant(tk, backoff=False),
    "counted the pair ending at token t only after predicting from it (one step late); row t may "
    "use every pair up to and including token t": lambda tk: _bigram_variant(tk, lag=True),
    "counted '|' as a symbol (so it gets predicted); the separator is never predicted, it only "
    "starts a new string": lambda tk: _bigram_variant(tk, count_sep=True),
}


def bigram_cases() -> list[tuple[list[int]]]:
    """A hand-made sample and three evaluation samples of test automata (as lists of token ids)."""
    hand = [1, 2, 1, 3, SEP, 2, 1, 2, SEP, 1, 2, 1]  # "abac|bab|aba"
    return [(hand,), *[(list(s.tokens),) for s in draw_samples(test_automata()[:3])]]


def check_bigram(bigram_next: Callable[[Sequence[int]], np.ndarray]) -> None:
    """Exercise 6.4: the in-context bigram's predictions on four samples, against the package's."""
    compare(CHAPTER, "bigram_next", bigram_next, reference_bigram, bigram_cases(),
            mistakes=BIGRAM_MISTAKES, arg_names=("tokens",), float32_probe=False,
            hint="Row t: after reading tokens[: t + 1], the counts of what followed the current "
                 "context (the last symbol, or the start of the string) within strings, normalised; "
                 "if that context was never seen, the counts of every symbol read so far.")  # fmt: skip
