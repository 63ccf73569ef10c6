"""Which pairs a v2 memory may read: the short-term and long-term windows, and the retrieval.

Positions are counted from 0. At position t (the query), with pairs (k_s, v_s) whose value
peeks at x_{s+1}:

- **short-term memory**, window h: the pairs of the last h - 1 positions, t-h+1 ≤ s ≤ t-1;
  it holds ``min(t, h-1)`` pairs;
- **long-term memory**, delay m ≥ 1: the pairs at s ≤ t - m (it skips the m - 1 most recent
  positions before t); it holds ``max(0, t-m+1)`` pairs.

Both read s < t only (strict causality, as in v1: v_s contains x_{s+1}, whose index s + 1 ≤ t). With m < h the
two windows overlap. A query whose window is empty (t = 0 for both, t < m for the long-term
memory) answers exactly 0.

:func:`window_retrieval` is the retrieval of both: ``y_t = Σ_s softmax_s(β_t k_t·k_s) v_s`` over
the readable s, with a bandwidth β_t that may differ from row to row (v2's β(n_t)). A per-row β
is the same as scaling the query, so it is :func:`mosaics_edu.core.memory.retrieve` (β = 1) on the
scaled queries, with the window as its mask: one retrieval for v1's cache, the persistent memory
and both v2 memories.
"""

from __future__ import annotations

import torch

from ..memory import retrieve

__all__ = [
    "short_term_mask",
    "long_term_mask",
    "pair_counts",
    "window_retrieval",
    "short_term_range",
    "long_term_range",
    "window_view",
    "draw_window_view",
]


def _positive(name: str, value: int, least: int = 1) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")


def short_term_mask(T: int, window: int, device: torch.device | str | None = None) -> torch.Tensor:
    """(T, T) boolean, True where query t may read pair s: 1 ≤ t - s ≤ window - 1."""
    _positive("T", T)
    _positive("window", window, 2)
    lag = torch.arange(T, device=device)[:, None] - torch.arange(T, device=device)[None, :]
    return (lag >= 1) & (lag <= window - 1)


def long_term_mask(T: int, delay: int, device: torch.device | str | None = None) -> torch.Tensor:
    """(T, T) boolean, True where query t may read pair s: t - s ≥ delay (delay ≥ 1)."""
    _positive("T", T)
    _positive("delay", delay)
    lag = torch.arange(T, device=device)[:, None] - torch.arange(T, device=device)[None, :]
    return lag >= delay


def short_term_range(t: int, window: int) -> tuple[int, int]:
    """The pairs query t reads in a short-term memory, as a slice [lo, hi) of the positions."""
    return max(0, t - window + 1), t


def long_term_range(t: int, delay: int) -> tuple[int, int]:
    """The pairs query t reads in a long-term memory, as a slice [lo, hi) (possibly empty)."""
    return 0, max(0, t - delay + 1)


def pair_counts(mask: torch.Tensor) -> torch.Tensor:
    """n_t, the number of pairs each query may read. mask: (..., T, S) -> (..., T)."""
    return mask.sum(dim=-1)


def window_retrieval(
    keys: torch.Tensor,
    values: torch.Tensor,
    queries: torch.Tensor,
    beta: torch.Tensor,
    mask: torch.Tensor | None = None,
    return_weights: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """``y_t = Σ_s softmax_s(β_t q_t·k_s) v_s`` over the pairs s that ``mask[t, s]`` allows.

    keys: (B, H, S, d), values: (B, H, S, d_v), queries: (B, H, T, d), beta: (H, T) (one β per
    head and query row), mask: (T, S) boolean or None (every pair readable) -> (B, H, T, d_v);
    rows with no readable pair (and S = 0) answer exactly 0. ``return_weights`` also returns the
    (B, H, T, S) weights (written out explicitly; same answer).
    """
    B, H, T, d = queries.shape
    S = keys.shape[-2]
    if keys.shape[-1] != d or values.shape[-2] != S or beta.shape != (H, T):
        raise ValueError(
            f"window_retrieval: need keys (B, H, S, d), values (B, H, S, d_v), queries (B, H, T, d) "
            f"and beta (H, T); got keys {tuple(keys.shape)}, values {tuple(values.shape)}, "
            f"queries {tuple(queries.shape)}, beta {tuple(beta.shape)}"
        )
    q = queries * beta.to(queries.dtype)[None, :, :, None]  # (B, H, T, d): β_t q_t
    return retrieve(keys, values, q, 1.0, mask=mask, return_weights=return_weights)


def window_view(T: int = 48, window: int = 12, delay: int = 4) -> dict[str, torch.Tensor]:
    """What chapter 09's widget draws: the short-term (window h) and long-term (delay m) masks of
    a length-T sequence, where they overlap, and the pair counts n_t of each memory (the n of
    β(n)). Returns ``short``, ``long``, ``both`` (T, T) booleans and ``n_short``, ``n_long`` (T,)."""
    short, long = short_term_mask(T, window), long_term_mask(T, delay)
    return {"short": short, "long": long, "both": short & long, "n_short": pair_counts(short),
            "n_long": pair_counts(long)}  # fmt: skip


def draw_window_view(view: dict[str, torch.Tensor], fig) -> None:
    """Draw :func:`window_view`: the two masks in one picture (short-term blue, long-term orange,
    both purple) and the pair counts n_t per query position."""
    import numpy as np

    short, long = view["short"].numpy(), view["long"].numpy()
    T = short.shape[0]
    rgb = np.ones((T, T, 3))
    rgb[short & ~long] = (0.3, 0.5, 0.9)
    rgb[long & ~short] = (0.95, 0.6, 0.2)
    rgb[short & long] = (0.55, 0.3, 0.6)
    ax1, ax2 = fig.subplots(1, 2)
    ax1.imshow(rgb, interpolation="nearest")
    ax1.set_xlabel("pair s (key position)")
    ax1.set_ylabel("query t")
    ax1.set_title("blue: short-term only, orange: long-term only, purple: both", fontsize=9)
    ax2.plot(view["n_short"].numpy(), label="short-term n_t")
    ax2.plot(view["n_long"].numpy(), label="long-term n_t")
    ax2.set_xlabel("query t")
    ax2.set_ylabel("pairs held")
    ax2.legend()
