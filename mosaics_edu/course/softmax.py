"""Softmax with an explicit β: the pure function behind chapter 00's widget.

``softmax(β · s)`` turns scores ``s`` into weights. Large β concentrates all weight on the best
score (a hard lookup), small β spreads it evenly (an average). The same β reappears in every later
chapter as the β of an associative memory (the multiplier of k·k' inside its softmax).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["beta_softmax", "draw_beta_softmax", "DEMO_SCORES"]

DEMO_SCORES = np.array([2.0, 1.5, 1.0, 0.2, -0.5, -1.0, 0.8, 1.9])


def beta_softmax(scores: np.ndarray, beta: float, shift: float = 0.0) -> dict[str, np.ndarray]:
    """Weights ``softmax(β·(scores + shift))`` (stable), plus their entropy in nats.

    ``shift`` adds the same constant to every score; the weights do not change, which is exactly
    why subtracting the maximum is allowed.
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1 or s.size == 0:
        raise ValueError(f"scores must be a non-empty 1-D array, got shape {s.shape}")
    if not np.isfinite(beta) or beta < 0:
        raise ValueError(f"beta must be a finite number >= 0, got {beta}; use e.g. beta=1.0")
    z = beta * (s + shift)
    z = z - z.max()
    w = np.exp(z) / np.exp(z).sum()
    entropy = float(-(w * np.log(np.where(w > 0, w, 1.0))).sum())
    return {"scores": s + shift, "weights": w, "entropy": np.float64(entropy)}


def draw_beta_softmax(result: dict[str, np.ndarray], fig: plt.Figure) -> None:
    """Scores on the left, the weights they produce on the right."""
    ax1, ax2 = fig.subplots(1, 2)
    idx = np.arange(len(result["scores"]))
    ax1.bar(idx, result["scores"], color="tab:gray")
    ax1.set(title="scores  s_i (+ shift)", xlabel="item i")
    ax2.bar(idx, result["weights"], color="tab:blue")
    ax2.set(title=f"weights softmax(β·s)  (entropy {float(result['entropy']):.2f} nats)",
            xlabel="item i", ylim=(0, 1))
    fig.tight_layout()
