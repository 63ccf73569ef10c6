"""Checks for chapter 10 (Scaling out).

Three exercises, each compared with the package's :mod:`mosaics_edu.course.scaling`:

- ``batch_layout(batch_size, grad_accum, world_size, block_size)`` — (micro-batches per process,
  sequences per step, tokens per step), refusing a ``grad_accum`` the processes cannot share;
- ``ddp_gradients(micro_grads, world_size)`` — the gradient each process steps with after DDP's
  all-reduce: the mean of its own micro-batches' gradients, averaged over the processes;
- ``state_gb_per_gpu(n_params, world_size, strategy)`` — GB of training state per GPU under DDP
  (20 bytes per parameter on every GPU) and FSDP (16 bytes per parameter, split over the GPUs).

Every case carries its regimes (one process, one micro-batch per process, three or more
processes, one GPU, a state under 1 GB); ``tests/course/test_checks_ch10.py`` asserts that each case is
in the regimes it names.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..scaling import batch_layout, ddp_gradients, state_gb_per_gpu
from . import Case, CheckFailed, compare, fail, fmt, notebook_check, passed

CHAPTER = "10_scaling_out"
H1, H2, H3 = "(see hint 1 above)", "(see hint 2 above)", "(see hint 3 above)"

__all__ = [
    "check_batch_layout",
    "check_ddp_gradients",
    "check_state_gb_per_gpu",
    "LAYOUT_CASES",
    "LAYOUT_REGIMES",
    "REFUSED_CASE",
    "ddp_cases",
    "DDP_REGIMES",
    "STATE_CASES",
    "STATE_REGIMES",
]


# --------------------------------------------------------------------------------------------
# exercise 10.1: the global batch
# --------------------------------------------------------------------------------------------


def _layout_variant(batch_size, grad_accum, world_size, block_size, *, share=True, tokens=True,
                    times_world=True, order=(0, 1, 2)):  # fmt: skip
    per_process = grad_accum // world_size if share else grad_accum
    sequences = batch_size * per_process * (world_size if times_world else 1)
    out = (per_process, sequences, sequences * block_size if tokens else sequences)
    return tuple(out[i] for i in order)


LAYOUT_MISTAKES: dict[str, Callable] = {
    f"gave every process all grad_accum micro-batches; the processes share them: each runs "
    f"grad_accum / world_size, so the global batch does not grow with the number of GPUs {H1}":
        lambda *a: _layout_variant(*a, share=False),
    f"counted the sequences of one process only; a step trains on every process's micro-batches: "
    f"batch_size x (grad_accum / world_size) x world_size {H2}":
        lambda *a: _layout_variant(*a, times_world=False),
    f"returned sequences where tokens are asked; each sequence holds block_size tokens {H2}":
        lambda *a: _layout_variant(*a, tokens=False),
    f"returned the three numbers in another order; return (micro-batches per process, sequences, "
    f"tokens) {H2}": lambda *a: _layout_variant(*a, order=(1, 0, 2)),
    f"divided world_size by grad_accum; each process runs grad_accum / world_size micro-batches {H3}":
        lambda b, g, w, t: (w // g, b * (w // g) * w, b * (w // g) * w * t),
}  # fmt: skip

LAYOUT_REGIMES = {
    "one-process": f"world_size = 1: the one process runs all grad_accum micro-batches itself {H2}",
    "no-accumulation": f"grad_accum = world_size: each process runs a single micro-batch and accumulates "
                       f"nothing, a valid layout (the first paper's own) {H2}",
    "indivisible": f"world_size does not divide grad_accum, so the processes cannot share the "
                   f"micro-batches equally: raise a ValueError {H3}",
}

LAYOUT_CASES = [
    Case(16, 32, 1, 512, regime="one-process", why="one process runs all 32 micro-batches"),
    Case(16, 32, 8, 512, why="8 processes share 32 micro-batches"),
    Case(8, 64, 64, 512, regime="no-accumulation",
         why="the first paper's layout: 64 processes, one micro-batch each"),
    Case(4, 6, 3, 128, why="3 processes share 6 micro-batches"),
    Case(2, 12, 4, 32, why="4 processes share 12 micro-batches"),
    Case(1, 5, 5, 64, regime="no-accumulation", why="5 processes, one micro-batch of one sequence each"),
]
REFUSED_CASE = Case(16, 30, 4, 512, regime="indivisible", why="4 processes cannot share 30 micro-batches")


@notebook_check
def check_batch_layout(batch_layout_fn: Callable) -> None:
    """Exercise 10.1: ``batch_layout(batch_size, grad_accum, world_size, block_size)``."""
    ex = "batch_layout"
    try:
        compare(CHAPTER, ex, batch_layout_fn, batch_layout, LAYOUT_CASES, mistakes=LAYOUT_MISTAKES,
                regimes=LAYOUT_REGIMES, quiet=True,
                items=["micro-batches per process", "sequences", "tokens"],
                hint=f"per process: grad_accum // world_size micro-batches of batch_size sequences; a "
                     f"sequence is block_size tokens {H2}")  # fmt: skip
    except CheckFailed as err:
        if err.kind == "crash" and "your function raised ValueError" in str(err):
            raise CheckFailed(f"{err}\n  Every layout of these cases is valid (world_size divides "
                              f"grad_accum, one micro-batch per process included): refuse only when "
                              f"grad_accum % world_size is not 0 {H3}", "crash") from None
        raise
    case = f"batch_layout{tuple(REFUSED_CASE)}"
    try:
        got = batch_layout_fn(*REFUSED_CASE)
    except ValueError:
        passed(CHAPTER, ex)
        return
    except Exception as crash:  # noqa: BLE001 — any other error is the learner's to see
        fail(CHAPTER, ex,
             f"{case} raised {type(crash).__name__}: {crash}; 4 processes cannot share 30 micro-batches, "
             f"so raise a ValueError that says so (`raise ValueError(...)`, not an assert) {H3}", "mistake")
    fail(CHAPTER, ex,
         f"{case} returned {fmt(got)}, but 4 processes cannot share 30 micro-batches equally; raise a "
         "ValueError that says so (the command line refuses such a --grad-accum rather than train on "
         f"another batch than asked). Test the remainder, grad_accum % world_size, not just whether "
         f"grad_accum < world_size {H3}", "mistake")


# --------------------------------------------------------------------------------------------
# exercise 10.2: what the all-reduce makes of the gradients
# --------------------------------------------------------------------------------------------


def _ddp_variant(micro_grads, world_size, *, local="mean_own", reduce="mean", scale_by_all=False,
                 drop_last=False):  # fmt: skip
    g = np.asarray(micro_grads, dtype=np.float64)
    per_process = g.shape[0] // world_size
    own = g.reshape(world_size, per_process, -1)  # (W, A, P)
    if drop_last:  # rows r*A … r*A + A - 1 taken as the slice r*A : r*A + A - 1
        with np.errstate(all="ignore"):
            parts = own[:, :-1].sum(axis=1) / (per_process - 1)  # A = 1: 0/0, nan as an empty mean
    else:
        parts = own.sum(axis=1)  # (W, P)
        if scale_by_all:
            parts = parts / g.shape[0]
        elif local == "mean_own":
            parts = parts / per_process
    if reduce == "none":
        return parts
    reduced = parts.sum(axis=0) / {"mean": world_size, "sum": 1, "half": 2}[reduce]
    return np.broadcast_to(reduced, parts.shape).copy()


DDP_MISTAKES: dict[str, Callable] = {
    f"scaled each micro-batch's loss by 1/grad_accum and then averaged over the processes: the "
    f"gradient comes out world_size times too small. A process backpropagates loss / A with A = "
    f"grad_accum / world_size, its own number of micro-batches {H1}":
        lambda g, w: _ddp_variant(g, w, scale_by_all=True),
    f"summed each process's micro-batch gradients without dividing by their number A (each "
    f"process backpropagates loss / A) {H1}": lambda g, w: _ddp_variant(g, w, local="sum"),
    f"summed the processes' gradients in the all-reduce; DDP averages them (sum / world_size) {H1}":
        lambda g, w: _ddp_variant(g, w, reduce="sum"),
    f"left out the all-reduce: each process kept the mean of its own micro-batches, so the copies of "
    f"the model would drift apart; DDP averages the processes' gradients {H2}":
        lambda g, w: _ddp_variant(g, w, reduce="none"),
    f"divided the processes' summed gradients by 2 whatever their number (right for the chapter's 2 "
    f"processes only); the all-reduce averages them: sum / world_size {H1}":
        lambda g, w: _ddp_variant(g, w, reduce="half"),
    f"left out each process's last micro-batch: rows r*A … r*A + A - 1 are the slice "
    f"micro_grads[r*A : r*A + A], since a slice's end is excluded {H2}":
        lambda g, w: _ddp_variant(g, w, drop_last=True),
}  # fmt: skip

DDP_REGIMES = {
    "one-process": f"world_size = 1: the one process accumulates all the micro-batches, and its "
                   f"gradient is still their mean (loss / A for each) {H1}",
    "three-or-more": f"three or more processes take part: the all-reduce averages all world_size of "
                     f"them at once, not pairs of neighbours {H2}",
    "one-each": f"grad_accum = world_size: each process runs one micro-batch and has nothing to "
                f"accumulate {H2}",
}


def ddp_cases() -> list[Case]:
    """The cases of exercise 10.2: (micro_grads (grad_accum, P), world_size)."""
    rng = np.random.default_rng(9)
    shapes = [  # grad_accum, P, world_size, regimes, why
        (4, 5, 2, (), "2 processes, 2 micro-batches each"),
        (6, 3, 3, "three-or-more", "3 processes, 2 micro-batches each"),
        (4, 3, 1, "one-process", "one process accumulates 4 micro-batches"),
        (8, 4, 4, "three-or-more", "4 processes, 2 micro-batches each"),
        (6, 2, 2, (), "2 processes, 3 micro-batches each"),
        (3, 4, 3, ("three-or-more", "one-each"), "3 processes, one micro-batch each"),
        (1, 5, 1, ("one-process", "one-each"), "a single micro-batch on a single process"),
    ]
    return [Case(rng.standard_normal((g, p)), w, regime=r, why=why) for g, p, w, r, why in shapes]


@notebook_check
def check_ddp_gradients(ddp_gradients_fn: Callable) -> None:
    """Exercise 10.2: ``ddp_gradients(micro_grads, world_size) -> (world_size, P)``."""
    compare(CHAPTER, "ddp_gradients", ddp_gradients_fn, ddp_gradients, ddp_cases(), mistakes=DDP_MISTAKES,
            regimes=DDP_REGIMES, rebuild="ch10.ddp_cases()[{k}]",
            hint=f"reshape to (world_size, A, P), take each process's mean over its A micro-batches, then "
                 f"the mean over processes, and give every process (every row) that result {H2}")  # fmt: skip


# --------------------------------------------------------------------------------------------
# exercise 10.3: training state per GPU
# --------------------------------------------------------------------------------------------


def _state_variant(n_params, world_size, strategy, *, buckets=4, moments=8, weights=4, shard_ddp=False,
                   shard_fsdp=True, fsdp_buckets=False, unit=1e9):  # fmt: skip
    per_parameter = weights + 4 + moments + (buckets if strategy == "ddp" or fsdp_buckets else 0)
    shards = world_size if (strategy == "fsdp" and shard_fsdp) or (strategy == "ddp" and shard_ddp) else 1
    return float(n_params) * per_parameter / shards / unit


STATE_MISTAKES: dict[str, Callable] = {
    f"left out DDP's communication buckets (DDP copies the gradients into buckets to all-reduce "
    f"them: 4 more bytes per parameter, 20 in all) {H2}": lambda *a: _state_variant(*a, buckets=0),
    f"left out AdamW's two moments (8 bytes per parameter: two fp32 numbers) {H2}":
        lambda *a: _state_variant(*a, moments=0),
    f"counted one AdamW moment; AdamW keeps two per parameter (the mean and the mean square of the "
    f"gradients), 8 bytes {H2}": lambda *a: _state_variant(*a, moments=4),
    f"split DDP's state over the GPUs; DDP keeps a full copy of everything on every GPU {H1}":
        lambda *a: _state_variant(*a, shard_ddp=True),
    f"did not split FSDP's state; FSDP keeps 1/world_size of the weights, gradients and moments "
    f"on each GPU {H1}": lambda *a: _state_variant(*a, shard_fsdp=False),
    f"counted DDP's buckets under FSDP too; FSDP reduce-scatters the gradients, with no bucket "
    f"copy: 16 bytes per parameter, split {H3}": lambda *a: _state_variant(*a, fsdp_buckets=True),
    f"counted the weights in bf16 (2 bytes); under autocast the master weights stay fp32 (4 bytes) {H2}":
        lambda *a: _state_variant(*a, weights=2),
    f"used GiB (2^30 bytes); the exercise asks for GB, 10^9 bytes {H2}":
        lambda *a: _state_variant(*a, unit=2**30),
}  # fmt: skip

STATE_REGIMES = {
    "one-gpu": f"world_size = 1: DDP still keeps its buckets (20 bytes per parameter), and FSDP, with "
               f"nothing to split, keeps its 16 bytes per parameter (no buckets) {H2}",
    "small": f"the state per GPU is under 1 GB, so an answer rounded to a few decimals loses its "
             f"digits: return the number unrounded {H2}",
}

STATE_CASES = [
    Case(124_000_000, 1, "ddp", regime="one-gpu", why="GPT-2 small under DDP on one GPU"),
    Case(124_000_000, 8, "fsdp", regime="small", why="GPT-2 small under FSDP over 8 GPUs: under 1 GB"),
    Case(9_400_000_000, 8, "fsdp", why="the v2 paper's large model under FSDP over 8 GPUs"),
    Case(9_400_000_000, 64, "ddp", why="the large model under DDP on 64 GPUs"),
    Case(1_500_000_000, 16, "fsdp", why="1.5 B parameters under FSDP over 16 GPUs"),
    Case(350_000_000, 4, "ddp", why="350 M parameters under DDP on 4 GPUs"),
    Case(350_000_000, 1, "fsdp", regime="one-gpu", why="FSDP on a single GPU: nothing to split"),
]


@notebook_check
def check_state_gb_per_gpu(state_gb_per_gpu_fn: Callable) -> None:
    """Exercise 10.3: ``state_gb_per_gpu(n_params, world_size, strategy) -> GB``."""
    compare(CHAPTER, "state_gb_per_gpu", state_gb_per_gpu_fn, state_gb_per_gpu, STATE_CASES,
            mistakes=STATE_MISTAKES, regimes=STATE_REGIMES,
            hint=f"DDP: 4 + 4 + 4 + 8 = 20 bytes per parameter on every GPU; FSDP: 4 + 4 + 8 = 16 bytes "
                 f"per parameter divided by world_size; GB = 10^9 bytes {H2}")  # fmt: skip
