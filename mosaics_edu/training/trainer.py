"""Train a Memory Mosaic or its GPT twin: a small, readable loop that scales to the papers' recipe.

    python -m mosaics_edu.train --model mosaic --preset cpu-tiny           # minutes on 2 cores
    python -m mosaics_edu.train --model gpt --preset gpu-small              # one consumer GPU
    torchrun --nproc-per-node 8 -m mosaics_edu.train --model mosaic --preset paper-gpt2-small
    (several nodes, the rendezvous flags, the global batch: chapter 10 and mosaics_edu.training.cli)

What one optimizer step does (``Trainer.train_step``):

1. for each of ``grad_accum`` micro-batches: draw ``batch_size`` random windows, run the model
   under autocast (bf16 on GPUs that support it, else fp16 with a gradient scaler; fp32 on CPU),
   add ``loss / grad_accum`` to the gradients. Under DDP (``torchrun``) each of the W processes
   runs its own ``grad_accum / W`` of the step's micro-batches, taken from one seeded stream that
   every process holds, and the gradients are averaged over processes on the last one: the step
   is the one a single process would take, up to float rounding (``tests/training/test_ddp.py``);
2. clip the global gradient norm to ``grad_clip``;
3. set the learning rate ``lr_at(step, ...)`` — linear warm-up, then cosine decay to a floor —
   and take an AdamW step, with weight decay on matrices/tables (≥ 2-D) only (``param_groups``).

The schedule is :func:`~mosaics_edu.training.schedule.lr_at`; setting the rate, clipping and
stepping are :func:`~mosaics_edu.training.step.set_lr` and
:func:`~mosaics_edu.training.step.apply_gradients`, the same code as the end of every other
loop's step (:func:`~mosaics_edu.training.step.optimizer_step`, which ``basic_train_step``,
RegBench and three moons use).

Every ``eval_interval`` steps the mean loss over ``eval_batches`` fixed windows of the training
and validation streams is measured, logged (``metrics.csv``, callbacks, the progress bar) and a
checkpoint is written atomically. ``--resume`` restores model, optimizer, step, random states and
the batch sampler, so an interrupted CPU run ends with exactly the weights of an uninterrupted one.

Throughput and MFU (model FLOPs utilisation) are logged with every training event; the FLOPs
and peak figures behind MFU, and why, are in :mod:`mosaics_edu.models.flops`. The checkpoint format is
:mod:`mosaics_edu.training.checkpoint`; the command line is :mod:`mosaics_edu.training.cli` (``python -m
mosaics_edu.train`` runs it through ``train/__main__.py``); the live loss plot
for notebooks is :class:`mosaics_edu.course.widgets.LiveLossPlot`.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn as nn
from tqdm.auto import tqdm

from ..core.validation import check_positive_int
from ..data import (
    RandomWindows,
    TokenDataset,
    get_batch,
    load_token_dataset,
    prepare_babistories,
    prepare_stories,
)
from ..models.flops import peak_flops, training_flops_per_token
from ..models.lm import count_parameters
from ..models.registry import MODEL_KINDS
from . import run_cache
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .schedule import lr_at
from .step import apply_gradients, optimizer_step, set_lr

__all__ = [
    "PRESETS",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "basic_train_step",
    "build_model",
    "padded_vocab_size",
    "param_groups",
    "prepare_data",
    "train",
]

# --------------------------------------------------------------------------------------------
# Pure pieces: the parameter groups and one plain step (chapter 05 exercises; the schedule
# lr_at is in schedule.py, the step itself in step.py)
# --------------------------------------------------------------------------------------------


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups: tensors with ≥ 2 dims (matrices, embeddings, memory tables) decay;
    vectors and scalars (norm gains, biases, the per-head decay and beta parameters) do not.

    Shrinking a gain, a decay rate or a beta toward 0 would change what the layer computes,
    not just limit its capacity, hence no decay there (as in the papers' code).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    params = [p for p in model.parameters() if p.requires_grad]  # tied weights appear once
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    return [
        {"params": decay, "weight_decay": float(weight_decay)},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def basic_train_step(
    model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
    grad_clip: float,
) -> float:
    """One plain optimizer step on the batch ``x``, ``y`` (both (B, T) token ids): forward (the
    model's mean cross-entropy), then :func:`~mosaics_edu.training.step.optimizer_step`: zero the
    gradients, backward, clip the global gradient norm to ``grad_clip`` (0: no clipping), step.
    The learning rate is left as the optimizer holds it. Returns this step's loss as a float.

    What ``Trainer.train_step`` does on one device in full precision without accumulation;
    chapter 05 writes it as an exercise (zero_grad, forward, backward, clip, step: zeroing only
    has to come before backward) and uses this one afterwards.
    """
    model.train()
    _, loss = model(x, y)  # logits (B, T, V), mean cross-entropy
    return optimizer_step(model, optimizer, loss, grad_clip=grad_clip)


# --------------------------------------------------------------------------------------------
# Configuration and presets
# --------------------------------------------------------------------------------------------


@dataclass
class TrainConfig:
    """Everything a run needs besides the model's own hyper-parameters (``model_overrides``
    changes those, e.g. ``{"n_layer": 1}``). ``TrainConfig.from_preset(name)`` gives the presets."""

    model: str = "mosaic"  # a key of MODEL_KINDS
    preset: str = "cpu-tiny"  # model preset name (MosaicConfig.preset / GPTConfig.preset)
    model_overrides: dict = field(default_factory=dict)
    data: str = "stories"  # "stories", "babistories" or a folder with a prepared token dataset
    tokenizer: str = "char"  # "char", "bpe" or "gpt2" (for stories/babistories)
    n_train_stories: int = 4000
    n_valid_stories: int = 400
    bpe_vocab_size: int = 1024
    batch_size: int = 16  # sequences per micro-batch, per process
    grad_accum: int = 1  # micro-batches per step in total (divided among DDP processes)
    max_steps: int = 300
    lr: float = 3e-3
    min_lr: float = 1e-4
    warmup_steps: int = 30
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0  # 0 disables clipping
    eval_interval: int = 50
    eval_batches: int = 10
    log_interval: int = 10
    ckpt_interval: int = 0  # 0: checkpoint at every evaluation; <0: never
    seed: int = 0
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1", "mps"
    dtype: str = "auto"  # "auto", "float32", "bfloat16", "float16"
    compile: bool = False  # torch.compile the model (CUDA only; ignored on CPU/MPS)
    threads: int = 0  # torch.set_num_threads on CPU (0: leave as is)
    out_dir: str | None = None  # where checkpoints and metrics go (None: nothing written)
    peak_tflops: float | None = None  # for MFU; None: PEAK_TFLOPS / CPU assumption

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> TrainConfig:
        """The named training preset, with any field replaced by ``overrides``."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}: choose one of {sorted(PRESETS)}")
        values = {"preset": name, **PRESETS[name], **overrides}
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown TrainConfig fields {sorted(unknown)}")
        return cls(**values)

    def __post_init__(self) -> None:
        self.validate()  # an invalid config cannot exist (validate() again after changing a field)

    def validate(self) -> None:
        """Raise ValueError naming the first field out of its range."""
        positive = ("batch_size", "grad_accum", "max_steps", "eval_interval", "eval_batches",
                    "log_interval")  # fmt: skip
        for name in positive:
            check_positive_int(name, getattr(self, name))
        if not 0 <= self.warmup_steps <= self.max_steps:
            raise ValueError(
                f"warmup_steps must be in [0, max_steps={self.max_steps}], got {self.warmup_steps}"
            )
        if not 0 <= self.min_lr <= self.lr:
            raise ValueError(f"need 0 <= min_lr <= lr, got min_lr={self.min_lr}, lr={self.lr}")
        if self.dtype not in ("auto", "float32", "bfloat16", "float16"):
            raise ValueError(f"dtype must be auto/float32/bfloat16/float16, got {self.dtype!r}")
        if self.model not in MODEL_KINDS:
            raise ValueError(f"model must be one of {sorted(MODEL_KINDS)}, got {self.model!r}")
        if self.grad_clip < 0 or self.weight_decay < 0:
            raise ValueError("grad_clip and weight_decay must be >= 0")


# Training side of the presets; the model side is MosaicConfig.preset / GPTConfig.preset.
PRESETS: dict[str, dict[str, Any]] = {
    # A few minutes on 2 CPU cores: character-level stories, a small model.
    "cpu-tiny": dict(
        data="stories", tokenizer="char", n_train_stories=4000, n_valid_stories=400,
        batch_size=16, grad_accum=1, max_steps=300, lr=3e-3, min_lr=1e-4, warmup_steps=30,
        eval_interval=50, eval_batches=10, log_interval=10, dtype="float32",
    ),
    # Tens of minutes on one consumer/Colab GPU: BPE stories, needs no download.
    "gpu-small": dict(
        data="stories", tokenizer="bpe", bpe_vocab_size=4096, n_train_stories=100_000,
        n_valid_stories=2000, batch_size=64, grad_accum=1, max_steps=5000, lr=2e-3,
        min_lr=1e-4, warmup_steps=200, eval_interval=500, eval_batches=20, log_interval=50,
        compile=True,
    ),
    # The v1 paper's recipe: BabiStories with GPT-2 tokens, global batch 512 x 512
    # tokens (8 per GPU x 64 V100s in the paper; here batch_size x grad_accum, split over GPUs).
    "paper-gpt2-small": dict(
        data="babistories", tokenizer="gpt2", batch_size=16, grad_accum=32, max_steps=80_000,
        lr=5e-3, min_lr=1e-4, warmup_steps=2000, weight_decay=0.1, beta1=0.9, beta2=0.95,
        grad_clip=1.0, eval_interval=2000, eval_batches=10, log_interval=100, compile=True,
    ),
}  # fmt: skip


# --------------------------------------------------------------------------------------------
# Models and data
# --------------------------------------------------------------------------------------------


def padded_vocab_size(n: int, multiple: int = 64) -> int:
    """Round the vocabulary up to a multiple of 64 (GPT-2's 50257 -> 50304, as in the papers):
    faster matmuls, and the extra rows are never targets."""
    return ((n + multiple - 1) // multiple) * multiple


def build_model(
    kind: str, preset: str, vocab_size: int | None = None, **overrides: Any
) -> tuple[nn.Module, Any]:
    """``(model, config)`` for ``kind`` ("mosaic" or "gpt") from the model preset ``preset``,
    with ``vocab_size`` and any config field replaced (e.g. ``n_layer=1``)."""
    if kind not in MODEL_KINDS:
        raise ValueError(f"model must be one of {sorted(MODEL_KINDS)}, got {kind!r}")
    model_cls, config_cls = MODEL_KINDS[kind]
    if vocab_size is not None:
        overrides = {"vocab_size": int(vocab_size), **overrides}
    # the config class validates the fields and derives dependent ones (e.g. pmem_size = 3.5 d)
    config = config_cls.preset(preset, **overrides)
    return model_cls(config), config


def prepare_data(config: TrainConfig) -> TokenDataset:
    """The token dataset a config names: generated stories, BabiStories, or a prepared folder."""
    if config.data == "stories":
        return prepare_stories(
            tokenizer=config.tokenizer,
            n_train=config.n_train_stories,
            n_valid=config.n_valid_stories,
            seed=0,  # the corpus does not change with the training seed
            bpe_vocab_size=config.bpe_vocab_size,
        )
    if config.data == "babistories":
        return prepare_babistories(tokenizer=config.tokenizer, bpe_vocab_size=config.bpe_vocab_size)
    path = Path(config.data)
    if not path.is_dir():
        raise ValueError(
            f"data must be 'stories', 'babistories' or a folder with a prepared token dataset; "
            f"{config.data!r} is none of these"
        )
    return load_token_dataset(path)


# --------------------------------------------------------------------------------------------
# The trainer
# --------------------------------------------------------------------------------------------


@dataclass
class TrainResult:
    """What ``Trainer.fit`` returns: the trained (unwrapped) model and the logged history."""

    model: nn.Module
    history: list[dict]
    summary: dict


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        from ..core.env import best_device

        name = best_device()
    return torch.device(name)


def _resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


# what the trainer reads from a model's config
_CONFIG_FIELDS = ("block_size", "n_layer", "n_embd")


class Trainer:
    """Owns the model, optimizer, sampler and schedule of one run; see the module docstring.

    ``model`` must implement ``forward(idx, targets) -> (logits, loss)``. ``model_config``
    (default ``model.config``) must have ``block_size`` (the training windows' length),
    ``n_layer`` and ``n_embd`` (for the FLOPs estimate), as ``MosaicConfig`` and ``GPTConfig``
    do. ``model_kind`` and ``model_config`` (a dataclass) are stored in checkpoints so
    ``checkpoint.load_model`` can rebuild the model.
    """

    def __init__(
        self,
        model: nn.Module,
        data: TokenDataset,
        config: TrainConfig,
        callbacks: Iterable[Callable[[dict], None]] = (),
        model_kind: str | None = None,
        model_config: Any = None,
        progress: bool = True,
    ):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        if not isinstance(data, TokenDataset):
            raise TypeError(f"data must be a TokenDataset, got {type(data).__name__}")
        config.validate()
        self.config = config
        self.data = data
        self.callbacks = list(callbacks)
        self.model_kind = model_kind or config.model
        self.model_config = model_config if model_config is not None else getattr(
            model, "config", None
        )
        lacking = [n for n in _CONFIG_FIELDS if not hasattr(self.model_config, n)]
        if lacking:
            raise TypeError(
                f"model_config ({type(self.model_config).__name__}) lacks {lacking}: pass the "
                "model's config (a MosaicConfig or GPTConfig, or one with block_size, n_layer "
                "and n_embd) as model_config=, or give the model a .config attribute"
            )
        self.progress = progress

        # distributed: torchrun sets these; a plain run is rank 0 of 1
        self.ddp = dist.is_available() and dist.is_initialized()
        self.rank = dist.get_rank() if self.ddp else 0
        self.world = dist.get_world_size() if self.ddp else 1
        self.master = self.rank == 0
        if config.grad_accum % self.world:
            raise ValueError(
                f"grad_accum={config.grad_accum} must be divisible by the number of processes "
                f"({self.world}) so the global batch stays batch_size x grad_accum"
            )
        self.accum = config.grad_accum // self.world

        self.device = _resolve_device(config.device)
        if self.ddp and self.device.type == "cuda":
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(self.device)
        if config.threads and self.device.type == "cpu":
            torch.set_num_threads(config.threads)
        self.dtype = _resolve_dtype(config.dtype, self.device)
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        if self.dtype == torch.float16 and self.device.type != "cuda":
            raise ValueError("dtype float16 needs a CUDA GPU: use bfloat16 or float32 here")
        use_autocast = self.device.type in ("cuda", "cpu") and self.dtype != torch.float32
        # autocast runs matmuls in bf16/fp16 and keeps reductions (norms, softmax, loss) in fp32;
        # the weights and the optimizer state stay fp32
        self.autocast = (
            torch.autocast(device_type=self.device.type, dtype=self.dtype)
            if use_autocast
            else contextlib.nullcontext()
        )
        # fp16 overflows without loss scaling; bf16 has fp32's exponent range and needs none
        self.scaler = torch.amp.GradScaler(
            "cuda", enabled=self.dtype == torch.float16 and self.device.type == "cuda"
        )

        self.raw_model = model.to(self.device)
        self.block_size = int(self.model_config.block_size)
        self.n_params = count_parameters(self.raw_model)
        self.optimizer = torch.optim.AdamW(
            param_groups(self.raw_model, config.weight_decay),
            lr=config.lr,
            betas=(config.beta1, config.beta2),
            fused=self.device.type == "cuda",
        )
        self.model: nn.Module = self.raw_model
        # torch.compile pays off on GPUs; on a CPU its minutes of compilation rarely do, so the
        # flag (on in the GPU presets) is ignored there
        self.compiled = bool(config.compile) and self.device.type == "cuda"
        if self.compiled:
            self.model = torch.compile(self.model)
        if self.ddp:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = DistributedDataParallel(self.model, device_ids=ids)

        # One stream of micro-batches for the whole job, however many processes share it: every
        # process holds the same seeded sampler, trains on its own slice of each step's
        # grad_accum micro-batches and skips the others' (train_step). A step's global batch is
        # then the one a single process accumulating all grad_accum micro-batches would see, so
        # runs with 1, 2 or 64 processes differ only by float rounding (tests/training/test_ddp.py), and a
        # checkpoint resumes with any number of processes on the same batches.
        self.sampler = RandomWindows(
            data.train, config.batch_size, self.block_size, seed=config.seed * 7919 + 104_729,
            device=self.device,
        )  # fmt: skip
        self.step = 0
        self.history: list[dict] = []
        self.tokens_per_step = config.batch_size * self.block_size * self.accum * self.world
        self.flops_per_step = self.tokens_per_step * training_flops_per_token(
            self.n_params, self.model_config.n_layer, self.model_config.n_embd, self.block_size
        )
        per_process = (
            config.peak_tflops * 1e12 if config.peak_tflops else peak_flops(self.device, self.dtype)
        )
        self.peak = per_process * self.world  # tokens/s counts every process's tokens
        self.out_dir = Path(config.out_dir) if config.out_dir else None
        self._train_time = 0.0  # seconds spent in train steps (for tokens/s)
        # this process's CPU seconds in train steps: on a shared machine the wall clock also
        # counts the time other programs held the cores
        self._train_cpu = 0.0
        self._train_tokens = 0

    # -- one optimizer step -------------------------------------------------------------------
    def train_step(self) -> dict:
        """One optimizer step at ``self.step``; returns loss, lr and gradient norm."""
        cfg = self.config
        lr = lr_at(self.step, cfg.lr, cfg.min_lr, cfg.warmup_steps, cfg.max_steps)
        set_lr(self.optimizer, lr)
        self.model.train()
        set_delay_step = getattr(self.raw_model, "set_delay_step", None)
        if set_delay_step is not None:  # v2: the random delay m is a function of (seed, step)
            set_delay_step(self.step, cfg.seed)
        total = 0.0
        # this process's micro-batches are numbers rank*accum ... rank*accum + accum - 1 of the
        # step's grad_accum; the others' are skipped (their start positions drawn, not built)
        self.sampler.skip(self.rank * self.accum)
        for micro in range(self.accum):
            x, y = self.sampler.next_batch()  # (B, T), (B, T)
            sync = (not self.ddp) or micro == self.accum - 1
            ctx = contextlib.nullcontext() if sync else self.model.no_sync()
            with ctx:
                with self.autocast:
                    _, loss = self.model(x, y)
                self.scaler.scale(loss / self.accum).backward()
            total += float(loss.detach()) / self.accum
        self.sampler.skip((self.world - 1 - self.rank) * self.accum)
        if not math.isfinite(total):
            raise FloatingPointError(
                f"loss is {total} at step {self.step}: lower the learning rate (lr={cfg.lr}) "
                "or use bfloat16 instead of float16"
            )
        # unscale (fp16), clip, step: the end of every loop's step (step.py); this loop zeroes
        # the gradients after it, ready for the next step's accumulation
        grad_norm = apply_gradients(
            self.raw_model.parameters(), self.optimizer, grad_clip=cfg.grad_clip, scaler=self.scaler
        )
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        if self.ddp:  # the logged loss is the mean over processes
            t = torch.tensor([total], device=self.device)
            dist.all_reduce(t)  # SUM works on every backend (gloo has no AVG)
            total = float(t) / self.world
        return {"loss": total, "lr": lr, "grad_norm": grad_norm}

    # -- evaluation -----------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self) -> dict:
        """Mean loss over ``eval_batches`` fixed random windows of each stream (same windows at
        every evaluation, so the curve's wiggles are the model's, not the sample's).

        Under DDP the processes share the work: all draw the same windows, process r evaluates
        batches r, r + world, ..., and the sums are added up, so the result is the one a single
        process gets (up to float rounding) in 1/world of the time."""
        self.model.eval()
        out = {}
        for split, tokens in (("train", self.data.train), ("val", self.data.valid)):
            g = torch.Generator().manual_seed(1234)
            block = min(self.block_size, len(tokens) - 1)
            loss_sum = 0.0
            for j in range(self.config.eval_batches):
                mine = j % self.world == self.rank
                x, y = get_batch(tokens, self.config.batch_size, block, g,
                                 self.device if mine else "cpu")  # fmt: skip
                if not mine:
                    continue  # another process's batch (drawn all the same: one stream)
                with self.autocast:
                    _, loss = self.raw_model(x, y)
                loss_sum += float(loss)
            value = torch.tensor(loss_sum, dtype=torch.float64, device=self.device)
            if self.ddp:
                dist.all_reduce(value)  # SUM
            # rounded to float32 as the logged losses always were (shipped runs stay comparable)
            out[f"{split}_loss"] = float(torch.tensor(float(value) / self.config.eval_batches))
        return out

    # -- state ----------------------------------------------------------------------------------
    def _gather(self, obj: Any) -> list:
        if not self.ddp:
            return [obj]
        objs: list = [None] * self.world
        dist.all_gather_object(objs, obj)
        return objs

    def state_dict(self) -> dict:
        """Everything needed to continue exactly (all ranks' sampler and RNG states)."""
        rng = {"cpu": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        samplers = self._gather(self.sampler.state_dict())
        rngs = self._gather(rng)
        model_config = (
            dataclasses.asdict(self.model_config)
            if dataclasses.is_dataclass(self.model_config)
            else {}
        )
        return {
            "model": self.raw_model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
            "step": self.step,
            "samplers": samplers,
            "rng": rngs,
            "model_kind": self.model_kind,
            "model_config": model_config,
            "train_config": dataclasses.asdict(self.config),
            "tokenizer": self.data.tokenizer.to_dict(),
            "history": self.history,
        }

    def load_state_dict(self, state: dict) -> None:
        self.raw_model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        self.history = list(state.get("history", []))
        samplers, rngs = state.get("samplers", []), state.get("rng", [])
        if len(rngs) != self.world and self.master:
            print(
                f"note: checkpoint was written by {len(rngs)} process(es), this run has "
                f"{self.world}: the batches are those of an uninterrupted run, dropout's random "
                "numbers are not",
                file=sys.stderr,
            )
        if samplers:  # every process holds the same stream: any saved copy will do
            self.sampler.load_state_dict(samplers[min(self.rank, len(samplers) - 1)])
        if self.rank < len(rngs):
            torch.set_rng_state(rngs[self.rank]["cpu"])
            if self.device.type == "cuda" and "cuda" in rngs[self.rank]:
                torch.cuda.set_rng_state(rngs[self.rank]["cuda"], self.device)

    def save(self, path: str | os.PathLike | None = None) -> Path | None:
        """Checkpoint to ``path`` (default ``out_dir/ckpt.pt``); only rank 0 writes."""
        state = self.state_dict()  # every rank must take part in the gather
        if not self.master:
            return None
        if path is None:
            if self.out_dir is None:
                raise ValueError("no out_dir configured: pass a path to save()")
            path = self.out_dir / "ckpt.pt"
        save_checkpoint(state, path)
        return Path(path)

    def resume(self, path: str | os.PathLike) -> None:
        """Continue from a checkpoint file (or a run folder holding ``ckpt.pt``)."""
        path = Path(path)
        if path.is_dir():
            path = path / "ckpt.pt"
        state = load_checkpoint(path, map_location=self.device)
        if state["model_kind"] != self.model_kind:
            raise CheckpointError(
                f"{path} holds a {state['model_kind']!r} model, this run trains "
                f"{self.model_kind!r}: resume with --model {state['model_kind']}"
            )
        self.load_state_dict(state)
        if self.master and self.out_dir is not None:
            self._rewrite_csv()

    # -- logging --------------------------------------------------------------------------------
    _CSV_FIELDS = ("kind", "step", "loss", "train_loss", "val_loss", "lr", "grad_norm",
                   "tokens_per_s", "mfu", "elapsed_s")  # fmt: skip

    def _rewrite_csv(self) -> None:
        assert self.out_dir is not None
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with open(self.out_dir / "metrics.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self._CSV_FIELDS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(self.history)

    def _record(self, event: dict) -> None:
        self.history.append(event)
        if not self.master:
            return
        if self.out_dir is not None:
            path = self.out_dir / "metrics.csv"
            new = not path.exists()
            self.out_dir.mkdir(parents=True, exist_ok=True)
            with open(path, "a", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=self._CSV_FIELDS, extrasaction="ignore")
                if new:
                    writer.writeheader()
                writer.writerow(event)
        for cb in self.callbacks:
            cb(event)

    # -- the loop -------------------------------------------------------------------------------
    def fit(self, until: int | None = None) -> TrainResult:
        """Train until ``max_steps`` (or stop early after step ``until``, e.g. to continue
        later with another ``fit`` call), evaluating and checkpointing on schedule."""
        cfg = self.config
        stop = cfg.max_steps if until is None else min(int(until), cfg.max_steps)
        start = time.perf_counter()
        bar = tqdm(
            total=cfg.max_steps, initial=self.step, disable=not (self.master and self.progress),
            desc=f"{self.model_kind}", dynamic_ncols=True,
        )  # fmt: skip
        if self.step == 0:
            self._record({"kind": "eval", "step": 0, "elapsed_s": 0.0, **self.evaluate()})
        window_time, window_tokens = 0.0, 0
        while self.step < stop:
            t0, cpu0 = time.perf_counter(), time.process_time()
            info = self.train_step()
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            dt = time.perf_counter() - t0
            window_time += dt
            window_tokens += self.tokens_per_step
            self._train_time += dt
            self._train_cpu += time.process_time() - cpu0
            self._train_tokens += self.tokens_per_step
            bar.update(1)
            if self.step % cfg.log_interval == 0 or self.step == cfg.max_steps:
                tps = window_tokens / max(window_time, 1e-9)
                mfu = tps / self.tokens_per_step * self.flops_per_step / self.peak
                window_time, window_tokens = 0.0, 0
                event = {
                    "kind": "train", "step": self.step, "elapsed_s": time.perf_counter() - start,
                    "tokens_per_s": tps, "mfu": mfu, **info,
                }  # fmt: skip
                self._record(event)
                bar.set_postfix(loss=f"{info['loss']:.3f}", tok_s=f"{tps:,.0f}", mfu=f"{mfu:.1%}")
            if self.step % cfg.eval_interval == 0 or self.step == cfg.max_steps:
                ev = self.evaluate()
                self._record({"kind": "eval", "step": self.step,
                              "elapsed_s": time.perf_counter() - start, **ev})  # fmt: skip
                if self.master:
                    bar.write(
                        f"step {self.step}: train {ev['train_loss']:.4f}  val {ev['val_loss']:.4f}"
                    )
                if cfg.ckpt_interval == 0 and self.out_dir is not None:
                    self.save()
            if cfg.ckpt_interval > 0 and self.out_dir is not None and (
                self.step % cfg.ckpt_interval == 0 or self.step == cfg.max_steps
            ):
                self.save()
        bar.close()
        return TrainResult(self.raw_model, self.history, self.summary())

    def replay(self, state: dict, summary: dict) -> TrainResult:
        """Take the state a finished ``fit`` left (``state_dict()`` after it) and show what that
        fit showed: the progress bar, the evaluation lines and every logged event passed to the
        callbacks, in order, without training. Used by :mod:`mosaics_edu.training.run_cache` so that a run
        already done in a test session is not done again; the result is the fit's: the same
        weights, history, summary, random state and train/eval mode."""
        self.load_state_dict(state)
        bar = tqdm(
            total=self.config.max_steps, disable=not (self.master and self.progress),
            desc=f"{self.model_kind}", dynamic_ncols=True,
        )  # fmt: skip
        for event in self.history:
            bar.update(event["step"] - bar.n)
            for cb in self.callbacks:
                cb(event)
            if event["kind"] == "train":
                bar.set_postfix(loss=f"{event['loss']:.3f}", tok_s=f"{event['tokens_per_s']:,.0f}",
                                mfu=f"{event['mfu']:.1%}")  # fmt: skip
            elif event["step"] > 0 and self.master:
                bar.write(f"step {event['step']}: train {event['train_loss']:.4f}  "
                          f"val {event['val_loss']:.4f}")  # fmt: skip
        bar.close()
        # fit ends in evaluate() (eval mode) when its last event is an evaluation, else in a step
        self.raw_model.train(not (self.history and self.history[-1]["kind"] == "eval"))
        return TrainResult(self.raw_model, self.history, dict(summary))

    def summary(self) -> dict:
        evals = [h for h in self.history if h["kind"] == "eval"]
        tps = self._train_tokens / self._train_time if self._train_time else float("nan")
        return {
            "model": self.model_kind,
            "n_params": self.n_params,
            "step": self.step,
            "train_loss": evals[-1]["train_loss"] if evals else float("nan"),
            "val_loss": evals[-1]["val_loss"] if evals else float("nan"),
            "tokens_per_s": tps,
            "train_s": self._train_time,
            "train_cpu_s": self._train_cpu,  # this process's (rank 0's under DDP)
            "mfu": tps / self.tokens_per_step * self.flops_per_step / self.peak,
            "flops_per_token": self.flops_per_step / self.tokens_per_step,
            "peak_flops": self.peak,
            "device": str(self.device),
            "dtype": str(self.dtype).removeprefix("torch."),
            "world_size": self.world,
            # the global batch: batch_size x accumulation per process x processes sequences
            "batch_size": self.config.batch_size,
            "grad_accum_per_process": self.accum,
            "global_batch": self.config.batch_size * self.accum * self.world,
            "block_size": self.block_size,
            "tokens_per_step": self.tokens_per_step,
            "backend": dist.get_backend() if self.ddp else None,
            "compiled": self.compiled,
        }


# --------------------------------------------------------------------------------------------
# One call: train(config)
# --------------------------------------------------------------------------------------------


def _prepare_data_once_per_node(config: TrainConfig) -> TokenDataset:
    """``prepare_data(config)``; under torchrun the first process of each node prepares (and
    caches) the data while the others wait, then they read the cache, instead of all of them
    generating and tokenizing the same corpus at once."""
    if not (dist.is_available() and dist.is_initialized()):
        return prepare_data(config)
    first_on_node = int(os.environ.get("LOCAL_RANK", dist.get_rank())) == 0
    data = prepare_data(config) if first_on_node else None
    dist.barrier()
    return data if data is not None else prepare_data(config)


def train(
    config: TrainConfig,
    callbacks: Iterable[Callable[[dict], None]] = (),
    data: TokenDataset | None = None,
    resume: str | os.PathLike | None = None,
    progress: bool = True,
    until: int | None = None,
) -> TrainResult:
    """Build the data and the model a config names, train, and return the result.

    ``data`` skips preparation (reuse one dataset for several models); ``resume`` continues a
    checkpoint (its saved training config wins over ``config``, except device/compile/out_dir);
    ``until`` stops after that step (a time-boxed session; continue later with ``resume``).
    """
    if resume is not None:
        path = Path(resume)
        path = path / "ckpt.pt" if path.is_dir() else path
        saved = load_checkpoint(path)["train_config"]
        keep = {k: getattr(config, k) for k in ("device", "compile", "out_dir", "threads")}
        config = TrainConfig(**{**saved, **keep})
        resume = path
    config.validate()
    if config.threads:
        torch.set_num_threads(config.threads)
    data = data if data is not None else _prepare_data_once_per_node(config)
    torch.manual_seed(config.seed)
    # the vocabulary is padded to a multiple of 64 unless the config names its own size
    overrides = dict(config.model_overrides)
    vocab = overrides.pop("vocab_size", padded_vocab_size(data.vocab_size))
    if vocab < data.vocab_size:
        raise ValueError(
            f"model_overrides vocab_size={vocab} is smaller than the data's vocabulary "
            f"({data.vocab_size}): give at least {data.vocab_size}, or leave it out (padded to 64)"
        )
    model, model_config = build_model(config.model, config.preset, vocab, **overrides)
    if dist.is_available() and dist.is_initialized() and dist.get_rank() > 0:
        # DDP copies process 0's weights to the others; what each process draws afterwards
        # (dropout masks) must differ, or every process would drop the same units
        torch.manual_seed(config.seed + 1_000_003 * dist.get_rank())
    trainer = Trainer(
        model, data, config, callbacks, model_kind=config.model, model_config=model_config,
        progress=progress,
    )  # fmt: skip
    if resume is not None:
        trainer.resume(resume)
    # a run already done in this test session is loaded, not repeated (mosaics_edu.training.run_cache)
    cache = run_cache.folder()
    cached = cache is not None and resume is None and until is None and trainer.out_dir is None \
        and not trainer.ddp
    if cached:
        key = run_cache.run_key(config, model_config, data)
        done = run_cache.load(cache, key)
        if done is not None:
            return trainer.replay(*done)
    result = trainer.fit(until=until)
    if cached:
        run_cache.store(cache, key, trainer.state_dict(), result.summary)
    if until is not None and trainer.step < config.max_steps:
        if trainer.out_dir is not None:
            trainer.save()  # a clean stop: keep the exact state to resume from
        return result
    if trainer.master and trainer.out_dir is not None:
        summary_path = trainer.out_dir / "summary.json"
        summary_path.write_text(json.dumps(result.summary, indent=1))
    return result

