"""Checks for chapter 09 (Scaling out).

Three exercises, each compared with the package's :mod:`mosaics_edu.scaling`:

- ``batch_layout(batch_size, grad_accum, world_size, block_size)`` — (micro-batches per process,
  sequences per step, tokens per step), refusing a ``grad_accum`` the processes cannot share;
- ``ddp_gradients(micro_grads, world_size)`` — the gradient each process steps with after DDP's
  all-reduce: the mean of its own micro-batches' gradients, averaged over the processes;
- ``state_gb_per_gpu(n_params, world_size, strategy)`` — GB of training state per GPU under DDP
  (20 bytes per parameter on every GPU) and FSDP (16 bytes per parameter, split over the GPUs).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..scaling import batch_layout, ddp_gradients, state_gb_per_gpu
from . import compare, fail, fmt, notebook_check, passed

CHAPTER = "09_scaling_out"

__all__ = [
    "check_batch_layout",
    "check_ddp_gradients",
    "check_state_gb_per_gpu",
]


# --------------------------------------------------------------------------------------------
# exercise 9.1: the global batch
# --------------------------------------------------------------------------------------------


def _layout_variant(batch_size, grad_accum, world_size, block_size, *, share=True, tokens=True,
                    times_world=True, order=(0, 1, 2)):  # fmt: skip
    per_process = grad_accum // world_size if share else grad_accum
    sequences = batch_size * per_process * (world_size if times_world else 1)
    out = (per_process, sequences, sequences * block_size if tokens else sequences)
    return tuple(out[i] for i in order)


LAYOUT_MISTAKES: dict[str, Callable] = {
    "gave every process all grad_accum micro-batches; the processes share them: each runs "
    "grad_accum / world_size, so the global batch does not grow with the number of GPUs":
        lambda *a: _layout_variant(*a, share=False),
    "counted the sequences of one process only; a step trains on every process's micro-batches: "
    "batch_size x (grad_accum / world_size) x world_size": lambda *a: _layout_variant(*a, times_world=False),
    "returned sequences where tokens are asked; each sequence holds block_size tokens":
        lambda *a: _layout_variant(*a, tokens=False),
    "returned the three numbers in another order; return (micro-batches per process, sequences, tokens)":
        lambda *a: _layout_variant(*a, order=(1, 0, 2)),
    "divided world_size by grad_accum; each process runs grad_accum / world_size micro-batches":
        lambda b, g, w, t: (w // g, b * (w // g) * w, b * (w // g) * w * t),
}  # fmt: skip

LAYOUT_CASES = [(16, 32, 1, 512), (16, 32, 8, 512), (8, 64, 64, 512), (4, 6, 3, 128), (2, 12, 4, 32)]
REFUSED_CASE = (16, 30, 4, 512)  # 4 processes cannot share 30 micro-batches


@notebook_check
def check_batch_layout(batch_layout_fn: Callable) -> None:
    """Exercise 9.1: ``batch_layout(batch_size, grad_accum, world_size, block_size)``."""
    compare(CHAPTER, "batch_layout", batch_layout_fn, batch_layout, LAYOUT_CASES, mistakes=LAYOUT_MISTAKES,
            quiet=True, hint="per process: grad_accum // world_size micro-batches of batch_size sequences; "
                             "a sequence is block_size tokens")  # fmt: skip
    try:
        got = batch_layout_fn(*REFUSED_CASE)
    except ValueError:
        passed(CHAPTER, "batch_layout")
        return
    except Exception as crash:  # noqa: BLE001 — any other error is the learner's to see
        fail(CHAPTER, "batch_layout",
             f"batch_layout{REFUSED_CASE} raised {type(crash).__name__}: {crash}; 4 processes cannot "
             "share 30 micro-batches, so raise a ValueError that says so.")
    fail(CHAPTER, "batch_layout",
         f"batch_layout{REFUSED_CASE} returned {fmt(got)}, but 4 processes cannot share 30 "
         "micro-batches equally; raise a ValueError that says so (the command line refuses such a "
         "--grad-accum rather than train on another batch than asked).")


# --------------------------------------------------------------------------------------------
# exercise 9.2: what the all-reduce makes of the gradients
# --------------------------------------------------------------------------------------------


def _ddp_variant(micro_grads, world_size, *, local="mean_own", reduce="mean", scale_by_all=False):
    g = np.asarray(micro_grads, dtype=np.float64)
    per_process = g.shape[0] // world_size
    parts = g.reshape(world_size, per_process, -1).sum(axis=1)  # (W, P)
    if scale_by_all:
        parts = parts / g.shape[0]
    elif local == "mean_own":
        parts = parts / per_process
    if reduce == "none":
        return parts
    reduced = parts.sum(axis=0) / (world_size if reduce == "mean" else 1)
    return np.broadcast_to(reduced, parts.shape).copy()


DDP_MISTAKES: dict[str, Callable] = {
    "scaled each micro-batch's loss by 1/grad_accum and then averaged over the processes: the "
    "gradient comes out world_size times too small. A process backpropagates loss / A with A = "
    "grad_accum / world_size, its own number of micro-batches":
        lambda g, w: _ddp_variant(g, w, scale_by_all=True),
    "summed each process's micro-batch gradients without dividing by their number A (each "
    "process backpropagates loss / A)": lambda g, w: _ddp_variant(g, w, local="sum"),
    "summed the processes' gradients in the all-reduce; DDP averages them (sum / world_size)":
        lambda g, w: _ddp_variant(g, w, reduce="sum"),
    "left out the all-reduce: each process kept the mean of its own micro-batches, so the copies of "
    "the model would drift apart; DDP averages the processes' gradients":
        lambda g, w: _ddp_variant(g, w, reduce="none"),
}  # fmt: skip


def _ddp_cases() -> list[tuple]:
    rng = np.random.default_rng(9)
    return [(rng.standard_normal((g, p)), w) for g, p, w in ((4, 5, 2), (6, 3, 3), (4, 3, 1), (8, 4, 4),
                                                           (6, 2, 2))]


@notebook_check
def check_ddp_gradients(ddp_gradients_fn: Callable) -> None:
    """Exercise 9.2: ``ddp_gradients(micro_grads, world_size) -> (world_size, P)``."""
    compare(CHAPTER, "ddp_gradients", ddp_gradients_fn, ddp_gradients, _ddp_cases(), mistakes=DDP_MISTAKES,
            hint="reshape to (world_size, A, P), take each process's mean over its A micro-batches, then "
                 "the mean over processes, and give every process (every row) that result")  # fmt: skip


# --------------------------------------------------------------------------------------------
# exercise 9.3: training state per GPU
# --------------------------------------------------------------------------------------------


def _state_variant(n_params, world_size, strategy, *, buckets=4, moments=8, weights=4, shard_ddp=False,
                   shard_fsdp=True, fsdp_buckets=False, unit=1e9):  # fmt: skip
    per_parameter = weights + 4 + moments + (buckets if strategy == "ddp" or fsdp_buckets else 0)
    shards = world_size if (strategy == "fsdp" and shard_fsdp) or (strategy == "ddp" and shard_ddp) else 1
    return float(n_params) * per_parameter / shards / unit


STATE_MISTAKES: dict[str, Callable] = {
    "left out DDP's communication buckets (DDP copies the gradients into buckets to all-reduce "
    "them: 4 more bytes per parameter, 20 in all)": lambda *a: _state_variant(*a, buckets=0),
    "left out AdamW's two moments (8 bytes per parameter: two fp32 numbers)":
        lambda *a: _state_variant(*a, moments=0),
    "counted one AdamW moment; AdamW keeps two per parameter (the mean and the mean square of the "
    "gradients), 8 bytes": lambda *a: _state_variant(*a, moments=4),
    "split DDP's state over the GPUs; DDP keeps a full copy of everything on every GPU":
        lambda *a: _state_variant(*a, shard_ddp=True),
    "did not split FSDP's state; FSDP keeps 1/world_size of the weights, gradients and moments "
    "on each GPU": lambda *a: _state_variant(*a, shard_fsdp=False),
    "counted DDP's buckets under FSDP too; FSDP reduce-scatters the gradients, with no bucket "
    "copy: 16 bytes per parameter, split": lambda *a: _state_variant(*a, fsdp_buckets=True),
    "counted the weights in bf16 (2 bytes); under autocast the master weights stay fp32 (4 bytes)":
        lambda *a: _state_variant(*a, weights=2),
    "used GiB (2^30 bytes); the exercise asks for GB, 10^9 bytes": lambda *a: _state_variant(*a, unit=2**30),
}  # fmt: skip

STATE_CASES = [(124_000_000, 1, "ddp"), (124_000_000, 8, "fsdp"), (9_400_000_000, 8, "fsdp"),
               (9_400_000_000, 64, "ddp"), (1_500_000_000, 16, "fsdp"), (350_000_000, 4, "ddp")]


@notebook_check
def check_state_gb_per_gpu(state_gb_per_gpu_fn: Callable) -> None:
    """Exercise 9.3: ``state_gb_per_gpu(n_params, world_size, strategy) -> GB``."""
    compare(CHAPTER, "state_gb_per_gpu", state_gb_per_gpu_fn, state_gb_per_gpu, STATE_CASES,
            mistakes=STATE_MISTAKES,
            hint="DDP: 4 + 4 + 4 + 8 = 20 bytes per parameter on every GPU; FSDP: 4 + 4 + 8 = 16 bytes "
                 "per parameter divided by world_size; GB = 10^9 bytes")  # fmt: skip

