"""Draw an automaton: states as circles, edges as labelled arrows, the start state marked.

The layout is deterministic and needs nothing but matplotlib: the states sit on a circle in
the order of their numbers, state 0 on the left, the others clockwise. Every edge is a slightly
curved arrow, so the two edges between a pair of states (one each way) do not overlap; the
symbols of parallel edges (same source and target) share one label, ``a,c``. A self-loop (it
can appear after minimisation) is a small loop on the outside of its state. An arrow marked
"start" points at state 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.patches import Circle, FancyArrowPatch

from ...core.validation import check_positive_int
from .automata import Automaton
from .vocab import SYMBOLS

__all__ = ["state_positions", "edge_labels", "draw_automaton"]

_NODE_R = 0.13  # node radius in layout units (the states lie on a circle of radius 1)
_RAD = 0.18  # curvature of every edge (matplotlib's arc3 ``rad``)


def state_positions(n_states: int) -> np.ndarray:
    """(n_states, 2): state k at angle π − 2πk/n on the unit circle (state 0 on the left)."""
    check_positive_int("n_states", n_states)
    if n_states == 1:
        return np.zeros((1, 2))
    angles = math.pi - 2 * math.pi * np.arange(n_states) / n_states
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def edge_labels(automaton: Automaton) -> dict[tuple[int, int], str]:
    """``{(source, target): "a,c"}``: the symbols of every edge between two states, sorted."""
    if not isinstance(automaton, Automaton):
        raise TypeError(f"automaton must be an Automaton, got {type(automaton).__name__}")
    labels: dict[tuple[int, int], list[str]] = {}
    for s, pairs in enumerate(automaton.transitions):
        for a, t in pairs:
            labels.setdefault((s, t), []).append(SYMBOLS[a - 1])
    return {edge: ",".join(sorted(syms)) for edge, syms in labels.items()}


def _curve(p: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ends of the arrow p -> q shortened to the node circles, and the label point (the middle of
    matplotlib's arc3 curve: the midpoint moved by rad/2 times the chord turned by -90°)."""
    d = q - p
    control = (p + q) / 2 + _RAD * np.array([d[1], -d[0]])
    start = p + _NODE_R * (control - p) / np.linalg.norm(control - p)
    end = q - _NODE_R * (q - control) / np.linalg.norm(q - control)
    middle = (p + q) / 2 + 0.5 * _RAD * np.array([d[1], -d[0]])
    return start, end, middle


def draw_automaton(
    automaton: Automaton,
    ax: Axes | None = None,
    highlight: Iterable[int] = (),
    title: str | None = None,
    fontsize: float = 9.0,
) -> Axes:
    """Draw ``automaton`` on ``ax`` (a new figure if None) and return the axes.

    ``highlight``: states to fill in colour (e.g. the state a string has reached).
    """
    if not isinstance(automaton, Automaton):
        raise TypeError(f"automaton must be an Automaton, got {type(automaton).__name__}")
    highlight = set(highlight)
    bad = [s for s in highlight if not isinstance(s, int | np.integer) or not 0 <= s < automaton.n_states]
    if bad:
        raise ValueError(f"highlight must hold states 0..{automaton.n_states - 1}, got {sorted(bad)}")
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    pos = state_positions(automaton.n_states)  # (n, 2)
    for (s, t), label in sorted(edge_labels(automaton).items()):
        if s == t:  # a self-loop, outside the circle of states
            out = pos[s] / (np.linalg.norm(pos[s]) or 1.0) if automaton.n_states > 1 else np.array([0, 1.0])
            centre = pos[s] + out * (_NODE_R * 1.7)
            ax.add_patch(Circle(tuple(centre), _NODE_R * 0.8, fill=False, lw=1, color="0.3"))
            xy = centre + out * _NODE_R * 1.4
        else:
            start, end, xy = _curve(pos[s], pos[t])
            ax.add_patch(FancyArrowPatch(tuple(start), tuple(end), connectionstyle=f"arc3,rad={_RAD}",
                                         arrowstyle="-|>", mutation_scale=10, lw=1, color="0.3"))  # fmt: skip
        ax.text(*xy, label, ha="center", va="center", fontsize=fontsize, color="C3",
                bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.8))  # fmt: skip
    for s, (x, y) in enumerate(pos):
        face = "C1" if s in highlight else "white"
        ax.add_patch(Circle((x, y), _NODE_R, fc=face, ec="k", lw=1.5 if s == 0 else 1, zorder=3))
        ax.text(x, y, str(s), ha="center", va="center", fontsize=fontsize, zorder=4)
    sx, sy = pos[0]
    ax.add_patch(FancyArrowPatch((sx - 0.5, sy), (sx - _NODE_R, sy), arrowstyle="-|>", mutation_scale=12,
                                 lw=1.5, color="k"))  # fmt: skip
    ax.text(sx - 0.5, sy + 0.07, "start", ha="left", va="bottom", fontsize=fontsize)
    ax.set_xlim(-1.65, 1.45)
    ax.set_ylim(-1.45, 1.45)
    ax.set_aspect("equal")
    ax.axis("off")
    if title is not None:
        ax.set_title(title, fontsize=fontsize + 1)
    return ax
