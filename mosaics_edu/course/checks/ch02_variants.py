"""The computations behind chapter 02's checks, written out: shared helpers and the known mistakes.

Leaky keys computed wrongly (exercise 2.1: the weights swapped, the present left out, ...), and
causal prediction from peeking values with one step wrong (2.2: the mask, the values, the
softmax); :func:`wrong_predict` builds the mask and value mistakes from one set of switches.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ...core import memory
from ...core.features import leaky_average

__all__ = ["axis0", "exclusive", "inverse_decay", "leaky", "one_step", "softmax_then_mask", "unit", "values",
           "weights_swapped", "with_mask", "wrong_predict"]


def unit(k: np.ndarray, axis: int = -1) -> np.ndarray:
    """``k`` divided by its Euclidean length along ``axis`` (nan where the length is 0)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return k / np.linalg.norm(k, axis=axis, keepdims=True)


def leaky(f: np.ndarray, decay: float) -> np.ndarray:
    """The leaky average of ``f`` along time (axis 0), in float64."""
    return leaky_average(np.asarray(f, dtype=np.float64), decay, method="recurrent")


# leaky keys (exercise 2.1)


def weights_swapped(f, decay):  # k̄_t = λ k̃_t + k̄_{t-1}
    f = np.asarray(f, dtype=np.float64)
    out, acc = np.zeros_like(f), np.zeros_like(f[0])
    for t in range(len(f)):
        acc = decay * f[t] + acc
        out[t] = acc
    return unit(out)


def exclusive(f, decay):  # k̄_t built from s < t only
    f = np.asarray(f, dtype=np.float64)
    shifted = np.concatenate([np.zeros_like(f[:1]), f[:-1]])
    return unit(leaky(shifted, decay))


def inverse_decay(f, decay):  # λ^(s) instead of λ^(t-s): the oldest input weighs the most
    f = np.asarray(f, dtype=np.float64)
    w = decay ** np.arange(len(f), dtype=np.float64)  # (T,)
    return unit(np.cumsum(w[:, None] * f, axis=0))


def one_step(f, decay):  # k̄_t = k̃_t + λ k̃_{t-1}: the previous input only, not the state
    f = np.asarray(f, dtype=np.float64)
    return unit(f + decay * np.concatenate([np.zeros_like(f[:1]), f[:-1]]))


# causal prediction from peeking values (exercise 2.2)


def values(x, gamma, direction=1):
    """γ x_t + (1-γ) x_{t+1} (``direction=-1``: x_{t-1}, the wrong neighbour), 0 past the end."""
    x = np.asarray(x, dtype=np.float64)
    if direction == 1:
        other = np.concatenate([x[1:], np.zeros_like(x[:1])])
    else:
        other = np.concatenate([np.zeros_like(x[:1]), x[:-1]])
    return gamma * x + (1 - gamma) * other


def with_mask(keys, values, beta, mask):
    """Gaussian kernel regression of ``values`` at the keys themselves, under ``mask``."""
    return memory.kernel_regression(np.asarray(keys, dtype=np.float64), values,
                                    np.asarray(keys, dtype=np.float64), beta, mask=mask)


def wrong_predict(mask="strict", **value_kw) -> Callable:
    """Causal prediction with the mask named ``mask`` and the values' γ, direction or β changed."""
    def wrong(k, x, b, g):
        T = len(k)
        masks = {"strict": np.tri(T, k=-1, dtype=bool), "inclusive": np.tri(T, dtype=bool),
                 "none": None, "future": np.tri(T, dtype=bool).T & ~np.eye(T, dtype=bool),
                 "two": np.tri(T, k=-2, dtype=bool),
                 "first_self": np.tri(T, k=-1, dtype=bool) | (np.arange(T)[:, None] + np.arange(T) == 0)}
        vals = values(x, value_kw.get("gamma", lambda g: g)(g), value_kw.get("direction", 1))
        return with_mask(k, vals, value_kw.get("beta_factor", 1.0) * b, masks[mask])

    return wrong


def softmax_then_mask(k, x, b, g, stable=True, renormalise=False):
    """Weights from a softmax over every pair (or a naive one over s < t), then masked."""
    k = np.asarray(k, dtype=np.float64)
    T = len(k)
    past = np.tri(T, k=-1, dtype=bool)
    s = -b * ((k[:, None] - k[None]) ** 2).sum(-1)  # (T, T)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        if stable:
            e = np.exp(s - s.max(axis=1, keepdims=True))
            w = e / e.sum(axis=1, keepdims=True) * past
            if renormalise:
                w = w / w.sum(axis=1, keepdims=True)
                w[0] = 0.0  # its empty memory, set apart
        else:  # the literal formula over s < t
            e = np.exp(s) * past
            w = e / e.sum(axis=1, keepdims=True)
            w[0] = 0.0
    return w @ values(x, g)


def axis0(k, x, b, g):  # weights normalised over the queries
    k = np.asarray(k, dtype=np.float64)
    T = len(k)
    scores = -b * ((k[:, None] - k[None]) ** 2).sum(-1)
    mask = np.tri(T, k=-1, dtype=bool)
    e = np.where(mask, np.exp(scores - scores.max()), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.nan_to_num(e / e.sum(axis=0, keepdims=True))
    return w @ values(x, g)
