"""Three moons: compute with subnormal numbers flushed to zero, so sharp kernels stay fast.

With β = 50 and keys of norm near 1, a unit's retrieval weights exp(β k_t·k_s − max) span far more
than float32's range of normal numbers: every pair whose score is more than ~87 below the row's
best gets a *subnormal* weight (between 1e-45 and 1.2e-38) or 0. Such weights change nothing
that float32 can show (they are 1e-38 of the largest weight), but x86 CPUs compute with
subnormal numbers tens of times slower than with normal ones. A model whose keys have become
sharp — the single 6-d memory after training, or a mosaic whose units each read one moon —
therefore trained and evaluated 4–5 times slower per step than the same model at
initialisation. Flushing subnormal numbers to zero (the CPU's flush-to-zero / denormals-are-zero
mode) removes that cost and keeps every normal number's arithmetic exactly as it was.

:func:`flush_subnormals` sets the mode for the calling thread while a block (or a decorated
function) runs, and restores the previous mode afterwards. The three-moons training runs and
evaluations use it; nothing else in the package does. Other threads of torch's thread pool keep
their own mode, which is why the package trains on one thread. On CPUs without the mode
(``torch.set_flush_denormal`` returns False) it changes nothing.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

__all__ = ["flush_subnormals", "flushing_subnormals"]

_SMALLEST_NORMAL = torch.finfo(torch.float32).tiny  # 1.18e-38


def flushing_subnormals() -> bool:
    """True when this thread currently flushes subnormal float32 results (and inputs) to zero."""
    half = torch.tensor([_SMALLEST_NORMAL], dtype=torch.float32) * 0.5  # a subnormal result
    return bool(half.item() == 0.0)


@contextmanager
def flush_subnormals():
    """Treat subnormal numbers as zero inside the block; usable as a decorator too."""
    was_on = flushing_subnormals()
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(was_on)
