"""The arithmetic of data-parallel training (chapter 10).

Three questions decide how a model is trained on many GPUs, and each has a short answer here:

- :func:`batch_layout`: how a global batch of ``batch_size x grad_accum`` sequences is shared among
  ``world_size`` processes (the package's trainer keeps it whatever the number of processes);
- :func:`ddp_gradients` and :func:`accumulated_gradient`: what DDP's all-reduce makes of the
  processes' gradients, and why it equals one process accumulating every micro-batch;
- :func:`state_gb_per_gpu`: what the training state (weights, gradients, AdamW's moments) costs
  on each GPU under DDP and under FSDP, the ZeRO-3 idea of sharding it.

:func:`memory_view` and :func:`draw_memory_view` are chapter 10's widget (what fits on your GPUs);
:func:`n_params_meta` counts a model's parameters without allocating it; :func:`one_vs_two_processes`
trains a tiny model with 1 and with 2 processes on a CPU and compares the weights.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..training import run_cache

__all__ = [
    "BYTES_PER_PARAMETER",
    "GPU_MEMORY_GB",
    "accumulated_gradient",
    "batch_layout",
    "ddp_gradients",
    "draw_memory_view",
    "memory_view",
    "n_params_meta",
    "one_vs_two_processes",
    "state_gb_per_gpu",
]

#: Bytes of training state per parameter, bf16 autocast with AdamW: the fp32 master weights (autocast
#: casts them to bf16 on the fly), fp32 gradients, DDP's communication buckets (by default DDP copies
#: the gradients into buckets to all-reduce them) and AdamW's two fp32 moments. FSDP has no buckets
#: and splits the rest over the GPUs.
BYTES_PER_PARAMETER: dict[str, dict[str, int]] = {
    "ddp": {"weights": 4, "gradients": 4, "DDP buckets": 4, "AdamW moments": 8},
    "fsdp": {"weights": 4, "gradients": 4, "AdamW moments": 8},
}

#: Memory of common data-centre GPUs, in GB (10⁹ bytes).
GPU_MEMORY_GB: dict[str, int] = {"T4 / V100 16 GB": 16, "A10 / L4 24 GB": 24, "A100 40 GB": 40,
                                 "A100 / H100 80 GB": 80, "H200 141 GB": 141}


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def batch_layout(batch_size: int, grad_accum: int, world_size: int, block_size: int) -> tuple[int, int, int]:
    """(micro-batches per process, sequences per step, tokens per step) of one optimizer step.

    The global batch is ``batch_size`` sequences per micro-batch times ``grad_accum`` micro-batches,
    whatever the number of processes: each of the ``world_size`` processes runs
    ``grad_accum / world_size`` of them. A ``grad_accum`` the processes cannot share is refused,
    as the command line refuses it.
    """
    batch_size, grad_accum = _positive_int("batch_size", batch_size), _positive_int("grad_accum", grad_accum)
    world_size, block_size = _positive_int("world_size", world_size), _positive_int("block_size", block_size)
    if grad_accum % world_size:
        raise ValueError(f"grad_accum={grad_accum} is not a multiple of world_size={world_size}: each "
                         f"process runs grad_accum / world_size micro-batches; use a grad_accum that "
                         f"{world_size} divides, e.g. {world_size * max(1, grad_accum // world_size)}")
    per_process = grad_accum // world_size
    sequences = batch_size * per_process * world_size
    return per_process, sequences, sequences * block_size


def _check_grads(micro_grads: Any, world_size: Any) -> tuple[np.ndarray, int]:
    g = np.asarray(micro_grads)
    if g.ndim != 2 or g.shape[0] < 1 or not np.issubdtype(g.dtype, np.floating):
        raise ValueError(f"micro_grads must be a float array (grad_accum, n_params), one row per "
                         f"micro-batch; got shape {g.shape} and dtype {g.dtype}")
    world_size = _positive_int("world_size", world_size)
    if g.shape[0] % world_size:
        raise ValueError(f"world_size={world_size} must divide the {g.shape[0]} micro-batches of the step")
    return g, world_size


def ddp_gradients(micro_grads: np.ndarray, world_size: int) -> np.ndarray:
    """The gradient every process steps with under DDP. (grad_accum, P) -> (world_size, P).

    Row ``i`` of ``micro_grads`` is the gradient of micro-batch ``i``'s mean loss. Process ``r``
    runs micro-batches ``r*A … r*A + A - 1`` (``A = grad_accum / world_size``, as the package's
    trainer does), backpropagates ``loss / A`` for each, so it holds the mean of its ``A``
    gradients; the all-reduce then averages the ``world_size`` processes' gradients. Every row of
    the result is that average: the processes step with the same gradient.
    """
    g, world_size = _check_grads(micro_grads, world_size)
    per_process = g.shape[0] // world_size
    local = g.reshape(world_size, per_process, -1).sum(axis=1) / per_process  # (W, P): loss / A
    reduced = local.sum(axis=0) / world_size  # (P,): the all-reduce's mean
    return np.broadcast_to(reduced, local.shape).copy()  # (W, P): the same on every process


def accumulated_gradient(micro_grads: np.ndarray) -> np.ndarray:
    """The gradient of one process accumulating every micro-batch (``loss / grad_accum`` each).

    (grad_accum, P) -> (P,): the mean of the micro-batches' gradients.
    """
    g, _ = _check_grads(micro_grads, 1)
    return g.sum(axis=0) / g.shape[0]


def state_gb_per_gpu(n_params: float, world_size: int, strategy: str) -> float:
    """GB (10⁹ bytes) of training state on each GPU, before any activation.

    ``"ddp"``: every GPU holds everything, 20 bytes per parameter (:data:`BYTES_PER_PARAMETER`).
    ``"fsdp"``: weights, gradients and AdamW's moments (16 bytes per parameter) are split over the
    ``world_size`` GPUs; a GPU gathers one block's full weights only while it computes that block
    (that transient is an activation-like cost, not counted here).
    """
    if isinstance(n_params, bool) or not isinstance(n_params, int | float | np.integer | np.floating) \
            or not n_params >= 0:
        raise ValueError(f"n_params must be a number of parameters >= 0, got {n_params!r}")
    world_size = _positive_int("world_size", world_size)
    if strategy not in BYTES_PER_PARAMETER:
        raise ValueError(f"strategy must be one of {sorted(BYTES_PER_PARAMETER)}, got {strategy!r}")
    per_parameter = sum(BYTES_PER_PARAMETER[strategy].values())
    shards = world_size if strategy == "fsdp" else 1
    return float(n_params) * per_parameter / shards / 1e9


def n_params_meta(kind: str, preset: str, **overrides: Any) -> int:
    """Parameters of a package model built on the meta device: shapes only, no memory, no time.

    ``kind`` is a key of :data:`mosaics_edu.models.registry.MODEL_KINDS` (``"gpt"``, ``"mosaic"``,
    ``"mosaic-v2"``); ``preset`` and ``overrides`` as for ``Config.preset``.
    """
    import torch

    from .. import models
    from ..models.registry import MODEL_KINDS

    if kind not in MODEL_KINDS:
        raise ValueError(f"kind must be one of {sorted(MODEL_KINDS)}, got {kind!r}")
    model_cls, config_cls = MODEL_KINDS[kind]
    with torch.device("meta"):
        return models.count_parameters(model_cls(config_cls.preset(preset, **overrides)))


def memory_view(params_billion: float, gpus: int, gpu_gb: float) -> dict[str, Any]:
    """What the widget draws: training state per GPU under DDP and FSDP for one model and cluster.

    Returns the GB per GPU of each strategy, the GPU's memory, and whether the state fits within
    half of it (the rule of thumb: keep the other half for activations).
    """
    if not params_billion > 0:
        raise ValueError(f"params_billion must be > 0, got {params_billion!r}")
    if not gpu_gb > 0:
        raise ValueError(f"gpu_gb must be > 0, got {gpu_gb!r}")
    n = float(params_billion) * 1e9
    gb = {s: state_gb_per_gpu(n, gpus, s) for s in ("ddp", "fsdp")}
    parts = {s: {k: n * b / (gpus if s == "fsdp" else 1) / 1e9 for k, b in BYTES_PER_PARAMETER[s].items()}
             for s in ("ddp", "fsdp")}
    return {"params_billion": float(params_billion), "gpus": int(gpus), "gpu_gb": float(gpu_gb),
            "gb": gb, "parts": parts, "fits": {s: gb[s] <= gpu_gb / 2 for s in gb}}


def draw_memory_view(view: dict[str, Any], fig: Any) -> None:
    """Stacked bars of the state per GPU, DDP beside FSDP, with the GPU's memory and its half."""
    ax = fig.add_subplot(1, 1, 1)
    colours = {"weights": "tab:blue", "gradients": "tab:orange", "DDP buckets": "tab:gray",
               "AdamW moments": "tab:green"}
    labels = {"ddp": "DDP", "fsdp": f"FSDP over {view['gpus']} GPUs"}
    for i, strategy in enumerate(("ddp", "fsdp")):
        bottom = 0.0
        for part, gb in view["parts"][strategy].items():
            ax.bar(i, gb, bottom=bottom, color=colours[part], width=0.6,
                   label=part if strategy == "ddp" else None)
            bottom += gb
        verdict = "fits" if view["fits"][strategy] else "does not fit"
        ax.text(i, bottom, f"{bottom:,.1f} GB\n{verdict}", ha="center", va="bottom", fontsize=8)
    ax.axhline(view["gpu_gb"], color="k", lw=1.5, label=f"GPU memory {view['gpu_gb']:g} GB")
    ax.axhline(view["gpu_gb"] / 2, color="k", lw=1, ls="--", label="half of it (the rest: activations)")
    ax.set_xticks([0, 1], [labels["ddp"], labels["fsdp"]])
    top = max(view["gb"]["ddp"], view["gpu_gb"]) * 1.3
    ax.set_ylim(0, top)
    ax.set_ylabel("training state per GPU (GB)")
    ax.set_title(f"{view['params_billion']:g} billion parameters on {view['gpus']} GPU(s)", fontsize=10)
    ax.legend(fontsize=7, loc="upper right")


# --------------------------------------------------------------------------------------------
# the proof on a CPU: 2 processes train what 1 process accumulating 2 micro-batches trains
# --------------------------------------------------------------------------------------------

#: A model small enough to train 4 steps in seconds: one block of width 32 on 32-token windows.
DEMO_ARGS = ["--preset", "cpu-tiny", "--batch-size", "4", "--max-steps", "4", "--warmup-steps", "1",
             "--eval-interval", "4", "--eval-batches", "3", "--log-interval", "2", "--dropout", "0",
             "--threads", "1", "--no-progress", "--device", "cpu", "--n-layer", "1", "--n-embd", "32",
             "--n-head", "2", "--block-size", "32"]  # fmt: skip


def _train(cmd: list[str], out_dir: Path, attempts: int = 1) -> dict[str, Any]:
    """Run one training command in a fresh process (one math thread); its summary and weights.

    ``attempts`` > 1 runs a failed command again from scratch (its folder emptied), for the
    two-process run: its processes meet over local sockets, which another program on a busy
    machine can disturb; a failure that comes back every time is raised with every attempt's
    output."""
    import shutil
    import subprocess

    from ..training.checkpoint import load_checkpoint

    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    failures = []
    for _ in range(attempts):
        shutil.rmtree(out_dir, ignore_errors=True)
        res = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if res.returncode == 0:
            break
        failures.append(f"exit {res.returncode}:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
    else:
        raise RuntimeError(f"training failed {attempts} time(s) ({' '.join(cmd[:6])} ...):\n"
                           + "\n--- next attempt ---\n".join(failures))
    lines = res.stdout.splitlines()
    summary = [ln for ln in lines if ln.startswith(("global batch", "model "))]
    return {"printed": summary, "model": load_checkpoint(out_dir / "ckpt.pt")["model"]}


def one_vs_two_processes(folder: str | os.PathLike[str], model: str = "mosaic") -> dict[str, Any]:
    """Train one tiny model three times on CPU and compare the weights (chapter 10).

    ``one``: 1 process, ``--grad-accum 2`` (two micro-batches of 4 sequences per step);
    ``two``: 2 processes under ``torchrun`` with the gloo backend, ``--grad-accum 2`` (one
    micro-batch each); ``half``: 1 process with ``--grad-accum 1``, half the batch (the control).
    Returns the printed summaries and the largest weight differences two-vs-one and half-vs-one.
    About half a minute: most of it starting the processes. In a test session the result of the
    first call is reused by the later ones (:func:`mosaics_edu.training.run_cache.result`).
    """
    inputs = {"model": model, "args": DEMO_ARGS}
    return run_cache.result("one_vs_two_processes", inputs, lambda: _one_vs_two(Path(folder), model))


def _one_vs_two(folder: Path, model: str) -> dict[str, Any]:
    import sys

    from ..data import prepare_stories

    data = folder / "data"
    prepare_stories(data, tokenizer="char", n_train=60, n_valid=10, seed=0)
    common = ["--model", model, "--data", str(data), *DEMO_ARGS]
    train = [sys.executable, "-m", "mosaics_edu.train"]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                "-m", "mosaics_edu.train"]  # fmt: skip
    runs = {
        "one": _train([*train, *common, "--grad-accum", "2", "--out-dir", str(folder / "one")],
                      folder / "one"),
        "two": _train([*torchrun, *common, "--grad-accum", "2", "--backend", "gloo",
                       "--out-dir", str(folder / "two")], folder / "two", attempts=2),  # fmt: skip
        "half": _train([*train, *common, "--grad-accum", "1", "--out-dir", str(folder / "half")],
                       folder / "half"),
    }

    def max_diff(a: dict, b: dict) -> float:
        return max(float((a[k] - b[k]).abs().max()) for k in a)

    one = runs["one"]["model"]
    return {"printed": {name: run["printed"] for name, run in runs.items()},
            "two_vs_one": max_diff(runs["two"]["model"], one),
            "half_vs_one": max_diff(runs["half"]["model"], one)}
