"""In-context learning, measured: loss position by position, and names recalled (chapter 06).

A model that learns in context predicts a token better the more of the context it has read. Two
measurements make that visible:

- **per-position loss** (the papers' figure 8): cut held-out text into windows that start at a story
  start, run the model once per window, and keep the cross-entropy at every position
  ``t = 0 … T-1`` (the loss of predicting token ``t + 1`` from tokens ``0 … t``) instead of its mean.
  Averaged over windows this is a curve; a model that uses its context well has a curve that keeps
  falling. ``bootstrap_band`` puts a band around it by resampling windows, and ``curve_crossings``
  finds where two models' curves cross;
- **name recall**: a story introduces a name the model has never seen; at each later mention, how
  much probability does the model give to the whole name (all of its tokens), and how does that
  depend on the distance, in tokens, since the name's previous mention (``name_recall``,
  ``recall_by_distance``)? The first mention cannot be copied and is the baseline.

The shipped models of chapters 06 and 08 load with ``load_story_model("mosaic" | "gpt")``: a
Memory Mosaic and a GPT of the same size (≈ 180,600 parameters, 2 blocks, 256-token context, BPE
with 1,024 tokens), trained by ``tools/train_story_models.sh`` on the generated stories.

Every function here is pure: it takes a model (anything mapping ``(B, T)`` token ids to logits
``(B, T, V)``, or to a tuple whose first element is those logits), token ids or stories, and
returns numbers; nothing is trained or changed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..core.validation import check_positive_int
from ..data import STORY_SEPARATOR, Story, Tokenizer, name_spans

__all__ = [
    "STORY_MODEL_KINDS",
    "NameMention",
    "bootstrap_band",
    "resample_indices",
    "band_from_indices",
    "copyable_fraction",
    "curve_crossings",
    "load_story_model",
    "name_recall",
    "per_position_loss",
    "recall_by_distance",
    "story_model_info",
    "story_windows",
    "token_char_offsets",
]

STORY_MODEL_KINDS = ("mosaic", "gpt")
"""The two shipped story models (``mosaics_edu/assets/stories/<kind>.pt``)."""


# --------------------------------------------------------------------------------------------
# The shipped models
# --------------------------------------------------------------------------------------------


def _assets_dir() -> Path:
    return Path(str(resources.files("mosaics_edu") / "assets" / "stories"))


def story_model_info(kind: str) -> dict:
    """The JSON shipped with a story model: command, configs, parameter count, final losses,
    the logged curve (``history``) and CPU time of its training run."""
    if kind not in STORY_MODEL_KINDS:
        raise ValueError(f"kind must be one of {STORY_MODEL_KINDS}, got {kind!r}")
    path = _assets_dir() / f"{kind}.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: reinstall the package, or retrain with tools/train_story_models.sh "
            "and ship with tools/ship_story_models.py"
        )
    return json.loads(path.read_text())


def load_story_model(kind: str) -> tuple[nn.Module, Tokenizer]:
    """``(model, tokenizer)``: a shipped story model in float32 and eval mode, on the CPU.

    ``kind`` is ``"mosaic"`` or ``"gpt"``. The weights are stored in float16 (to keep the package
    light) and cast back to float32 here; the recorded validation loss is that of these weights.
    """
    from ..training.checkpoint import load_model

    if kind not in STORY_MODEL_KINDS:
        raise ValueError(f"kind must be one of {STORY_MODEL_KINDS}, got {kind!r}")
    path = _assets_dir() / f"{kind}.pt"
    model, tokenizer, _ckpt = load_model(path)
    if tokenizer is None:  # pragma: no cover - the shipped files always carry it
        raise ValueError(f"{path} carries no tokenizer")
    return model.float().eval(), tokenizer


# --------------------------------------------------------------------------------------------
# Windows and per-position loss
# --------------------------------------------------------------------------------------------


def story_windows(
    tokenizer: Tokenizer, stories: Sequence[Story | str], block_size: int, n_windows: int | None = None
) -> torch.Tensor:
    """Windows of ``block_size + 1`` tokens that each start at the start of a story: (N, T+1).

    The stories are joined by ``STORY_SEPARATOR`` into one stream (as in training), so a window
    that outlives its story runs into the next ones. Window ``i`` starts at story ``i``; stories
    too close to the end of the stream for a full window give none. ``n_windows`` caps N.
    """
    check_positive_int("block_size", block_size)
    if n_windows is not None and (not isinstance(n_windows, int) or n_windows < 1):
        raise ValueError(f"n_windows must be a positive int or None, got {n_windows!r}")
    ids: list[int] = []
    starts: list[int] = []
    for story in stories:
        text = story.text if isinstance(story, Story) else story
        starts.append(len(ids))
        # a story's tokens never merge across the separator, so encoding story by story gives
        # the tokens of the joined stream
        ids.extend(tokenizer.encode(text + STORY_SEPARATOR))
    starts = [s for s in starts if s + block_size + 1 <= len(ids)]
    if n_windows is not None:
        starts = starts[:n_windows]
    if not starts:
        raise ValueError(
            f"the stories hold {len(ids)} tokens, too few for one window of {block_size + 1}: "
            "pass more stories"
        )
    stream = torch.tensor(ids, dtype=torch.long)
    return torch.stack([stream[s : s + block_size + 1] for s in starts])  # (N, T+1)


def _logits(model: Any, idx: torch.Tensor) -> torch.Tensor:
    out = model(idx)
    return out[0] if isinstance(out, tuple) else out  # (B, T, V)


@torch.no_grad()
def per_position_loss(model: Any, windows: torch.Tensor, batch_size: int = 32) -> np.ndarray:
    """Cross-entropy (nats) at every position of every window: (N, T) float64.

    ``windows`` (N, T+1): inputs are ``windows[:, :-1]``, targets ``windows[:, 1:]``; entry
    ``[i, t]`` is ``-log p(windows[i, t+1] | windows[i, :t+1])``. Averaging over ``i`` gives the
    per-position loss curve; averaging over both gives the usual validation loss.
    """
    if not isinstance(windows, torch.Tensor) or windows.dim() != 2 or windows.shape[1] < 2:
        raise ValueError("windows must be a (N, T+1) tensor of token ids with T >= 1 (see story_windows)")
    check_positive_int("batch_size", batch_size)
    if isinstance(model, nn.Module) and model.training:
        raise ValueError("model is in training mode (dropout on): call model.eval() first")
    out = []
    for i in range(0, len(windows), batch_size):
        chunk = windows[i : i + batch_size].long()
        logits = _logits(model, chunk[:, :-1]).float()  # (b, T, V)
        loss = F.cross_entropy(logits.transpose(1, 2), chunk[:, 1:], reduction="none")  # (b, T)
        out.append(loss.double().numpy())
    return np.concatenate(out)


@dataclass(frozen=True)
class Band:
    """A curve with a bootstrap band: ``mean``, ``lo``, ``hi`` are (T,) arrays."""

    mean: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    level: float
    n: int  # number of windows resampled


def bootstrap_band(losses: np.ndarray, n_boot: int = 1000, level: float = 0.9, seed: int = 0) -> Band:
    """Mean over windows (axis 0) of ``losses`` (N, T) with a percentile bootstrap band.

    Each of ``n_boot`` replicates resamples the N windows with replacement and averages them; the
    band is the central ``level`` of those averages, position by position. Resampling whole
    windows keeps the correlation between positions of one window. For the difference of two
    models measured on the same windows, pass ``losses_a - losses_b`` (a paired comparison).
    The replicates are :func:`resample_indices` (``seed``); the band is :func:`band_from_indices`.
    """
    losses = np.asarray(losses, dtype=np.float64)
    if losses.ndim != 2 or losses.shape[0] < 2:
        raise ValueError(f"losses must be (N, T) with N >= 2 windows, got shape {losses.shape}")
    if not isinstance(n_boot, int) or n_boot < 10:
        raise ValueError(f"n_boot must be an int >= 10, got {n_boot!r}")
    return band_from_indices(losses, resample_indices(losses.shape[0], n_boot, seed), level)


def resample_indices(n: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """(n_boot, n) window indices: each row draws ``n`` of the windows 0 … n-1 with replacement."""
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def band_from_indices(losses: np.ndarray, idx: np.ndarray, level: float = 0.9) -> Band:
    """The percentile bootstrap band of the mean over windows of ``losses`` (N, T), for the given
    replicates ``idx`` ((n_boot, N) window indices, e.g. :func:`resample_indices`).

    Replicate ``r`` is the mean of the windows ``idx[r]``; ``lo`` and ``hi`` are the
    ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the replicates at each position
    (numpy's default, linear interpolation); ``mean`` is the mean of all N windows.
    """
    losses = np.asarray(losses, dtype=np.float64)
    idx = np.asarray(idx)
    if losses.ndim != 2 or losses.shape[0] < 2:
        raise ValueError(f"losses must be (N, T) with N >= 2 windows, got shape {losses.shape}")
    n = losses.shape[0]
    if idx.ndim != 2 or idx.shape[1] != n or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"idx must be (n_boot, N = {n}) integer window indices, got {idx.dtype} {idx.shape}")
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise ValueError(f"idx must hold window indices in [0, {n}), got {idx.min()} … {idx.max()}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), e.g. 0.9, got {level!r}")
    n_boot = idx.shape[0]
    # mean of each replicate, via counts: (n_boot, N) @ (N, T) / N
    counts = np.zeros((n_boot, n))
    np.add.at(counts, (np.arange(n_boot)[:, None], idx), 1.0)
    reps = counts @ losses / n  # (n_boot, T)
    tail = (1 - level) / 2
    lo, hi = np.quantile(reps, [tail, 1 - tail], axis=0)
    return Band(losses.mean(axis=0), lo, hi, level, n)


def curve_crossings(a: np.ndarray, b: np.ndarray, smooth: int = 1) -> list[int]:
    """Positions ``t`` where curve ``a`` and curve ``b`` change order between ``t-1`` and ``t``.

    Both curves are first smoothed by a centred moving average of ``smooth`` positions (1: none)
    so that noise of a position or two does not count as a crossing. A position where the
    difference is exactly 0 takes the order of the position before it. Empty list: no crossing.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"a and b must be 1-D curves of one length, got {a.shape} and {b.shape}")
    check_positive_int("smooth", smooth)
    d = a - b
    if smooth > 1:
        kernel = np.ones(smooth) / smooth
        ones = np.convolve(np.ones_like(d), kernel, mode="same")  # edge correction
        d = np.convolve(d, kernel, mode="same") / ones
    sign = np.sign(d)
    for t in range(1, len(sign)):  # zero: keep the previous order
        if sign[t] == 0:
            sign[t] = sign[t - 1]
    return [t for t in range(1, len(sign)) if sign[t] != 0 and sign[t - 1] != 0 and sign[t] != sign[t - 1]]


def copyable_fraction(windows: torch.Tensor | np.ndarray, context: int = 2) -> float:
    """How much a text rewards copying: the accuracy of a pure copier, which knows no language.

    At each target ``t >= context`` of each window (rows of ``windows``, (N, T) token ids), the
    copier looks for the latest earlier place in the same window where the ``context`` tokens
    before ``t`` occurred, and predicts the token that followed them there. Returns the fraction of
    targets it gets right (targets with no earlier occurrence count as misses). A text whose
    phrases repeat within a window scores high; a text that never repeats itself scores near 0.
    """
    w = np.asarray(windows.cpu() if isinstance(windows, torch.Tensor) else windows)
    if w.ndim != 2 or w.shape[1] <= context:
        raise ValueError(f"windows must be (N, T) token ids with T > context, got shape {w.shape}")
    check_positive_int("context", context)
    hits = 0
    for row in w.tolist():
        last: dict[tuple, int] = {}  # context -> the token that followed its latest occurrence
        for t in range(context, len(row)):
            key = tuple(row[t - context : t])
            hits += last.get(key) == row[t]
            last[key] = row[t]
    return hits / (w.shape[0] * (w.shape[1] - context))


# --------------------------------------------------------------------------------------------
# Name recall
# --------------------------------------------------------------------------------------------


def token_char_offsets(tokenizer: Tokenizer, ids: Sequence[int]) -> list[tuple[int, int]]:
    """``(start, end)`` character range in ``tokenizer.decode(ids)`` of every token."""
    bounds = [0]
    for i in range(len(ids)):
        bounds.append(len(tokenizer.decode(list(ids[: i + 1]))))
    return [(bounds[i], bounds[i + 1]) for i in range(len(ids))]


class NameMention(NamedTuple):
    """One mention of a name, measured: see ``name_recall``."""

    story: int  # index of the story in the input
    name: str
    first: bool  # True: the name's first mention in the story (nothing to copy yet)
    position: int  # token index of the name's first token
    distance: int  # tokens strictly between the previous mention and this one; -1 if first
    log_prob: float  # log p(all of the name's tokens | everything before), nats

    @property
    def prob(self) -> float:
        """Probability of the whole name at this mention."""
        return math.exp(self.log_prob)


def name_recall(
    model: Any,
    tokenizer: Tokenizer,
    stories: Sequence[Story],
    block_size: int,
    losses: np.ndarray | None = None,
    batch_size: int = 32,
    n_windows: int | None = None,
) -> list[NameMention]:
    """Every mention of a story's names in its window, with the model's probability of the
    whole name there and the distance to the name's previous mention.

    The windows are ``story_windows(tokenizer, stories, block_size)``: window ``k`` starts at the
    start of story ``k`` (the last stories, too close to the end for a full window, give none and
    serve only as what follows). Only story ``k``'s own names in story ``k``'s own text count. A
    name's tokens are the tokens overlapping its characters (with BPE, the leading space is part
    of the name's first token); its probability is the product of the model's probabilities of
    those tokens, each given everything before it in the window. A mention at token 0 (nothing
    predicts it) or cut off by the window's end is skipped; its name still counts as seen.

    ``losses``: the ``per_position_loss`` of ``model`` on those windows, if already computed
    (then ``model`` is not called and may be ``None``): chapter 06 reuses its loss curves.
    ``n_windows`` caps the number of windows (stories measured), as in ``story_windows``.
    """
    if not isinstance(block_size, int) or block_size < 2:
        raise ValueError(f"block_size must be an int >= 2, got {block_size!r}")
    for story in stories:
        if not isinstance(story, Story):
            raise TypeError(f"stories must hold Story objects (with .names), got {type(story).__name__}")
    windows = story_windows(tokenizer, stories, block_size, n_windows)  # (N, T+1)
    if losses is None:
        losses = per_position_loss(model, windows, batch_size)
    losses = np.asarray(losses)
    if losses.shape != (windows.shape[0], block_size):
        raise ValueError(
            f"losses must be per_position_loss on story_windows(tokenizer, stories, {block_size}, "
            f"{n_windows}), "
            f"shape {(windows.shape[0], block_size)}; got {losses.shape}"
        )
    mentions: list[NameMention] = []
    for k in range(windows.shape[0]):
        story = stories[k]
        ids = tokenizer.encode(story.text)[: block_size + 1]  # the window's first tokens
        text = tokenizer.decode(ids)
        offsets = token_char_offsets(tokenizer, ids)
        last_end: dict[str, int] = {}
        for span in name_spans(text, story.names):
            toks = [t for t, (s, e) in enumerate(offsets) if s < span.end and e > span.start]
            if not toks or offsets[toks[-1]][1] < span.end:  # cut off by the window
                break
            first_tok, last_tok = toks[0], toks[-1]
            if first_tok >= 1:
                distance = first_tok - last_end[span.name] - 1 if span.name in last_end else -1
                # token j is predicted at position j - 1: losses[k, j - 1] = -log p(token j | ...)
                lp = -float(losses[k, first_tok - 1 : last_tok].sum())
                mentions.append(NameMention(k, span.name, not span.repeated, first_tok, distance, lp))
            last_end[span.name] = last_tok
    return mentions


def recall_by_distance(mentions: Sequence[NameMention], edges: Sequence[int]) -> dict[str, np.ndarray]:
    """Mean probability of the name at repeated mentions, per bin of distance.

    Bin ``j`` holds the repeated mentions with ``edges[j] <= distance < edges[j+1]``. Returns
    ``{"lo": (J,), "hi": (J,), "mean_prob": (J,), "count": (J,)}`` (``nan`` for an empty bin) and
    ``"first_mean_prob"``: the mean probability at first mentions (a (1,) array), the baseline a
    model reaches without copying.
    """
    edges = np.asarray(edges)
    if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"edges must be increasing bin edges (at least two), got {edges.tolist()}")
    rep = [m for m in mentions if not m.first]
    dist = np.array([m.distance for m in rep], dtype=np.int64)
    prob = np.array([m.prob for m in rep], dtype=np.float64)
    J = len(edges) - 1
    mean = np.full(J, np.nan)
    count = np.zeros(J, dtype=np.int64)
    for j in range(J):
        sel = (dist >= edges[j]) & (dist < edges[j + 1])
        count[j] = int(sel.sum())
        if count[j]:
            mean[j] = prob[sel].mean()
    first = [m.prob for m in mentions if m.first]
    return {
        "lo": edges[:-1].copy(),
        "hi": edges[1:].copy(),
        "mean_prob": mean,
        "count": count,
        "first_mean_prob": np.array([np.mean(first) if first else np.nan]),
    }
