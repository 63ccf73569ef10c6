"""An associative memory is a kernel regressor.

A memory stores pairs ``(k_i, v_i)`` and answers a query ``k`` with the Nadaraya–Watson estimate

    f(k) = sum_i exp(-beta * ||k - k_i||^2) v_i / sum_j exp(-beta * ||k - k_j||^2)

``beta`` is the bandwidth: large ``beta`` -> nearest-neighbour lookup, small ``beta`` -> broad
average. Expanding the square, ``||k||^2`` cancels in the normalisation, and when every stored key
has the same norm ``||k_i||^2`` cancels too, leaving ``softmax_i(2 * beta * k . k_i)``: dot-product
attention with an explicit bandwidth (:func:`softmax_attention`).

Every function here accepts numpy arrays or torch tensors (answering in the same kind), batched
over any leading dimensions: ``keys (..., n, d)``, ``values (..., n, d_v)``,
``queries (..., m, d)``. ``beta`` is a non-negative number or an array broadcastable to the
leading (batch) dimensions, e.g. one bandwidth per head. ``mask`` (optional, boolean, broadcastable
to ``(..., m, n)``) says which stored pairs each query may read (``True`` = may read). A query
whose mask allows no pair has an *empty memory*: its weights are all 0 and its answer is exactly 0
(the convention the models use at position 0).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["kernel_weights", "kernel_regression", "softmax_attention", "attention_weights"]

ArrayLike = Any  # a numpy array or a torch tensor


def _as_tensor(name: str, x: ArrayLike) -> tuple[torch.Tensor, bool]:
    """Turn ``x`` into a floating torch tensor; remember whether it came from numpy."""
    if isinstance(x, torch.Tensor):
        tensor, from_numpy = x, False
    elif isinstance(x, np.ndarray | list | tuple):
        tensor, from_numpy = torch.as_tensor(np.asarray(x)), True
    else:
        raise TypeError(f"{name} must be a numpy array or a torch tensor, got {type(x).__name__}")
    if not (tensor.is_floating_point()):
        if tensor.dtype in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8):
            tensor = tensor.double() if from_numpy else tensor.float()
        else:
            raise TypeError(f"{name} must hold real numbers, got dtype {tensor.dtype}")
    return tensor, from_numpy


def _beta_tensor(beta: ArrayLike, like: torch.Tensor) -> torch.Tensor:
    """The bandwidth as a tensor shaped ``(..., 1, 1)`` to broadcast over (queries, keys)."""
    if isinstance(beta, torch.Tensor):
        b = beta.to(like.dtype)
    else:
        try:
            b = torch.as_tensor(np.asarray(beta, dtype=np.float64), dtype=like.dtype)
        except (TypeError, ValueError) as err:
            raise TypeError(f"beta must be a number or an array of numbers, got {beta!r}") from err
    b = b.to(like.device)
    if not torch.isfinite(b).all():
        raise ValueError("beta (the bandwidth) must be finite")
    if (b < 0).any():
        raise ValueError(
            "beta (the bandwidth) must be >= 0: a negative beta would weight far keys *more* "
            "than near ones. Pass beta >= 0 (beta = 0 gives the plain average)."
        )
    if b.dim() > like.dim() - 2:
        raise ValueError(
            f"beta has shape {tuple(b.shape)} but must broadcast to the batch dimensions "
            f"{tuple(like.shape[:-2])} of the keys (e.g. one bandwidth per head)"
        )
    return b[..., None, None]


def _check_memory(keys: torch.Tensor, values: torch.Tensor | None, queries: torch.Tensor) -> None:
    if keys.dim() < 2:
        raise ValueError(f"keys must have shape (..., n, d); got shape {tuple(keys.shape)}")
    if queries.dim() < 2:
        raise ValueError(f"queries must have shape (..., m, d); got shape {tuple(queries.shape)}")
    if keys.shape[-2] == 0:
        raise ValueError("the memory is empty (keys has n = 0 stored pairs): store at least one pair")
    if keys.shape[-1] != queries.shape[-1]:
        raise ValueError(
            f"keys and queries must have the same feature size d; got keys (..., {keys.shape[-1]}) "
            f"and queries (..., {queries.shape[-1]})"
        )
    if values is not None:
        if values.dim() < 2:
            raise ValueError(f"values must have shape (..., n, d_v); got {tuple(values.shape)}")
        if values.shape[-2] != keys.shape[-2]:
            raise ValueError(
                f"keys and values must hold the same number of pairs n; got {keys.shape[-2]} keys "
                f"and {values.shape[-2]} values"
            )


def _mask_tensor(mask: ArrayLike | None, shape: torch.Size, device: torch.device) -> torch.Tensor:
    m = torch.as_tensor(np.asarray(mask)) if not isinstance(mask, torch.Tensor) else mask
    if m.dtype != torch.bool:
        raise TypeError(f"mask must be boolean (True = the query may read that pair), got {m.dtype}")
    try:
        torch.broadcast_shapes(m.shape, shape)
    except RuntimeError as err:
        raise ValueError(
            f"mask of shape {tuple(m.shape)} does not broadcast to (..., m, n) = {tuple(shape)}"
        ) from err
    return m.to(device)


def _normalised_weights(logits: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Softmax over the last axis, with masked pairs removed and empty rows set to exactly 0."""
    if mask is None:
        return torch.softmax(logits, dim=-1)
    logits = logits.masked_fill(~mask, float("-inf"))
    empty = ~mask.any(dim=-1, keepdim=True)  # (..., m, 1): rows with no readable pair
    weights = torch.softmax(logits.masked_fill(empty, 0.0), dim=-1)
    return weights.masked_fill(empty, 0.0)


def _keys_queries_beta(
    keys: ArrayLike, queries: ArrayLike, beta: ArrayLike
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, bool]:
    """Validated keys and queries in one dtype, the bandwidth shaped to broadcast, and whether
    the caller passed numpy (so the answer goes back as numpy)."""
    k, from_numpy = _as_tensor("keys", keys)
    q, _ = _as_tensor("queries", queries)
    _check_memory(k, None, q)
    dtype = torch.promote_types(k.dtype, q.dtype)
    k, q = k.to(dtype), q.to(dtype)
    return k, q, _beta_tensor(beta, k), from_numpy


def _retrieve(weights_fn, keys, values, queries, beta, mask) -> ArrayLike:
    """Weighted average of the stored values, with weights from ``weights_fn``: (..., m, d_v)."""
    k, from_numpy = _as_tensor("keys", keys)
    v, _ = _as_tensor("values", values)
    q, _ = _as_tensor("queries", queries)
    _check_memory(k, v, q)
    w = weights_fn(k, q, beta, mask)  # (..., m, n)
    out = w @ v.to(w.dtype)  # (..., m, d_v)
    return out.numpy() if from_numpy else out


def kernel_weights(
    keys: ArrayLike, queries: ArrayLike, beta: ArrayLike, mask: ArrayLike | None = None
) -> ArrayLike:
    """Nadaraya–Watson weights ``w[..., j, i] ∝ exp(-beta ||q_j - k_i||^2)``, rows summing to 1.

    keys: (..., n, d), queries: (..., m, d) -> weights (..., m, n). Computed as a softmax of
    ``-beta * squared distance`` (the largest term is subtracted first, so no overflow).
    """
    k, q, b, from_numpy = _keys_queries_beta(keys, queries, beta)
    sq_dist = (
        (q * q).sum(-1, keepdim=True)  # (..., m, 1)
        + (k * k).sum(-1).unsqueeze(-2)  # (..., 1, n)
        - 2.0 * q @ k.transpose(-1, -2)  # (..., m, n)
    ).clamp_min(0.0)
    m = None if mask is None else _mask_tensor(mask, sq_dist.shape, sq_dist.device)
    w = _normalised_weights(-b * sq_dist, m)  # (..., m, n)
    return w.numpy() if from_numpy else w


def kernel_regression(
    keys: ArrayLike,
    values: ArrayLike,
    queries: ArrayLike,
    beta: ArrayLike,
    mask: ArrayLike | None = None,
) -> ArrayLike:
    """Retrieve from an associative memory by Gaussian kernel smoothing (Nadaraya–Watson).

    keys: (..., n, d), values: (..., n, d_v), queries: (..., m, d) -> answers (..., m, d_v),
    each answer the kernel-weighted average of the stored values (see :func:`kernel_weights`).
    Works on numpy arrays (returns numpy) and torch tensors (returns torch, differentiable).
    """
    return _retrieve(kernel_weights, keys, values, queries, beta, mask)


def attention_weights(
    keys: ArrayLike, queries: ArrayLike, beta: ArrayLike, mask: ArrayLike | None = None
) -> ArrayLike:
    """Softmax attention weights ``softmax_i(2 * beta * q . k_i)``: (..., m, n)."""
    k, q, b, from_numpy = _keys_queries_beta(keys, queries, beta)
    logits = 2.0 * b * (q @ k.transpose(-1, -2))  # (..., m, n)
    m = None if mask is None else _mask_tensor(mask, logits.shape, logits.device)
    w = _normalised_weights(logits, m)
    return w.numpy() if from_numpy else w


def softmax_attention(
    keys: ArrayLike,
    values: ArrayLike,
    queries: ArrayLike,
    beta: ArrayLike,
    mask: ArrayLike | None = None,
) -> ArrayLike:
    """Dot-product attention with inverse temperature ``2 * beta``: ``softmax(2β q·kᵀ) v``.

    Equal to :func:`kernel_regression` with the same ``beta`` whenever all stored keys have the
    same norm (the ``||k_i||^2`` term of the squared distance is then a constant that cancels).
    keys: (..., n, d), values: (..., n, d_v), queries: (..., m, d) -> (..., m, d_v).
    """
    return _retrieve(attention_weights, keys, values, queries, beta, mask)
