"""In-context n-gram predictors: the benchmark's reference point for "learning in context".

At every position the predictor counts, in the prefix read so far only, which symbol followed
each context of n-1 symbols, and predicts the next symbol from those counts. Nothing is
trained: whatever it knows about the language it learned from the sample itself.

- Counts are taken *within* strings: each string is read as if left-padded with n-1 start
  markers, so the start of a string is a context of its own (the automaton's start state).
- The separator and the pad are never predicted (probability 0); a separator or a pad in the
  input ends the current string. Only symbols read so far can be predicted.

Two ways to back off from a context seen too rarely, both without smoothing:

- ``backoff="longest"`` (the course's, simplest): use the longest context of order k = n-1,
  n-2, …, 0 that has been seen at least once in the prefix, and predict the maximum-likelihood
  estimate of its counts (no mixing of orders). Order 0 (unigram) is every symbol read so far.
  If nothing has been read (cannot happen in a sample, which starts with a symbol) the
  prediction is uniform over the 18 symbols.
- ``backoff="leftover"`` (the benchmark's own baseline, as its ``ngram.py`` computes it): with
  ``c(w)`` the number of times the symbols ``w`` occur in a row in the left-padded strings read so
  far (the current, unfinished string included), the order-k estimate after context ``h`` is
  ``c(h a) / c(h)`` for every symbol ``a`` already seen after ``h``. Those do not sum to 1: ``h``
  also occurs where nothing followed it yet (at the end of a string, and at the current position),
  and that **leftover** mass ``β = 1 − Σ c(h a) / c(h)`` goes to the symbols never seen after
  ``h``, shared in proportion to their order k-1 estimate (after the context without its oldest
  symbol), and so on down to the unigram frequencies. If every symbol read so far has been seen
  after ``h`` the leftover has nowhere to go; the distribution is then renormalised to sum to 1.

The output is log-probabilities (B, T, 20), with -inf for probability 0, so the predictor can be
scored like any model: ``evaluate(InContextNGram(3), test_automata())``.

The same bigram as a **memory unit** (chapter 07, exercise 7.5): :func:`memory_bigram` stores the
pairs (key one-hot(x_s), value one-hot(x_{s+1})) and retrieves at t with chapter 02's strictly
causal softmax over the pairs s < t; with λ = 0 and a large β it is the in-context bigram, with
β = 0 the unigram of what followed. :class:`MemoryBigram` reads whole samples that way.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import torch
from torch import nn

from .vocab import PAD, SEP, SYMBOL_IDS, VOCAB_SIZE

__all__ = ["InContextNGram", "ngram_distributions", "BACKOFFS", "memory_bigram", "MemoryBigram"]

_START = 0  # the start-of-string marker in contexts (the pad id: never a content symbol)
BACKOFFS = ("longest", "leftover")


def _check(tokens: list[int], n: int, backoff: str) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive integer (1 = unigram, 2 = bigram, ...), got {n!r}")
    if backoff not in BACKOFFS:
        raise ValueError(f"backoff must be one of {BACKOFFS}, got {backoff!r}")
    if any(not isinstance(t, int | np.integer) or not 0 <= t < VOCAB_SIZE for t in tokens):
        raise ValueError(f"tokens must be token ids in [0, {VOCAB_SIZE}) (see regbench.encode)")


def ngram_distributions(tokens: list[int], n: int, backoff: str = "longest") -> list[dict[int, float]]:
    """For each position t of ``tokens``, the predicted distribution of token t+1 (symbol -> p).

    ``backoff``: ``"longest"`` or ``"leftover"`` (the benchmark's); see the module docstring.
    """
    _check(tokens, n, backoff)
    if backoff == "leftover":
        return _leftover_distributions(tokens, n)
    counts: list[defaultdict[tuple[int, ...], Counter[int]]] = [defaultdict(Counter) for _ in range(n)]
    history = [_START] * (n - 1)  # the current string, left-padded with start markers
    out = []
    for tok in tokens:
        tok = int(tok)
        if tok in SYMBOL_IDS:
            for k in range(n):  # count tok after each of its contexts of order 0 … n-1
                counts[k][tuple(history[len(history) - k :])][tok] += 1
            history.append(tok)
        else:  # separator or pad: a new string starts
            history = [_START] * (n - 1)
        dist: dict[int, float] = {}
        for k in range(n - 1, -1, -1):  # backoff: the longest context seen so far
            seen = counts[k].get(tuple(history[len(history) - k :]))
            if seen:
                total = sum(seen.values())
                dist = {a: c / total for a, c in seen.items()}
                break
        out.append(dist or {a: 1 / len(SYMBOL_IDS) for a in SYMBOL_IDS})
    return out


def _leftover_distributions(tokens: list[int], n: int) -> list[dict[int, float]]:
    """``backoff="leftover"``: counts of every run of 1 … n symbols in the padded strings so far."""
    runs: Counter[tuple[int, ...]] = Counter()  # c(w) for every w of length 1 … n (start markers too)

    def start_string() -> list[int]:
        # the n-1 start markers hold n-k runs of k markers each (k = 1 … n-1), as in a padded string
        for k in range(1, n):
            runs[(_START,) * k] += n - k
        return [_START] * (n - 1)

    history = start_string()
    out = []
    for tok in tokens:
        tok = int(tok)
        if tok in SYMBOL_IDS:
            history.append(tok)
            for k in range(1, n + 1):  # the runs that end at this symbol
                runs[tuple(history[len(history) - k :])] += 1
        else:  # separator or pad: a new string starts
            history = start_string()
        seen_symbols = sorted(a for a in SYMBOL_IDS if runs[(a,)] > 0)
        if not seen_symbols:
            out.append({a: 1 / len(SYMBOL_IDS) for a in SYMBOL_IDS})
            continue
        total = sum(runs[(a,)] for a in seen_symbols)
        p = {a: runs[(a,)] / total for a in seen_symbols}  # order 1: the unigram frequencies
        for k in range(2, n + 1):
            h = tuple(history[len(history) - (k - 1) :])  # the context: the last k-1 symbols (or markers)
            c_h = runs[h]  # >= 1: h ends at the current position
            q = {a: runs[(*h, a)] / c_h for a in seen_symbols if runs[(*h, a)] > 0}
            leftover = 1.0 - sum(q.values())
            unseen = [a for a in seen_symbols if a not in q]
            lower = sum(p[a] for a in unseen)
            for a in unseen:  # the leftover, shared in proportion to the lower order's estimate
                q[a] = leftover * p[a] / lower
            p = q
        norm = sum(p.values())  # < 1 only when every symbol was seen after the context
        out.append({a: v / norm for a, v in p.items() if v > 0})
    return out


class InContextNGram(nn.Module):
    """The in-context n-gram predictor as a model: (B, T) ids -> (B, T, 20) log-probabilities.

    ``backoff``: ``"longest"`` (default) or ``"leftover"`` (the benchmark's); see the module docstring.
    """

    def __init__(self, n: int, backoff: str = "longest") -> None:
        super().__init__()
        _check([], n, backoff)
        self.n, self.backoff = n, backoff

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        if not isinstance(idx, torch.Tensor) or idx.dim() != 2 or idx.dtype not in (torch.int64, torch.int32):
            raise ValueError("idx must be a (batch, time) tensor of integer token ids")
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= VOCAB_SIZE):
            raise ValueError(f"token ids must lie in [0, {VOCAB_SIZE})")
        probs = np.zeros((*idx.shape, VOCAB_SIZE))  # (B, T, V)
        for b, row in enumerate(idx.tolist()):
            for t, dist in enumerate(ngram_distributions(row, self.n, self.backoff)):
                probs[b, t, list(dist)] = list(dist.values())
        with np.errstate(divide="ignore"):
            logp = np.log(probs)  # log 0 = -inf: never predicted
        return torch.from_numpy(logp).to(torch.float32).to(idx.device)

    def extra_repr(self) -> str:
        return f"n={self.n}, backoff={self.backoff!r}"


def _retrieve_next(ids: np.ndarray, vocab: int, beta: float, store: np.ndarray) -> np.ndarray:
    """Row t: Σ_{s<t, store[s]} softmax_s(β k_t·k_s) one-hot(ids[s+1]), k = one-hot(ids); uniform
    over the vocabulary where no pair is readable. ids: (T,), store: (T,) bool -> (T, vocab)."""
    T = len(ids)
    same = ids[:, None] == ids[None, :]  # (T, T): k_t·k_s of one-hot keys, 1 or 0
    readable = np.tril(np.ones((T, T), dtype=bool), -1) & store[None, :]  # pairs s < t, stored
    scores = np.where(readable, beta * same, -np.inf)  # (T, T)
    out = np.full((T, vocab), 1.0 / vocab)  # nothing stored yet: uniform
    rows = readable.any(axis=1)
    if rows.any():
        z = scores[rows]
        w = np.exp(z - z.max(axis=1, keepdims=True))  # shifted: no overflow at large β
        w /= w.sum(axis=1, keepdims=True)  # (R, T); ties share the weight equally
        values = np.zeros((T, vocab))  # value of pair s: one-hot(ids[s + 1]); the last has none
        values[np.arange(T - 1), ids[1:]] = 1.0
        out[rows] = w @ values
    return out


def memory_bigram(symbols: np.ndarray, vocab: int, beta: float) -> np.ndarray:
    """One memory unit read as an in-context bigram (the reference of chapter 07's exercise 7.5).

    Key of position s: one-hot(x_s) (λ = 0: no leaky average); value: one-hot(x_{s+1}), a peek at
    the next symbol. Row t predicts x_{t+1} from the pairs s < t (index s + 1 ≤ t, chapter 02's
    causal retrieval): ``Σ_s softmax_s(β k_t·k_s) v_s``. Matching pairs share the weight equally,
    so at large β row t is the average of what followed the earlier occurrences of x_t (the
    bigram); a symbol not seen before matches no pair, and every pair gets the same weight (the
    average of all the next symbols so far); β = 0 gives that average everywhere. Row 0 reads an
    empty memory and is uniform, 1 / vocab.

    symbols: (T,) ints in [0, vocab), T ≥ 1; beta ≥ 0. Returns (T, vocab) float64, rows sum to 1.
    """
    ids = np.asarray(symbols)
    if ids.ndim != 1 or len(ids) == 0 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError("symbols must be a non-empty 1-D array of integer ids")
    if not isinstance(vocab, int | np.integer) or vocab < 1 or ids.min() < 0 or ids.max() >= vocab:
        raise ValueError(f"symbols must lie in [0, vocab) for a positive integer vocab, got vocab={vocab!r}")
    if not np.isfinite(beta) or beta < 0:
        raise ValueError(f"beta must be a finite number >= 0, got {beta!r}")
    return _retrieve_next(ids.astype(np.int64), int(vocab), float(beta), np.ones(len(ids), dtype=bool))


class MemoryBigram(nn.Module):
    """:func:`memory_bigram` on whole samples, as a model: (B, T) ids -> (B, T, 20) log-probabilities.

    A ``|`` is put in front of each sample, so the key ``|`` stands for the start of a string (the
    n-gram's start marker), and no pair whose value is ``|`` or the pad is stored (the n-gram never
    predicts them). Then β = 0 is exactly the in-context unigram and a large β the in-context bigram
    (``InContextNGram(1)`` and ``InContextNGram(2)``, backoff ``"longest"``): a context never seen
    matches no pair, and the softmax falls back on all of them, as the bigram backs off.
    """

    def __init__(self, beta: float) -> None:
        super().__init__()
        if not np.isfinite(beta) or beta < 0:
            raise ValueError(f"beta must be a finite number >= 0, got {beta!r}")
        self.beta = float(beta)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        if not isinstance(idx, torch.Tensor) or idx.dim() != 2 or idx.dtype not in (torch.int64, torch.int32):
            raise ValueError("idx must be a (batch, time) tensor of integer token ids")
        probs = np.zeros((*idx.shape, VOCAB_SIZE))  # (B, T, V)
        for b, row in enumerate(idx.cpu().numpy().astype(np.int64)):
            ids = np.r_[SEP, row]  # (T + 1,): position t + 1 is token t
            store = np.r_[(ids[1:] != SEP) & (ids[1:] != PAD), False]  # pair s stores value ids[s + 1]
            probs[b] = _retrieve_next(ids, VOCAB_SIZE, self.beta, store)[1:]
        with np.errstate(divide="ignore"):
            logp = np.log(probs)  # log 0 = -inf: never predicted
        return torch.from_numpy(logp).to(torch.float32).to(idx.device)

    def extra_repr(self) -> str:
        return f"beta={self.beta}"
