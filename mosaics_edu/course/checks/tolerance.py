"""The one tolerance policy: how far an answer may be from the expected one, entry by entry.

The allowed difference (:func:`tolerance`) is relative to the scale of the expected values,
``RTOL · (|want| + scale)``, widened by how much the reference itself moves when its inputs are
rounded to float32 (:func:`float32_sensitivity`, times ``F32_FACTOR``) — so a correct float32
answer passes, and a float16 answer or a loss of precision does not. :func:`close` applies it to
arrays, tensors, numbers, tuples, lists and dicts alike.

One widening exists, for answers that are float32 work over a long chain (a whole layer, a
model's logits, a sum of losses in another order) where the reference is not: a :class:`Floor`,
``abs + rel·|want|``, under which the tolerance never goes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .arrays import as_numpy, is_tensor
from .inputs import fresh_copy, materialise

__all__ = ["F32_FACTOR", "RTOL", "Floor", "abs_diff", "close", "float32_sensitivity", "lists_as_arrays",
           "tolerance"]

#: Element-wise and scale-relative parts of the tolerance (float32 rounding is ~1e-7).
RTOL = 1e-5
#: How many times the reference's own float32 sensitivity an answer may differ by.
F32_FACTOR = 30.0
_EPS32 = float(np.finfo(np.float32).eps)


@dataclass(frozen=True)
class Floor:
    """The least difference allowed, ``abs + rel·|want|``, when it is more than :func:`tolerance`.

    For a check whose answer is float32 arithmetic over a long chain, in an order the reference
    does not follow: ``compare(..., floor=Floor(rel=1e-4, abs=1e-5))``.
    """

    rel: float = 0.0
    abs: float = 0.0


def _round32(x: Any, rng: np.random.Generator) -> Any:
    """``x`` with every float entry moved by one float32 rounding step (random sign); same dtype."""
    if is_tensor(x):
        if not x.is_floating_point():
            return x
        import torch

        u = torch.as_tensor(rng.choice([-1.0, 1.0], size=tuple(x.shape)), dtype=x.dtype)
        return (x.detach() * (1 + _EPS32 * u)).requires_grad_(bool(x.requires_grad))
    if isinstance(x, np.ndarray) and x.dtype.kind == "f":
        return (x * (1 + _EPS32 * rng.choice([-1.0, 1.0], size=x.shape))).astype(x.dtype)
    if isinstance(x, float) and not isinstance(x, bool):
        return x * (1 + _EPS32)
    if isinstance(x, list | tuple):
        return type(x)(_round32(v, rng) for v in x)
    return x


def tolerance(want: Any, sensitivity: Any = None) -> Any:
    """The allowed difference to ``want``, entry by entry (one array, or a list for tuples).

    ``RTOL · (|want| + scale)`` with ``scale`` the largest finite ``|want|`` (1 when all are 0),
    plus ``F32_FACTOR`` times the largest change of the reference when its inputs are rounded to
    float32 (``sensitivity``): what float32 arithmetic cannot avoid on this case.
    """
    want = as_numpy(want)
    if isinstance(want, tuple | list):
        sens = sensitivity if isinstance(sensitivity, tuple | list) else [sensitivity] * len(want)
        return [tolerance(w, s) for w, s in zip(want, sens, strict=False)]
    w = np.asarray(want)
    if w.dtype.kind == "b":  # a mask is right or wrong entry by entry: no tolerance
        return np.zeros(w.shape)
    if w.dtype.kind not in "fciu":
        return None
    a = np.abs(w.astype(np.float64)) if w.dtype.kind != "c" else np.abs(w)
    finite = a[np.isfinite(a)]
    scale = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    tol = RTOL * (np.where(np.isfinite(a), a, 0.0) + scale)
    if sensitivity is not None:
        s = np.asarray(as_numpy(sensitivity), dtype=np.float64)
        s = s[np.isfinite(s)] if s.ndim else s
        if np.size(s):
            tol = tol + F32_FACTOR * float(np.max(s))
    return tol


def float32_sensitivity(reference: Callable[..., Any], case: Sequence[Any], want: Any) -> Any:
    """How far the reference moves when the case's float inputs are rounded to float32."""
    rng = np.random.default_rng(0)
    try:
        with np.errstate(all="ignore"):
            moved = as_numpy(reference(*_round32([fresh_copy(a) for a in case], rng)))
        return abs_diff(moved, want)
    except Exception:  # noqa: BLE001 — a reference that refuses rounded inputs has no probe
        return None


def abs_diff(a: Any, b: Any) -> Any:
    """``|a - b|`` entry by entry (0 where both are NaN or the same inf); None if not comparable."""
    a, b = as_numpy(a), as_numpy(b)
    if isinstance(a, tuple | list) and isinstance(b, tuple | list) and len(a) == len(b):
        return [abs_diff(x, y) for x, y in zip(a, b, strict=True)]
    try:
        x, y = np.asarray(a), np.asarray(b)
        if x.shape != y.shape or x.dtype.kind not in "fciub" or y.dtype.kind not in "fciub":
            return None
        ct = np.complex128 if "c" in (x.dtype.kind, y.dtype.kind) else np.float64
        xf, yf = x.astype(ct), y.astype(ct)
        with np.errstate(invalid="ignore"):
            d = np.abs(xf - yf)
        both_nan = np.isnan(xf) & np.isnan(yf)
        same_inf = np.isinf(xf) & (xf == yf)
        return np.where(both_nan | same_inf, 0.0, d)
    except (TypeError, ValueError):
        return None


def lists_as_arrays(a: Any, b: Any) -> tuple[Any, Any]:
    """A list of numbers compared with an array is compared as an array (and vice versa)."""
    def numeric(x: Any) -> bool:
        try:
            return isinstance(x, list | tuple) and np.asarray(x).dtype.kind in "fciub"
        except (ValueError, TypeError):
            return False

    if isinstance(b, np.ndarray | np.generic) and numeric(a):
        a = np.asarray(a)
    elif isinstance(a, np.ndarray | np.generic) and numeric(b) and (
            isinstance(b, list) or np.shape(a) == np.shape(np.asarray(b))):
        b = np.asarray(b)  # (an expected tuple of another shape stays a tuple: the parts of the answer)
    return a, b


def close(a: Any, b: Any, tol: Any = None, *, equal_nan: bool = False, floor: Floor | None = None) -> bool:
    """``a ≈ b`` under the policy: ``tol`` (see :func:`tolerance`), else the policy on ``b`` alone.

    Tuples and lists compare item by item (``tol`` a list, one per item), dicts key by key (each
    entry under the policy on its own expected values); ``floor`` (see :class:`Floor`) only ever
    widens. NaN matches NaN only with ``equal_nan``.
    """
    a, b = lists_as_arrays(as_numpy(materialise(a)), as_numpy(materialise(b)))
    if isinstance(a, tuple | list) or isinstance(b, tuple | list):
        if not (isinstance(a, tuple | list) and isinstance(b, tuple | list)) or len(a) != len(b):
            return False
        tols = tol if isinstance(tol, list) else [tol] * len(a)
        return all(close(x, y, t, equal_nan=equal_nan, floor=floor)
                   for x, y, t in zip(a, b, tols, strict=False))
    if isinstance(a, dict) or isinstance(b, dict):
        if not (isinstance(a, dict) and isinstance(b, dict)) or a.keys() != b.keys():
            return False
        return all(close(a[k], b[k], equal_nan=equal_nan, floor=floor) for k in a)
    try:
        x, y = np.asarray(a), np.asarray(b)
    except Exception:  # noqa: BLE001
        return a == b
    if x.shape != y.shape:
        return False
    if x.dtype.kind not in "fciub" or y.dtype.kind not in "fciub":
        return bool(np.all(x == y))
    if (x.dtype.kind == "b") != (y.dtype.kind == "b"):  # a mask is a boolean, not 0/1 numbers
        return False
    if x.dtype.kind in "fc" or y.dtype.kind in "fc":
        t = tol if tol is not None and np.shape(tol) in ((), y.shape) else tolerance(y)
        if floor is not None:
            t = np.fmax(t, floor.abs + floor.rel * np.abs(y.astype(np.complex128)))
        ok = abs_diff(x, y) <= t  # NaN differences are never within tolerance
        if not equal_nan:
            ok &= ~np.isnan(y.astype(np.complex128 if y.dtype.kind == "c" else np.float64))
        return bool(np.all(ok))
    return bool(np.array_equal(x, y))
