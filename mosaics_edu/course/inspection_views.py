"""The figures of chapter 08: what :mod:`mosaics_edu.course.inspection` measures, drawn.

Two widgets, each a pure ``compute`` (in :mod:`mosaics_edu.course.inspection` or here) and a ``draw``:

- the retrieval explorer: :func:`mosaics_edu.course.inspection.explorer_view` and
  :func:`draw_explorer` — the text coloured by one head's retrieval weights for one query
  position, the stored pairs that answered, and the head's whole (T, T) map;
- the head selector: :func:`head_card` and :func:`draw_head_card` — one head's scores among
  all heads of its model, its retrieval profile by distance, and its map on one text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["draw_explorer", "distance_profile", "head_card", "draw_head_card", "visible"]

MAP_SHOWN = 96  # the head selector draws the first tokens of its text's map (all 256 are too fine)


def visible(token: str) -> str:
    """A token as drawn: line breaks as ⏎ (one character), everything else as is."""
    return token.replace("\n", "⏎")


def _text_panel(
    ax: Any, tokens: Sequence[str], weights: np.ndarray, query: int, fontsize: float = 7.5, min_rows: int = 10
) -> None:
    """Monospaced text, wrapped to the panel's width, each token shaded by its weight; the query
    token boxed; the tokens after the query in grey. Call once the figure's layout is final."""
    fig = ax.figure
    width_in = ax.get_window_extent().width / fig.dpi
    width = max(20, int(width_in * 72 / (0.602 * fontsize)))  # DejaVu Sans Mono: 0.602 em per char
    top = float(weights.max()) if weights.size and weights.max() > 0 else 1.0
    col, row = 0, 0
    cells = []
    for t, tok in enumerate(tokens):
        text = visible(tok)
        if col + len(text) > width:
            col, row = 0, row + 1
        cells.append((t, text, col, row))
        col += len(text)
    n_rows = max(row + 1, min_rows)  # a short text keeps the rows' height
    ax.set_xlim(0, width)
    ax.set_ylim(n_rows, -0.2)
    ax.axis("off")
    for t, text, c, r in cells:
        w = float(weights[t]) / top if t < len(weights) else 0.0
        if t < query and w > 0.01:
            ax.add_patch(_rect(c, r, len(text), (1.0, 0.45, 0.0, min(1.0, 0.15 + 0.85 * w))))
        if t == query:
            ax.add_patch(_rect(c, r, len(text), (0.2, 0.4, 1.0, 0.35), edge=True))
        ax.text(
            c,
            r + 0.5,
            text,
            family="DejaVu Sans Mono",
            fontsize=fontsize,
            va="center",
            ha="left",
            color="0.65" if t > query else "black",
        )


def _rect(c: float, r: float, w: float, rgba: tuple, edge: bool = False) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((c, r + 0.05), w, 0.9, facecolor=rgba, edgecolor="blue" if edge else "none", lw=1.0)


def _weights_norm(weights: np.ndarray) -> Any:
    """Colour ∝ weight^0.4: a sharp head's few large weights and a broad head's many small ones
    both stay visible."""
    from matplotlib.colors import PowerNorm

    return PowerNorm(gamma=0.4, vmin=0.0, vmax=max(1e-9, float(np.max(weights))))


def draw_explorer(view: Mapping[str, Any], fig: Any) -> None:
    """Draw :func:`mosaics_edu.course.inspection.explorer_view`: text shaded by weight (orange; the query
    boxed in blue), the top stored pairs as bars labelled with their context and peeked token,
    the prediction, and the head's whole retrieval map with the query's row marked."""
    gs = fig.add_gridspec(2, 2, width_ratios=[2.3, 1], height_ratios=[1.25, 1])
    ax_text = fig.add_subplot(gs[0, 0])
    ax_top = fig.add_subplot(gs[1, 0])
    ax_map = fig.add_subplot(gs[:, 1])
    t, tokens = view["position"], view["tokens"]
    ax_text.set_title(
        f"block {view['layer']}, head {view['head']}: query t={t} '{visible(tokens[t])}' — "
        f"orange: retrieval weight on the stored pair s",
        fontsize=9,
        loc="left",
    )
    top = view["top"]
    labels = [
        f"s={p['s']}  …{visible(p['context'])}…  → value peeks '{visible(p['peeked_text'] or '')}'"
        for p in top
    ]
    ax_top.barh(np.arange(len(top)), [p["weight"] for p in top], color="tab:orange")
    ax_top.set_yticks(np.arange(len(top)))
    ax_top.set_yticklabels(labels, fontsize=7.5, family="monospace")
    ax_top.invert_yaxis()
    ax_top.set_xlim(0, 1)
    ax_top.set_xlabel("retrieval weight")
    vote = ", ".join(f"'{visible(k)}' {v:.2f}" for k, v in view["vote"][:3])
    pred = ", ".join(f"'{visible(k)}' {p:.2f}" for k, p in view["prediction"][:3])
    nxt = "" if view["next"] is None else f"   true next: '{visible(view['next'])}'"
    ax_top.set_title(f"this head's vote: {vote}\nmodel's prediction: {pred}{nxt}", fontsize=8.5, loc="left")
    T = len(tokens)
    ax_map.imshow(view["map"], cmap="magma", interpolation="nearest", norm=_weights_norm(view["map"]))
    ax_map.axhline(t, color="cyan", lw=0.8)
    ax_map.set_xlabel("stored pair s")
    ax_map.set_ylabel("query t")
    ax_map.set_title(f"the head's retrieval map ({T}×{T}; colour ∝ weight^0.4)", fontsize=9)
    fig.tight_layout()
    _text_panel(ax_text, tokens, view["row"], t)  # after the layout: it wraps to the panel's width


# --------------------------------------------------------------------------------------------
# the head selector
# --------------------------------------------------------------------------------------------


def distance_profile(maps: Any, max_distance: int = 32) -> np.ndarray:
    """Mean retrieval mass at each distance t - s = 0 … max_distance (queries t ≥ max_distance,
    so every distance is readable). maps: (B, H, T, T) -> (H, max_distance + 1)."""
    m = np.asarray(maps, dtype=np.float64)
    if m.ndim != 4 or m.shape[-1] != m.shape[-2]:
        raise ValueError(f"maps must be (B, H, T, T), got {m.shape}")
    T = m.shape[-1]
    if not isinstance(max_distance, int) or not 0 < max_distance < T:
        raise ValueError(f"max_distance must be an int in [1, {T - 1}], got {max_distance!r}")
    t = np.arange(max_distance, T)
    return np.stack([m[:, :, t, t - d].mean(axis=(0, 2)) for d in range(max_distance + 1)], axis=1)


def head_card(
    scores: Mapping[str, Sequence[Mapping[str, np.ndarray]]],
    profiles: Mapping[str, Sequence[np.ndarray]],
    maps: Mapping[str, Sequence[np.ndarray]],
    model: str,
    layer: int,
    head: int,
) -> dict[str, Any]:
    """Everything the head selector draws for one head.

    ``scores[model][layer]`` is :func:`mosaics_edu.course.inspection.head_scores`'s dict (each (H,));
    ``profiles[model][layer]`` (H, D + 1) from :func:`distance_profile`; ``maps[model][layer]``
    (H, T, T) on one text. Returns the head's own scores, every head of the model's scores (for
    the bars, in the order (layer, head)), its profile and its map.
    """
    if model not in scores:
        raise ValueError(f"model must be one of {sorted(scores)}, got {model!r}")
    n_layer = len(scores[model])
    if not isinstance(layer, int) or not 0 <= layer < n_layer:
        raise ValueError(f"layer must be an int in [0, {n_layer - 1}], got {layer!r}")
    H = len(scores[model][layer]["induction"])
    if not isinstance(head, int) or not 0 <= head < H:
        raise ValueError(f"head must be an int in [0, {H - 1}], got {head!r}")
    names = list(scores[model][0])
    table = {n: np.concatenate([np.asarray(scores[model][i][n]) for i in range(n_layer)]) for n in names}
    return {
        "model": model,
        "layer": layer,
        "head": head,
        "index": layer * H + head,
        "n_head": H,
        "own": {n: float(scores[model][layer][n][head]) for n in names},
        "all": table,
        "profile": np.asarray(profiles[model][layer])[head],
        "map": np.asarray(maps[model][layer])[head],
    }


def draw_head_card(card: Mapping[str, Any], fig: Any) -> None:
    """Bars of every head's four scores with the chosen one highlighted, its profile by distance,
    and its retrieval (attention) map on one text."""
    names = list(card["all"])
    axes = fig.subplots(1, len(names) + 2, gridspec_kw={"width_ratios": [1] * len(names) + [1.6, 1.6]})
    H, idx = card["n_head"], card["index"]
    n = len(card["all"][names[0]])
    for ax, name in zip(axes, names, strict=False):
        vals = card["all"][name]
        colours = ["tab:red" if i == idx else ("tab:blue" if i // H == 0 else "tab:cyan") for i in range(n)]
        ax.bar(np.arange(n), vals, color=colours)
        ax.set_xticks(np.arange(n))
        ax.set_xticklabels([f"{i // H}.{i % H}" for i in range(n)], fontsize=6, rotation=90)
        ax.set_title(name.replace("_", "-"), fontsize=9)
    axes[0].set_ylabel(f"{card['model']} heads (block.head)")
    prof = card["profile"]
    axes[-2].bar(np.arange(len(prof)), prof, color="tab:red")
    axes[-2].set_xlabel("distance t - s")
    axes[-2].set_title("mean mass by distance", fontsize=9)
    shown = card["map"][:MAP_SHOWN, :MAP_SHOWN]
    axes[-1].imshow(shown, cmap="magma", interpolation="nearest", norm=_weights_norm(shown))
    axes[-1].set_title(
        f"{card['model']} {card['layer']}.{card['head']}: first {len(shown)} tokens", fontsize=9
    )
    axes[-1].set_xlabel("s")
    axes[-1].set_ylabel("t")
    fig.tight_layout()
