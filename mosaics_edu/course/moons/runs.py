"""Three moons: train a run, evaluate it, save both — the package's own experiment script."""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .data import TRIPLES, VALID_TRIPLE, VARIANT_TRAIN_TRIPLES, VARIANT_VALID_TRIPLE
from .evaluate import generation_error, is_clean_split, moon_shares, position_error, validation_windows
from .io import save_run
from .model import MoonMemory, block_magnitudes
from .train import POOL, MoonsConfig, train_moons

__all__ = ["EvalSettings", "eval_triples", "evaluate_run", "train_and_save"]


@dataclass(frozen=True)
class EvalSettings:
    """How a run is evaluated: which windows (seeded) and which prefix lengths."""

    n_windows: int = 128
    seed: int = 12_345
    horizon: int = 25
    c_first: int = 1
    c_last: int = 774
    c_step: int = 3

    @property
    def contexts(self) -> list[int]:
        return list(range(self.c_first, self.c_last + 1, self.c_step))


def eval_triples(task: str) -> dict[str, tuple[float, float, float]]:
    """The triples a run is evaluated on: one training triple and the held-out one(s)."""
    if task == "standard":
        # Index 5, (0.5, 1, 2.5), is the training triple of the official plots.
        return {"train": TRIPLES[5], "valid": VALID_TRIPLE}
    if task == "variant":
        return {"train": VARIANT_TRAIN_TRIPLES[0], "valid": VARIANT_VALID_TRIPLE,
                "standard_valid": VALID_TRIPLE}
    raise ValueError(f"eval_triples(task={task!r}): use 'standard' or 'variant'.")


def evaluate_run(model: MoonMemory, task: str, settings: EvalSettings = EvalSettings(),
                 which: tuple[str, ...] | None = None) -> dict:
    """Generation error vs context and teacher-forced error per position, per evaluation triple."""
    out: dict = {"settings": asdict(settings), "contexts": settings.contexts, "triples": {},
                 "generation": {}, "position_error": {}}
    for i, (key, triple) in enumerate(eval_triples(task).items()):
        if which is not None and key not in which:
            continue
        x = validation_windows(settings.n_windows, settings.seed + i, triple, length=800)
        out["triples"][key] = list(triple)
        gen = generation_error(model, x, settings.contexts, settings.horizon)
        out["generation"][key] = [float(f"{v:.5g}") for v in gen]
        pe = position_error(model, x)
        n = len(pe) // POOL * POOL
        out["position_error"][key] = [float(f"{v:.4g}") for v in pe[:n].reshape(-1, POOL).mean(1)]
    maps = model.maps()
    shares = moon_shares(maps["phi"], model.n_units)
    out["blocks"] = {k: block_magnitudes(w).round(decimals=4).tolist() for k, w in maps.items()}
    out["shares"] = np.round(shares, 4).tolist()
    out["clean_split"] = is_clean_split(shares) if model.n_units == 3 else None
    return out


def train_and_save(config: MoonsConfig, out_dir: str | os.PathLike,
                   settings: EvalSettings = EvalSettings(), progress: bool = False) -> Path:
    """Train ``config``, evaluate, and write ``<out_dir>/<config.name>.{pt,json}``."""
    model, history = train_moons(config, progress=progress)
    t0 = time.perf_counter()
    metrics = evaluate_run(model, config.task, settings)
    metrics["eval_seconds"] = time.perf_counter() - t0
    return save_run(out_dir, model, config, {"history": history, "metrics": metrics})
