"""Side by side: what chapters 04 and 05 compute about a mosaic and its GPT twin.

Pure functions (no plotting state, no globals) so that notebooks and tests can assert on them;
the ``draw_*`` functions only draw what a pure function returned.

- :func:`retrieval_view` / :func:`draw_retrieval_view`: which past tokens each contextual-memory
  head of a :class:`~mosaics_edu.models.MemoryMosaicLM` retrieves for one query position (the
  widget of chapter 04).
- :func:`median_time`: a robust CPU-time timing (median of repeats) for the cost sections.
- :func:`summarise_runs` / :func:`draw_loss_curves`: the validation-loss comparison of chapter 05;
  :func:`stream_loss`: a model's mean loss over a whole token stream (the score the story
  comparisons are tuned on, ``assets/one_block`` and ``assets/stories``);
  :func:`name_copy_losses`: the loss on names a model can copy from its context, and on the
  ones it cannot; :func:`char_loss_view` / :func:`draw_char_loss_view`: character by character,
  what each model pays on one story (the widget of chapter 05).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ..core.validation import check_positive_int
from ..models.lm import MemoryMosaicLM

__all__ = [
    "retrieval_view",
    "draw_retrieval_view",
    "same_token_mass",
    "median_time",
    "summarise_runs",
    "draw_loss_curves",
    "stream_loss",
    "name_copy_losses",
    "char_loss_view",
    "draw_char_loss_view",
]


# --------------------------------------------------------------------------------------------
# retrieval weights of a mosaic, for one query position
# --------------------------------------------------------------------------------------------


def _printable(ch: str) -> str:
    return {"\n": "⏎", " ": "␣"}.get(ch, ch)


def same_token_mass(weights: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Per head, the mean retrieval weight on past positions holding the query's own token.

    weights: (H, T, T) contextual-memory weights (rows = queries t, columns = stored pairs s);
    ids: (T,) token ids. Averaged over the query positions whose token occurred before.
    Returns (H,). A head whose key is "the current token" puts almost all its weight there.
    """
    weights = np.asarray(weights, dtype=np.float64)
    ids = np.asarray(ids)
    if weights.ndim != 3 or weights.shape[1] != weights.shape[2] or weights.shape[1] != len(ids):
        raise ValueError(f"weights must be (H, T, T) with T = len(ids) = {len(ids)}, "
                         f"got {weights.shape}")
    T = len(ids)
    same = ids[:, None] == ids[None, :]  # (T, T)
    past = np.tril(np.ones((T, T), dtype=bool), k=-1)  # s < t
    eligible = (same & past).any(axis=1)  # (T,): the query's token occurred before
    if not eligible.any():
        raise ValueError("no token repeats in ids: the same-token mass is undefined")
    mass = (weights * (same & past)[None]).sum(axis=2)  # (H, T)
    return mass[:, eligible].mean(axis=1)  # (H,)


@torch.no_grad()
def retrieval_view(
    model: MemoryMosaicLM,
    ids: Sequence[int],
    chars: Sequence[str],
    position: int,
    head: int,
    layer: int = 0,
    window: int = 64,
) -> dict[str, Any]:
    """What head ``head`` of block ``layer`` retrieves for the query at ``position``.

    Args:
        model: a :class:`~mosaics_edu.models.MemoryMosaicLM` (trained or not).
        ids: the token ids of one text (length ≤ ``model.config.block_size``).
        chars: the printable form of each token (same length as ``ids``).
        position: the query position t (1 ≤ t < len(ids); position 0 retrieves nothing).
        head: which contextual-memory unit (0 ≤ head < n_head).
        window: how many positions before t to return for display.

    Returns a dict: ``weights`` (window,) the weights of head ``head`` on positions
    ``first … t-1`` (they sum to 1 over all s < t), ``all_heads`` (H, window) the same for every
    head, ``labels`` the tokens of those positions, ``query`` the token at t, ``top`` the 5 most
    retrieved positions, ``decay``/``beta`` (H,) of the block, and ``same_token_mass`` (H,) over
    the whole text (see :func:`same_token_mass`).
    """
    if not isinstance(model, MemoryMosaicLM):
        raise TypeError(f"model must be a MemoryMosaicLM, got {type(model).__name__}")
    ids = [int(i) for i in ids]
    if len(chars) != len(ids):
        raise ValueError(f"chars has {len(chars)} entries but ids has {len(ids)}: one per token")
    T = len(ids)
    if T < 2 or T > model.config.block_size:
        raise ValueError(f"ids must hold 2 … block_size={model.config.block_size} tokens, got {T}")
    if not isinstance(position, int) or not 1 <= position < T:
        raise ValueError(f"position must be an int in [1, {T - 1}] (position 0 has an empty "
                         f"memory), got {position!r}")
    H = model.config.n_head
    if not isinstance(head, int) or not 0 <= head < H:
        raise ValueError(f"head must be an int in [0, {H - 1}], got {head!r}")
    if not isinstance(layer, int) or not 0 <= layer < model.config.n_layer:
        raise ValueError(f"layer must be an int in [0, {model.config.n_layer - 1}], got {layer!r}")
    check_positive_int("window", window)
    was_training = model.training
    model.eval()
    try:
        idx = torch.tensor([ids], dtype=torch.long)  # (1, T)
        w = model.retrieval_weights(idx)[layer]["cmem"][0].float().numpy()  # (H, T, T)
    finally:
        model.train(was_training)
    first = max(0, position - window)
    block = model.blocks[layer]
    rows = w[:, position, first:position]  # (H, position - first)
    top = np.argsort(-w[head, position, :position])[:5]
    return {
        "weights": rows[head],
        "all_heads": rows,
        "positions": np.arange(first, position),
        "labels": [_printable(chars[s]) for s in range(first, position)],
        "query": _printable(chars[position]),
        "position": position,
        "head": head,
        "top": top,
        "row_sum": float(w[head, position, :position].sum()),
        "decay": block.cmem.decay.detach().float().numpy(),
        "beta": block.cmem.beta.detach().float().numpy(),
        "same_token_mass": same_token_mass(w, np.asarray(ids)),
    }


def draw_retrieval_view(view: Mapping[str, Any], fig: Any) -> None:
    """Bars: the chosen head's weights over the past tokens; heat map: every head."""
    ax1, ax2 = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    pos, h = view["positions"], view["head"]
    colors = ["tab:red" if lab == view["query"] else "tab:blue" for lab in view["labels"]]
    ax1.bar(pos, view["weights"], color=colors)
    ax1.set_ylabel("retrieval weight")
    ax1.set_title(f"head {h} (λ={view['decay'][h]:.3g}, β={view['beta'][h]:.3g}), query t="
                  f"{view['position']} '{view['query']}' — red: same token as the query",
                  fontsize=9)
    ax2.imshow(view["all_heads"], aspect="auto", cmap="magma", interpolation="nearest",
               extent=(pos[0] - 0.5, pos[-1] + 0.5, len(view["all_heads"]) - 0.5, -0.5))
    ax2.set_ylabel("head")
    ax2.set_xticks(pos)
    ax2.set_xticklabels(view["labels"], fontsize=7)
    ax2.set_xlabel("stored pair s (its token)")
    fig.tight_layout()


# --------------------------------------------------------------------------------------------
# timing
# --------------------------------------------------------------------------------------------


def median_time(fn: Callable[[], Any], repeats: int = 5, warmup: int = 1) -> float:
    """Median CPU seconds of this process for ``fn()`` over ``repeats`` calls, after ``warmup``.

    CPU time, not wall time: another program busy on the machine does not make ``fn`` look
    slower (it only steals wall time), and the median shrugs off the remaining outliers. With
    several math threads it counts all of them, so compare timings taken with the same setting.
    """
    if not callable(fn):
        raise TypeError("fn must be a function of no arguments, e.g. lambda: model(x)")
    check_positive_int("repeats", repeats)
    if not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be an int >= 0, got {warmup!r}")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return float(np.median(times))


# --------------------------------------------------------------------------------------------
# chapter 05: two training runs side by side
# --------------------------------------------------------------------------------------------


def _evals(history: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = [h for h in history if h.get("kind") == "eval"]
    if not rows:
        raise ValueError("history holds no evaluation: train with eval_interval <= max_steps")
    return (np.array([r["step"] for r in rows]), np.array([r["train_loss"] for r in rows]),
            np.array([r["val_loss"] for r in rows]))


def summarise_runs(histories: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, dict]:
    """Per run: final and best validation loss, final train loss, and the step of each eval.

    histories: ``{"mosaic": result.history, "gpt": ...}`` as ``Trainer.fit`` logs them.
    """
    if not histories:
        raise ValueError("histories is empty: pass {name: history} for at least one run")
    out = {}
    for name, history in histories.items():
        steps, tr, va = _evals(history)
        out[name] = {"steps": steps.tolist(), "final_val": float(va[-1]),
                     "best_val": float(va.min()), "final_train": float(tr[-1]),
                     "val": va.tolist()}
    return out


def draw_loss_curves(histories: Mapping[str, Sequence[Mapping[str, Any]]], ax: Any = None,
                     title: str = "") -> Any:
    """Validation (solid) and training (dashed) loss of every run against the step."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for i, (name, history) in enumerate(histories.items()):
        steps, tr, va = _evals(history)
        color = f"C{i}"
        ax.plot(steps, va, "o-", color=color, label=f"{name} validation")
        ax.plot(steps, tr, "--", color=color, alpha=0.6, label=f"{name} train")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats per character)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return ax


@torch.no_grad()
def stream_loss(model: torch.nn.Module, tokens: Any, block_size: int, batch_size: int = 32) -> float:
    """Mean next-token loss (nats per token) over a whole token stream.

    The stream is cut into consecutive, non-overlapping windows of ``block_size + 1`` tokens
    (inputs and targets overlap by one token, so every token but the first of each window is a
    target exactly once; the tail shorter than a window is dropped). Unlike the trainer's
    evaluation (10 random batches) it reads every window, so two models tuned on it are compared
    on all of the validation text. ``model`` must be in eval mode (no dropout).
    """
    if model.training:
        raise ValueError("model is in training mode (dropout on): call model.eval() first")
    check_positive_int("block_size", block_size)
    check_positive_int("batch_size", batch_size)
    ids = torch.as_tensor(np.asarray(tokens, dtype=np.int64))  # (N,)
    n_windows = (len(ids) - 1) // block_size
    if n_windows < 1:
        raise ValueError(f"the stream holds {len(ids)} tokens, fewer than block_size + 1 = "
                         f"{block_size + 1}: pass a longer stream or a smaller block_size")
    total, count = 0.0, 0
    for first in range(0, n_windows, batch_size):
        rows = range(first, min(first + batch_size, n_windows))
        w = torch.stack([ids[r * block_size : (r + 1) * block_size + 1] for r in rows])  # (b, T+1)
        out = model(w[:, :-1])
        logits = out[0] if isinstance(out, tuple) else out  # (b, T, V)
        loss = torch.nn.functional.cross_entropy(logits.float().transpose(1, 2), w[:, 1:],
                                                 reduction="sum")
        total += float(loss)
        count += w[:, 1:].numel()
    return total / count


@torch.no_grad()
def name_copy_losses(
    model: torch.nn.Module,
    tokenizer: Any,
    stories: Sequence[Any],
    block_size: int,
) -> dict[str, float]:
    """Mean loss on the letters of names, first occurrences vs repeated ones, in story windows.

    Each story's first ``block_size + 1`` characters make one window. For every whole-word
    occurrence of one of the story's names (``Story.names``) the letters after the first are
    scored: once a name has started, a model that can copy from its context knows the rest —
    but only if the name occurred before (``repeated``). The first letter is left out: which
    name comes is a guess either way. Returns ``{"first": ..., "repeated": ..., "other": ...,
    "n_first": ..., "n_repeated": ...}`` (losses in nats per character).
    """
    from ..data import name_spans

    if not isinstance(block_size, int) or block_size < 2:
        raise ValueError(f"block_size must be an int >= 2, got {block_size!r}")
    texts = [s.text[: block_size + 1] for s in stories if len(s.text) > block_size]
    if not texts:
        raise ValueError(f"no story is longer than block_size={block_size} characters")
    was_training = model.training
    model.eval()
    try:
        ids = torch.tensor([tokenizer.encode(t) for t in texts], dtype=torch.long)  # (N, T+1)
        logits, _ = model(ids[:, :-1])  # (N, T, V)
        losses = torch.nn.functional.cross_entropy(
            logits.transpose(1, 2).float(), ids[:, 1:], reduction="none")  # (N, T)
    finally:
        model.train(was_training)
    first, repeated = [], []
    in_name = torch.zeros_like(losses, dtype=torch.bool)
    for i, (story, text) in enumerate(zip(stories, texts, strict=False)):
        for span in name_spans(text, story.names):
            # letter at text position p is predicted at t = p - 1
            ts = list(range(span.start, span.end - 1))  # letters 2..n of the name
            (repeated if span.repeated else first).extend(float(losses[i, t]) for t in ts)
            in_name[i, span.start - 1 : span.end - 1] = True
    if not first or not repeated:
        raise ValueError("the windows hold no repeated names: use longer windows or more stories")
    return {"first": float(np.mean(first)), "repeated": float(np.mean(repeated)),
            "other": float(losses[~in_name].mean()), "n_first": len(first),
            "n_repeated": len(repeated)}


@torch.no_grad()
def char_loss_view(
    models: Mapping[str, torch.nn.Module],
    tokenizer: Any,
    stories: Sequence[Any],
    story: int,
    start: int,
    width: int = 64,
) -> dict[str, Any]:
    """Per-character loss of each model on a stretch of one story, read with its full context.

    The models read the story's first ``block_size + 1`` characters (``block_size`` of the first
    model); the loss of character p is the cross-entropy of predicting it from everything before.
    Returns ``labels`` (the characters p in ``[start+1, start+width]``), ``losses``
    ``{name: (width,) array}``, ``repeated`` (width,) bool — letters 2..n of a name that already
    occurred — and ``mean`` ``{name: mean loss over the stretch}``.
    """
    from ..data import name_spans

    if not models:
        raise ValueError("models is empty: pass {name: model}")
    if not isinstance(story, int) or not 0 <= story < len(stories):
        raise ValueError(f"story must be an int in [0, {len(stories) - 1}], got {story!r}")
    first = next(iter(models.values()))
    block = int(first.config.block_size)
    text = stories[story].text[: block + 1]
    check_positive_int("width", width)
    if not isinstance(start, int) or not 0 <= start <= len(text) - 1 - width:
        raise ValueError(f"start must be an int in [0, {len(text) - 1 - width}] for this story and "
                         f"width={width}, got {start!r}")
    ids = torch.tensor([tokenizer.encode(text)], dtype=torch.long)  # (1, L)
    losses = {}
    for name, model in models.items():
        was_training = model.training
        model.eval()
        try:
            logits, _ = model(ids[:, :-1])  # (1, L-1, V)
        finally:
            model.train(was_training)
        per = torch.nn.functional.cross_entropy(logits[0].float(), ids[0, 1:], reduction="none")
        losses[name] = per[start : start + width].numpy()  # predicts characters start+1 ...
    repeated = np.zeros(len(text), dtype=bool)
    for span in name_spans(text, stories[story].names):
        if span.repeated:
            repeated[span.start + 1 : span.end] = True
    chars = [_printable(c) for c in text[start + 1 : start + 1 + width]]
    return {"labels": chars, "losses": losses, "repeated": repeated[start + 1 : start + 1 + width],
            "mean": {k: float(v.mean()) for k, v in losses.items()}, "story": story,
            "start": start}


def draw_char_loss_view(view: Mapping[str, Any], fig: Any) -> None:
    """Bars per character and model; shaded: letters of a repeated (copyable) name."""
    ax = fig.subplots()
    n = len(view["labels"])
    k = len(view["losses"])
    w = 0.8 / k
    for j in np.flatnonzero(view["repeated"]):
        ax.axvspan(j - 0.5, j + 0.5, color="gold", alpha=0.3, lw=0)
    for i, (name, loss) in enumerate(view["losses"].items()):
        ax.bar(np.arange(n) + (i - (k - 1) / 2) * w, loss, w,
               label=f"{name} (mean {view['mean'][name]:.2f})")
    ax.set_xticks(range(n))
    ax.set_xticklabels(view["labels"], fontsize=7)
    ax.set_xlim(-0.5, n - 0.5)
    ax.set_ylabel("loss (nats)")
    ax.set_title(f"story {view['story']}, characters {view['start'] + 1}…{view['start'] + n} — "
                 "shaded: letters (after the first) of a name seen earlier", fontsize=9)
    top = max(float(np.max(loss)) for loss in view["losses"].values())
    ax.set_ylim(0, 1.3 * top)  # headroom, so that the legend covers no bar
    ax.legend(fontsize=8, loc="upper right", ncol=k)
    fig.tight_layout()
