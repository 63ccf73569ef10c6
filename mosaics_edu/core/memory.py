"""An associative memory is a kernel regressor.

A memory stores pairs ``(k_i, v_i)`` and answers a query ``k`` with the Nadaraya–Watson estimate

    f(k) = sum_i exp(-beta * ||k - k_i||^2) v_i / sum_j exp(-beta * ||k - k_j||^2)

``beta`` sets the width of the kernel: large ``beta`` -> nearest-neighbour lookup, small ``beta``
-> broad average. Expanding the square, ``||k||^2`` cancels in the normalisation, and when every
stored key has the same norm ``||k_i||^2`` cancels too, leaving ``softmax_i(2 * beta * k . k_i)``:
dot-product attention whose multiplier of ``k . k_i`` is ``2 * beta``.

Every dot-product retrieval below takes that multiplier itself as its β, the papers' β:
``softmax_i(β k . k_i)`` in :func:`attention_weights`, :func:`softmax_attention`,
:func:`causal_retrieval` and :func:`retrieve`. So the Gaussian form with bandwidth ``beta`` and
the dot form meet at ``softmax_attention(keys, values, queries, 2 * beta)``, the explicit 2 of
the expansion above; nowhere else does a factor of 2 (or 0.5) stand between two βs.

The first four functions accept numpy arrays or torch tensors (answering in the same kind),
batched over any leading dimensions: ``keys (..., n, d)``, ``values (..., n, d_v)``,
``queries (..., m, d)``. ``beta`` is a non-negative number or an array broadcastable to the
leading (batch) dimensions, e.g. one per head. ``mask`` (optional, boolean, broadcastable to
``(..., m, n)``) says which stored pairs each query may read (``True`` = may read). A query whose
mask allows no pair has an *empty memory*: its weights are all 0 and its answer is exactly 0 (the
convention the models use at position 0).

The last two are the retrieval of the models (torch only, fused attention kernels):
:func:`causal_retrieval` lets position t read the pairs s < t of its own sequence (contextual
memory, three moons), :func:`retrieve` lets each query read every stored pair (cached generation).
Input validation lives in :mod:`mosaics_edu.core.validation`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from . import validation as check

__all__ = [
    "kernel_weights",
    "kernel_regression",
    "softmax_attention",
    "attention_weights",
    "causal_retrieval",
    "retrieve",
]

ArrayLike = Any  # a numpy array or a torch tensor


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
    w = _normalised_weights(-b * sq_dist, mask)  # (..., m, n)
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
    return _weighted_values(kernel_weights, keys, values, queries, beta, mask)


def attention_weights(
    keys: ArrayLike, queries: ArrayLike, beta: ArrayLike, mask: ArrayLike | None = None
) -> ArrayLike:
    """Softmax attention weights ``softmax_i(beta * q . k_i)``: (..., m, n)."""
    k, q, b, from_numpy = _keys_queries_beta(keys, queries, beta)
    logits = b * (q @ k.transpose(-1, -2))  # (..., m, n)
    w = _normalised_weights(logits, mask)
    return w.numpy() if from_numpy else w


def softmax_attention(
    keys: ArrayLike,
    values: ArrayLike,
    queries: ArrayLike,
    beta: ArrayLike,
    mask: ArrayLike | None = None,
) -> ArrayLike:
    """Dot-product attention with inverse temperature ``beta``: ``softmax(β q·kᵀ) v``.

    At ``beta = 2 * b`` it equals :func:`kernel_regression` with bandwidth ``b`` whenever all
    stored keys have the same norm (the ``||k_i||^2`` term of the squared distance is then a
    constant that cancels). The masked, numpy-or-torch form of :func:`retrieve`.
    keys: (..., n, d), values: (..., n, d_v), queries: (..., m, d) -> (..., m, d_v).
    """
    return _weighted_values(attention_weights, keys, values, queries, beta, mask)


# --------------------------------------------------------------------------------------------
# the retrieval of the models
# --------------------------------------------------------------------------------------------


def causal_retrieval(
    keys: torch.Tensor,
    values: torch.Tensor,
    queries: torch.Tensor | None = None,
    beta: float = 1.0,
    dropout_p: float = 0.0,
    return_weights: bool = False,
    delay: int = 1,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Strictly causal retrieval: ``y_t = Σ_{s<t} softmax_s(β q_t·k_s) v_s``, and ``y_0 = 0``.

    keys, queries (default: the keys): (B, H, T, d), values: (B, H, T, d_v) -> (B, H, T, d_v).
    Position t reads only the pairs s < t: a value that peeks one step ahead (v_s made from
    x_{s+1}, index s + 1 ≤ t) never shows position t its own future, and position 0 reads an empty memory.
    ``dropout_p`` drops retrieval weights (pass it only while training).

    Fast path: reading s < t for the queries 1..T-1 is ordinary causal attention over the keys
    0..T-2, so the fused kernel applies. With ``return_weights`` the (T, T) weights are written
    out instead (row 0 all zero) and returned too: ``(y, weights (B, H, T, T))``, same ``y``.
    At β = 0 (every stored pair weighs the same) the weights path runs too: PyTorch's fused
    kernel returns nan for a scale of 0.

    ``delay`` m ≥ 1 lets position t read the pairs s ≤ t - m only (v2's long-term memory; m = 1
    is the rule above): positions t < m read an empty memory and answer 0. The fast path is
    then causal attention of the queries m..T-1 over the keys 0..T-1-m, so it skips the pairs
    a position may not read instead of masking them.
    """
    q = keys if queries is None else queries
    check.check_retrieval(keys, values, q)
    check.check_positive_int("delay", delay)
    T = q.shape[-2]
    if return_weights or beta == 0:  # the fused kernel answers nan for a scale of 0
        logits = (beta * q) @ keys.transpose(-1, -2)  # (B, H, T, T)
        readable = torch.ones(T, T, dtype=torch.bool, device=q.device).tril(diagonal=-delay)
        empty = torch.arange(T, device=q.device)[:, None] < delay  # (T, 1): rows reading nothing
        logits = logits.masked_fill(~(readable | empty), float("-inf"))  # empty rows finite...
        weights = torch.softmax(_at_least_float32(logits), dim=-1).to(values.dtype)  # (B,H,T,T)
        weights = weights.masked_fill(empty, 0.0)  # ...and zeroed here: their output is exactly 0
        y = F.dropout(weights, dropout_p) @ values  # (B, H, T, d_v)
        return (y, weights) if return_weights else y
    if T <= delay:
        return torch.zeros_like(values)
    if queries is None and delay == 1 and T % 16 == 0 and dropout_p == 0:
        return _shifted_causal(keys, values, dropout_p, beta)
    y = F.scaled_dot_product_attention(
        q[..., delay:, :], keys[..., :-delay, :], values[..., :-delay, :],
        is_causal=True, dropout_p=dropout_p, scale=beta,
    )  # (B, H, T-delay, d_v)
    # positions t < delay read an empty memory -> 0; padding the (B, T, H, d_v) view makes a
    # merge of the heads that follows free
    return F.pad(y.transpose(1, 2), (0, 0, 0, 0, delay, 0)).transpose(1, 2)  # (B, H, T, d_v)


def _shifted_causal(
    keys: torch.Tensor, values: torch.Tensor, dropout_p: float, beta: float
) -> torch.Tensor:
    """:func:`causal_retrieval` with queries = keys, as one length-T causal attention.

    Row i of the attention has query k_{i+1}, so the causal mask (pairs j ≤ i) lets it read
    k_0 … k_i: the pairs s < t = i + 1. Row T-1 (query k_0, wrapped round) is computed and
    dropped. Same answer as the length T-1 form up to float rounding; the fused CPU kernel
    runs a length that is a multiple of 16 about 20 % faster than one off it (measured at
    T = 64, 96, 128, 256 with head size 16), which is why :func:`causal_retrieval` takes this
    form only then.
    """
    q = torch.roll(keys, -1, dims=-2)  # (B, H, T, d): row i holds k_{i+1}
    y = F.scaled_dot_product_attention(
        q, keys, values, is_causal=True, dropout_p=dropout_p, scale=beta
    )  # (B, H, T, d_v): row i answers position i + 1
    return F.pad(y[..., :-1, :].transpose(1, 2), (0, 0, 0, 0, 1, 0)).transpose(1, 2)


def retrieve(
    keys: torch.Tensor,
    values: torch.Tensor,
    queries: torch.Tensor,
    beta: float = 1.0,
    dropout_p: float = 0.0,
    return_weights: bool = False,
    mask: torch.Tensor | None = None,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Every query reads every stored pair it may: ``softmax_s(β q·k_s) v_s``.

    keys: (B, H, n, d), values: (B, H, n, d_v), queries: (B, H, m, d) -> (B, H, m, d_v). A
    newly generated position does this with the pairs a cache has stored (they all lie in its
    past); a persistent memory does it with its learned table; v2's short- and long-term memories
    do it through a window ``mask`` (m, n) (``True`` = query may read the pair; None = every
    pair). A query with nothing to read (n = 0, or a row of ``mask`` all False) answers exactly 0.
    ``dropout_p`` and ``return_weights`` (weights (B, H, m, n) returned too) as in
    :func:`causal_retrieval`.
    """
    check.check_retrieval(keys, values, queries)
    m, n = queries.shape[-2], keys.shape[-2]
    if mask is not None and mask.shape != (m, n):
        raise ValueError(f"mask must have shape (queries, pairs) = {(m, n)}, got {tuple(mask.shape)}")
    if n == 0 and not return_weights:
        return values.new_zeros(*queries.shape[:-1], values.shape[-1])
    empty = None if mask is None else ~mask.any(dim=-1)  # (m,): rows with no readable pair
    if return_weights or beta == 0:  # the fused kernel answers nan for a scale of 0
        logits = (beta * queries) @ keys.transpose(-1, -2)  # (B, H, m, n)
        if mask is not None:
            logits = logits.masked_fill(~mask, float("-inf")).masked_fill(empty[:, None], 0.0)
        weights = torch.softmax(_at_least_float32(logits), dim=-1).to(values.dtype)
        if mask is not None:
            weights = weights.masked_fill(empty[:, None], 0.0)  # an empty row answers exactly 0
        y = F.dropout(weights, dropout_p) @ values  # (B, H, m, d_v)
        return (y, weights) if return_weights else y
    if mask is None:
        return F.scaled_dot_product_attention(
            queries, keys, values, dropout_p=dropout_p, scale=beta
        )  # (B, H, m, d_v)
    # an empty row may read pair 0 inside the kernel (no NaN), and its answer is then set to 0
    safe = mask.clone()
    safe[:, 0] |= empty
    y = F.scaled_dot_product_attention(
        queries, keys, values, attn_mask=safe, dropout_p=dropout_p, scale=beta
    )  # (B, H, m, d_v)
    return y.masked_fill(empty[:, None], 0.0)


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """Half-precision logits are normalised in float32; float32 and float64 stay as they are."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _normalised_weights(logits: torch.Tensor, mask: ArrayLike | None) -> torch.Tensor:
    """Softmax over the last axis, with masked pairs removed and empty rows set to exactly 0."""
    if mask is None:
        return torch.softmax(logits, dim=-1)
    mask = check.mask_tensor(mask, logits.shape, logits.device)
    logits = logits.masked_fill(~mask, float("-inf"))
    empty = ~mask.any(dim=-1, keepdim=True)  # (..., m, 1): rows with no readable pair
    weights = torch.softmax(logits.masked_fill(empty, 0.0), dim=-1)
    return weights.masked_fill(empty, 0.0)


def _keys_queries_beta(
    keys: ArrayLike, queries: ArrayLike, beta: ArrayLike
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, bool]:
    """Validated keys and queries in one dtype, beta shaped (..., 1, 1) to broadcast, and whether
    the caller passed numpy (so the answer goes back as numpy)."""
    k, from_numpy = check.as_tensor("keys", keys)
    q, _ = check.as_tensor("queries", queries)
    check.check_memory(k, None, q)
    dtype = torch.promote_types(k.dtype, q.dtype)
    k, q = k.to(dtype), q.to(dtype)
    return k, q, check.beta_tensor(beta, k), from_numpy


def _weighted_values(weights_fn, keys, values, queries, beta, mask) -> ArrayLike:
    """Weighted average of the stored values, with weights from ``weights_fn``: (..., m, d_v)."""
    k, from_numpy = check.as_tensor("keys", keys)
    v, _ = check.as_tensor("values", values)
    q, _ = check.as_tensor("queries", queries)
    check.check_memory(k, v, q)
    w = weights_fn(k, q, beta, mask)  # (..., m, n)
    out = w @ v.to(w.dtype)  # (..., m, d_v)
    return out.numpy() if from_numpy else out
