"""The RegBench-mini fair fight: the mosaic and the GPT tuned with the same budget, on validation.

The sweep behind chapter 07 (:mod:`~mosaics_edu.course.regbench.sweep`) chose each model's learning rate
from three rates at one seed, and the GPT's choice, 4e-3, sat at the edge of that grid. This module
gives both models the course's tuning discipline (:mod:`mosaics_edu.course.tuning`):

1. **Grid**, at N = :data:`TUNING_N` = 100, seed 0: every learning rate of :data:`TUNING_LRS` ×
   every dropout of :data:`TUNING_DROPOUTS`, for the mosaic and the GPT (:data:`TUNING_MODELS`),
   1,000 steps, validation every :data:`~.factors.EVAL_EVERY` steps with the best weights kept.
2. **Extension**: while a model's best setting has its learning rate at an edge of the grid, that
   model tries the next rate past the edge (×2 or ÷2) at every dropout, and so does the other
   model, past the edge nearer its own best rate: both keep the same number of settings.
3. **Seeds**: each model's best setting again with seeds :data:`TUNING_SEEDS` (three in all); if
   the new seeds make another setting the best on the mean, that one gets its seeds too.

The score that chooses is the **best validation TVD** of a run (the lowest over its periodic
validations: the checkpoint the benchmark would keep); lower is better. The test automata are never
looked at to choose. :func:`collect_tuning` writes ``tuning.json`` in the format of
:mod:`mosaics_edu.course.tuning`, whose rules a test checks on the shipped file.

The runs live in ``root/baseline/`` under the names of :func:`tuning_run_dir`: the dropout-0 runs
at the chosen rates are the ``baseline`` runs of :mod:`~mosaics_edu.course.regbench.factors` with the same
``root``, so the factor table reuses them instead of training them twice.

Command line (resumable: finished runs are skipped, interrupted ones resume)::

    python -m mosaics_edu.regbench tune --root runs/regbench_factors --jobs 2
    python -m mosaics_edu.regbench tune --root runs/regbench_factors --collect   # tuning.json only

Cost: a mosaic run about 120 CPU-seconds, a GPT run about 70 (one thread; the factor module's
measured step times): 16 grid runs and 4 more seeds, about 31 CPU-minutes, plus 2 runs per
extension of a grid.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from ...core.atomic import atomic_path
from .. import tuning
from .factors import EVAL_EVERY
from .sweep import SWEEP_STEPS, read_result, run_dir, run_jobs
from .train import RunConfig

__all__ = [
    "TUNING_N", "TUNING_LRS", "TUNING_DROPOUTS", "TUNING_SEEDS", "TUNING_MODELS", "METRIC",
    "tuning_config", "tuning_run_dir", "grid_rates", "chosen_settings", "seed_configs",
    "run_tuning", "collect_tuning", "tuning_commands",
]  # fmt: skip

TUNING_N = 100
TUNING_LRS = (1e-3, 2e-3, 4e-3, 8e-3)
TUNING_DROPOUTS = (0.0, 0.1)
TUNING_SEEDS = (0, 1, 2)  # seed 0 runs the grid; the chosen setting is run again with the others
TUNING_MODELS = ("mosaic", "gpt")
MAX_EXTENSIONS = 6  # rates added past an edge per model before giving up (a 64x wider grid)
METRIC = (
    "validation TVD of the best-validation checkpoint (the lowest of the validations every "
    f"{EVAL_EVERY} steps and at the last), 200 validation automata, N = {TUNING_N}; lower is better"
)


def tuning_config(model: str, lr: float, dropout: float, seed: int = 0) -> RunConfig:
    """One run of the fight: the sweep's protocol at N = 100 with periodic validation."""
    return RunConfig(
        model=model, n_automata=TUNING_N, seed=seed, lr=float(lr), dropout=float(dropout),
        steps=SWEEP_STEPS, eval_every=EVAL_EVERY,
    )  # fmt: skip


def tuning_run_dir(root: str | os.PathLike[str], config: RunConfig) -> Path:
    """``root/baseline/<model>_N<n>_seed<s>_lr<lr>[_drop<p>]``: the folder of the factor table's
    baseline run of the same config."""
    return run_dir(Path(root) / "baseline", config)


def _results(root: Path, models=TUNING_MODELS) -> list[dict[str, Any]]:
    """Every finished run of the fight under ``root`` as a tuning record."""
    out = []
    for path in sorted((root / "baseline").glob("*_N*_seed*_lr*")):
        result = read_result(path)
        if result is None or not path.is_dir():
            continue
        c = RunConfig.from_dict(result["config"])
        if (c.model not in models or c != tuning_config(c.model, c.lr, c.dropout, c.seed)
                or tuning_run_dir(root, c) != path):
            continue  # another factor's run, or a run of another protocol
        out.append({
            "model": c.model, "lr": c.lr, "dropout": c.dropout, "seed": c.seed, "steps": c.steps,
            "val": float(result["validation_best"]["tvd"]),
            "val_accuracy": float(result["validation_best"]["accuracy"]),
            "best_step": result["best_step"],
            "val_last": float(result["validation"]["tvd"]),
            # the test scores, never used to choose: reported for the chosen settings
            "test_best": {k: float(result["test_best"][k]) for k in ("accuracy", "tvd")},
            "test_last": {k: float(result["test_last"][k]) for k in ("accuracy", "tvd")},
            "wall_seconds": round(sum(result.get(k) or 0.0 for k in
                                      ("train_seconds", "validation_seconds", "eval_seconds")), 1),
        })  # fmt: skip
    return out


def _data(records: list[dict[str, Any]], chosen: dict[str, dict[str, float]]) -> dict[str, Any]:
    return {
        "comparison": "regbench", "metric": METRIC, "higher_is_better": False,
        "setting_keys": ["lr", "dropout"], "commands": tuning_commands(), "runs": records,
        "chosen": chosen,
    }  # fmt: skip


def grid_rates(records: list[dict[str, Any]], model: str) -> list[float]:
    """The learning rates ``model`` tried at seed 0 (at every dropout)."""
    return sorted({r["lr"] for r in records if r["model"] == model and r["seed"] == 0})


def chosen_settings(records: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per model, the setting with the best mean validation score (:func:`tuning.best_setting`)."""
    data = _data(records, {})
    out = {}
    for model in TUNING_MODELS:
        if any(r["model"] == model for r in records):
            lr, dropout = tuning.best_setting(data, model)
            out[model] = {"lr": lr, "dropout": dropout}
    return out


def _edge_rate(records: list[dict[str, Any]], model: str, lr: float) -> float | None:
    """The rate past the edge of ``model``'s grid that ``lr`` sits on, or None if inside."""
    rates = grid_rates(records, model)
    if lr == rates[-1]:
        return rates[-1] * 2
    if lr == rates[0]:
        return rates[0] / 2
    return None


def _next_rate(records: list[dict[str, Any]], model: str, lr: float) -> float:
    """The rate ``model`` tries when some model's grid is extended: past its own edge if ``lr`` is
    on it, else past the edge nearer ``lr`` (in ratio; the upper on a tie), so that every model
    gets the same number of settings."""
    edge = _edge_rate(records, model, lr)
    if edge is not None:
        return edge
    rates = grid_rates(records, model)
    return rates[-1] * 2 if rates[-1] / lr <= lr / rates[0] else rates[0] / 2


def seed_configs(chosen: dict[str, dict[str, float]], seeds=TUNING_SEEDS) -> list[RunConfig]:
    """The chosen setting of each model at every seed (seed 0 is a grid run, already trained)."""
    return [tuning_config(m, s["lr"], s["dropout"], seed) for m, s in chosen.items() for seed in seeds]


def run_tuning(root: str | os.PathLike[str] = "runs/regbench_factors", jobs: int = 2,
               out: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Grid, extensions, seeds; then write ``tuning.json`` (``out``, default ``root/tuning.json``)."""
    root = Path(root)
    t0 = time.perf_counter()
    grid = [tuning_config(m, lr, d) for m in TUNING_MODELS for lr in TUNING_LRS for d in TUNING_DROPOUTS]
    run_jobs([(tuning_run_dir(root, c), c) for c in grid], jobs)
    for _ in range(MAX_EXTENSIONS):
        records = _results(root)
        chosen = chosen_settings(records)
        if all(_edge_rate(records, m, s["lr"]) is None for m, s in chosen.items()):
            break
        extra = []
        for model, s in chosen.items():  # every model gets one more rate: the same budget
            lr = _next_rate(records, model, s["lr"])
            grid = grid_rates(records, model)
            print(f"{model}: best rate {s['lr']:g} of {grid}; trying {lr:g}", flush=True)
            extra += [tuning_config(model, lr, d) for d in TUNING_DROPOUTS]
        run_jobs([(tuning_run_dir(root, c), c) for c in extra], jobs)
    # the seeds can change which setting has the best mean: seed the new best too, until it holds
    seeded: list[dict[str, dict[str, float]]] = []
    while (chosen := chosen_settings(_results(root))) not in seeded:
        print(f"chosen (best mean validation TVD): {chosen}; running its seeds", flush=True)
        run_jobs([(tuning_run_dir(root, c), c) for c in seed_configs(chosen)], jobs)
        seeded.append(chosen)
    print(f"tuning finished in {time.perf_counter() - t0:.0f} s this session", flush=True)
    return collect_tuning(root, out)


def collect_tuning(root: str | os.PathLike[str], out: str | os.PathLike[str] | None = None
                   ) -> dict[str, Any]:
    """Write ``tuning.json`` from the finished runs under ``root``: every run, the chosen setting
    (best mean validation score over its seeds), the commands and the CPU time they took."""
    root = Path(root)
    records = _results(root)
    if not records:
        raise FileNotFoundError(f"no finished tuning run under {root / 'baseline'}: run "
                                f"'python -m mosaics_edu.regbench tune --root {root}' first")
    data = _data(records, chosen_settings(records))
    data["grid"] = {"lrs": list(TUNING_LRS), "dropouts": list(TUNING_DROPOUTS), "seeds": list(TUNING_SEEDS),
                    "extended": {m: grid_rates(records, m) for m in data["chosen"]}}
    # one thread per run, so a run's wall time is its CPU time on a machine with a free core each
    data["wall_seconds"] = round(sum(r["wall_seconds"] for r in records), 1)
    out = Path(out) if out is not None else root / "tuning.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    return data


def tuning_commands() -> list[str]:
    """The commands that make ``tuning.json`` (as the file records them)."""
    return [
        "python -m mosaics_edu.regbench tune --root runs/regbench_factors --jobs 2",
        "python -m mosaics_edu.regbench tune --root runs/regbench_factors --collect "
        "--out mosaics_edu/assets/regbench/tuning.json",
    ]
