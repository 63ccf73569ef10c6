"""In-context n-gram predictors: the benchmark's reference point for "learning in context".

At every position the predictor counts, in the prefix read so far only, which symbol followed
each context of n-1 symbols, and predicts the next symbol from those counts. Nothing is
trained: whatever it knows about the language it learned from the sample itself.

- Counts are taken *within* strings: each string is read as if left-padded with n-1 start
  markers, so the start of a string is a context of its own (the automaton's start state).
- **Backoff** (ours, documented): use the longest context of order k = n-1, n-2, …, 0 that
  has been seen at least once in the prefix, and predict the maximum-likelihood estimate of its
  counts (no smoothing, no mixing of orders). Order 0 (unigram) is every symbol read so far.
  If nothing has been read (cannot happen in a sample, which starts with a symbol) the
  prediction is uniform over the 18 symbols.
- The separator and the pad are never predicted (probability 0); a separator or a pad in the
  input ends the current string.

The output is log-probabilities (B, T, 20), with -inf for probability 0, so the predictor can be
scored like any model: ``evaluate(InContextNGram(3), test_automata())``.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import torch
from torch import nn

from .vocab import SYMBOL_IDS, VOCAB_SIZE

__all__ = ["InContextNGram", "ngram_distributions"]

_START = 0  # the start-of-string marker in contexts (the pad id: never a content symbol)


def ngram_distributions(tokens: list[int], n: int) -> list[dict[int, float]]:
    """For each position t of ``tokens``, the predicted distribution of token t+1 (symbol -> p)."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive integer (1 = unigram, 2 = bigram, ...), got {n!r}")
    if any(not isinstance(t, int | np.integer) or not 0 <= t < VOCAB_SIZE for t in tokens):
        raise ValueError(f"tokens must be token ids in [0, {VOCAB_SIZE}) (see regbench.encode)")
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


class InContextNGram(nn.Module):
    """The in-context n-gram predictor as a model: (B, T) ids -> (B, T, 20) log-probabilities."""

    def __init__(self, n: int) -> None:
        super().__init__()
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"n must be a positive integer (1 = unigram, 2 = bigram, ...), got {n!r}")
        self.n = n

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        if not isinstance(idx, torch.Tensor) or idx.dim() != 2 or idx.dtype not in (torch.int64, torch.int32):
            raise ValueError("idx must be a (batch, time) tensor of integer token ids")
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= VOCAB_SIZE):
            raise ValueError(f"token ids must lie in [0, {VOCAB_SIZE})")
        probs = np.zeros((*idx.shape, VOCAB_SIZE))  # (B, T, V)
        for b, row in enumerate(idx.tolist()):
            for t, dist in enumerate(ngram_distributions(row, self.n)):
                probs[b, t, list(dist)] = list(dist.values())
        with np.errstate(divide="ignore"):
            logp = np.log(probs)  # log 0 = -inf: never predicted
        return torch.from_numpy(logp).to(torch.float32).to(idx.device)

    def extra_repr(self) -> str:
        return f"n={self.n}"
