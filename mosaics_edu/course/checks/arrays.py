"""Arrays, tensors and plain numbers seen one way: as numpy arrays, and written as a learner reads them.

A check meets numpy arrays, torch tensors (any dtype, on any device, with or without gradients),
Python numbers and tuples or lists of them. :func:`as_numpy` turns each into what the comparisons
work on; :func:`fmt` writes a number, an index or a small array plainly in a message.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["as_numpy", "dtype_name", "fmt", "is_tensor", "leaves"]


def is_tensor(x: Any) -> bool:
    return hasattr(x, "detach") and hasattr(x, "cpu") and hasattr(x, "dtype")


def dtype_name(x: Any) -> str:
    """'float32', 'float16', 'bfloat16', 'int64', ... of an array, tensor or Python number."""
    if is_tensor(x):
        return str(x.dtype).replace("torch.", "")
    return str(np.asarray(x).dtype)


def as_numpy(x: Any) -> Any:
    """Convert torch tensors (and nested tuples/lists of them) to numpy arrays; leave the rest.

    Half-precision tensors (float16, bfloat16) become float32 arrays: numpy has no bfloat16.
    """
    if isinstance(x, tuple | list):
        return type(x)(as_numpy(v) for v in x)
    if is_tensor(x):
        t = x.detach().cpu()
        if str(t.dtype) in ("torch.bfloat16", "torch.float16"):
            t = t.float()
        return t.numpy()
    return x


def fmt(x: Any) -> str:
    """A number, index or small array written plainly: ``0.25``, ``(1, 2)``, ``[0.1 0.2]``.

    Never ``np.float64(0.25)`` or ``tensor(0.25)``: what a learner reads is the number.
    """
    x = as_numpy(x)
    if isinstance(x, bool | np.bool_):
        return str(bool(x))
    if isinstance(x, int | np.integer):
        return str(int(x))
    if isinstance(x, float | np.floating):
        return f"{float(x):.6g}"
    if isinstance(x, tuple) and all(isinstance(v, int | np.integer) for v in x):
        return "(" + ", ".join(str(int(v)) for v in x) + ")"
    if isinstance(x, np.ndarray):
        if x.ndim == 0:
            return fmt(x.item())
        return np.array2string(x, precision=4, threshold=12, edgeitems=3, max_line_width=100)
    if isinstance(x, list | tuple):
        inner = ", ".join(fmt(v) for v in x[:6]) + (", ..." if len(x) > 6 else "")
        return f"[{inner}]" if isinstance(x, list) else f"({inner})"
    return repr(x)


def leaves(x: Any) -> list[Any]:
    """The arrays, tensors and numbers inside nested tuples and lists, in order."""
    if isinstance(x, tuple | list):
        return [leaf for v in x for leaf in leaves(v)]
    return [x]
