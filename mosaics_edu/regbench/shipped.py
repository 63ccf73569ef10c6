"""The RegBench-mini results the package ships, and the paper's numbers to read them against.

Chapter 06 does not retrain: it loads what ``python -m mosaics_edu.regbench sweep`` produced.
The package ships (under ``mosaics_edu/assets/regbench/``):

- ``sweep.json``: every finished run of the sweep, as written by
  :func:`~mosaics_edu.regbench.sweep.collect` (protocol, chosen learning rates, one record per
  run with its config, scores and loss log);
- ``<model>_N100_seed0/``: the N = 100, seed 0 run of the mosaic and of the GPT at their chosen
  learning rates: its ``result.json`` and its half-precision weights ``model_fp16.pt``, so a
  notebook can show their predictions (:func:`load_shipped_model`).

:func:`ship` copies a sweep folder's results there (``python -m mosaics_edu.regbench ship``).
:func:`sweep_table` turns ``sweep.json`` into mean and spread over seeds, per model and N.
:data:`PAPER_NUMBERS` holds the Memory Mosaics paper's RegBench figure as digitised in the
course notes (reading error ±0.01–0.02).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from .sweep import SWEEP_N, SWEEP_STEPS, chosen_learning_rates, collect, run_dir
from .train import RunConfig, load_run_model

__all__ = [
    "ASSETS",
    "SHIPPED_MODELS",
    "PAPER_NUMBERS",
    "ship",
    "load_sweep",
    "sweep_table",
    "shipped_run_dir",
    "shipped_result",
    "load_shipped_model",
]

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "regbench"
SHIPPED_MODELS = ("mosaic", "gpt")  # their N = 100, seed 0 weights are shipped
_SWEEP_FILE = "sweep.json"

#: The Memory Mosaics paper's RegBench figure (digitised; (accuracy, TVD) at N training automata)
#: for the three models this course trains. Its protocol differs from ours: see chapter 06.
PAPER_NUMBERS: dict[str, dict[int, tuple[float, float]]] = {
    "mosaic": {100: (0.92, 0.57), 500: (0.93, 0.25), 1000: (0.93, 0.22), 2500: (0.94, 0.19),
               40000: (0.96, 0.12)},
    "gpt": {100: (0.52, 0.69), 500: (0.54, 0.64), 1000: (0.53, 0.63), 2500: (0.92, 0.23),
            40000: (0.95, 0.14)},
    "lstm": {100: (0.42, 0.73), 500: (0.48, 0.66), 1000: (0.50, 0.62), 2500: (0.63, 0.53),
             40000: (0.81, 0.36)},
}  # fmt: skip


def _chosen_config(model: str, rates: dict[str, float], steps: int) -> RunConfig:
    return RunConfig(model=model, n_automata=SWEEP_N, seed=0, lr=rates[model], steps=steps)


def ship(
    root: str | os.PathLike[str], dest: str | os.PathLike[str] = ASSETS, steps: int = SWEEP_STEPS
) -> dict[str, Any]:
    """Copy a sweep's results into ``dest``: ``sweep.json`` (all finished runs) and, for the
    mosaic and the GPT, the N = 100 seed-0 run at the chosen rate (``result.json`` and
    ``model_fp16.pt``). Needs the learning-rate phase of the sweep to be finished. Returns the
    collected record."""
    root, dest = Path(root), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    record = collect(root, dest / _SWEEP_FILE, steps=steps)
    rates = chosen_learning_rates(root, steps)
    for model in SHIPPED_MODELS:
        src = run_dir(root, _chosen_config(model, rates, steps))
        out = dest / f"{model}_N{SWEEP_N}_seed0"
        out.mkdir(parents=True, exist_ok=True)
        for name in ("result.json", "model_fp16.pt"):
            if not (src / name).is_file():
                raise FileNotFoundError(f"{src} has no {name}: let the sweep finish the run, then ship again")
            shutil.copyfile(src / name, out / name)
    return record


def load_sweep(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The shipped ``sweep.json`` (or the file at ``path``), checked for the fields it must have."""
    path = ASSETS / _SWEEP_FILE if path is None else Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no sweep results at {path}: run `python -m mosaics_edu.regbench sweep`, then "
            "`python -m mosaics_edu.regbench ship --root <its folder>`"
        )
    record = json.loads(path.read_text(encoding="utf-8"))
    missing = {"protocol", "chosen_learning_rates", "runs"} - set(record)
    if missing:
        raise ValueError(f"{path} is not a sweep record (missing {sorted(missing)}): write it with collect()")
    return record


def sweep_table(record: dict[str, Any], split: str = "test") -> dict[str, dict[int, dict[str, Any]]]:
    """Per model and N, the scores of the runs at the model's chosen learning rate, over seeds.

    ``table[model][n] = {"seeds": [...], "accuracy": [...], "tvd": [...], "mean": {"accuracy": m,
    "tvd": m}, "min": {...}, "max": {...}}`` (one value per seed, in seed order). ``split`` is
    ``"test"`` (500 automata) or ``"validation"`` (200, the ones that chose the rates).
    """
    if split not in ("test", "validation"):
        raise ValueError(f"split must be 'test' or 'validation', got {split!r}")
    rates = record["chosen_learning_rates"]
    runs: dict[str, dict[int, list[dict[str, Any]]]] = {}
    for run in record["runs"]:
        c = run["config"]
        if c["lr"] != rates[c["model"]]:
            continue  # a learning-rate sweep run at a rate that was not chosen
        runs.setdefault(c["model"], {}).setdefault(c["n_automata"], []).append(run)
    table: dict[str, dict[int, dict[str, Any]]] = {}
    for model, by_n in runs.items():
        for n, rs in sorted(by_n.items()):
            rs = sorted(rs, key=lambda r: r["config"]["seed"])
            row: dict[str, Any] = {"seeds": [r["config"]["seed"] for r in rs]}
            for metric in ("accuracy", "tvd"):
                row[metric] = [float(r[split][metric]) for r in rs]
            for stat, fn in (("mean", lambda v: sum(v) / len(v)), ("min", min), ("max", max)):
                row[stat] = {metric: fn(row[metric]) for metric in ("accuracy", "tvd")}
            table.setdefault(model, {})[n] = row
    return table


def shipped_run_dir(model: str) -> Path:
    """The folder of the shipped N = 100, seed 0 run of ``model`` (``mosaic`` or ``gpt``)."""
    if model not in SHIPPED_MODELS:
        raise ValueError(f"model must be one of {SHIPPED_MODELS} (the shipped weights), got {model!r}")
    path = ASSETS / f"{model}_N{SWEEP_N}_seed0"
    if not path.is_dir():
        raise FileNotFoundError(f"no shipped run at {path}: run `python -m mosaics_edu.regbench ship`")
    return path


def shipped_result(model: str) -> dict[str, Any]:
    """The ``result.json`` of the shipped run of ``model``: config, scores, loss log."""
    return json.loads((shipped_run_dir(model) / "result.json").read_text(encoding="utf-8"))


def load_shipped_model(model: str) -> torch.nn.Module:
    """The trained N = 100, seed 0 ``model`` (``mosaic`` or ``gpt``), float32, in eval mode."""
    return load_run_model(shipped_run_dir(model))
