"""Diagrams drawn by code (matplotlib), so that they live in the repository's sources.

- :func:`draw_course_map`: the chapters and what each builds on (chapter 00);
- :func:`draw_memory_unit`: the elementary memory unit on a time line — keys from the past,
  values peeking one step ahead, retrieval from the pairs s < t only (chapter 02);
- :func:`draw_block_comparison`: a mosaic block beside a GPT-2 block, each branch with its
  weights and parameter count (chapter 04);
- :func:`figure_labels`: every text drawn on a figure (what the tests assert on).

Each ``draw_*`` function takes an optional ``ax`` and returns the figure it drew on.
"""

from __future__ import annotations

from typing import Any

__all__ = ["COURSE", "ROWS", "draw_block_comparison", "draw_course_map", "draw_memory_unit",
           "figure_labels"]

#: (number, title, what the learner builds) of every chapter, in reading order.
COURSE: list[tuple[str, str, str]] = [
    ("00", "Start here", "set-up, checks, a stable softmax"),
    ("01", "An associative memory\nis a kernel regressor", "retrieval, β, leave-one-out"),
    ("02", "Keys from the past,\nvalues from the future", "the memory unit, induction"),
    ("03", "Three moons", "predictive disentanglement"),
    ("04", "A memory mosaic layer", "contextual + persistent memory"),
    ("05", "Training a\nlanguage model", "mosaic vs GPT"),
    ("06", "In-context learning\non stories", "per-position loss, names"),
    ("07", "In-context learning\non RegBench-mini", "languages, the bigram unit"),
    ("08", "Looking inside", "what each head retrieves"),
    ("09", "Memory Mosaics v2", "β(n), gated keys, long memory"),
    ("10", "Scaling out", "DDP, FSDP, many GPUs"),
    ("11", "Capstone", "a project of your own"),
]

#: The rows of the course map: (caption, colour, how many chapters), top to bottom.
ROWS: list[tuple[str, str, int]] = [("foundations: one memory", "#dbe9f6", 3),
                                    ("networks of memories", "#fde2c8", 3),
                                    ("in context, and inside", "#d9f0d3", 3),
                                    ("v2, at scale, and on your own", "#ead9f0", 3)]

def _axes(ax: Any, figsize: tuple[float, float]) -> Any:
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def figure_labels(fig: Any) -> list[str]:
    """Every text on ``fig``: axis texts, titles, axis labels, legend entries."""
    out = []
    for ax in fig.axes:
        out += [t.get_text() for t in ax.texts]
        out += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        legend = ax.get_legend()
        if legend is not None:
            out += [t.get_text() for t in legend.get_texts()]
    return [t for t in out if t]


def draw_course_map(ax: Any = None) -> Any:
    """The course as rows of boxes (:data:`ROWS`): one memory, networks of memories, learning in
    context and looking inside, then v2, scale and the capstone.

    Arrows follow the reading order (a snake: every other row reads right to left); each box names
    its chapter and what the learner builds.
    """
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    if sum(n for _, _, n in ROWS) != len(COURSE):
        raise ValueError("ROWS must hold every chapter of COURSE once")
    ax = _axes(ax, (11, 6.6))
    w, h, top = 3.0, 1.25, 0.6 + 1.8 * (len(ROWS) - 1)
    centers, i = {}, 0
    for r, (_, colour, n) in enumerate(ROWS):
        for c in range(n):
            num, title, what = COURSE[i]
            i += 1
            col = 2 - c if r % 2 else c  # a snake: every other row reads right to left
            x, y = 0.4 + col * 3.7, top - r * 1.8
            centers[num] = (x + w / 2, y + h / 2)
            ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.05", fc=colour, ec="0.3"))
            ax.text(x + 0.12, y + h - 0.12, f"{num} · {title}", va="top", fontsize=8.5, weight="bold")
            ax.text(x + 0.12, y + 0.12, what, va="bottom", fontsize=8, style="italic", color="0.25")
    for a, b in zip(COURSE[:-1], COURSE[1:], strict=True):
        (x0, y0), (x1, y1) = centers[a[0]], centers[b[0]]
        if y0 == y1:
            sign = 1 if x1 > x0 else -1
            start, end = (x0 + sign * (w / 2 + 0.05), y0), (x1 - sign * (w / 2 + 0.05), y1)
        else:  # next row, straight down
            start, end = (x0, y0 - h / 2 - 0.05), (x1, y1 + h / 2 + 0.05)
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12, color="0.4"))
    for r, (caption, colour, _) in enumerate(ROWS):
        x = 0.5 + r * 2.8
        ax.add_patch(FancyBboxPatch((x, 0.0), 0.3, 0.25, boxstyle="round,pad=0.02", fc=colour, ec="0.3"))
        ax.text(x + 0.45, 0.125, caption, va="center", fontsize=8, color="0.25")
    ax.set_xlim(0.2, 11.5)
    ax.set_ylim(-0.15, top + h + 0.25)
    ax.set_axis_off()
    ax.set_title("The course map: each chapter builds on the one before", fontsize=10)
    return ax.figure


def draw_memory_unit(ax: Any = None, T: int = 8, t: int = 5) -> Any:
    """The elementary memory unit on a time line of ``T`` inputs, answering at position ``t``.

    Bottom row: inputs x_s. Middle rows: keys k_s (a leaky average of x_0 … x_s: arrows from x_s
    and from k_{s-1}) and values v_s (x_s and x_{s+1}: a one-step peek ahead). The pairs s < t are
    the memory position t reads (green); the pair s = t is not in it — its value holds x_{t+1},
    the very input position t predicts — nor is any later pair. The answer y_t estimates x_{t+1}.
    """
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    if not 2 <= t < T - 1:
        raise ValueError(f"need 2 <= t < T - 1 so that past, present and future show; got t={t}, T={T}")
    ax = _axes(ax, (11, 5.4))
    ys = {"x": 0.0, "k": 1.6, "v": 3.0, "y": 4.6}
    bw, bh = 0.62, 0.5

    def box(s: float, row: str, label: str, fc: str, ec: str = "0.3", lw: float = 1.0) -> None:
        ax.add_patch(FancyBboxPatch((s - bw / 2, ys[row] - bh / 2), bw, bh, boxstyle="round,pad=0.04",
                                    fc=fc, ec=ec, lw=lw))
        ax.text(s, ys[row], label, ha="center", va="center", fontsize=9)

    def arrow(p: tuple[float, float], q: tuple[float, float], color: str = "0.45", rad: float = 0.0,
              ls: str = "-", lw: float = 1.0) -> None:
        ax.add_patch(FancyArrowPatch(p, q, arrowstyle="-|>", mutation_scale=9, color=color, lw=lw,
                                     linestyle=ls, connectionstyle=f"arc3,rad={rad}"))

    for s in range(T):
        stored = s < t
        fc = "#d9f0d3" if stored else ("#fde2c8" if s == t else "#eeeeee")
        box(s, "x", f"$x_{{{s}}}$", "white")
        box(s, "k", f"$k_{{{s}}}$", fc)
        box(s, "v", f"$v_{{{s}}}$", fc)
        arrow((s, ys["x"] + bh / 2), (s, ys["k"] - bh / 2))  # x_s -> k_s
        if s > 0:
            arrow((s - 1 + bw / 2, ys["k"]), (s - bw / 2, ys["k"]), color="tab:blue")  # leaky state
        arrow((s - 0.1, ys["x"] + bh / 2), (s - 0.1, ys["v"] - bh / 2), rad=0.0, lw=0.6)
        if s + 1 < T:  # the peek: v_s reads x_{s+1}
            arrow((s + 1 - 0.2, ys["x"] + bh / 2), (s + 0.15, ys["v"] - bh / 2), color="tab:red",
                  lw=1.2)
    box(t, "y", f"$y_{{{t}}} \\approx x_{{{t + 1}}}$", "#fff3b0", lw=1.5)
    for s in range(t):  # retrieval reads the stored pairs s < t
        arrow((s, ys["v"] + bh / 2), (t - 0.2, ys["y"] - bh / 2), color="tab:green", rad=-0.15, lw=0.9)
    arrow((t + 0.25, ys["k"] + bh / 2), (t + 0.2, ys["y"] - bh / 2), color="black", rad=0.35, lw=1.2)
    ax.text(t + 0.5, (ys["v"] + ys["y"]) / 2, f"query: the key $k_{{{t}}}$", fontsize=8.5,
            va="center")
    ax.text(-0.6, ys["k"], "keys (past)", ha="right", va="center", fontsize=9, color="tab:blue")
    ax.text(-0.6, ys["v"], "values (peek ahead)", ha="right", va="center", fontsize=9, color="tab:red")
    ax.text(-0.6, ys["x"], "inputs", ha="right", va="center", fontsize=9)
    ax.text(-0.6, ys["y"], "answer", ha="right", va="center", fontsize=9)
    ax.text((t - 1) / 2, ys["v"] + 0.75, f"memory at t = {t}: the pairs s < {t}", ha="center",
            fontsize=9, color="tab:green")
    ax.text(t, (ys["k"] + ys["v"]) / 2, f"$v_{{{t}}}$ holds $x_{{{t + 1}}}$: not stored yet",
            ha="center", va="center", fontsize=7.5, color="tab:orange",
            bbox={"fc": "white", "ec": "none", "pad": 1})
    ax.text(T - 1, ys["y"] - 0.1, "future: not stored", ha="center", fontsize=8, color="0.45")
    ax.text((T - 1) / 2, -0.85, "red: $v_s$ peeks at $x_{s+1}$ (index s + 1 ≤ t for every stored pair);"
            "  blue: $k_s$ carries a leaky average of $x_0 … x_s$", ha="center", fontsize=8.5)
    ax.set_xlim(-3.2, T - 0.3)
    ax.set_ylim(-1.2, 5.3)
    ax.set_axis_off()
    ax.set_title("The elementary memory unit: keys from the past, values from the future, "
                 "retrieval from s < t", fontsize=10)
    return ax.figure


def draw_block_comparison(ax: Any = None) -> Any:
    """A mosaic block (left) beside a GPT-2 block (right), drawn the same way.

    Both are pre-LayerNorm residual blocks: the stream goes straight up, each branch reads
    LN(stream) and adds its output back. Where GPT has attention (W_q, W_k, W_v, W_o: 4d²) and an
    MLP (8d²), the mosaic has a contextual memory (W_φ, W_ψ, W_o: 3d², the query is the key) and a
    persistent memory (W_φ, W_o: 2d², tables M_k, M_v: 2·P·d = 7d² at P = 3.5d). Below each
    block: the embedding (GPT adds a position table, the mosaic has none).
    """
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    ax = _axes(ax, (11, 6.4))
    w, h = 2.6, 0.62

    def box(x: float, y: float, label: str, fc: str, width: float = w) -> None:
        ax.add_patch(FancyBboxPatch((x - width / 2, y - h / 2), width, h,
                                    boxstyle="round,pad=0.05", fc=fc, ec="0.3"))
        ax.text(x, y, label, ha="center", va="center", fontsize=8.5)

    def arrow(p: tuple[float, float], q: tuple[float, float], rad: float = 0.0) -> None:
        ax.add_patch(FancyArrowPatch(p, q, arrowstyle="-|>", mutation_scale=10, color="0.35",
                                     lw=1.0, connectionstyle=f"arc3,rad={rad}"))

    def plus(x: float, y: float) -> None:
        ax.add_patch(FancyBboxPatch((x - 0.14, y - 0.14), 0.28, 0.28,
                                    boxstyle="circle,pad=0.0", fc="white", ec="0.3"))
        ax.text(x, y, "+", ha="center", va="center", fontsize=10)

    columns = {
        "mosaic block": (2.4, [
            ("LN₁ (gain only)", "#eeeeee"),
            ("contextual memory (C-mem)\nW_φ, W_ψ, W_o = 3d²; reads pairs s < t", "#dbe9f6"),
            ("LN₂ (gain only)", "#eeeeee"),
            ("persistent memory (P-mem)\nW_φ, W_o = 2d²; tables M_k, M_v = 7d²", "#fde2c8"),
        ], "token embedding only\n(no position table)"),
        "GPT-2 block": (7.6, [
            ("LN₁ (gain only)", "#eeeeee"),
            ("causal self-attention\nW_q, W_k, W_v, W_o = 4d²; reads s ≤ t", "#dbe9f6"),
            ("LN₂ (gain only)", "#eeeeee"),
            ("MLP d → 4d → d\n8d²", "#fde2c8"),
        ], "token embedding\n+ position table (T·d)"),
    }
    for title, (x, branches, embed) in columns.items():
        stream = x - 1.75  # the residual stream runs up on the left of the branches
        box(x, 0.0, embed, "white", width=3.4)
        y = 1.1
        arrow((x, h / 2), (stream, y - 0.3), rad=0.0)
        for i in range(2):
            ln, ln_fc = branches[2 * i]
            layer, layer_fc = branches[2 * i + 1]
            box(x, y + 0.2, ln, ln_fc)
            box(x, y + 1.25, layer, layer_fc, width=3.2)
            plus(stream, y + 2.15)
            arrow((stream, y - 0.3), (stream, y + 2.0))  # the stream itself, never normalised
            arrow((stream, y - 0.1), (x - w / 2, y + 0.2), rad=-0.25)  # into LN
            arrow((x, y + 0.2 + h / 2), (x, y + 1.25 - h / 2))  # LN -> layer
            arrow((x - 1.6, y + 1.45), (stream + 0.14, y + 2.15), rad=0.2)  # layer -> +
            y += 2.45
        arrow((stream, y - 0.3), (stream, y + 0.2))
        ax.text(x, y + 0.45, title + " (× n_layer, then final LN, tied head)", ha="center",
                fontsize=10, weight="bold")
    ax.text(5.0, -1.0, "same budget per block: 3d² + 2d² + 7d² = 12d² = 4d² + 8d²  "
            "(pmem_size P = 3.5·d);  the mosaic adds 7 scalars per head (λ, β, γ, α; λ, β, α)",
            ha="center", fontsize=8.5)
    ax.set_xlim(-0.3, 10.3)
    ax.set_ylim(-1.4, 7.0)
    ax.set_axis_off()
    ax.set_title("A mosaic block beside a GPT-2 block: same layout, memories in place of "
                 "attention and MLP", fontsize=10)
    return ax.figure
