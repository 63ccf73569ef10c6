"""Toy problems for chapters 01 and 02: small regressions and periodic signals, and the pure
functions behind their plots and widgets.

Chapter 01 stores noisy samples ``(x_i, f(x_i) + noise)`` of a known function in an associative
memory and measures how well kernel-regression retrieval recovers ``f``. Chapter 02 feeds a
memory unit with a periodic time series: keys summarise the past, values peek one step ahead, and
the unit predicts the next value from the pairs it stored so far.

Every function here is pure (numpy in, numpy out, seeded); retrieval itself is
:func:`mosaics_edu.core.memory.kernel_regression` and the leaky average is
:func:`mosaics_edu.core.features.leaky_average`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from ..core.features import leaky_average
from ..core.memory import kernel_regression, kernel_weights

__all__ = [
    "target_function", "make_regression", "retrieval_mse", "error_vs_memory_size",
    "fit_demo", "draw_fit_demo", "leave_one_out_error", "in_sample_error",
    "periodic_signal", "lift", "unit_keys", "peek_values", "causal_mask", "predict_next",
    "error_by_position", "memory_unit_demo", "draw_memory_unit_demo", "no_peeking",
]


# ---------------------------------------------------------------------------------------------
# chapter 01: toy regressions
# ---------------------------------------------------------------------------------------------


def _check_dim(dim: int) -> None:
    if dim not in (1, 2):
        raise ValueError(f"dim must be 1 or 2 (the toy regressions are 1-D or 2-D), got {dim!r}")


def target_function(x: np.ndarray) -> np.ndarray:
    """The function the memory should learn, on [0, 1]^dim. x: (..., dim) -> (...).

    1-D: ``sin(2πx) + x/2``. 2-D: ``sin(2πx₁)·cos(πx₂)``.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 1 or x.shape[-1] not in (1, 2):
        raise ValueError(f"x must have shape (..., 1) or (..., 2), got {x.shape}")
    if x.shape[-1] == 1:
        return np.sin(2 * np.pi * x[..., 0]) + 0.5 * x[..., 0]
    return np.sin(2 * np.pi * x[..., 0]) * np.cos(np.pi * x[..., 1])


def make_regression(
    n: int, dim: int = 1, noise: float = 0.3, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` stored pairs: keys uniform on [0, 1]^dim, values ``f(key) + noise·N(0, 1)``.

    Returns keys (n, dim) and values (n, 1).
    """
    _check_dim(dim)
    if not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"n (the number of stored pairs) must be a positive integer, got {n!r}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    rng = np.random.default_rng(seed)
    keys = rng.uniform(0.0, 1.0, size=(int(n), dim))  # (n, dim)
    values = target_function(keys) + noise * rng.standard_normal(int(n))  # (n,)
    return keys, values[:, None]  # (n, dim), (n, 1)


def retrieval_mse(keys: np.ndarray, values: np.ndarray, queries: np.ndarray, beta: float) -> float:
    """Mean squared distance between the memory's answers and the true function at ``queries``."""
    answers = kernel_regression(keys, values, queries, beta)[:, 0]  # (m,)
    return float(np.mean((answers - target_function(queries)) ** 2))


def error_vs_memory_size(
    sizes: Sequence[int],
    schedules: Mapping[str, Callable[[int], float]],
    dim: int = 1,
    noise: float = 0.3,
    n_test: int = 400,
    seeds: int = 5,
) -> dict[str, np.ndarray]:
    """Retrieval error against memory size n, for each bandwidth schedule ``n -> beta``.

    The error is the mean squared distance to the *true* function on ``n_test`` fresh uniform
    queries, averaged over ``seeds`` draws of the memory. Returns ``{"sizes": (S,),
    name: (S,) errors, ...}``.
    """
    _check_dim(dim)
    if not schedules:
        raise ValueError("schedules must name at least one bandwidth schedule n -> beta")
    queries = np.random.default_rng(12345).uniform(0.0, 1.0, size=(n_test, dim))  # (m, dim)
    out: dict[str, np.ndarray] = {"sizes": np.asarray(sizes, dtype=np.int64)}
    for name, schedule in schedules.items():
        errs = []
        for n in sizes:
            per_seed = [
                retrieval_mse(*make_regression(int(n), dim, noise, seed=1000 * s + int(n)),
                              queries, schedule(int(n)))
                for s in range(seeds)
            ]
            errs.append(np.mean(per_seed))
        out[name] = np.asarray(errs)
    return out


def fit_demo(
    n: int = 60, beta: float = 100.0, query: float = 0.3, noise: float = 0.3, seed: int = 0
) -> dict[str, np.ndarray]:
    """What the chapter 01 widget draws: a 1-D memory, its fit on a grid, and one query's weights.

    Returns keys (n,), values (n,), grid (200,), fit (200,), truth (200,), the query, the weights
    (n,) of every stored pair in the answer to that query, the answer, and the fit's error.
    """
    if not 0.0 <= query <= 1.0:
        raise ValueError(f"query must lie in [0, 1] (where the keys are), got {query}")
    keys, values = make_regression(int(n), 1, noise, seed)  # (n, 1), (n, 1)
    grid = np.linspace(0.0, 1.0, 200)[:, None]  # (200, 1)
    fit = kernel_regression(keys, values, grid, beta)[:, 0]  # (200,)
    q = np.array([[query]])  # (1, 1)
    weights = kernel_weights(keys, q, beta)[0]  # (n,)
    truth = target_function(grid)
    return {
        "keys": keys[:, 0], "values": values[:, 0], "grid": grid[:, 0], "fit": fit,
        "truth": truth, "query": np.float64(query), "weights": weights,
        "answer": np.float64(weights @ values[:, 0]),
        "mse": np.float64(np.mean((fit - truth) ** 2)), "beta": np.float64(beta),
    }


def draw_fit_demo(result: Mapping[str, np.ndarray], fig: plt.Figure) -> None:
    """Left: stored pairs, true function, fit, and the query's answer. Right: that query's weights."""
    ax1, ax2 = fig.subplots(1, 2)
    ax1.scatter(result["keys"], result["values"], s=10, c="tab:gray", label="stored pairs")
    ax1.plot(result["grid"], result["truth"], "k--", lw=1, label="true f")
    ax1.plot(result["grid"], result["fit"], c="tab:blue", lw=2, label="retrieval")
    ax1.plot([result["query"]], [result["answer"]], "o", c="tab:red", ms=8, label="one answer")
    ax1.set(title=f"β = {float(result['beta']):.3g}: error {float(result['mse']):.3f}",
            xlabel="key k", ylabel="value v")
    ax1.legend(fontsize=7, loc="lower left")
    order = np.argsort(result["keys"])
    ax2.stem(result["keys"][order], result["weights"][order], basefmt=" ")
    ax2.axvline(float(result["query"]), c="tab:red", lw=1)
    ax2.set(title="weights of the stored pairs in that answer", xlabel="stored key k_i",
            ylabel="weight", xlim=(0, 1))
    fig.tight_layout()


def _check_pairs(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keys, values = np.asarray(keys, dtype=np.float64), np.asarray(values, dtype=np.float64)
    if keys.ndim != 2 or values.ndim != 2 or keys.shape[0] != values.shape[0]:
        raise ValueError(f"keys must be (n, d) and values (n, d_v) with the same n; got "
                         f"{keys.shape} and {values.shape}")
    if keys.shape[0] < 2:
        raise ValueError("leave-one-out needs at least 2 stored pairs")
    return keys, values


def leave_one_out_error(keys: np.ndarray, values: np.ndarray, beta: float) -> float:
    """Mean over i of ``‖f_{-i}(k_i) − v_i‖²``, each pair answered by the memory *without* it.

    keys (n, d), values (n, d_v) -> a float. The mask ``~eye(n)`` removes each query's own pair.
    """
    keys, values = _check_pairs(keys, values)
    n = keys.shape[0]
    answers = kernel_regression(keys, values, keys, beta, mask=~np.eye(n, dtype=bool))  # (n, d_v)
    return float(np.mean(np.sum((answers - values) ** 2, axis=-1)))


def in_sample_error(keys: np.ndarray, values: np.ndarray, beta: float) -> float:
    """The same error *with* each pair allowed to answer itself: it only falls as β grows."""
    keys, values = _check_pairs(keys, values)
    answers = kernel_regression(keys, values, keys, beta)  # (n, d_v)
    return float(np.mean(np.sum((answers - values) ** 2, axis=-1)))


# ---------------------------------------------------------------------------------------------
# chapter 02: a memory unit on a periodic time series
# ---------------------------------------------------------------------------------------------


def periodic_signal(
    n_seqs: int, length: int, period: float = 20.0, noise: float = 0.02, seed: int = 0
) -> np.ndarray:
    """Periodic series ``sin(2πt/P + a) + 0.4 sin(4πt/P + b) + noise``, random phases per series.

    Returns (n_seqs, length). Within one period the same value occurs both on the way up and on
    the way down, which is what makes a key made of ``x_t`` alone ambiguous.
    """
    if n_seqs < 1 or length < 2:
        raise ValueError(f"need n_seqs >= 1 and length >= 2, got {n_seqs}, {length}")
    if period <= 1:
        raise ValueError(f"period must be > 1 time step, got {period}")
    rng = np.random.default_rng(seed)
    t = np.arange(length)  # (T,)
    a = rng.uniform(0, 2 * np.pi, size=(n_seqs, 1))
    b = rng.uniform(0, 2 * np.pi, size=(n_seqs, 1))
    x = np.sin(2 * np.pi * t / period + a) + 0.4 * np.sin(4 * np.pi * t / period + b)  # (N, T)
    return x + noise * rng.standard_normal(x.shape)


def lift(x: np.ndarray, n_bins: int = 24, low: float = -1.6, high: float = 1.6) -> np.ndarray:
    """A scalar series as vectors: soft one-hot bumps on ``n_bins`` centres. (..., T) -> (..., T, n_bins).

    This plays the role of ``W_φ x_t``: a fixed embedding of the current value, so that a leaky
    average of embeddings remembers *which* values were seen recently, not just their mean.
    """
    if n_bins < 2 or not high > low:
        raise ValueError(f"need n_bins >= 2 and high > low, got {n_bins}, {low}, {high}")
    centres = np.linspace(low, high, n_bins)  # (n_bins,)
    width = (high - low) / (n_bins - 1)
    return np.exp(-0.5 * ((np.asarray(x, dtype=np.float64)[..., None] - centres) / width) ** 2)


def unit_keys(x: np.ndarray, decay: float, n_bins: int = 24) -> np.ndarray:
    """Keys of the memory unit: ``k_t = k̄_t/‖k̄_t‖`` with ``k̄_t = lift(x)_t + λ k̄_{t-1}``.

    x: (..., T) -> keys (..., T, n_bins), every key of norm 1.
    """
    k_bar = leaky_average(lift(x, n_bins), decay)  # (..., T, n_bins)
    return k_bar / np.linalg.norm(k_bar, axis=-1, keepdims=True)


def peek_values(x: np.ndarray, gamma: float = 0.0) -> np.ndarray:
    """Values ``v_t = γ x_t + (1-γ) x_{t+1}`` (``x_T = 0`` past the window). (..., T, m) -> (..., T, m)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 2:
        raise ValueError(f"x must have shape (..., T, m), got {x.shape}; add a feature axis")
    nxt = np.concatenate([x[..., 1:, :], np.zeros_like(x[..., :1, :])], axis=-2)  # (..., T, m)
    return gamma * x + (1.0 - gamma) * nxt


def causal_mask(length: int) -> np.ndarray:
    """``mask[t, s] = s < t``: position t reads only pairs stored strictly before it. (T, T)."""
    if length < 1:
        raise ValueError(f"length must be >= 1, got {length}")
    return np.tri(length, length, k=-1, dtype=bool)


def predict_next(
    x: np.ndarray, decay: float, beta: float, gamma: float = 0.0, n_bins: int = 24
) -> tuple[np.ndarray, np.ndarray]:
    """The memory unit's prediction of ``x_{t+1}`` at every t, and its retrieval weights.

    x: (..., T) -> predictions (..., T) (0 at t = 0: an empty memory) and weights (..., T, T).
    """
    x = np.asarray(x, dtype=np.float64)
    keys = unit_keys(x, decay, n_bins)  # (..., T, n_bins)
    values = peek_values(x[..., None], gamma)  # (..., T, 1)
    mask = causal_mask(x.shape[-1])  # (T, T)
    weights = kernel_weights(keys, keys, beta, mask=mask)  # (..., T, T)
    return (weights @ values)[..., 0], weights


def error_by_position(
    x: np.ndarray, decay: float, beta: float, gamma: float = 0.0, n_bins: int = 24
) -> np.ndarray:
    """Mean squared error of the prediction of ``x_{t+1}`` at each position t = 0 … T-2. (N, T) -> (T-1,)."""
    pred, _ = predict_next(x, decay, beta, gamma, n_bins)  # (N, T)
    return np.mean((pred[..., :-1] - x[..., 1:]) ** 2, axis=tuple(range(x.ndim - 1)))


def memory_unit_demo(
    decay: float = 0.5, beta: float = 30.0, query: int = 70, period: float = 20.0,
    length: int = 100, seed: int = 3,
) -> dict[str, np.ndarray]:
    """What the chapter 02 widget draws: one series, the unit's predictions, one query's weights."""
    if not 1 <= query < length - 1:
        raise ValueError(f"query must be a position in [1, {length - 2}], got {query}")
    x = periodic_signal(1, length, period, seed=seed)[0]  # (T,)
    pred, weights = predict_next(x, decay, beta)  # (T,), (T, T)
    err = float(np.mean((pred[1:-1] - x[2:]) ** 2))
    return {"x": x, "prediction": pred, "weights": weights[query], "query": np.int64(query),
            "period": np.float64(period), "mse": np.float64(err), "decay": np.float64(decay),
            "beta": np.float64(beta)}


def draw_memory_unit_demo(result: Mapping[str, np.ndarray], fig: plt.Figure) -> None:
    """Top: the series and the predictions of the next value. Bottom: one query's weights."""
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    t = np.arange(len(result["x"]))
    q = int(result["query"])
    ax1.plot(t, result["x"], c="k", lw=1, label=r"$x_t$")
    ax1.plot(t[:-1] + 1, result["prediction"][:-1], c="tab:blue", lw=1.5,
             label=r"prediction of $x_{t+1}$")
    ax1.axvline(float(result["period"]), c="tab:green", ls=":", label="one period")
    ax1.plot([q + 1], [result["prediction"][q]], "o", c="tab:red")
    ax1.set(title=f"λ = {float(result['decay']):.2f}, β = {float(result['beta']):.3g}: "
                  f"mean squared error {float(result['mse']):.4f}")
    ax1.legend(fontsize=7, loc="lower left")
    ax2.bar(t, result["weights"], color="tab:red", width=1.0)
    ax2.set(xlabel="time s (stored pair)", ylabel=f"weight at t = {q}")
    fig.tight_layout()


def no_peeking(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, t: int,
               seed: int = 0) -> bool:
    """True when the predictions at positions ``0 … t`` do not depend on ``x_{t+1}, x_{t+2}, …``.

    ``predict`` maps a series (T,) to predictions (T,) (the prediction at position s is a guess of
    x_{s+1}). We replace *every* future value ``x[t+1:]`` by random numbers and compare the
    predictions at positions ``≤ t``, which may use ``x_0 … x_t`` only. At the last position,
    ``t = T-1``, there is no future to change: every predictor passes.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or not 0 <= t < len(x):
        raise ValueError(f"x must be 1-D and t in [0, {len(x) - 1}]; got shape {x.shape}, t={t}")
    if t == len(x) - 1:
        return True
    changed = x.copy()
    changed[t + 1:] = np.random.default_rng(seed).normal(0.0, 3.0, size=len(x) - t - 1)
    before = np.asarray(predict(x))[: t + 1]
    after = np.asarray(predict(changed))[: t + 1]
    return bool(np.allclose(before, after, rtol=0.0, atol=1e-12))
