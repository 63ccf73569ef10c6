"""Which heads copy a story's names, and do they still copy out of distribution?

Chapter 06 measures that both story models copy a name from its earlier mentions, but that on
the question game with held-out names (``generate_ood_stories(mode="game")``) the GPT's copying
almost disappears while the mosaic's stays. Its hypothesis: a mosaic's contextual memory
retrieves "what followed a context like this one" wherever it stood and whatever the text
around it, while the GPT learned a copying circuit from its training stories that may depend on
them. This module gives the pieces of a test of that hypothesis, for a
:class:`~mosaics_edu.models.MemoryMosaicLM` and its :class:`~mosaics_edu.models.GPT` twin alike:

- :func:`name_tokens`: story windows (as :func:`mosaics_edu.course.icl.story_windows` cuts them) with
  every token of a story's names labelled: which name, which mention, first mention or later;
  :meth:`NameTokens.target_mask` turns the labels into masks over the targets;
- :func:`head_name_costs` and :func:`copying_heads`: zero each contextual-memory (attention) head
  alone, measure the rise of the loss on the tokens of later name mentions and on the story's
  other tokens; the copying heads are those whose removal costs names the most beyond what it
  costs the rest;
- :func:`copying_share`: zero a set of heads together and measure how much of the model's
  *copying gain* (first-mention minus later-mention loss per name token) they carry;
- :func:`prefix_matching`: each head's weight, at a later mention, on the stored pair that brings
  the token to copy from an earlier mention of the same name, found by the token before it (the
  prefix-matching pattern of Olsson et al., 2022, restricted to names).

Conventions are :mod:`mosaics_edu.course.inspection`'s: ablations zero a head's output before W_o,
``maps[b, h, t, s]`` is the weight query t gives pair s, and pair s brings the token at
``s + offset`` (offset 1 for a mosaic, 0 for a GPT: :func:`~mosaics_edu.course.inspection.value_offset`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data import Story, Tokenizer, name_spans
from ..models.lm import MemoryMosaicLM
from .icl import story_windows, token_char_offsets
from .inspection import per_token_loss, value_offset

__all__ = [
    "TARGET_GROUPS",
    "NameTokens",
    "PrefixMatching",
    "copying_heads",
    "copying_share",
    "head_name_costs",
    "name_tokens",
    "prefix_matching",
]

TARGET_GROUPS = ("later", "first", "other")
"""The targets :meth:`NameTokens.target_mask` separates: tokens of a name's later mentions (the
context can supply them), of its first mention (it cannot), and the story's other tokens."""


# --------------------------------------------------------------------------------------------
# the tokens of a story's names
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NameTokens:
    """Story windows with the tokens of each story's names labelled (see :func:`name_tokens`).

    All arrays are (N, T+1), aligned with ``windows``: ``name`` the index in ``story.names`` of
    the name a token belongs to (-1: not a name); ``mention`` the position of the first token of
    that mention (-1: not a name), so two tokens with the same ``name`` and a smaller ``mention``
    lie in an earlier mention; ``later`` True for the tokens of a name's later mentions (the ones
    a model can copy); ``in_story`` True for the tokens of the window's own story (the window may
    run into the next stories, whose tokens are left unlabelled).
    """

    windows: torch.Tensor
    name: np.ndarray
    mention: np.ndarray
    later: np.ndarray
    in_story: np.ndarray

    @property
    def idx(self) -> torch.Tensor:
        """The model's input: (N, T)."""
        return self.windows[:, :-1]

    @property
    def targets(self) -> torch.Tensor:
        """The next tokens: (N, T); position t predicts ``windows[:, t + 1]``."""
        return self.windows[:, 1:]

    def target_mask(self, group: str) -> torch.Tensor:
        """(N, T) bool over the targets: ``"later"`` (a token of a name's later mention),
        ``"first"`` (of its first mention) or ``"other"`` (any other token of the story)."""
        if group not in TARGET_GROUPS:
            raise ValueError(f"group must be one of {TARGET_GROUPS}, got {group!r}")
        is_name = self.name[:, 1:] >= 0
        own = self.in_story[:, 1:]
        mask = {
            "later": is_name & self.later[:, 1:],
            "first": is_name & ~self.later[:, 1:],
            "other": own & ~is_name,
        }[group]
        return torch.from_numpy(mask.copy())


def name_tokens(
    tokenizer: Tokenizer, stories: Sequence[Story], block_size: int, n_windows: int | None = None
) -> NameTokens:
    """The windows of :func:`mosaics_edu.course.icl.story_windows` with every name token labelled.

    Window ``k`` starts at story ``k``; only story ``k``'s own names in its own text are
    labelled, as in :func:`mosaics_edu.course.icl.name_recall`: a name's tokens are those overlapping
    its characters (with BPE the leading space belongs to the first token), and a mention cut off
    by the window's end is left unlabelled (as are the mentions after it).
    """
    if not isinstance(block_size, int) or isinstance(block_size, bool) or block_size < 2:
        raise ValueError(f"block_size must be an int >= 2, got {block_size!r}")
    for story in stories:
        if not isinstance(story, Story):
            raise TypeError(f"stories must hold Story objects (with .names), got {type(story).__name__}")
    windows = story_windows(tokenizer, stories, block_size, n_windows)  # (N, T+1)
    N, T1 = windows.shape
    name = np.full((N, T1), -1, dtype=np.int64)
    mention = np.full((N, T1), -1, dtype=np.int64)
    later = np.zeros((N, T1), dtype=bool)
    in_story = np.zeros((N, T1), dtype=bool)
    for k in range(N):
        story = stories[k]
        ids = tokenizer.encode(story.text)[:T1]  # the window's first tokens: the story's own
        in_story[k, : len(ids)] = True
        offsets = token_char_offsets(tokenizer, ids)
        for span in name_spans(tokenizer.decode(ids), story.names):
            toks = [t for t, (s, e) in enumerate(offsets) if s < span.end and e > span.start]
            if not toks or offsets[toks[-1]][1] < span.end:  # cut off by the window
                break
            name[k, toks] = story.names.index(span.name)
            mention[k, toks] = toks[0]
            later[k, toks] = span.repeated
    return NameTokens(windows, name, mention, later, in_story)


# --------------------------------------------------------------------------------------------
# ablations: which heads carry copying
# --------------------------------------------------------------------------------------------


def _memory_kind(model: nn.Module) -> str:
    """The ablatable memory of a block: ``"cmem"`` for a mosaic, ``"attn"`` for a GPT."""
    value_offset(model)  # validates the model
    return "cmem" if isinstance(model, MemoryMosaicLM) else "attn"


def _check_names(names: Any) -> None:
    if not isinstance(names, NameTokens):
        raise TypeError(f"names must be a NameTokens (see name_tokens), got {type(names).__name__}")


def _group_means(loss: torch.Tensor, names: NameTokens) -> dict[str, float]:
    out = {}
    for group in TARGET_GROUPS:
        mask = names.target_mask(group)
        if not mask.any():
            raise ValueError(
                f"the windows hold no '{group}' targets: pass stories whose names are mentioned "
                "more than once (and more windows)"
            )
        out[group] = float(loss[mask].mean())
    return out


def head_name_costs(model: nn.Module, names: NameTokens) -> dict[str, np.ndarray]:
    """Zero each contextual-memory (attention) head alone; the mean loss change per target group.

    Returns ``{"later": (L, H), "first": (L, H), "other": (L, H), "specific": (L, H)}``: the
    change of the mean loss (nats per token, ablated minus intact) on the targets of each of
    :data:`TARGET_GROUPS`, and ``specific`` = later - other, what zeroing the head costs the
    names a model can copy beyond what it costs every token. Why beyond: a head whose removal
    breaks the model everywhere also raises the loss on names without copying anything.
    """
    _check_names(names)
    kind = _memory_kind(model)
    L, H = model.config.n_layer, model.config.n_head
    intact = _group_means(per_token_loss(model, names.idx, names.targets), names)
    out = {g: np.zeros((L, H)) for g in TARGET_GROUPS}
    for layer in range(L):
        for head in range(H):
            ablated = per_token_loss(model, names.idx, names.targets, ablate=[(layer, kind, head)])
            for group, value in _group_means(ablated, names).items():
                out[group][layer, head] = value - intact[group]
    out["specific"] = out["later"] - out["other"]
    return out


def copying_heads(costs: dict[str, np.ndarray], k: int = 2) -> list[tuple[int, int]]:
    """The ``k`` heads ``(block, head)`` with the largest ``costs["specific"]``, largest first.

    ``costs``: :func:`head_name_costs`. Ties keep the order block by block, head by head.
    """
    if not isinstance(costs, dict) or "specific" not in costs:
        raise ValueError("costs must be the dict head_name_costs returns (with a 'specific' entry)")
    specific = np.asarray(costs["specific"], dtype=np.float64)
    if specific.ndim != 2:
        raise ValueError(f"costs['specific'] must be (n_layer, n_head), got shape {specific.shape}")
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= specific.size:
        raise ValueError(f"k must be an int in [1, {specific.size}] (the number of heads), got {k!r}")
    order = np.argsort(-specific, axis=None, kind="stable")[:k]
    H = specific.shape[1]
    return [(int(i // H), int(i % H)) for i in order]


def copying_share(model: nn.Module, names: NameTokens, heads: Sequence[tuple[int, int]]) -> dict[str, float]:
    """How much of the model's copying the ``heads`` carry, zeroed together.

    The **copying gain** is the mean loss on the tokens of first mentions minus the mean loss on
    the tokens of later mentions (nats per name token): at a first mention a name is one guess
    among thousands, at a later one it can be copied from the context. Returns the intact mean
    losses ``later``, ``first``, ``other`` (:data:`TARGET_GROUPS`), the same with every head of
    ``heads`` zeroed (``later_ablated``, …), ``gain`` and ``gain_ablated``, and ``carried`` =
    1 - gain_ablated / gain: the share of the gain the heads carry (0: none; 1: without them a
    later mention is no easier than a first one; above 1: without them it is harder).
    """
    _check_names(names)
    kind = _memory_kind(model)
    heads = list(heads)
    if not heads:
        raise ValueError("heads is empty: pass (block, head) pairs, e.g. copying_heads(costs)")
    for item in heads:
        if not (isinstance(item, tuple) and len(item) == 2):
            raise ValueError(f"heads must hold (block, head) pairs, got {item!r}")
    ablate = [(layer, kind, head) for layer, head in heads]  # trace checks the ranges
    intact = _group_means(per_token_loss(model, names.idx, names.targets), names)
    if intact["first"] <= intact["later"]:
        raise ValueError(
            f"the model does not copy on these windows (first-mention loss {intact['first']:.3f} <= "
            f"later-mention loss {intact['later']:.3f}): there is no gain to share"
        )
    ablated = _group_means(per_token_loss(model, names.idx, names.targets, ablate=ablate), names)
    out = dict(intact)
    out.update({f"{g}_ablated": v for g, v in ablated.items()})
    out["gain"] = intact["first"] - intact["later"]
    out["gain_ablated"] = ablated["first"] - ablated["later"]
    out["carried"] = 1.0 - out["gain_ablated"] / out["gain"]
    return out


# --------------------------------------------------------------------------------------------
# retrieval: the prefix-matching pattern on names
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PrefixMatching:
    """One block's prefix-matching weights at the later-mention queries (Q of them, H heads).

    ``weight`` (Q, H): each head's weight on the source pairs of the query; ``chance`` (Q,): the
    weight a head reading every pair it may read equally would put there; ``distance`` (Q,):
    tokens from the query back to its nearest source pair; ``window``, ``position`` (Q,): where
    the query is (position t predicts the name token at t + 1).
    """

    weight: np.ndarray
    chance: np.ndarray
    distance: np.ndarray
    window: np.ndarray
    position: np.ndarray

    @property
    def mean(self) -> np.ndarray:
        """(H,): the mean weight over the queries (nan when there are none)."""
        if len(self.weight) == 0:
            return np.full(self.weight.shape[1], np.nan)
        return self.weight.mean(axis=0)

    @property
    def chance_mean(self) -> float:
        """The chance level of :attr:`mean` (nan when there are no queries)."""
        return float(self.chance.mean()) if len(self.chance) else float("nan")

    def by_distance(self, edges: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Mean weight per bin of ``distance`` (``edges[j] <= distance < edges[j+1]``):
        (J, H) means (nan for an empty bin) and (J,) query counts."""
        e = np.asarray(edges)
        if e.ndim != 1 or len(e) < 2 or np.any(np.diff(e) <= 0):
            raise ValueError(f"edges must be increasing bin edges (at least two), got {list(edges)}")
        J, H = len(e) - 1, self.weight.shape[1]
        means, counts = np.full((J, H), np.nan), np.zeros(J, dtype=np.int64)
        for j in range(J):
            sel = (self.distance >= e[j]) & (self.distance < e[j + 1])
            counts[j] = int(sel.sum())
            if counts[j]:
                means[j] = self.weight[sel].mean(axis=0)
        return means, counts


def prefix_matching(maps: Any, names: NameTokens, offset: int) -> PrefixMatching:
    """Each head's weight on the pair that brings a name's token from its earlier mentions.

    Args:
        maps: (N, H, T, T) one block's retrieval (attention) weights on ``names.idx``, e.g.
            ``inspection.trace(model, names.idx).maps[block]``.
        names: :func:`name_tokens` (N windows of T + 1 tokens).
        offset: :func:`~mosaics_edu.course.inspection.value_offset` of the model (1 mosaic, 0 GPT).

    A query is a position t whose target y = t + 1 is a token of a name's later mention. Its
    **source pairs** are the pairs s it may read (a mosaic s < t, a GPT s <= t) whose value
    brings a token b = s + offset of an *earlier* mention of the same name with the same id as
    the target, and whose token before it matches the query's (x_{b-1} = x_t): the prefix match
    that finds, in an earlier mention, the token that followed the current one. A head that
    copies the name that way puts its weight there. Queries without a source pair (a first
    name piece whose preceding word differs from the earlier mentions', a name written with
    other tokens) are left out.
    """
    _check_names(names)
    if offset not in (0, 1):
        raise ValueError(f"offset must be 1 (mosaic: a value peeks at s + 1) or 0 (GPT), got {offset!r}")
    # kept in its own precision (one block's maps of 48 windows are 50 MB in float32); each
    # window's rows are summed in float64
    m = maps.detach().cpu().float().numpy() if isinstance(maps, torch.Tensor) else np.asarray(maps)
    N, T1 = names.windows.shape
    T = T1 - 1
    if m.ndim != 4 or m.shape[0] != N or m.shape[2:] != (T, T):
        raise ValueError(f"maps must be (N={N}, H, T={T}, T={T}): one block's maps on names.idx; "
                         f"got {m.shape}")
    x = names.windows.numpy()
    t_idx, s_idx = np.arange(T)[:, None], np.arange(T)[None, :]
    readable = s_idx < t_idx if offset == 1 else s_idx <= t_idx  # (T, T)
    b = s_idx + offset  # (1, T): the token pair s brings
    b_ok = (b >= 1) & (b <= T)
    b_c = np.clip(b, 1, T)[0]  # (T,)
    weights, chance, distance, window, position = [], [], [], [], []
    for k in range(N):
        y = np.arange(1, T1)  # (T,) the targets' positions
        queries = names.later[k, y] & (names.name[k, y] >= 0)  # (T,)
        src = (
            readable
            & b_ok
            & (names.name[k, b_c][None, :] == names.name[k, y][:, None])
            & (names.mention[k, b_c][None, :] >= 0)
            & (names.mention[k, b_c][None, :] < names.mention[k, y][:, None])
            & (x[k, b_c][None, :] == x[k, y][:, None])
            & (x[k, b_c - 1][None, :] == x[k, :T][:, None])
        )  # (T, T): query t, pair s
        src &= queries[:, None]
        rows = np.flatnonzero(src.any(axis=1))
        if not len(rows):
            continue
        sel = src[rows]  # (q, T)
        weights.append(np.einsum("hqs,qs->qh", m[k][:, rows].astype(np.float64), sel))
        n_read = readable[rows].sum(axis=1)  # (q,)
        chance.append(sel.sum(axis=1) / n_read)
        nearest = np.where(sel, s_idx, -1).max(axis=1)
        distance.append(rows - nearest)
        window.append(np.full(len(rows), k))
        position.append(rows)
    H = m.shape[1]
    if not weights:
        empty = np.zeros(0)
        return PrefixMatching(np.zeros((0, H)), empty, empty.astype(np.int64), empty.astype(np.int64),
                              empty.astype(np.int64))
    return PrefixMatching(
        np.concatenate(weights), np.concatenate(chance), np.concatenate(distance),
        np.concatenate(window), np.concatenate(position),
    )
