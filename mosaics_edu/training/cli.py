"""The training command line: ``python -m mosaics_edu.train`` (``mosaics_edu/train.py`` hands its
``__main__`` to :func:`main`).

    python -m mosaics_edu.train --model mosaic --preset cpu-tiny           # minutes on 2 cores
    python -m mosaics_edu.train --model gpt --preset gpu-small              # one consumer GPU
    torchrun --nproc-per-node 8 -m mosaics_edu.train --model mosaic --preset paper-gpt2-small
    # 2 nodes x 8 GPUs: the same command on each node (HOST: an address of the first node),
    # written on one line
    torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29500
        --rdzv-id RUN_ID -m mosaics_edu.train --model mosaic --preset paper-gpt2-small

It turns flags into a :class:`~mosaics_edu.train.TrainConfig` (a preset plus overrides), starts
the process group when launched by ``torchrun``, calls :func:`~mosaics_edu.train.train`, and
prints the parameter count, tokens/s and the MFU estimate (:mod:`mosaics_edu.models.flops`).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

import torch
import torch.distributed as dist

from ..models.registry import MODEL_KINDS
from .trainer import PRESETS, TrainConfig, train

__all__ = ["main", "parse_config"]

# model hyper-parameters the command line can override (flag --n-layer -> field n_layer)
_MODEL_FLAGS = ("n_layer", "n_head", "n_embd", "block_size", "dropout", "pmem_size")
# mosaic-v2 only: SwiGLU width d', short-term window h, long-term delay m (training range, eval)
_V2_FLAGS = ("ffn_size", "short_window", "delay_min", "delay_max", "delay")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m mosaics_edu.train",
        description="Train a Memory Mosaic or GPT language model (CPU, one GPU, or torchrun).",
    )
    p.add_argument("--model", default="mosaic", help=f"one of {sorted(MODEL_KINDS)}")
    p.add_argument("--preset", default="cpu-tiny", help=f"one of {sorted(PRESETS)}")
    p.add_argument("--out-dir", default=None, help="checkpoints + metrics (default runs/<model>-<preset>)")
    p.add_argument("--resume", action="store_true", help="continue from <out-dir>/ckpt.pt")
    p.add_argument("--stop-after", type=int, help="stop (with a checkpoint) after this step")
    p.add_argument("--data", help="stories | babistories | a prepared token-dataset folder")
    p.add_argument("--tokenizer", choices=("char", "bpe", "gpt2"))
    for name, kind in (("batch-size", int), ("grad-accum", int), ("max-steps", int),
                       ("lr", float), ("min-lr", float), ("warmup-steps", int),
                       ("weight-decay", float), ("grad-clip", float), ("eval-interval", int),
                       ("eval-batches", int), ("log-interval", int), ("ckpt-interval", int),
                       ("seed", int), ("threads", int), ("peak-tflops", float),
                       ("n-train-stories", int), ("n-valid-stories", int),
                       ("bpe-vocab-size", int)):  # fmt: skip
        p.add_argument(f"--{name}", type=kind)
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N | mps")
    p.add_argument("--dtype", choices=("auto", "float32", "bfloat16", "float16"))
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--backend", default=None, help="DDP backend under torchrun (nccl | gloo)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    for name in ("n-layer", "n-head", "n-embd", "block-size"):
        p.add_argument(f"--{name}", type=int, help="model override")
    p.add_argument("--pmem-size", type=int, help="mosaic only: persistent-memory table size "
                   "(default 3.5 * n_embd, a GPT-2 block's size)")
    p.add_argument("--dropout", type=float, help="model override")
    for name, what in (("ffn-size", "persistent-memory (SwiGLU) width d'"),
                       ("short-window", "short-term window h"),
                       ("delay-min", "smallest long-term delay m in training"),
                       ("delay-max", "largest long-term delay m in training"),
                       ("delay", "long-term delay m at inference")):  # fmt: skip
        p.add_argument(f"--{name}", type=int, help=f"mosaic-v2 only: {what}")
    p.add_argument("--no-long-term", action="store_true",
                   help="mosaic-v2 only: no long-term memory (short-term + persistent)")
    return p


def _init_distributed(config: TrainConfig, backend: str | None) -> bool:
    """Start the process group when launched by torchrun (it sets RANK, even for 1 process)."""
    if "RANK" not in os.environ or dist.is_initialized():
        return False
    if backend is None:
        use_cuda = torch.cuda.is_available() and not config.device.startswith("cpu")
        backend = "nccl" if use_cuda else "gloo"
    if backend == "nccl":
        # one GPU per process, chosen by its rank on this node, before NCCL picks one itself
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group(backend=backend)
    world = dist.get_world_size()
    if config.grad_accum % world:
        dist.destroy_process_group()
        raise SystemExit(
            f"--grad-accum {config.grad_accum} must be a multiple of the number of processes "
            f"({world}): each process accumulates grad_accum / {world} micro-batches, so the "
            f"global batch stays batch_size x grad_accum; use e.g. --grad-accum "
            f"{max(world, config.grad_accum // world * world)}"
        )
    return True


def main(argv: list[str] | None = None) -> dict:
    """The command line: parse, train (or resume), print parameters, tokens/s and MFU."""
    config, args = parse_config(argv)
    ddp = _init_distributed(config, args.backend)
    try:
        summary = _run(config, args, ddp)
        if ddp:
            # Every process waits here until all have finished (rank 0 writes the last checkpoint
            # after the others are done with it): none tears its connections down while another
            # may still use them. Once in a few dozen two-process gloo runs under load, a process
            # that went ahead was killed by SIGABRT in the teardown.
            dist.barrier()
        return summary
    except (ValueError, RuntimeError, ImportError) as err:  # clear messages, no traceback
        raise SystemExit(f"error: {err}") from None
    finally:
        if ddp and dist.is_initialized():
            dist.destroy_process_group()


def parse_config(argv: list[str] | None = None) -> tuple[TrainConfig, argparse.Namespace]:
    """The :class:`~mosaics_edu.train.TrainConfig` a command line asks for (nothing is run), and
    the parsed flags. Lets a recipe be checked without training: tests/training/test_ddp.py checks the
    chapters' commands and their global batch."""
    args = _parser().parse_args(argv)
    if args.model not in MODEL_KINDS:
        raise SystemExit(f"--model must be one of {sorted(MODEL_KINDS)}, got {args.model!r}")
    if args.preset not in PRESETS:
        raise SystemExit(f"--preset must be one of {sorted(PRESETS)}, got {args.preset!r}")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    overrides = {
        k: v for k, v in vars(args).items()
        if k in fields and v is not None and k not in ("model", "preset")
    }  # fmt: skip
    model_overrides = {k: v for k in _MODEL_FLAGS if (v := getattr(args, k)) is not None}
    if "pmem_size" in model_overrides and args.model != "mosaic":
        raise SystemExit("--pmem-size applies to --model mosaic only (a GPT has no persistent memory)")
    v2_overrides = {k: v for k in _V2_FLAGS if (v := getattr(args, k)) is not None}
    if args.no_long_term:
        v2_overrides["long_term"] = False
    if v2_overrides and args.model != "mosaic-v2":
        flags = ", ".join("--no-long-term" if k == "long_term" else "--" + k.replace("_", "-")
                          for k in v2_overrides)
        raise SystemExit(f"{flags}: mosaic-v2 options; use them with --model mosaic-v2")
    model_overrides.update(v2_overrides)
    preset = PRESETS[args.preset]
    if "max_steps" in overrides:  # a shorter run keeps the preset's proportions
        ratio = overrides["max_steps"] / preset["max_steps"]
        if "warmup_steps" not in overrides:
            overrides["warmup_steps"] = min(
                overrides["max_steps"], round(preset["warmup_steps"] * ratio)
            )
        if "eval_interval" not in overrides:
            overrides["eval_interval"] = min(overrides["max_steps"], preset["eval_interval"])
    config = TrainConfig.from_preset(
        args.preset, model=args.model, model_overrides=model_overrides, **overrides
    )
    if config.out_dir is None:
        config.out_dir = str(Path("runs") / f"{args.model}-{args.preset}")
    return config, args


def _run(config: TrainConfig, args: argparse.Namespace, ddp: bool) -> dict:
    """Train (or resume) as the command line asked and print the numbers that matter."""
    resume = Path(config.out_dir) / "ckpt.pt" if args.resume else None
    master = not dist.is_initialized() or dist.get_rank() == 0  # also when a caller started DDP
    if master:
        what = f"resuming {resume}" if resume else f"training {config.model} / {config.preset}"
        print(f"{what} -> {config.out_dir}", flush=True)
    result = train(config, resume=resume, progress=not args.no_progress, until=args.stop_after)
    s = result.summary
    if master:
        print(
            f"global batch = {s['batch_size']} (batch size) x {s['grad_accum_per_process']} "
            f"(accumulation per process) x {s['world_size']} (processes) = {s['global_batch']} "
            f"sequences of {s['block_size']} tokens = {s['tokens_per_step']:,} tokens per step\n"
            f"model {s['model']}: {s['n_params']:,} parameters | step {s['step']} | "
            f"train loss {s['train_loss']:.4f} | val loss {s['val_loss']:.4f}\n"
            f"throughput {s['tokens_per_s']:,.0f} tokens/s on {s['device']} ({s['dtype']}, "
            f"{s['world_size']} process(es), DDP {s['backend'] or 'off'}, "
            f"compiled {'yes' if s['compiled'] else 'no'}) | MFU {s['mfu']:.2%} "
            f"(6N + 12LdT = {s['flops_per_token']:.3g} FLOPs/token, "
            f"assumed peak {s['peak_flops'] / 1e12:.3g} TFLOP/s)",
            flush=True,
        )
    return s
