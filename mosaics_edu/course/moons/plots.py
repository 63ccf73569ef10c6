"""Three moons: the chapter's figures, and the pure function behind its training-replay widget."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import torch

from .data import STEPS_PER_UNIT, full_period, observe
from .train import POOL

__all__ = ["draw_data", "mark_periods", "draw_blocks", "replay_frame", "draw_replay_frame"]


def mark_periods(ax: plt.Axes, triple: tuple[float, float, float], top: bool = True) -> None:
    """Grey dashed lines at each moon's period, a red line at the full period (in steps).

    Lines beyond the x-range already drawn are left out (the axis limits do not change). The
    labels sit inside the axes, written along their lines, so that they never run into the title
    or into each other when two periods are close.
    """
    lo, hi = ax.get_xlim()
    names = [f"{p:g}" for p in triple] + ["full"]
    steps = [p * STEPS_PER_UNIT for p in triple] + [full_period(triple) * STEPS_PER_UNIT]
    for name, s in zip(names, steps, strict=True):
        if not lo <= s <= hi:
            continue
        full = name == "full"
        ax.axvline(s, color="red" if full else "grey", ls="-" if full else "--",
                   lw=1.0 if full else 0.8)
        if top:
            ax.text(s, 0.98, name, transform=ax.get_xaxis_transform(), rotation=90, ha="right",
                    va="top", fontsize=7, color="red" if full else "grey")
    ax.set_xlim(lo, hi)


def draw_data(triple: tuple[float, float, float], start: float = 0.0, steps: int = 400) -> plt.Figure:
    """Left: the three orbits (drawn at radii 1, 2, 3). Right: the 6 observed series."""
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [1, 2.6]})
    t = start + torch.arange(steps, dtype=torch.float64) / STEPS_PER_UNIT
    x = observe(t, triple).numpy()  # (steps, 6)
    colors = ["C0", "C1", "C2"]
    ax0.plot(0, 0, "ko", ms=8)
    for m in range(3):
        r = m + 1
        circle = np.linspace(0, 2 * math.pi, 200)
        ax0.plot(r * np.cos(circle), r * np.sin(circle), color=colors[m], lw=0.6, alpha=0.5)
        ax0.plot(r * x[0, 2 * m + 1], r * x[0, 2 * m], "o", color=colors[m],
                 label=f"moon {m + 1}: period {triple[m]:g} ({triple[m] * STEPS_PER_UNIT:.0f} steps)")
    ax0.set_aspect("equal")
    ax0.axis("off")
    ax0.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, 0.0))
    for m in range(3):
        ax1.plot(x[:, 2 * m] + 3 * (2 - m), color=colors[m], lw=1, label=f"sin, moon {m + 1}")
        ax1.plot(x[:, 2 * m + 1] + 3 * (2 - m), color=colors[m], lw=1, ls=":")
    ax1.set_yticks([])
    ax1.set_xlabel("step")
    ax1.set_title(f"the 6 observed series (solid sin, dotted cos) of the triple {triple}")
    mark_periods(ax1, triple)
    fig.tight_layout()
    return fig


def draw_blocks(axes, blocks: dict, title: str = "") -> None:
    """One 3×3 heat map per map (W_φ, W_ψ, W_z) of 2×2-block magnitudes |a + ib|."""
    names = {"phi": "W_φ (keys)", "psi": "W_ψ (values)", "z": "W_z (output)"}
    for ax, (key, label) in zip(axes, names.items(), strict=True):
        mag = np.asarray(blocks[key])
        ax.imshow(mag, cmap="Greys", vmin=0)
        for (i, j), v in np.ndenumerate(mag):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if v > 0.6 * mag.max() else "black")
        ax.set_xticks(range(3), ["1", "2", "3"])  # numbered from 1, like "unit 1" and "moon 3"
        ax.set_yticks(range(3), ["1", "2", "3"])
        ax.set_title(f"{title}{label}", fontsize=8)
    rows = {"phi": ("key pair (unit)", "moon in"), "psi": ("value pair (unit)", "moon next"),
            "z": ("moon out", "unit")}
    for ax, key in zip(axes, names, strict=True):
        ax.set_ylabel(rows[key][0], fontsize=7)
        ax.set_xlabel(rows[key][1], fontsize=7)


def replay_frame(record: dict, index: int) -> dict:
    """What the training-replay widget shows at snapshot ``index`` of a saved run's history.

    Returns positions (pooled bins), the per-position loss of this snapshot and of every earlier
    one, the area under the curve (= the training loss on the probe windows), the unit/moon
    shares of W_φ and whether they form a clean split.
    """
    snaps = record["history"]["snapshots"]
    if not 0 <= index < len(snaps):
        raise ValueError(f"replay_frame(index={index}): use 0 ≤ index < {len(snaps)}.")
    curves = np.array([s["position_loss"] for s in snaps[: index + 1]])  # (index+1, bins)
    positions = (np.arange(curves.shape[1]) + 0.5) * POOL
    return {
        "step": snaps[index]["step"],
        "positions": positions,
        "curve": curves[-1],
        "earlier": curves[:-1],
        "area": float(curves[-1].mean()),
        "shares": np.asarray(snaps[index]["shares"]),
        "clean_split": snaps[index]["clean_split"],
        "name": f"{record['config']['task']} task, {record['config']['n_units']} unit(s), "
                f"seed {record['seed']}",
    }


def draw_replay_frame(frame: dict, fig: plt.Figure) -> None:
    """Left: per-position loss (earlier snapshots faded). Right: unit × moon shares of W_φ."""
    ax0, ax1 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2.4, 1]})
    for c in frame["earlier"]:
        ax0.plot(frame["positions"], c, color="grey", alpha=0.3, lw=0.8)
    ax0.fill_between(frame["positions"], frame["curve"], color="C0", alpha=0.25)
    ax0.plot(frame["positions"], frame["curve"], color="C0")
    ax0.set_yscale("log")
    ax0.set_xlabel("position in the window (= number of stored pairs)")
    ax0.set_ylabel("clipped squared error")
    ax0.set_title(f"{frame['name']}: step {frame['step']}, loss (mean of curve) "
                  f"{frame['area']:.4f}", fontsize=9)
    sh = frame["shares"]
    ax1.imshow(sh, cmap="Blues", vmin=0, vmax=1)
    for (i, j), v in np.ndenumerate(sh):
        ax1.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8,
                 color="white" if v > 0.6 else "black")
    ax1.set_xticks(range(3), [f"moon {m + 1}" for m in range(3)], fontsize=7)
    ax1.set_yticks(range(sh.shape[0]), [f"unit {h + 1}" for h in range(sh.shape[0])], fontsize=7)
    split = frame["clean_split"]
    ax1.set_title("W_φ share per moon" + ("" if split is None else
                                          f"\nclean split: {'yes' if split else 'no'}"),
                  fontsize=9)
    fig.tight_layout()  # the widget does not lay out the figure; keep the x label in view
