"""Three moons: the paper's training recipe, with snapshots for the "steamroller" picture.

Recipe (the official three-moons scripts): batches of 64 fresh random 800-step windows from the
training triples, AdamW(β₁ 0.9, β₂ 0.999, no weight decay), learning rate decayed linearly from
1e-2 to 5e-6 over 500 steps, loss = mean of the squared residual clipped to ±0.5, no gradient
clipping. At a few steps we record the per-position loss on a fixed batch of training windows and
the block magnitudes of the three maps, so that a chapter can replay training.

The loop is a recipe on the course's shared pieces: the schedule is
:func:`~mosaics_edu.training.schedule.linear_lr` (:func:`learning_rate` binds it to a config) and
each step is :func:`~mosaics_edu.training.step.optimizer_step`, the step every training loop of
the course takes; what is the moons' own is the batch source and the loss.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from ...training.schedule import linear_lr
from ...training.step import optimizer_step
from .data import TRAIN_TRIPLES, VARIANT_TRAIN_TRIPLES, sample_windows
from .evaluate import clipped_squared_error, is_clean_split, moon_shares, position_loss
from .model import BETA, MoonMemory, block_magnitudes
from .subnormal import flush_subnormals

__all__ = ["MoonsConfig", "train_moons", "SNAPSHOT_STEPS", "TASKS", "POOL"]

TASKS = {"standard": TRAIN_TRIPLES, "variant": VARIANT_TRAIN_TRIPLES}
SNAPSHOT_STEPS = (0, 5, 10, 20, 35, 50, 75, 100, 150, 200, 300, 400, 500)
POOL = 8  # per-position curves are stored as means over bins of 8 positions


@dataclass
class MoonsConfig:
    """Everything that defines a three-moons training run."""

    n_units: int = 3  # 3 units × 2 dims (mosaic) or 1 unit × 6 dims
    task: str = "standard"  # "standard" (the paper's triples) or "variant" (grouping costs context)
    seed: int = 0
    steps: int = 500
    batch_size: int = 64
    lr: float = 1e-2
    lr_final: float = 5e-6
    clip: float = 0.5
    beta: float = BETA  # β, the multiplier of k_t·k_s (fixed, not learned)
    snapshot_steps: tuple[int, ...] = field(default=SNAPSHOT_STEPS)

    def __post_init__(self) -> None:
        if self.n_units not in (1, 3):
            raise ValueError(f"MoonsConfig(n_units={self.n_units}): use 3 or 1.")
        if self.task not in TASKS:
            raise ValueError(f"MoonsConfig(task={self.task!r}): use one of {sorted(TASKS)}.")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("MoonsConfig: steps and batch_size must be ≥ 1.")
        if not (self.lr > 0 and self.lr_final > 0 and self.clip > 0 and self.beta > 0):
            raise ValueError("MoonsConfig: lr, lr_final, clip and beta must be > 0.")
        self.snapshot_steps = tuple(s for s in self.snapshot_steps if 0 <= s <= self.steps)

    @property
    def name(self) -> str:
        """File stem of this run, e.g. ``moons_standard_3u_seed0``."""
        return f"moons_{self.task}_{self.n_units}u_seed{self.seed}"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["snapshot_steps"] = list(self.snapshot_steps)
        return d


def learning_rate(step: int, config: MoonsConfig) -> float:
    """Linear decay from ``lr`` at step 0 to ``lr_final`` at the last step (``steps - 1``):
    :func:`~mosaics_edu.training.schedule.linear_lr` with this run's numbers."""
    return linear_lr(step, config.lr, config.lr_final, config.steps - 1)


def _pool(curve: np.ndarray) -> list[float]:
    n = len(curve) // POOL * POOL
    return [float(f"{v:.4g}") for v in curve[:n].reshape(-1, POOL).mean(1)]


def snapshot(model: MoonMemory, probe: torch.Tensor, step: int) -> dict:
    """What a chapter replays: per-position loss on ``probe`` (pooled) and the block maps."""
    maps = model.maps()
    shares = moon_shares(maps["phi"], model.n_units)
    return {
        "step": step,
        "position_loss": _pool(position_loss(model, probe)),
        "blocks": {k: block_magnitudes(w).round(decimals=4).tolist() for k, w in maps.items()},
        "shares": np.round(shares, 4).tolist(),
        "clean_split": is_clean_split(shares) if model.n_units == 3 else None,
    }


@flush_subnormals()
def train_moons(config: MoonsConfig, progress: bool = True) -> tuple[MoonMemory, dict]:
    """Train one model with the paper's recipe. Returns (model, history).

    history: ``loss`` (per step), ``snapshots`` (see :func:`snapshot`), ``seconds``.
    Deterministic on CPU for a given seed and thread count. Runs with subnormal numbers flushed
    to zero (:mod:`.subnormal`): once the keys are sharp, that makes each step 4–5 times faster.
    """
    if not isinstance(config, MoonsConfig):
        raise TypeError("train_moons(config): pass a MoonsConfig, e.g. MoonsConfig(n_units=3, seed=0).")
    torch.manual_seed(config.seed)
    model = MoonMemory(config.n_units, config.beta)
    data_gen = torch.Generator().manual_seed(10_000 + config.seed)
    probe_gen = torch.Generator().manual_seed(20_000 + config.seed)
    triples = TASKS[config.task]
    probe, _ = sample_windows(64, triples, probe_gen)  # (64, 801, 6), fixed for snapshots
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, betas=(0.9, 0.999), weight_decay=0.0)
    losses, snaps = [], []
    steps = range(config.steps)
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc=config.name, leave=False)
    start = time.perf_counter()
    for step in steps:
        if step in config.snapshot_steps:
            snaps.append(snapshot(model, probe, step))
        x, _ = sample_windows(config.batch_size, triples, data_gen)  # (B, 801, 6)
        pred = model(x[:, :-1])  # (B, 800, 6)
        loss = clipped_squared_error(pred, x[:, 1:], config.clip).mean()
        # the recipe clips the residuals (config.clip), not the gradients: grad_clip 0
        value = optimizer_step(model, opt, loss, lr=learning_rate(step, config), grad_clip=0.0)
        losses.append(float(f"{value:.5g}"))
    if config.steps in config.snapshot_steps:
        snaps.append(snapshot(model, probe, config.steps))
    history = {"loss": losses, "snapshots": snaps, "seconds": time.perf_counter() - start,
               "threads": torch.get_num_threads()}
    return model, history
