"""When do induction heads form? A model's copying, measured the way Olsson et al. (2022) do.

Olsson et al., *In-context Learning and Induction Heads* (2022), define an induction head by two
properties measured on **sequences of random tokens repeated once** (``[A B C … | A B C …]``):

- **prefix matching**: at a token of the second copy, the head attends to the position right
  after that token's occurrence in the first copy (the token that followed it then);
- **copying**: what the head writes raises the logit of the token it attended to.

And they read the model's behaviour off the same sequences: on the second copy a model with
induction heads predicts almost every token (its loss falls far below the first copy's, where
random tokens cannot be predicted).

Chapter 08's induction score is something else: prefix matching measured on *story text*
(:func:`mosaics_edu.course.inspection.head_scores`), where a match can also come from the grammar of
the stories. This module measures Olsson et al.'s three quantities, for a Memory Mosaic and a
GPT alike:

- :func:`repeated_random_tokens`: the test sequences (uniform over a vocabulary, Olsson et al.'s
  test, or drawn by training frequency); :func:`repeated_text`: the same with a stretch of
  held-out text in place of random tokens;
- :func:`repeat_scores`: loss and top-1 accuracy on the first and the second copy, and per head
  the prefix-matching score (the weight on the pair whose value brings the token to copy: for a
  GPT the position after the earlier occurrence, for a mosaic the earlier occurrence itself,
  whose value already peeks at the next token) and the copying score (the head's direct share of
  the logit of the token to copy, :func:`mosaics_edu.course.inspection.head_logit_attribution`; Olsson
  et al. read copying off the eigenvalues of a head's OV circuit, which a mosaic's memory heads
  do not have in that form, so the direct logit share is the check that applies to both).

``tools/score_story_runs.py`` applies them to the story models' weights saved every 100 steps of
training and ships the curves (``mosaics_edu/assets/stories/induction.json``) for chapter 08.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .inspection import head_logit_attribution, trace, value_offset

__all__ = ["repeated_random_tokens", "repeated_text", "repeat_scores"]


def repeated_random_tokens(
    n_seq: int, half: int, vocab: int | Sequence[int], seed: int = 0, weights: Sequence[float] | None = None
) -> torch.Tensor:
    """``n_seq`` sequences of ``half`` random token ids, each followed by itself: (n_seq, 2 half).

    ``vocab``: an int V (ids drawn uniformly from 0 … V-1, Olsson et al.'s test) or the ids to draw
    from (e.g. only the tokens that occur in the training text); ``weights``: one probability
    weight per id of ``vocab`` (e.g. their training frequencies), uniform if None. Deterministic
    in ``seed`` (its own generator).
    """
    for name, value in (("n_seq", n_seq), ("half", half)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 2:
            raise ValueError(f"{name} must be an int >= 2, got {value!r}")
    ids = torch.arange(vocab) if isinstance(vocab, int) else torch.as_tensor(list(vocab), dtype=torch.long)
    if ids.dim() != 1 or len(ids) < 2:
        raise ValueError(f"vocab must be an int >= 2 or at least 2 token ids, got {vocab!r}")
    g = torch.Generator().manual_seed(seed)
    if weights is None:
        first = ids[torch.randint(0, len(ids), (n_seq, half), generator=g)]  # (N, half)
    else:
        w = torch.as_tensor(list(weights), dtype=torch.float64)
        if w.shape != ids.shape or (w < 0).any() or w.sum() <= 0:
            raise ValueError(f"weights must be {len(ids)} non-negative numbers (one per id), not all 0")
        first = ids[torch.multinomial(w.expand(n_seq, -1), half, replacement=True, generator=g)]
    return torch.cat([first, first], dim=1)  # (N, 2 half)


def repeated_text(stream: Sequence[int], n_seq: int, half: int, seed: int = 0) -> torch.Tensor:
    """``n_seq`` random stretches of ``half`` tokens of ``stream`` (e.g. held-out stories), each
    followed by itself: (n_seq, 2 half). The first copy is ordinary text, so a model predicts it
    from what it learned; what the second copy adds is what the model copies."""
    ids = torch.as_tensor(list(stream), dtype=torch.long)
    if not isinstance(half, int) or half < 2 or len(ids) < half + 1:
        raise ValueError(f"half must be an int >= 2 and the stream longer than it; got half={half!r} "
                         f"and a stream of {len(ids)} tokens")
    g = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, len(ids) - half, (n_seq,), generator=g).tolist()
    first = torch.stack([ids[s : s + half] for s in starts])  # (N, half)
    return torch.cat([first, first], dim=1)  # (N, 2 half)


@torch.no_grad()
def repeat_scores(model: nn.Module, tokens: torch.Tensor) -> dict:
    """Olsson et al.'s test on repeated random tokens (``tokens`` from
    :func:`repeated_random_tokens`, (N, 2L) with 2L - 1 <= the model's block size).

    The model reads ``tokens[:, :-1]``; position t predicts token t + 1. The **first copy**'s
    targets are tokens 1 … L-1 (nothing to copy yet), the **second copy**'s are tokens
    L+1 … 2L-1 (each followed its predecessor once before; token L, the first of the second copy,
    is left out: nothing announces it). Returns floats ``loss_first``, ``loss_second`` (mean
    cross-entropy, nats), ``acc_first``, ``acc_second`` (top-1 accuracy), and (n_layer, H)
    tensors ``prefix`` (mean weight of a second-copy query on the pair that brings its target)
    and ``copying`` (mean direct logit share of the target per head on the second copy, minus
    the same on the first copy).
    """
    if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2 or tokens.shape[1] % 2:
        raise ValueError("tokens must be a (N, 2L) tensor of a sequence repeated once "
                         "(see repeated_random_tokens)")
    half = tokens.shape[1] // 2
    if not torch.equal(tokens[:, :half], tokens[:, half:]):
        raise ValueError("tokens must repeat their first half exactly (see repeated_random_tokens)")
    offset = value_offset(model)
    idx, targets = tokens[:, :-1], tokens[:, 1:]  # (N, 2L-1) each
    tr = trace(model, idx)
    logits = tr.logits.float()  # (N, 2L-1, V)
    loss = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")  # (N, 2L-1)
    hit = (logits.argmax(-1) == targets).float()  # (N, 2L-1)
    first = torch.arange(0, half - 1)  # positions whose targets are tokens 1 … L-1
    second = torch.arange(half, 2 * half - 1)  # targets L+1 … 2L-1
    # the pair that brings the target: a GPT's value at s is token s, so s = t - L + 1 (the
    # position after the earlier copy); a mosaic's value at s peeks at s + 1, so s = t - L
    src = second - half + 1 - offset  # (L-1,)
    prefix = torch.stack([m[:, :, second, src].mean(dim=(0, 2)) for m in tr.maps])  # (n_layer, H)
    shares = head_logit_attribution(model, idx, targets)  # (n_layer, H, N, 2L-1)
    copying = shares[..., second].mean(dim=(-1, -2)) - shares[..., first].mean(dim=(-1, -2))
    return {
        "loss_first": float(loss[:, first].mean()),
        "loss_second": float(loss[:, second].mean()),
        "acc_first": float(hit[:, first].mean()),
        "acc_second": float(hit[:, second].mean()),
        "prefix": prefix,
        "copying": copying,
    }
