"""Train one model on RegBench-mini, resumably, and write its scores as JSON.

One *run* = one model (``mosaic``, ``gpt`` or ``lstm``, sizes matched by
:func:`~mosaics_edu.regbench.matched.matched_configs`) trained on the N = ``n_automata`` training
samples of ``seed`` (the seed also draws the initial weights and the batch order). Every model
gets the same recipe: ``steps`` AdamW steps at batch ``batch_size``, linear warm-up for
``warmup`` steps then cosine decay to ``min_lr_ratio · lr``, weight decay on matrices only,
gradient clipping. At the end it is scored on the validation and test automata
(:func:`~mosaics_edu.regbench.metrics.evaluate`), and ``result.json`` is written.

Resuming: every ``checkpoint_every`` steps the model, optimiser and step are saved
(``checkpoint.pt``, written atomically). Calling :func:`train_run` again with the same
configuration and folder continues from there and gives the same result as an uninterrupted
run: the batch of step s is a function of (seed, s) only. A folder that holds a finished
``result.json`` is not retrained. A different configuration in the same folder is refused.

Command line: ``python -m mosaics_edu.regbench train --model mosaic --n-automata 100 --seed 0``.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..atomic import atomic_path
from ..models import GPTConfig
from ..train import param_groups
from .datasets import (
    N_TEST,
    N_VALIDATION,
    Sample,
    draw_samples,
    make_batch,
    test_automata,
    training_set,
    validation_automata,
)
from .lstm import LSTMConfig
from .matched import MODEL_NAMES, build_model, matched_configs, parameter_count
from .metrics import evaluate
from .vocab import VOCAB_SIZE

__all__ = [
    "RunConfig", "train_run", "batch_indices", "learning_rate", "default_run_dir", "load_run_model",
    "LOG_EVERY",
]  # fmt: skip

_CHECKPOINT, _RESULT, _WEIGHTS = "checkpoint.pt", "result.json", "model_fp16.pt"
LOG_EVERY = 50  # the result's loss_log holds the mean training loss of every LOG_EVERY steps
_ORDER_STREAM = 5  # np.random.default_rng((5, seed, epoch)): the batch order, separate from data streams


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run; two runs with equal configs give the same result (CPU)."""

    model: str
    n_automata: int
    seed: int = 0
    steps: int = 2000
    batch_size: int = 32
    lr: float = 2e-3
    warmup: int = 100
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    n_embd: int = 64
    n_layer: int = 2
    n_head: int = 4
    lstm_layers: int = 1
    dropout: float = 0.0
    checkpoint_every: int = 200
    n_eval: int = N_TEST  # how many test automata to score (all 500 unless a quick check)

    def __post_init__(self) -> None:
        if self.model not in MODEL_NAMES:
            raise ValueError(f"model must be one of {MODEL_NAMES}, got {self.model!r}")
        for name in ("n_automata", "steps", "batch_size", "checkpoint_every", "n_eval"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")
        if not isinstance(self.warmup, int) or not 0 <= self.warmup < self.steps:
            raise ValueError(f"warmup must be an integer in [0, steps), got {self.warmup!r}")
        for name in ("lr", "weight_decay", "grad_clip"):
            v = getattr(self, name)
            if not isinstance(v, float | int) or v < 0 or (name == "lr" and v == 0):
                raise ValueError(f"{name} must be a number >= 0 (lr > 0), got {v!r}")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"min_lr_ratio must lie in [0, 1], got {self.min_lr_ratio!r}")
        if self.n_eval > N_TEST:
            raise ValueError(f"n_eval must be at most the {N_TEST} test automata, got {self.n_eval}")
        # the model sizes are checked now, not at step 0 (cheap: no model is built)
        GPTConfig(vocab_size=VOCAB_SIZE, n_layer=self.n_layer, n_head=self.n_head, n_embd=self.n_embd,
                  dropout=self.dropout)  # fmt: skip
        LSTMConfig(n_layer=self.lstm_layers, dropout=self.dropout)

    def _model_kwargs(self) -> dict[str, Any]:
        return dict(
            n_embd=self.n_embd, n_layer=self.n_layer, n_head=self.n_head, lstm_layers=self.lstm_layers,
            dropout=self.dropout,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        known = {f.name for f in fields(cls)}
        if not isinstance(d, dict) or set(d) - known:
            raise ValueError(
                f"not a RunConfig: unknown fields {sorted(set(d) - known) if isinstance(d, dict) else d}"
            )
        return cls(**d)


def default_run_dir(config: RunConfig, root: str | os.PathLike[str] = "runs/regbench") -> Path:
    """``root/<model>_N<n_automata>_seed<seed>`` (add the learning rate when sweeping it)."""
    return Path(root) / f"{config.model}_N{config.n_automata}_seed{config.seed}"


def learning_rate(step: int, config: RunConfig) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine from ``lr`` down to ``min_lr_ratio · lr``."""
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    progress = (step - config.warmup) / max(1, config.steps - 1 - config.warmup)  # 0 -> 1
    floor = config.min_lr_ratio * config.lr
    return floor + 0.5 * (config.lr - floor) * (1 + math.cos(math.pi * min(1.0, progress)))


def batch_indices(step: int, n: int, batch_size: int, seed: int) -> list[int]:
    """The training samples of step ``step``: epochs of shuffled passes over the ``n`` samples,
    read ``batch_size`` at a time. A function of its arguments only, so a resumed run sees the
    batches an uninterrupted one would."""
    start = step * batch_size
    out = []
    for pos in range(start, start + batch_size):
        epoch, i = divmod(pos, n)
        out.append(int(_epoch_order(seed, epoch, n)[i]))
    return out


_order_cache: dict[tuple[int, int, int], np.ndarray] = {}


def _epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    key = (seed, epoch, n)
    if key not in _order_cache:
        if len(_order_cache) > 64:
            _order_cache.clear()
        _order_cache[key] = np.random.default_rng((_ORDER_STREAM, seed, epoch)).permutation(n)
    return _order_cache[key]


def _optimizer(model: torch.nn.Module, config: RunConfig) -> torch.optim.Optimizer:
    """AdamW with RegBench's betas (0.9, 0.999), weight decay on ≥ 2-D tensors only."""
    return torch.optim.AdamW(param_groups(model, config.weight_decay), lr=config.lr, betas=(0.9, 0.999))


def _atomic_save(obj: Any, path: Path, as_json: bool = False) -> None:
    with atomic_path(path) as tmp:  # readers see the old file or the new one, never half of one
        if as_json:
            tmp.write_text(json.dumps(obj, indent=1) + "\n", encoding="utf-8")
        else:
            torch.save(obj, tmp)


@torch.no_grad()
def _mean_loss(model: torch.nn.Module, samples: list[Sample], batch_size: int = 64) -> float:
    """Mean cross-entropy over all scored targets (separators masked) of ``samples``."""
    model.eval()
    total = count = 0.0
    for i in range(0, len(samples), batch_size):
        x, y = make_batch(samples[i : i + batch_size])
        _, loss = model(x, y)
        n = int((y != -1).sum())
        total, count = total + float(loss) * n, count + n
    model.train()
    return total / count


def _load_checkpoint(path: Path, config: RunConfig) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file
        raise ValueError(
            f"{path} is not a readable checkpoint ({err}): delete it to restart the run"
        ) from err
    if not isinstance(state, dict) or {"config", "step", "model", "optimizer"} - set(state):
        raise ValueError(f"{path} is not a RegBench checkpoint: delete it to restart the run")
    if state["config"] != config.to_dict():
        raise ValueError(
            f"{path} belongs to another configuration ({state['config']}); use another folder for this "
            "run, or delete the folder to restart"
        )
    return state


def train_run(
    config: RunConfig,
    out_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    stop_at: int | None = None,
) -> dict[str, Any] | None:
    """Train (or resume, or just read) the run ``config`` in ``out_dir``; return its result.

    ``stop_at``: checkpoint and return ``None`` once ``stop_at`` steps are done, as if the run
    had been interrupted (a later call resumes it). The result dict is also ``result.json``:
    the config, parameter count, final training and validation losses, validation and test
    scores (accuracy, TVD), wall time and versions.
    """
    if not isinstance(config, RunConfig):
        raise TypeError(f"config must be a RunConfig, got {type(config).__name__}")
    if stop_at is not None and (not isinstance(stop_at, int) or stop_at < 1):
        raise ValueError(f"stop_at must be None or a positive integer, got {stop_at!r}")
    out = Path(out_dir) if out_dir is not None else default_run_dir(config)
    out.mkdir(parents=True, exist_ok=True)
    result_path, ckpt_path = out / _RESULT, out / _CHECKPOINT
    if result_path.is_file():
        try:
            result = json.loads(result_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"{result_path} is not valid JSON ({err}): delete it to rescore") from err
        if not isinstance(result, dict) or result.get("config") != config.to_dict():
            raise ValueError(f"{result_path} holds another configuration: use another folder for this run")
        return result

    data = training_set(config.n_automata, config.seed)
    model = build_model(config.model, seed=config.seed, **config._model_kwargs())
    opt = _optimizer(model, config)
    step, elapsed, last_loss = 0, 0.0, float("nan")
    loss_log: list[list[float]] = []  # [step, mean training loss of the LOG_EVERY steps up to it]
    window: list[float] = []
    if ckpt_path.is_file():
        state = _load_checkpoint(ckpt_path, config)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step, elapsed, last_loss = int(state["step"]), float(state["elapsed"]), float(state["last_loss"])
        loss_log, window = list(state.get("loss_log", [])), list(state.get("loss_window", []))
        torch.set_rng_state(state["torch_rng"])  # dropout masks continue as they would have

    def save() -> None:
        _atomic_save(
            {
                "config": config.to_dict(), "step": step, "elapsed": elapsed, "last_loss": last_loss,
                "loss_log": loss_log, "loss_window": window, "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "torch_rng": torch.get_rng_state(),
            },
            ckpt_path,
        )  # fmt: skip

    model.train()
    bar = tqdm(
        total=config.steps, initial=step, disable=not progress, desc=f"{config.model} N={config.n_automata}"
    )
    t0 = time.perf_counter()
    while step < config.steps:
        x, y = make_batch([data[i] for i in batch_indices(step, len(data), config.batch_size, config.seed)])
        for group in opt.param_groups:
            group["lr"] = learning_rate(step, config)
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        opt.step()
        step, last_loss = step + 1, loss.item()
        window.append(last_loss)
        if step % LOG_EVERY == 0:
            loss_log.append([step, sum(window) / len(window)])
            window = []
        bar.update(1)
        bar.set_postfix(loss=f"{last_loss:.3f}")
        if step % config.checkpoint_every == 0 or step == config.steps or step == stop_at:
            elapsed += time.perf_counter() - t0
            t0 = time.perf_counter()
            save()
        if step == stop_at and step < config.steps:
            bar.close()
            return None
    bar.close()

    t_eval = time.perf_counter()
    test = test_automata()[: config.n_eval]
    val = validation_automata()[: min(N_VALIDATION, config.n_eval)]
    result = {
        "config": config.to_dict(),
        "parameters": parameter_count(matched_configs(**config._model_kwargs())[config.model]),
        "train_loss_last_step": last_loss,
        "loss_log": loss_log,
        "validation_loss": _mean_loss(model, draw_samples(val)),  # on the samples evaluate() scores
        "validation": evaluate(model, val).to_dict(),
        "test": evaluate(model, test).to_dict(),
        "train_seconds": round(elapsed, 1),
        "eval_seconds": None,
        "threads": torch.get_num_threads(),
        "versions": {
            "torch": torch.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
    }
    result["eval_seconds"] = round(time.perf_counter() - t_eval, 1)
    # the trained weights in half precision (small enough to ship; load with load_run_model)
    _atomic_save({k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()},
                 out / _WEIGHTS)  # fmt: skip
    _atomic_save(result, result_path, as_json=True)
    return result


def load_run_model(run_dir: str | os.PathLike[str]) -> torch.nn.Module:
    """The trained model of a finished run folder (its ``result.json`` and ``model_fp16.pt``), in
    float32 and eval mode: the half-precision weights a run writes, loaded into today's code."""
    run = Path(run_dir)
    result_path, weights_path = run / _RESULT, run / _WEIGHTS
    for path in (result_path, weights_path):
        if not path.is_file():
            raise FileNotFoundError(f"run_dir {run} lacks {path.name}: finish the run with train_run first")
    config = RunConfig.from_dict(json.loads(result_path.read_text(encoding="utf-8"))["config"])
    model = build_model(config.model, seed=config.seed, **config._model_kwargs())
    state = torch.load(weights_path, map_location="cpu", weights_only=True)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return model.eval()
