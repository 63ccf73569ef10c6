"""Train one model on RegBench-mini, resumably, and write its scores as JSON.

One *run* = one model (``mosaic``, ``gpt`` or ``lstm``, sizes matched by
:func:`~mosaics_edu.course.regbench.matched.matched_configs`) trained on the N = ``n_automata`` training
samples of ``seed`` (the seed also draws the initial weights and the batch order). Every model
gets the same recipe: ``steps`` AdamW steps at batch ``batch_size``, linear warm-up for
``warmup`` steps then cosine decay to ``min_lr_ratio · lr``, weight decay on matrices only,
gradient clipping. Each step is :func:`~mosaics_edu.training.step.optimizer_step`, the step every
training loop of the course takes, and the schedule is :func:`~mosaics_edu.training.schedule.lr_at`
(:func:`learning_rate` binds it to a config): what is RegBench's own is the batch source
(:func:`batch_indices`) and the model. At the end it is scored on the validation and test automata
(:func:`~mosaics_edu.course.regbench.metrics.evaluate`), and ``result.json`` is written. ``sizes``
picks the sample sizes of the training, validation and test samples alike (``"cpu"``:
:data:`~mosaics_edu.course.regbench.datasets.CPU_SIZES`, ≈ 86 tokens; ``"paper"``:
:data:`~mosaics_edu.course.regbench.datasets.PAPER_SIZES`, ≈ 374 tokens); the GPT's position table, and
so the parameter budget the mosaic is matched to, follows the longest sample.

Best-validation checkpoint: with ``eval_every`` set, the model is scored on the validation
automata (the first ``min(200, n_eval)`` of
:func:`~mosaics_edu.course.regbench.datasets.validation_automata`, disjoint by canonical form from the
test and every training set) every ``eval_every`` steps and at the last step. The weights with the
lowest validation TVD so far are kept (the earliest on a tie), in memory and in the checkpoint.
``result.json`` then also holds ``validation_log`` (step, accuracy, TVD of every evaluation),
``best_step``, ``validation_best``, ``test_best`` (the test scores of the kept weights) and
``test_last`` (equal to ``test``, which always means the last step); the kept weights are written
as ``model_best_fp16.pt`` beside ``model_fp16.pt``. (The benchmark kept the checkpoint with the
lowest validation *loss*; TVD is the score the sweep chose its learning rates on.) With the
defaults (no ``eval_every``, ``sizes="cpu"``) a run is exactly what it was before these fields
existed: the same config dict in its files, the same result.

Resuming: every ``checkpoint_every`` steps the model, optimiser and step are saved, with the
validation log and the kept weights of a run with ``eval_every`` (``checkpoint.pt``, in the
package's checkpoint format of :mod:`mosaics_edu.training.checkpoint`: written atomically, read
back only if its digest matches). Calling :func:`train_run` again with the same
configuration and folder continues from there and gives the same result as an uninterrupted
run: the batch of step s is a function of (seed, s) only. A folder that holds a finished
``result.json`` is not retrained. A different configuration in the same folder is refused.

Command line: ``python -m mosaics_edu.regbench train --model mosaic --n-automata 100 --seed 0``.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ...core.atomic import atomic_path
from ...core.validation import check_positive_int
from ...models.lm import GPTConfig
from ...training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ...training.schedule import lr_at
from ...training.step import optimizer_step
from ...training.trainer import param_groups
from .datasets import (
    CPU_SIZES,
    N_TEST,
    N_VALIDATION,
    PAPER_SIZES,
    Sample,
    SampleSizes,
    draw_samples,
    make_batch,
    test_automata,
    training_set,
    validation_automata,
)
from .lstm import LSTMConfig
from .matched import MODEL_NAMES, build_model, matched_configs, parameter_count
from .metrics import Scores, evaluate, evaluate_samples
from .vocab import VOCAB_SIZE

__all__ = [
    "RunConfig", "train_run", "batch_indices", "learning_rate", "default_run_dir", "load_run_model",
    "LOG_EVERY", "SAMPLE_SIZES",
]  # fmt: skip

_CHECKPOINT, _RESULT, _WEIGHTS = "checkpoint.pt", "result.json", "model_fp16.pt"
_BEST_WEIGHTS = "model_best_fp16.pt"  # the best-validation weights of a run with eval_every
#: RunConfig.sizes -> the sample sizes of every sample of the run (training, validation, test)
SAMPLE_SIZES: dict[str, SampleSizes] = {"cpu": CPU_SIZES, "paper": PAPER_SIZES}
# fields added after runs were shipped: left out of to_dict() at these values, so the files of
# every earlier run (result.json, checkpoint.pt) still match their config
_OPTIONAL_DEFAULTS: dict[str, Any] = {"eval_every": None, "sizes": "cpu"}
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
    eval_every: int | None = None  # score on validation every so many steps, keep the best weights
    sizes: str = "cpu"  # the sample sizes, a key of SAMPLE_SIZES: "cpu" (≈ 86 tokens) or "paper"

    def __post_init__(self) -> None:
        if self.model not in MODEL_NAMES:
            raise ValueError(f"model must be one of {MODEL_NAMES}, got {self.model!r}")
        for name in ("n_automata", "steps", "batch_size", "checkpoint_every", "n_eval"):
            check_positive_int(name, getattr(self, name))
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
        v = self.eval_every
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
            raise ValueError(
                f"eval_every must be None (no periodic evaluation) or a positive integer, got {v!r}"
            )
        if not isinstance(self.sizes, str) or self.sizes not in SAMPLE_SIZES:
            raise ValueError(f"sizes must be one of {tuple(SAMPLE_SIZES)}, got {self.sizes!r}")
        # the model sizes are checked now, not at step 0 (cheap: no model is built)
        GPTConfig(vocab_size=VOCAB_SIZE, n_layer=self.n_layer, n_head=self.n_head, n_embd=self.n_embd,
                  dropout=self.dropout)  # fmt: skip
        LSTMConfig(n_layer=self.lstm_layers, dropout=self.dropout)

    @property
    def sample_sizes(self) -> SampleSizes:
        """The :class:`~mosaics_edu.course.regbench.datasets.SampleSizes` that ``sizes`` names."""
        return SAMPLE_SIZES[self.sizes]

    def _model_kwargs(self) -> dict[str, Any]:
        return dict(
            n_embd=self.n_embd, n_layer=self.n_layer, n_head=self.n_head, lstm_layers=self.lstm_layers,
            dropout=self.dropout, sizes=self.sample_sizes,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """Every field, except ``eval_every`` and ``sizes`` at their defaults (None, ``"cpu"``): the
        dict of a run that does not use them is the one written before they existed."""
        d = asdict(self)
        return {k: v for k, v in d.items() if k not in _OPTIONAL_DEFAULTS or v != _OPTIONAL_DEFAULTS[k]}

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
    """Linear warm-up over ``warmup`` steps, then cosine from ``lr`` down to ``min_lr_ratio · lr``,
    reached on the run's last step (0-based ``steps - 1``): the trainer's schedule
    :func:`~mosaics_edu.training.schedule.lr_at` with ``max_steps = steps - 1``."""
    floor = config.min_lr_ratio * config.lr
    return lr_at(step, config.lr, floor, config.warmup, max(config.steps - 1, config.warmup))


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
    """Read and verify ``checkpoint.pt`` (the package's checkpoint format: format tag, digest);
    refuse one written by another configuration."""
    try:
        state = load_checkpoint(path)
    except CheckpointError as err:  # unreadable, corrupt, or written in an older format
        raise CheckpointError(f"{err}. For a RegBench run: delete {path} to restart the run "
                              "(its finished steps are lost, its settings are not)") from None
    if {"optimizer", "elapsed", "last_loss", "torch_rng"} - set(state):
        raise ValueError(f"{path} is not a RegBench checkpoint: delete it to restart the run")
    if state["train_config"] != config.to_dict():
        raise ValueError(
            f"{path} belongs to another configuration ({state['train_config']}); use another folder for "
            "this run, or delete the folder to restart"
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
    scores (accuracy, TVD), wall time and versions; with ``config.eval_every``, also the
    validation log and the best-validation step with its validation and test scores (module
    docstring).
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

    sizes = config.sample_sizes
    data = training_set(config.n_automata, config.seed, sizes)
    model = build_model(config.model, seed=config.seed, **config._model_kwargs())
    opt = _optimizer(model, config)
    step, elapsed, last_loss = 0, 0.0, float("nan")
    loss_log: list[list[float]] = []  # [step, mean training loss of the LOG_EVERY steps up to it]
    window: list[float] = []
    val = validation_automata()[: min(N_VALIDATION, config.n_eval)]
    tracker = _BestTracker(draw_samples(val, sizes=sizes)) if config.eval_every is not None else None
    if ckpt_path.is_file():
        state = _load_checkpoint(ckpt_path, config)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step, elapsed, last_loss = int(state["step"]), float(state["elapsed"]), float(state["last_loss"])
        loss_log, window = list(state.get("loss_log", [])), list(state.get("loss_window", []))
        torch.set_rng_state(state["torch_rng"])  # dropout masks continue as they would have
        if tracker is not None:
            tracker.load_state(state)

    def save() -> None:  # the package's checkpoint format (atomic, with a digest)
        save_checkpoint(
            {
                "model": model.state_dict(), "model_kind": config.model,
                "model_config": asdict(model.config), "train_config": config.to_dict(), "step": step,
                "elapsed": elapsed, "last_loss": last_loss, "loss_log": loss_log, "loss_window": window,
                "optimizer": opt.state_dict(), "torch_rng": torch.get_rng_state(),
                **(tracker.state() if tracker is not None else {}),
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
        _, loss = model(x, y)  # mean cross-entropy over the scored targets (separators masked)
        lr = learning_rate(step, config)
        last_loss = optimizer_step(model, opt, loss, lr=lr, grad_clip=config.grad_clip)
        step += 1
        window.append(last_loss)
        if step % LOG_EVERY == 0:
            loss_log.append([step, sum(window) / len(window)])
            window = []
        bar.update(1)
        bar.set_postfix(loss=f"{last_loss:.3f}")
        if tracker is not None and (step % config.eval_every == 0 or step == config.steps):
            t0 += tracker.evaluate(model, step)  # the evaluations' time is not training time
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
    result = {
        "config": config.to_dict(),
        "parameters": parameter_count(matched_configs(**config._model_kwargs())[config.model]),
        "train_loss_last_step": last_loss,
        "loss_log": loss_log,
        "validation_loss": _mean_loss(model, draw_samples(val, sizes=sizes)),  # the samples evaluate() scores
        "validation": evaluate(model, val, sizes=sizes).to_dict(),
        "test": evaluate(model, test, sizes=sizes).to_dict(),
        "train_seconds": round(elapsed, 1),
        "eval_seconds": None,
        "threads": torch.get_num_threads(),
        "versions": {
            "torch": torch.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
    }
    if tracker is not None:
        best_step, best_weights = tracker.best_step, tracker.best_weights
        if best_step == step:  # the last weights are the best: their test scores are known
            test_best = result["test"]
        else:
            best_model = build_model(config.model, seed=config.seed, **config._model_kwargs())
            best_model.load_state_dict(best_weights)
            test_best = evaluate(best_model, test, sizes=sizes).to_dict()
        result |= {
            "test_last": result["test"], "test_best": test_best, "best_step": best_step,
            "validation_best": tracker.best_scores, "validation_log": tracker.log,
            "validation_seconds": round(tracker.seconds, 1),
        }  # fmt: skip
        _atomic_save(_half(best_weights), out / _BEST_WEIGHTS)
    result["eval_seconds"] = round(time.perf_counter() - t_eval, 1)
    # the trained weights in half precision (small enough to ship; load with load_run_model)
    _atomic_save(_half(model.state_dict()), out / _WEIGHTS)
    _atomic_save(result, result_path, as_json=True)
    return result


def _half(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.half() if v.is_floating_point() else v for k, v in state.items()}


class _BestTracker:
    """The periodic validation of a run with ``eval_every``: every score it took, and the weights
    with the lowest validation TVD so far (the earliest of equals), as a copy.

    ``samples`` are the validation samples, drawn once; scoring them is what
    :func:`~mosaics_edu.course.regbench.metrics.evaluate` does on the same automata and sizes.
    """

    def __init__(self, samples: list[Sample]) -> None:
        self.samples = samples
        self.log: list[list[float]] = []  # [step, accuracy, tvd] of every evaluation
        self.best_step: int | None = None
        self.best_scores: dict[str, Any] | None = None
        self.best_weights: dict[str, torch.Tensor] | None = None
        self.seconds = 0.0

    def evaluate(self, model: torch.nn.Module, step: int) -> float:
        """Score ``model`` (trained for ``step`` steps); keep its weights if best. Returns the time."""
        t = time.perf_counter()
        scores: Scores = evaluate_samples(model, self.samples)
        self.log.append([step, scores.accuracy, scores.tvd])
        if self.best_scores is None or scores.tvd < self.best_scores["tvd"]:
            self.best_step, self.best_scores = step, scores.to_dict()
            self.best_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
        dt = time.perf_counter() - t
        self.seconds += dt
        return dt

    def state(self) -> dict[str, Any]:
        """What the checkpoint holds of it (read back by :meth:`load_state`)."""
        return {
            "validation_log": self.log, "best_step": self.best_step, "best_scores": self.best_scores,
            "best_model": self.best_weights, "validation_seconds": self.seconds,
        }  # fmt: skip

    def load_state(self, state: dict[str, Any]) -> None:
        if "validation_log" not in state:
            raise ValueError("the checkpoint has no validation record: delete it to restart the run")
        self.log = [list(row) for row in state["validation_log"]]
        self.best_step, self.best_scores = state["best_step"], state["best_scores"]
        self.best_weights, self.seconds = state["best_model"], float(state["validation_seconds"])


def load_run_model(run_dir: str | os.PathLike[str], best: bool = False) -> torch.nn.Module:
    """The trained model of a finished run folder (its ``result.json`` and ``model_fp16.pt``), in
    float32 and eval mode: the half-precision weights a run writes, loaded into today's code.
    ``best=True``: the best-validation weights instead (``model_best_fp16.pt``, written by a run
    with ``eval_every``)."""
    run = Path(run_dir)
    result_path, weights_path = run / _RESULT, run / (_BEST_WEIGHTS if best else _WEIGHTS)
    for path in (result_path, weights_path):
        if not path.is_file():
            hint = " (a run with eval_every writes it)" if best and path == weights_path else ""
            raise FileNotFoundError(
                f"run_dir {run} lacks {path.name}{hint}: finish the run with train_run first"
            )
    config = RunConfig.from_dict(json.loads(result_path.read_text(encoding="utf-8"))["config"])
    model = build_model(config.model, seed=config.seed, **config._model_kwargs())
    state = torch.load(weights_path, map_location="cpu", weights_only=True)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return model.eval()
