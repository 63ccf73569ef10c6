"""Train a Memory Mosaic or its GPT twin: a small, readable loop that scales to the papers' recipe.

    python -m mosaics_edu.train --model mosaic --preset cpu-tiny           # minutes on 2 cores
    python -m mosaics_edu.train --model gpt --preset gpu-small              # one consumer GPU
    torchrun --nproc_per_node=8 -m mosaics_edu.train --model mosaic --preset paper-gpt2-small

What one optimizer step does (``Trainer.train_step``):

1. for each of ``grad_accum`` micro-batches: draw ``batch_size`` random windows, run the model
   under autocast (bf16 on GPUs that support it, else fp16 with a gradient scaler; fp32 on CPU),
   add ``loss / grad_accum`` to the gradients (under DDP, gradients are all-reduced only on the
   last micro-batch);
2. clip the global gradient norm to ``grad_clip``;
3. set the learning rate ``lr_at(step, ...)`` — linear warm-up, then cosine decay to a floor —
   and take an AdamW step, with weight decay on matrices/tables (≥ 2-D) only (``param_groups``).

Every ``eval_interval`` steps the mean loss over ``eval_batches`` fixed windows of the training
and validation streams is measured, logged (``metrics.csv``, callbacks, the progress bar) and a
checkpoint is written atomically. ``--resume`` restores model, optimizer, step, random states and
the batch sampler, so an interrupted CPU run ends with exactly the weights of an uninterrupted one.

Throughput and MFU (model FLOPs utilisation). FLOPs per trained token are estimated as
``6 N + 12 L d T`` (N parameters — forward 2N, backward 4N — plus the attention/retrieval
score and mix products, 12·L·d·T; the PaLM paper's appendix formula, also used by nanoGPT). The
contextual memory costs what causal attention costs; the persistent memory's tables are
parameters, so 6N counts them. MFU = achieved FLOPs/s divided by the device's peak: dense
bf16/fp16 tensor-core peaks from the vendors' data sheets (``PEAK_TFLOPS``: H100 SXM 989, A100
312, ...; half of that for fp32, which runs as TF32), and on CPU an assumed 0.1 TFLOP/s per
thread (AVX2: 2 FMA units x 8 fp32 lanes x 2 FLOPs x ~3 GHz). Pass ``--peak-tflops`` to use
the true figure of your hardware.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import hashlib
import importlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
from tqdm.auto import tqdm

from .data import (
    RandomWindows,
    TokenDataset,
    Tokenizer,
    get_batch,
    load_token_dataset,
    load_tokenizer,
    prepare_babistories,
    prepare_stories,
)

__all__ = [
    "MODEL_KINDS",
    "PRESETS",
    "CheckpointError",
    "LiveLossPlot",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "build_model",
    "count_params",
    "flops_per_token",
    "generate",
    "get_batch",
    "load_checkpoint",
    "load_model",
    "lr_at",
    "main",
    "padded_vocab_size",
    "param_groups",
    "peak_flops",
    "prepare_data",
    "save_checkpoint",
    "train",
]

# model kind -> (module, model class, config class). The config class has ``preset(name)``.
MODEL_KINDS: dict[str, tuple[str, str, str]] = {
    "mosaic": ("mosaics_edu.models", "MemoryMosaicLM", "MosaicConfig"),
    "gpt": ("mosaics_edu.models", "GPT", "GPTConfig"),
}

CHECKPOINT_FORMAT = "mosaics_edu.checkpoint"

# --------------------------------------------------------------------------------------------
# Pure pieces: the schedule and the parameter groups (chapter 05 exercises)
# --------------------------------------------------------------------------------------------


def lr_at(step: int, max_lr: float, min_lr: float, warmup_steps: int, max_steps: int) -> float:
    """Learning rate for optimizer step ``step`` (0-based): linear warm-up, then cosine decay.

    - ``step < warmup_steps``: ``max_lr * (step + 1) / warmup_steps`` (reaches max_lr on the last
      warm-up step);
    - ``warmup_steps <= step <= max_steps``: ``min_lr + (max_lr - min_lr) * (1 + cos(pi p)) / 2``
      with ``p = (step - warmup_steps) / (max_steps - warmup_steps)`` going from 0 to 1;
    - after ``max_steps``: ``min_lr``.
    """
    if not isinstance(step, (int, np.integer)) or step < 0:
        raise ValueError(f"step must be a non-negative int, got {step!r}")
    if not 0 <= min_lr <= max_lr:
        raise ValueError(f"need 0 <= min_lr <= max_lr, got min_lr={min_lr}, max_lr={max_lr}")
    if not 0 <= warmup_steps <= max_steps or max_steps < 1:
        raise ValueError(
            f"need 0 <= warmup_steps <= max_steps and max_steps >= 1, got "
            f"warmup_steps={warmup_steps}, max_steps={max_steps}"
        )
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step >= max_steps or max_steps == warmup_steps:
        return min_lr
    progress = (step - warmup_steps) / (max_steps - warmup_steps)  # in [0, 1)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (max_lr - min_lr)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups: tensors with ≥ 2 dims (matrices, embeddings, memory tables) decay;
    vectors and scalars (norm gains, biases, leak/bandwidth parameters) do not.

    Shrinking a gain, a leak rate or a bandwidth toward 0 would change what the layer computes,
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


def count_params(model: nn.Module) -> int:
    """Number of distinct parameters (a tied embedding/output matrix counts once)."""
    return sum(p.numel() for p in model.parameters())


def flops_per_token(n_params: int, n_layer: int, n_embd: int, block_size: int) -> float:
    """Training FLOPs per token: ``6 N + 12 L d T`` (see the module docstring)."""
    return 6.0 * n_params + 12.0 * n_layer * n_embd * block_size


# Dense bf16/fp16 tensor-core peaks (TFLOP/s), vendors' data sheets, without sparsity.
PEAK_TFLOPS = {
    "H200": 989.0,
    "H100": 989.0,  # SXM; the PCIe card is ~756
    "A100": 312.0,
    "A10": 125.0,
    "L40": 181.0,
    "L4": 121.0,
    "V100": 125.0,
    "T4": 65.0,
    "4090": 165.0,
    "3090": 71.0,
}
CPU_TFLOPS_PER_THREAD = 0.1


def peak_flops(device: torch.device | str, dtype: torch.dtype = torch.bfloat16) -> float:
    """Assumed peak FLOP/s of ``device`` for ``dtype`` (see ``PEAK_TFLOPS``)."""
    device = torch.device(device)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        tflops = next((v for k, v in PEAK_TFLOPS.items() if k in name), 100.0)
        if dtype == torch.float32:
            tflops /= 2  # TF32 tensor cores
        return tflops * 1e12
    return CPU_TFLOPS_PER_THREAD * 1e12 * torch.get_num_threads()


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

    def validate(self) -> None:
        positive = ("batch_size", "grad_accum", "max_steps", "eval_interval", "eval_batches",
                    "log_interval")  # fmt: skip
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
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
    # The papers' recipe (DESIGN.md §3): BabiStories with GPT-2 tokens, global batch 512 x 512
    # tokens (8 per GPU x 64 GPUs in the paper; here batch_size x grad_accum, split over GPUs).
    "paper-gpt2-small": dict(
        data="babistories", tokenizer="gpt2", batch_size=16, grad_accum=32, max_steps=80_000,
        lr=5e-3, min_lr=1e-4, warmup_steps=2000, weight_decay=0.1, beta1=0.9, beta2=0.95,
        grad_clip=1.0, eval_interval=2000, eval_batches=10, log_interval=100, compile=True,
    ),
}  # fmt: skip


# --------------------------------------------------------------------------------------------
# Models and data
# --------------------------------------------------------------------------------------------


def _model_classes(kind: str) -> tuple[type, type]:
    if kind not in MODEL_KINDS:
        raise ValueError(f"model must be one of {sorted(MODEL_KINDS)}, got {kind!r}")
    module_name, model_name, config_name = MODEL_KINDS[kind]
    module = importlib.import_module(module_name)
    return getattr(module, model_name), getattr(module, config_name)


def padded_vocab_size(n: int, multiple: int = 64) -> int:
    """Round the vocabulary up to a multiple of 64 (GPT-2's 50257 -> 50304, as in the papers):
    faster matmuls, and the extra rows are never targets."""
    return ((n + multiple - 1) // multiple) * multiple


def build_model(
    kind: str, preset: str, vocab_size: int | None = None, **overrides: Any
) -> tuple[nn.Module, Any]:
    """``(model, config)`` for ``kind`` ("mosaic" or "gpt") from the model preset ``preset``,
    with ``vocab_size`` and any config field replaced (e.g. ``n_layer=1``)."""
    model_cls, config_cls = _model_classes(kind)
    if vocab_size is not None:
        overrides = {"vocab_size": int(vocab_size), **overrides}
    # the config class validates the fields and derives dependent ones (e.g. pmem_size = 3.5 d)
    config = config_cls.preset(preset, **overrides)
    return model_cls(config), config


def _block_size(config: Any) -> int:
    for name in ("block_size", "context_length", "max_seq_len"):
        if hasattr(config, name):
            return int(getattr(config, name))
    raise ValueError(f"{type(config).__name__} has no block_size: cannot cut training windows")


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
# Checkpoints
# --------------------------------------------------------------------------------------------


class CheckpointError(ValueError):
    """A checkpoint file is missing, truncated, corrupt or not one of ours."""


def _digest(obj: Any, h: Any = None) -> str:
    """SHA-256 over a nested structure of tensors and primitives (detects silent corruption,
    which torch's zip container does not)."""
    top = h is None
    h = h or hashlib.sha256()
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(obj, dict):
        h.update(b"D")
        for key in sorted(obj, key=str):
            h.update(repr(key).encode())
            _digest(obj[key], h)
    elif isinstance(obj, (list, tuple)):
        h.update(f"L{len(obj)}".encode())
        for item in obj:
            _digest(item, h)
    else:
        h.update(repr(obj).encode())
    return h.hexdigest() if top else ""


def save_checkpoint(state: dict, path: str | os.PathLike) -> None:
    """Write ``state`` (tensors and primitive containers only) atomically: a temporary file in
    the same folder, flushed and fsync'ed, then ``os.replace`` — a crash leaves the old file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {**state, "format": CHECKPOINT_FORMAT, "version": 1}
    payload.pop("digest", None)
    payload["digest"] = _digest(payload)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(payload, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    with contextlib.suppress(OSError):  # make the rename itself durable (POSIX)
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


_REQUIRED_KEYS = ("model", "model_kind", "model_config", "train_config", "step")


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Read and verify a checkpoint with ``torch.load(weights_only=True)``.

    Raises ``CheckpointError`` with what to do if the file is missing, truncated, corrupt
    (its digest does not match) or not a mosaics_edu checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"no checkpoint at {path}: train without --resume first, or point --resume at a "
            "checkpoint file or a run folder that holds ckpt.pt"
        )
    advice = (
        "delete it and resume from an earlier checkpoint, or start afresh without --resume"
    )
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # truncated zip, garbage bytes, unpickling refused ...
        raise CheckpointError(
            f"checkpoint {path} cannot be read ({type(err).__name__}: {str(err)[:160]}); it is "
            f"corrupt or truncated: {advice}"
        ) from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a mosaics_edu training checkpoint: {advice}")
    missing = [k for k in _REQUIRED_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {missing}: {advice}")
    stored = state.pop("digest", None)
    if stored != _digest(state):
        raise CheckpointError(
            f"checkpoint {path} is corrupt (its content digest does not match): {advice}"
        )
    return state


def load_model(
    path: str | os.PathLike, device: str | torch.device = "cpu"
) -> tuple[nn.Module, Tokenizer | None, dict]:
    """Rebuild the trained model (eval mode) and its tokenizer from a checkpoint file."""
    ckpt = load_checkpoint(path)
    model_cls, config_cls = _model_classes(ckpt["model_kind"])
    model = model_cls(config_cls(**ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    model.to(device).eval()
    tok = load_tokenizer(ckpt["tokenizer"]) if ckpt.get("tokenizer") else None
    return model, tok, ckpt


# --------------------------------------------------------------------------------------------
# Callbacks: a live loss plot for notebooks
# --------------------------------------------------------------------------------------------


class LiveLossPlot:
    """A callback that redraws train/validation loss curves in a notebook as training runs.

    ``train(config, callbacks=[LiveLossPlot()])``. Outside IPython it only records the curves;
    ``figure()`` draws them at any time.
    """

    def __init__(self, title: str = "", every_eval: bool = True):
        self.title = title
        self.every_eval = every_eval
        self.train: list[tuple[int, float]] = []
        self.evals: list[tuple[int, float, float]] = []
        self._handle = None

    def __call__(self, event: dict) -> None:
        if event["kind"] == "train":
            self.train.append((event["step"], event["loss"]))
        elif event["kind"] == "eval":
            self.evals.append((event["step"], event["train_loss"], event["val_loss"]))
            if self.every_eval:
                self._show()

    def figure(self):
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 3.5))
        if self.train:
            s, v = zip(*self.train, strict=True)
            ax.plot(s, v, color="0.7", lw=1, label="train (batch)")
        if self.evals:
            s, tr, va = zip(*self.evals, strict=True)
            ax.plot(s, tr, "o-", label="train (eval)")
            ax.plot(s, va, "o-", label="validation")
        ax.set_xlabel("step")
        ax.set_ylabel("loss (nats/token)")
        ax.set_title(self.title)
        ax.legend()
        fig.tight_layout()
        return fig

    def _show(self) -> None:
        try:
            from IPython import get_ipython
            from IPython.display import display
        except ImportError:
            return
        if get_ipython() is None:
            return
        import matplotlib.pyplot as plt

        fig = self.figure()
        if self._handle is None:
            self._handle = display(fig, display_id=True)
        else:
            self._handle.update(fig)
        plt.close(fig)


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
        from .env import best_device

        name = best_device()
    return torch.device(name)


def _resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


class Trainer:
    """Owns the model, optimizer, sampler and schedule of one run; see the module docstring.

    ``model`` must implement ``forward(idx, targets) -> (logits, loss)``. ``model_kind`` and
    ``model_config`` (a dataclass) are stored in checkpoints so ``load_model`` can rebuild it.
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
        self.block_size = _block_size(self.model_config)
        self.n_params = count_params(self.raw_model)
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

        self.sampler = RandomWindows(
            data.train, config.batch_size, self.block_size,
            seed=config.seed * 7919 + 104_729 * (self.rank + 1), device=self.device,
        )  # fmt: skip
        self.step = 0
        self.history: list[dict] = []
        self.tokens_per_step = config.batch_size * self.block_size * self.accum * self.world
        n_layer = int(getattr(self.model_config, "n_layer", 1))
        n_embd = int(getattr(self.model_config, "n_embd", 0))
        self.flops_per_step = self.tokens_per_step * flops_per_token(
            self.n_params, n_layer, n_embd, self.block_size
        )
        per_process = (
            config.peak_tflops * 1e12 if config.peak_tflops else peak_flops(self.device, self.dtype)
        )
        self.peak = per_process * self.world  # tokens/s counts every process's tokens
        self.out_dir = Path(config.out_dir) if config.out_dir else None
        self._train_time = 0.0  # seconds spent in train steps (for tokens/s)
        self._train_tokens = 0

    # -- one optimizer step -------------------------------------------------------------------
    def train_step(self) -> dict:
        """One optimizer step at ``self.step``; returns loss, lr and gradient norm."""
        cfg = self.config
        lr = lr_at(self.step, cfg.lr, cfg.min_lr, cfg.warmup_steps, cfg.max_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.model.train()
        total = 0.0
        for micro in range(self.accum):
            x, y = self.sampler.next_batch()  # (B, T), (B, T)
            sync = (not self.ddp) or micro == self.accum - 1
            ctx = contextlib.nullcontext() if sync else self.model.no_sync()
            with ctx:
                with self.autocast:
                    _, loss = self.model(x, y)
                self.scaler.scale(loss / self.accum).backward()
            total += float(loss.detach()) / self.accum
        if not math.isfinite(total):
            raise FloatingPointError(
                f"loss is {total} at step {self.step}: lower the learning rate (lr={cfg.lr}) "
                "or use bfloat16 instead of float16"
            )
        grad_norm = float("nan")
        if cfg.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            grad_norm = float(
                torch.nn.utils.clip_grad_norm_(self.raw_model.parameters(), cfg.grad_clip)
            )
        self.scaler.step(self.optimizer)
        self.scaler.update()
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
        every evaluation, so the curve's wiggles are the model's, not the sample's)."""
        self.model.eval()
        out = {}
        for split, tokens in (("train", self.data.train), ("val", self.data.valid)):
            g = torch.Generator().manual_seed(1234 + self.rank)
            block = min(self.block_size, len(tokens) - 1)
            losses = []
            for _ in range(self.config.eval_batches):
                x, y = get_batch(tokens, self.config.batch_size, block, g, self.device)
                with self.autocast:
                    _, loss = self.raw_model(x, y)
                losses.append(float(loss))
            value = torch.tensor(sum(losses) / len(losses), device=self.device)
            if self.ddp:
                dist.all_reduce(value)
                value = value / self.world
            out[f"{split}_loss"] = float(value)
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
        if len(samplers) != self.world and self.master:
            print(
                f"note: checkpoint was written by {len(samplers)} process(es), this run has "
                f"{self.world}: batches will differ from an uninterrupted run",
                file=sys.stderr,
            )
        if self.rank < len(samplers):
            self.sampler.load_state_dict(samplers[self.rank])
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
            t0 = time.perf_counter()
            info = self.train_step()
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            dt = time.perf_counter() - t0
            window_time += dt
            window_tokens += self.tokens_per_step
            self._train_time += dt
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
            "mfu": tps / self.tokens_per_step * self.flops_per_step / self.peak,
            "flops_per_token": self.flops_per_step / self.tokens_per_step,
            "peak_flops": self.peak,
            "device": str(self.device),
            "dtype": str(self.dtype).removeprefix("torch."),
            "world_size": self.world,
            "backend": dist.get_backend() if self.ddp else None,
            "compiled": self.compiled,
        }


# --------------------------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------------------------


@torch.no_grad()
def generate(
    model: nn.Module,
    tokenizer: Tokenizer,
    prompt: str,
    max_new_tokens: int = 200,
    temperature: float = 0.8,
    top_k: int | None = 20,
    seed: int = 0,
) -> str:
    """Continue ``prompt`` by sampling (full recomputation over the last ``block_size`` tokens)."""
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    model.eval()
    device = next(model.parameters()).device
    block = _block_size(model.config)
    g = torch.Generator(device=device).manual_seed(seed)
    ids = tokenizer.encode(prompt) or [0]
    idx = torch.tensor([ids], device=device)  # (1, t)
    for _ in range(max_new_tokens):
        logits, _ = model(idx[:, -block:])  # (1, t, V)
        logits = logits[:, -1, : tokenizer.vocab_size] / temperature  # (1, V)
        if top_k is not None:
            kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        nxt = torch.multinomial(torch.softmax(logits.float(), dim=-1), 1, generator=g)  # (1, 1)
        idx = torch.cat([idx, nxt], dim=1)
    return tokenizer.decode(idx[0, len(ids) :].tolist()) if ids else ""


# --------------------------------------------------------------------------------------------
# One call: train(config)
# --------------------------------------------------------------------------------------------


def _init_distributed(config: TrainConfig, backend: str | None) -> bool:
    """Start the process group when launched by torchrun (it sets RANK, even for 1 process)."""
    if "RANK" not in os.environ or dist.is_initialized():
        return False
    if backend is None:
        use_cuda = torch.cuda.is_available() and not config.device.startswith("cpu")
        backend = "nccl" if use_cuda else "gloo"
    dist.init_process_group(backend=backend)
    return True


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
    data = data if data is not None else prepare_data(config)
    torch.manual_seed(config.seed)
    model, model_config = build_model(
        config.model, config.preset, padded_vocab_size(data.vocab_size), **config.model_overrides
    )
    trainer = Trainer(
        model, data, config, callbacks, model_kind=config.model, model_config=model_config,
        progress=progress,
    )  # fmt: skip
    if resume is not None:
        trainer.resume(resume)
    result = trainer.fit(until=until)
    if until is not None and trainer.step < config.max_steps:
        if trainer.out_dir is not None:
            trainer.save()  # a clean stop: keep the exact state to resume from
        return result
    if trainer.master and trainer.out_dir is not None:
        summary_path = trainer.out_dir / "summary.json"
        summary_path.write_text(json.dumps(result.summary, indent=1))
    return result


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


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
    return p


def main(argv: list[str] | None = None) -> dict:
    """The command line: parse, train (or resume), print parameters, tokens/s and MFU."""
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
    model_overrides = {
        k: v for k in ("n_layer", "n_head", "n_embd", "block_size", "dropout", "pmem_size")
        if (v := getattr(args, k)) is not None
    }  # fmt: skip
    if "pmem_size" in model_overrides and args.model != "mosaic":
        raise SystemExit("--pmem-size applies to --model mosaic only (a GPT has no persistent memory)")
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
    ddp = _init_distributed(config, args.backend)
    try:
        return _run_cli(config, args, ddp)
    except (ValueError, RuntimeError, ImportError) as err:  # clear messages, no traceback
        raise SystemExit(f"error: {err}") from None
    finally:
        if ddp and dist.is_initialized():
            dist.destroy_process_group()


def _run_cli(config: TrainConfig, args: argparse.Namespace, ddp: bool) -> dict:
    """Train (or resume) as the command line asked and print the numbers that matter."""
    resume = Path(config.out_dir) / "ckpt.pt" if args.resume else None
    master = not ddp or dist.get_rank() == 0
    if master:
        what = f"resuming {resume}" if resume else f"training {config.model} / {config.preset}"
        print(f"{what} -> {config.out_dir}", flush=True)
    result = train(config, resume=resume, progress=not args.no_progress, until=args.stop_after)
    s = result.summary
    if master:
        print(
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


if __name__ == "__main__":
    main()
