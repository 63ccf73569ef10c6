"""Input validation for the math modules (memory, features, layers), kept out of their way.

Every public function of :mod:`~mosaics_edu.core.memory`, :mod:`~mosaics_edu.core.features` and
:mod:`~mosaics_edu.core.layers` checks its input here, so that a reader of those modules meets the
estimator first (the model configurations use :func:`check_positive_int` too). Each error names
the argument and says how to fix it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

ArrayLike = Any  # a numpy array or a torch tensor

LEAKY_METHODS = ("scan", "recurrent", "matrix")


# --------------------------------------------------------------------------------------------
# per-head scalars: the papers' beta (β) and decay (λ)
# --------------------------------------------------------------------------------------------


def per_head_scalar(
    name: str,
    value: ArrayLike,
    like: torch.Tensor,
    rules: list[tuple[Callable[[torch.Tensor], torch.Tensor], str]],
    shape_error: str,
) -> torch.Tensor:
    """``value`` (a number, or one per leading dimension of ``like``, e.g. one per head) as a
    tensor of ``like``'s dtype and device, shaped ``(..., 1, 1)`` to broadcast over ``like``'s
    last two axes. ``rules`` are (test, message) pairs checked in order (skipped under
    ``torch.compile``); ``shape_error`` is formatted with ``shape`` and ``lead``."""
    if isinstance(value, torch.Tensor):
        t = value.to(device=like.device, dtype=like.dtype)
    else:
        try:
            t = torch.as_tensor(np.asarray(value, dtype=np.float64), dtype=like.dtype)
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name} must be a number or an array of numbers, got {value!r}") from err
        t = t.to(like.device)
    if t.dim() > like.dim() - 2:
        raise ValueError(shape_error.format(shape=tuple(t.shape), lead=tuple(like.shape[:-2])))
    if not torch.compiler.is_compiling():
        for ok, message in rules:
            if not ok(t).all():
                raise ValueError(message)
    return t[..., None, None]


def beta_tensor(beta: ArrayLike, like: torch.Tensor) -> torch.Tensor:
    """β of the kernel as a ``(..., 1, 1)`` tensor (a number or one per batch dimension)."""
    return per_head_scalar(
        "beta",
        beta,
        like,
        [
            (torch.isfinite, "beta (the bandwidth) must be finite"),
            (
                lambda b: b >= 0,
                "beta (the bandwidth) must be >= 0: a negative beta would weight far keys *more* "
                "than near ones. Pass beta >= 0 (beta = 0 gives the plain average).",
            ),
        ],
        "beta has shape {shape} but must broadcast to the batch dimensions {lead} of the keys "
        "(e.g. one beta per head)",
    )


def decay_tensor(decay: ArrayLike, like: torch.Tensor) -> torch.Tensor:
    """λ of a leaky average as a ``(..., 1, 1)`` tensor (a number or one per leading dimension)."""
    return per_head_scalar(
        "decay",
        decay,
        like,
        [
            (
                lambda d: torch.isfinite(d) & (d >= 0) & (d <= 1),
                "decay (λ, the fraction of the past kept per step) must lie in [0, 1]: 0 keeps "
                "only the current step, 1 sums the whole past with equal weight",
            )
        ],
        "decay has shape {shape}; it must broadcast to the leading dimensions {lead} of x "
        "(e.g. shape (n_head,) for x of shape (B, n_head, T, d))",
    )


# --------------------------------------------------------------------------------------------
# associative memory (memory.py)
# --------------------------------------------------------------------------------------------


def as_tensor(name: str, x: ArrayLike) -> tuple[torch.Tensor, bool]:
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


def check_memory(keys: torch.Tensor, values: torch.Tensor | None, queries: torch.Tensor) -> None:
    """Keys (..., n, d), values (..., n, d_v) and queries (..., m, d) that fit together."""
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


def mask_tensor(mask: ArrayLike, shape: torch.Size, device: torch.device) -> torch.Tensor:
    """A boolean mask that broadcasts to ``shape`` = (..., m, n), on ``device``."""
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


def check_retrieval(keys: torch.Tensor, values: torch.Tensor, queries: torch.Tensor) -> None:
    """Shapes of a model's retrieval: keys (..., n, d), values (..., n, d_v), queries (..., m, d)
    with the same leading dimensions. Cheap (shapes only): it runs inside every forward."""
    if keys.dim() < 2 or values.dim() != keys.dim() or queries.dim() != keys.dim():
        raise ValueError(
            f"keys {tuple(keys.shape)}, values {tuple(values.shape)} and queries "
            f"{tuple(queries.shape)} must all have shape (..., n or m, features), same leading dims"
        )
    if keys.shape[-2] != values.shape[-2] or keys.shape[-1] != queries.shape[-1]:
        raise ValueError(
            f"keys {tuple(keys.shape)} and values {tuple(values.shape)} must hold the same number "
            f"of pairs, and queries {tuple(queries.shape)} the keys' feature size"
        )


# --------------------------------------------------------------------------------------------
# leaky average and feature extractors (features.py), layers (layers.py)
# --------------------------------------------------------------------------------------------


def leaky_average_input(x: Any, method: str, dim: int) -> tuple[torch.Tensor, bool, int]:
    """``x`` as a floating tensor with at least 2 dims, whether it came from numpy, and ``dim``
    made non-negative (the time axis, never the last one)."""
    from_numpy = isinstance(x, np.ndarray)
    if from_numpy:
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch tensor or a numpy array, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"x must hold floating-point numbers, got dtype {x.dtype}; use x.float()")
    if x.dim() < 2:
        raise ValueError(f"x must have shape (..., T, d) with at least 2 dimensions, got {x.dim()}")
    if method not in LEAKY_METHODS:
        raise ValueError(f"method must be one of {LEAKY_METHODS}, got {method!r}")
    if not -x.dim() <= dim < x.dim():
        raise ValueError(f"dim={dim} is out of range for x with {x.dim()} dimensions")
    dim = dim % x.dim()
    if dim == x.dim() - 1:
        raise ValueError("dim must be the time axis, not the last (feature) axis")
    return x, from_numpy, dim


def check_input(x: torch.Tensor, n_embd: int, who: str) -> None:
    """A layer's input: a floating (batch, time, n_embd) tensor."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{who}: x must be a torch tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{who}: x must be floating point (embeddings), got dtype {x.dtype}")
    if x.dim() != 3 or x.shape[-1] != n_embd:
        raise ValueError(
            f"{who}: x must have shape (batch, time, n_embd={n_embd}), got {tuple(x.shape)}"
        )


def check_positive_int(name: str, value: Any) -> None:
    """A positive integer (not a bool), e.g. a configuration's sizes."""
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def check_heads(n_embd: int, n_head: int) -> None:
    """Positive ``n_embd`` and ``n_head``, with ``n_head`` dividing ``n_embd``."""
    if not isinstance(n_embd, int) or not isinstance(n_head, int) or n_embd <= 0 or n_head <= 0:
        raise ValueError(f"n_embd and n_head must be positive integers, got {n_embd}, {n_head}")
    if n_embd % n_head:
        raise ValueError(
            f"n_embd={n_embd} is not divisible by n_head={n_head}: each head gets n_embd/n_head "
            "features, so pick n_head among the divisors of n_embd"
        )


def check_dropout(dropout: float, name: str = "dropout") -> None:
    """A dropout probability in [0, 1)."""
    if not isinstance(dropout, float | int) or not 0.0 <= dropout < 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1), got {dropout!r}")
