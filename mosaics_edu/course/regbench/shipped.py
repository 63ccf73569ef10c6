"""The RegBench-mini results the package ships, and the paper's numbers to read them against.

Chapter 07 does not retrain: it loads what ``python -m mosaics_edu.regbench sweep`` produced.
The package ships (under ``mosaics_edu/assets/regbench/``):

- ``sweep.json``: every finished run of the sweep, as written by
  :func:`~mosaics_edu.course.regbench.sweep.collect` (protocol, chosen learning rates, one record per
  run with its config, scores and loss log);
- ``<model>_N<n>_seed0/`` for n in :data:`SHIPPED_N` (100 and 10,000): the seed 0 run of the
  mosaic and of the GPT at their chosen learning rates, trained on n languages: its
  ``result.json`` and its half-precision weights ``model_fp16.pt`` (~240 KB), so a notebook can
  show their predictions (:func:`load_shipped_model`). At N = 100 the models memorise their
  training languages; at N = 10,000 the mosaic has learned to read a new language in context
  (test accuracy 0.82 against 0.40 at N = 100), the GPT less so (0.55 against 0.31). The
  N = 10,000 folders hold a retraining of the sweep's run with the same command on another CPU:
  its scores match ``sweep.json``'s to 1e-8 for the GPT and to 7e-4 for the mosaic (rounding,
  grown while its loss falls fastest); ``result.json`` gives the scores of the weights beside it.

- ``tuning.json``: the fair fight at N = 100 (:mod:`~mosaics_edu.course.regbench.fair`: every run of
  the learning-rate × dropout grid and the seeds of each model's chosen setting);
- ``factors.json``: the protocol-factor table at N = 100 (:mod:`~mosaics_edu.course.regbench.factors`),
  run at the fair fight's chosen settings.

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

from .. import tuning
from .sweep import SWEEP_N, SWEEP_STEPS, chosen_learning_rates, collect, run_dir
from .train import RunConfig, load_run_model

__all__ = [
    "ASSETS",
    "SHIPPED_MODELS",
    "SHIPPED_N",
    "PAPER_NUMBERS",
    "ship",
    "load_sweep",
    "load_factors",
    "load_tuning",
    "sweep_table",
    "shipped_run_dir",
    "shipped_result",
    "load_shipped_model",
]

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "regbench"
SHIPPED_MODELS = ("mosaic", "gpt")  # their seed 0 weights are shipped, at every N of SHIPPED_N
SHIPPED_N = (100, 10_000)  # the numbers of training languages whose runs are shipped
_SWEEP_FILE = "sweep.json"
_FACTORS_FILE = "factors.json"  # python -m mosaics_edu.regbench factors (copied here)
_TUNING_FILE = "tuning.json"  # python -m mosaics_edu.regbench tune (copied here)

#: The Memory Mosaics paper's RegBench figure (digitised; (accuracy, TVD) at N training automata)
#: for the three models this course trains. Its protocol differs from ours: see chapter 07.
PAPER_NUMBERS: dict[str, dict[int, tuple[float, float]]] = {
    "mosaic": {100: (0.92, 0.57), 500: (0.93, 0.25), 1000: (0.93, 0.22), 2500: (0.94, 0.19),
               40000: (0.96, 0.12)},
    "gpt": {100: (0.52, 0.69), 500: (0.54, 0.64), 1000: (0.53, 0.63), 2500: (0.92, 0.23),
            40000: (0.95, 0.14)},
    "lstm": {100: (0.42, 0.73), 500: (0.48, 0.66), 1000: (0.50, 0.62), 2500: (0.63, 0.53),
             40000: (0.81, 0.36)},
}  # fmt: skip


def _chosen_config(model: str, n_automata: int, rates: dict[str, float], steps: int) -> RunConfig:
    return RunConfig(model=model, n_automata=n_automata, seed=0, lr=rates[model], steps=steps)


def ship(
    root: str | os.PathLike[str], dest: str | os.PathLike[str] = ASSETS, steps: int = SWEEP_STEPS
) -> dict[str, Any]:
    """Copy a sweep's results into ``dest``: ``sweep.json`` (all finished runs) and, for the
    mosaic and the GPT, the seed-0 run at the chosen rate at every N of :data:`SHIPPED_N`
    (``result.json`` and ``model_fp16.pt``). Needs the learning-rate phase of the sweep and
    those runs to be finished. Returns the collected record."""
    root, dest = Path(root), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    record = collect(root, dest / _SWEEP_FILE, steps=steps)
    rates = chosen_learning_rates(root, steps)
    copies = [
        (run_dir(root, _chosen_config(model, n, rates, steps)), dest / _shipped_name(model, n))
        for model in SHIPPED_MODELS
        for n in SHIPPED_N
    ]
    for src, _ in copies:  # all present before anything is copied: no half-shipped package
        for name in ("result.json", "model_fp16.pt"):
            if not (src / name).is_file():
                raise FileNotFoundError(f"{src} has no {name}: let the sweep finish the run, then ship again")
    for src, out in copies:
        out.mkdir(parents=True, exist_ok=True)
        for name in ("result.json", "model_fp16.pt"):
            shutil.copyfile(src / name, out / name)
    return record


def _read_record(path: Path, what: str, fields: set[str], make: str, write: str) -> dict[str, Any]:
    """The JSON record at ``path``, which must hold ``fields``; errors say how to ``make`` a missing
    file and the function that writes a valid one (``write``)."""
    if not path.is_file():
        raise FileNotFoundError(f"no {what} at {path}: {make}")
    record = json.loads(path.read_text(encoding="utf-8"))
    missing = fields - set(record)
    if missing:
        raise ValueError(f"{path} is not a {what} (missing {sorted(missing)}): write it with {write}()")
    return record


def load_sweep(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The shipped ``sweep.json`` (or the file at ``path``), checked for the fields it must have."""
    return _read_record(
        ASSETS / _SWEEP_FILE if path is None else Path(path), "sweep record",
        {"protocol", "chosen_learning_rates", "runs"},
        "run `python -m mosaics_edu.regbench sweep`, then `python -m mosaics_edu.regbench ship --root "
        "<its folder>`", "collect",
    )  # fmt: skip


def load_factors(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The shipped ``factors.json`` (:mod:`~mosaics_edu.course.regbench.factors`: one protocol factor at
    a time at N = 100), or the file at ``path``, checked for the fields chapter 07 reads."""
    return _read_record(
        ASSETS / _FACTORS_FILE if path is None else Path(path), "factor table",
        {"protocol", "chosen_learning_rates", "factors", "paper", "missing"},
        "run `python -m mosaics_edu.regbench factors --root <folder> --tuning <folder>/tuning.json`, "
        "then copy <folder>/factors.json there", "collect_factors",
    )  # fmt: skip


def load_tuning(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The shipped ``tuning.json`` of the RegBench-mini fair fight (:mod:`~mosaics_edu.course.regbench.fair`),
    or the file at ``path``."""
    return tuning.load(ASSETS / _TUNING_FILE if path is None else path)


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


def _shipped_name(model: str, n_automata: int) -> str:
    return f"{model}_N{n_automata}_seed0"


def shipped_run_dir(model: str, n_automata: int = SWEEP_N) -> Path:
    """The folder of the shipped seed 0 run of ``model`` (``mosaic`` or ``gpt``) trained on
    ``n_automata`` languages (one of :data:`SHIPPED_N`: 100, the default, or 10,000)."""
    if model not in SHIPPED_MODELS:
        raise ValueError(f"model must be one of {SHIPPED_MODELS} (the shipped weights), got {model!r}")
    if not isinstance(n_automata, int) or isinstance(n_automata, bool) or n_automata not in SHIPPED_N:
        raise ValueError(
            f"n_automata must be one of {SHIPPED_N} (the numbers of training languages whose runs are "
            f"shipped), got {n_automata!r}"
        )
    path = ASSETS / _shipped_name(model, n_automata)
    if not path.is_dir():
        raise FileNotFoundError(f"no shipped run at {path}: run `python -m mosaics_edu.regbench ship`")
    return path


def shipped_result(model: str, n_automata: int = SWEEP_N) -> dict[str, Any]:
    """The ``result.json`` of the shipped run of ``model`` at ``n_automata``: config, scores, loss log."""
    return json.loads((shipped_run_dir(model, n_automata) / "result.json").read_text(encoding="utf-8"))


def load_shipped_model(model: str, n_automata: int = SWEEP_N) -> torch.nn.Module:
    """The trained seed 0 ``model`` (``mosaic`` or ``gpt``) of N = ``n_automata`` training languages
    (100, the default, or 10,000: :data:`SHIPPED_N`), float32, in eval mode."""
    return load_run_model(shipped_run_dir(model, n_automata))
