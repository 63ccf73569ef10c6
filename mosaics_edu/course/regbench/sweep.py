"""The RegBench-mini sweep behind chapter 07: every model, several N, a learning-rate sweep, seeds.

The protocol, identical for the mosaic, the GPT and the LSTM:

1. **Learning-rate sweep** at N = ``SWEEP_N`` (seed 0): each model is trained at every rate of
   ``LEARNING_RATES``; the rate with the lowest *validation* TVD is that model's rate. The test
   set is never looked at to choose.
2. **Main runs** at each model's chosen rate: N ∈ ``TRAINING_SIZES``, seeds ``SEEDS_AT[N]``
   (two seeds at the smallest and the largest N, one elsewhere), in that order of priority.

Every run is one :func:`~mosaics_edu.course.regbench.train.train_run` in its own folder under ``root``
(``<model>_N<n>_seed<s>_lr<lr>``), which writes its ``result.json`` when it finishes: a stopped
sweep started again skips the finished runs and resumes the interrupted ones from their
checkpoints. :func:`collect` gathers the results into one JSON file (the one the package ships).
:func:`run_jobs` (run folders trained ``jobs`` at a time, one process and one thread each,
finished ones skipped) and :func:`read_result` serve other sets of runs too
(:mod:`~mosaics_edu.course.regbench.factors`).

Command line::

    python -m mosaics_edu.regbench sweep --jobs 2            # ~1 h on an idle 2-core CPU
    python -m mosaics_edu.regbench collect --out sweep.json
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields
from pathlib import Path
from typing import Any

from ...core.atomic import atomic_path
from .matched import MODEL_NAMES
from .train import RunConfig

__all__ = [
    "LEARNING_RATES", "SWEEP_N", "SWEEP_STEPS", "SEEDS_AT", "sweep_configs", "main_configs",
    "run_dir", "chosen_learning_rates", "run_sweep", "collect", "read_result", "train_command",
    "run_jobs",
]  # fmt: skip

LEARNING_RATES = (1e-3, 2e-3, 4e-3)
SWEEP_N = 100
SWEEP_STEPS = 1000  # every run of the sweep: 1,000 AdamW steps at batch 32 (see RunConfig)
SEEDS_AT = {100: (0, 1), 10_000: (0, 1), 500: (0,), 2_500: (0,)}  # priority order: 100, 10 000 first


def run_dir(root: str | os.PathLike[str], config: RunConfig) -> Path:
    """``root/<model>_N<n>_seed<s>_lr<lr>``, with ``_drop<p>`` when dropout is not 0: one folder
    per run."""
    name = f"{config.model}_N{config.n_automata}_seed{config.seed}_lr{config.lr:g}"
    return Path(root) / (name + (f"_drop{config.dropout:g}" if config.dropout else ""))


def sweep_configs(steps: int = SWEEP_STEPS) -> list[RunConfig]:
    """Phase 1: every model at every learning rate, N = SWEEP_N, seed 0."""
    return [
        RunConfig(model=m, n_automata=SWEEP_N, seed=0, lr=lr, steps=steps)
        for lr in LEARNING_RATES
        for m in MODEL_NAMES
    ]


def read_result(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The ``result.json`` of the run folder ``path``, or None while the run is not finished."""
    f = Path(path) / "result.json"
    return json.loads(f.read_text(encoding="utf-8")) if f.is_file() else None


def chosen_learning_rates(root: str | os.PathLike[str], steps: int = SWEEP_STEPS) -> dict[str, float]:
    """Each model's rate: the lowest validation TVD of its phase-1 runs (all must be finished)."""
    best: dict[str, tuple[float, float]] = {}
    for config in sweep_configs(steps):
        result = read_result(run_dir(root, config))
        if result is None:
            raise RuntimeError(
                f"the learning-rate sweep is not finished: {run_dir(root, config)} has no result"
            )
        tvd = float(result["validation"]["tvd"])
        if config.model not in best or tvd < best[config.model][0]:
            best[config.model] = (tvd, config.lr)
    return {m: lr for m, (_, lr) in best.items()}


def main_configs(learning_rates: dict[str, float], steps: int = SWEEP_STEPS) -> list[RunConfig]:
    """Phase 2: each model at its chosen rate, for every N and its seeds (priority order)."""
    return [
        RunConfig(model=m, n_automata=n, seed=s, lr=learning_rates[m], steps=steps)
        for n, seeds in SEEDS_AT.items()
        for s in seeds
        for m in MODEL_NAMES
    ]


def train_command(config: RunConfig, out: str | os.PathLike[str]) -> list[str]:
    """The command line that trains ``config`` into the folder ``out``, one thread, no progress bar:
    ``--model`` and ``--n-automata``, then every other field that differs from its default."""
    args = [sys.executable, "-m", "mosaics_edu.regbench", "train", "--model", config.model,
            "--n-automata", str(config.n_automata)]  # fmt: skip
    for f in fields(RunConfig):
        value = getattr(config, f.name)
        if f.name not in ("model", "n_automata") and value != f.default:
            args += ["--" + f.name.replace("_", "-"), str(value)]
    return args + ["--threads", "1", "--no-progress", "--out", str(out)]


def _run_one(out: Path, config: RunConfig) -> tuple[Path, float]:
    """One run in its own process, one math thread (``jobs`` of them share the cores)."""
    t0 = time.perf_counter()
    if read_result(out) is None:
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        log = out.parent / (out.name + ".log")
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a", encoding="utf-8") as f:
            subprocess.run(
                train_command(config, out), check=True, stdout=f, stderr=subprocess.STDOUT, env=env
            )
    return out, time.perf_counter() - t0


def run_jobs(runs: list[tuple[Path, RunConfig]], jobs: int) -> None:
    """Train every ``(folder, config)`` of ``runs``, ``jobs`` processes at a time, in list order; a
    folder with a ``result.json`` is skipped, one with a checkpoint resumes (see
    :func:`~mosaics_edu.course.regbench.train.train_run`). Each process appends its output to
    ``<folder>.log``."""
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer (processes at once), got {jobs!r}")
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for out, seconds in pool.map(lambda r: _run_one(Path(r[0]), r[1]), runs):
            print(f"done {out.parent.name}/{out.name} ({seconds:.0f} s)", flush=True)


def _run_all(root: Path, configs: list[RunConfig], jobs: int) -> None:
    run_jobs([(run_dir(root, c), c) for c in configs], jobs)


def run_sweep(
    root: str | os.PathLike[str] = "runs/regbench_sweep", jobs: int = 2, steps: int = SWEEP_STEPS
) -> None:
    """Both phases; finished runs are skipped, interrupted ones resume."""
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer (processes at once), got {jobs!r}")
    root = Path(root)
    t0 = time.perf_counter()
    _run_all(root, sweep_configs(steps), jobs)
    rates = chosen_learning_rates(root, steps)
    print(f"chosen learning rates (lowest validation TVD at N={SWEEP_N}): {rates}", flush=True)
    _run_all(root, main_configs(rates, steps), jobs)
    print(f"sweep finished in {time.perf_counter() - t0:.0f} s this session", flush=True)


def collect(
    root: str | os.PathLike[str], out: str | os.PathLike[str], steps: int = SWEEP_STEPS
) -> dict[str, Any]:
    """Gather every finished run of ``root`` into ``out`` (JSON): the protocol, the chosen rates and
    one record per run (config, parameters, scores, loss log, times). Unfinished runs are listed."""
    root = Path(root)
    runs, missing = [], []
    rates = chosen_learning_rates(root, steps)
    configs = sweep_configs(steps) + [c for c in main_configs(rates, steps) if c not in sweep_configs(steps)]
    for config in configs:
        result = read_result(run_dir(root, config))
        if result is None:
            missing.append(run_dir(root, config).name)
        else:
            runs.append({k: result[k] for k in result if k != "versions"} | {"versions": result["versions"]})
    record = {
        "protocol": {
            "learning_rates": list(LEARNING_RATES), "sweep_n": SWEEP_N, "steps": steps,
            "seeds_at": {str(n): list(s) for n, s in SEEDS_AT.items()},
            "choice": "per model, the learning rate with the lowest validation TVD at N = sweep_n, seed 0",
        },
        "chosen_learning_rates": rates,
        "runs": runs,
        "missing": missing,
    }  # fmt: skip
    with atomic_path(Path(out)) as tmp:
        tmp.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return record
