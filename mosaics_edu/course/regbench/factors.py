"""Why do our N = 100 scores sit below the paper's? One protocol factor at a time.

At N = 100 training languages the Memory Mosaics paper reports accuracy / TVD 0.92 / 0.57 for
the mosaic and 0.52 / 0.69 for the GPT; chapter 07's sweep gives 0.41 / 0.73 and 0.31 / 0.80
(mean of two seeds). Its protocol differs from the paper's in several ways. This module trains
the runs that separate four of them: from today's protocol (the *baseline*), each run changes
one factor toward the paper's and keeps the others:

- ``baseline``: the sweep's run (1,000 steps at batch 32, width 64 with 4 heads, CPU-sized
  samples of ≈ 86 tokens) with ``eval_every`` = :data:`EVAL_EVERY`, so that every run reports
  both the **last** checkpoint (what the course reports; factor (a) is last vs best) and the
  **best-validation** one (lowest validation TVD, as in
  :mod:`~mosaics_edu.course.regbench.train`). Its last-checkpoint scores are the sweep's runs again:
  the periodic evaluation changes no weight, so they match ``sweep.json`` up to the rounding
  another CPU or torch brings (see the sweep's slow retraining test);
- ``paper_sizes``: the benchmark's sample sizes (:data:`~.datasets.PAPER_SIZES`, 10–19
  strings of 1–49 symbols, ≈ 374 tokens) for training, validation and test samples;
- ``width128``: width 128 with 8 heads (the Memory Mosaics configuration for RegBench), head
  size 16 as today's 64 / 4: one factor, two fields; the mosaic is matched to the GPT's size as
  at width 64 (:func:`~.matched.matched_configs`);
- ``paper_steps``: the paper's training length, :func:`paper_steps` = ⌈N / 32⌉ · 200 = 800
  steps at N = 100 instead of 1,000. How the number is got: the benchmark replays its N samples
  for 200 epochs at batch 32 without dropping the last partial batch, so an epoch is ⌈N / 32⌉
  optimiser steps (4 at N = 100: three of 32 samples and one of 4) and a run ⌈N / 32⌉ · 200
  steps (the course notes' formula; chapter 07's "200 epochs, 800 steps"). Our batches run on
  across epoch boundaries (always 32 samples), so 800 of our steps are 256 passes over the 100
  samples, not 200 (that would be 100 · 200 / 32 = 625 steps): the factor matches the paper's
  number of optimiser steps and the length of its schedule, not its number of samples seen.
  The warm-up stays at 100 steps, as in every other run.

Each at :data:`FACTOR_N` = 100, for the mosaic and the GPT (:data:`FACTOR_MODELS`) at their
chosen learning rates (the shipped ``sweep.json``'s ``chosen_learning_rates``: the lowest
validation TVD at N = 100), seeds :data:`FACTOR_SEEDS`. Every run is one
:func:`~mosaics_edu.course.regbench.train.train_run` in ``root/<factor>/<model>_N<n>_seed<s>_lr<lr>``,
run by :func:`~mosaics_edu.course.regbench.sweep.run_jobs`: a finished run is skipped, an interrupted
one resumes. :func:`collect_factors` writes the table: per factor and model, the mean, min and max
over seeds of the best-validation and last-checkpoint test accuracy and TVD.

Command line::

    python -m mosaics_edu.regbench factors --root runs/regbench_factors --jobs 2 [--seeds 0 1]
    python -m mosaics_edu.regbench factors --root runs/regbench_factors --collect   # table only

Cost, at N = 100 with 2 seeds (16 runs): about 3,800 CPU-seconds (63 CPU-minutes), so about
32 minutes of wall time at ``--jobs 2`` on two free cores (:func:`estimated_cpu_seconds`). How it
was got: each of the 8 configurations (4 factors × 2 models, seed 0) was timed for 20 training
steps after 3 untimed ones, one thread, in CPU time of the process (``time.process_time``), and
one scoring of the 200 validation and of the 500 test automata
(:data:`STEP_CPU_SECONDS`); a run costs ``steps`` training steps, ``steps // eval_every``
validations, and at the end two validations (score and loss) and two test scorings (last and
best). Measured on the course's 2-core machine while other work kept its load near 4, where the
timed steps' wall time was 1.3–2.3 times their CPU time. The sweep's own N = 100 mosaic and GPT runs
(same configurations as the baseline, two at a time beside other work) took 5–11 times these CPU
seconds in wall time: on such a busy machine plan about 3–6 hours. The paper-sized samples are 58 % of
the total (≈ 4.3 times the tokens per step, and attention's cost grows with the square of the
length); width 128 is 24 %.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from ...core.atomic import atomic_path
from ...core.validation import check_positive_int
from .. import tuning
from .shipped import PAPER_NUMBERS, load_sweep
from .sweep import SWEEP_STEPS, read_result, run_dir, run_jobs
from .train import RunConfig

__all__ = [
    "FACTOR_N", "FACTOR_SEEDS", "FACTOR_MODELS", "EVAL_EVERY", "FACTORS", "PAPER_EPOCHS",
    "PAPER_BATCH", "STEP_CPU_SECONDS", "paper_steps", "factor_changes", "factor_configs",
    "factor_run_dir", "run_factors", "collect_factors", "estimated_cpu_seconds", "tuned_settings",
]  # fmt: skip

FACTOR_N = 100  # training languages: where the paper and the course differ most
FACTOR_SEEDS = (0, 1)
FACTOR_MODELS = ("mosaic", "gpt")
EVAL_EVERY = 50  # validation every 50 steps (and at the last): 20 in 1,000 steps, 16 in 800
FACTORS = ("baseline", "paper_sizes", "width128", "paper_steps")  # the baseline, then one factor each
PAPER_EPOCHS, PAPER_BATCH = 200, 32  # the benchmark's training length and batch

#: Measured CPU seconds (one thread, torch 2 on the course's 2-core machine at load ≈ 4), per
#: factor and model: (one training step at batch 32, the mean of 20; one scoring of the 200
#: validation automata; one scoring of the 500 test automata). ``paper_steps`` runs the
#: baseline's configuration, timed again (the two differ by the timing's noise, ≈ 5 %).
STEP_CPU_SECONDS: dict[str, dict[str, tuple[float, float, float]]] = {
    "baseline": {"mosaic": (0.112, 0.305, 0.719), "gpt": (0.061, 0.235, 0.465)},
    "paper_sizes": {"mosaic": (0.655, 1.563, 4.121), "gpt": (0.384, 1.093, 2.663)},
    "width128": {"mosaic": (0.269, 0.677, 1.580), "gpt": (0.163, 0.428, 0.971)},
    "paper_steps": {"mosaic": (0.106, 0.276, 0.636), "gpt": (0.056, 0.174, 0.416)},
}


def paper_steps(n_automata: int, epochs: int = PAPER_EPOCHS, batch_size: int = PAPER_BATCH) -> int:
    """The benchmark's optimiser steps for N = ``n_automata``: ⌈N / batch⌉ · epochs (the last,
    partial batch of an epoch is a step too). 800 at N = 100, 6,400 at N = 1,000."""
    for name, v in (("n_automata", n_automata), ("epochs", epochs), ("batch_size", batch_size)):
        check_positive_int(name, v)
    return math.ceil(n_automata / batch_size) * epochs


def factor_changes(n_automata: int = FACTOR_N) -> dict[str, dict[str, Any]]:
    """``{factor: {RunConfig field: value}}``: what each factor changes in the baseline (nothing
    for the baseline itself)."""
    return {
        "baseline": {},
        "paper_sizes": {"sizes": "paper"},
        "width128": {"n_embd": 128, "n_head": 8},
        "paper_steps": {"steps": paper_steps(n_automata)},
    }


def _baseline(model: str, n_automata: int, seed: int, lr: float, dropout: float = 0.0) -> RunConfig:
    return RunConfig(
        model=model, n_automata=n_automata, seed=seed, lr=lr, steps=SWEEP_STEPS, eval_every=EVAL_EVERY,
        dropout=dropout,
    )  # fmt: skip


def _check_dropouts(dropouts: Any) -> dict[str, float]:
    if dropouts is None:
        return {m: 0.0 for m in FACTOR_MODELS}
    if not isinstance(dropouts, dict) or set(FACTOR_MODELS) - set(dropouts):
        raise ValueError(f"dropouts must give a dropout for each of {FACTOR_MODELS}, got {dropouts!r}")
    return {m: float(dropouts[m]) for m in FACTOR_MODELS}


def tuned_settings(path: str | os.PathLike[str]) -> tuple[dict[str, float], dict[str, float]]:
    """``(rates, dropouts)`` by model: the chosen settings of a RegBench ``tuning.json`` (the fair
    fight of :mod:`~mosaics_edu.course.regbench.fair`), to run the table at them."""
    chosen = tuning.load(path)["chosen"]
    if set(FACTOR_MODELS) - set(chosen):
        raise ValueError(f"{path} has no chosen setting for each of {FACTOR_MODELS}: {chosen}")
    return ({m: float(chosen[m]["lr"]) for m in FACTOR_MODELS},
            {m: float(chosen[m].get("dropout", 0.0)) for m in FACTOR_MODELS})  # fmt: skip


def _check_rates(rates: Any) -> dict[str, float]:
    if not isinstance(rates, dict) or set(FACTOR_MODELS) - set(rates):
        raise ValueError(f"rates must give a learning rate for each of {FACTOR_MODELS}, got {rates!r}")
    return {m: float(rates[m]) for m in FACTOR_MODELS}


def factor_configs(
    rates: dict[str, float],
    seeds: tuple[int, ...] = FACTOR_SEEDS,
    n_automata: int = FACTOR_N,
    dropouts: dict[str, float] | None = None,
) -> list[tuple[str, RunConfig]]:
    """Every run of the table as ``(factor, config)``, in the order they are trained: seed by seed
    (a stopped table has every factor at the first seed), then factor, then model. ``dropouts``:
    by model (default 0, as in the sweep)."""
    rates, dropouts = _check_rates(rates), _check_dropouts(dropouts)
    if not isinstance(seeds, tuple | list) or not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be a non-empty list of distinct seeds, got {seeds!r}")
    changes = factor_changes(n_automata)
    return [
        (factor, RunConfig.from_dict(
            _baseline(m, n_automata, s, rates[m], dropouts[m]).to_dict() | changes[factor]))
        for s in seeds
        for factor in FACTORS
        for m in FACTOR_MODELS
    ]


def factor_run_dir(root: str | os.PathLike[str], factor: str, config: RunConfig) -> Path:
    """``root/<factor>/<model>_N<n>_seed<s>_lr<lr>[_drop<p>]``."""
    if factor not in FACTORS:
        raise ValueError(f"factor must be one of {FACTORS}, got {factor!r}")
    return run_dir(Path(root) / factor, config)


def _rates(rates: dict[str, float] | None) -> dict[str, float]:
    return _check_rates(load_sweep()["chosen_learning_rates"] if rates is None else rates)


def run_factors(
    root: str | os.PathLike[str] = "runs/regbench_factors",
    jobs: int = 2,
    seeds: tuple[int, ...] = FACTOR_SEEDS,
    n_automata: int = FACTOR_N,
    rates: dict[str, float] | None = None,
    dropouts: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Train every run of the table (``jobs`` processes of one thread; finished runs skipped,
    interrupted ones resumed), then write and return the table (``root/factors.json``).
    ``rates``: the learning rates by model (default: the shipped sweep's chosen rates);
    ``dropouts`` likewise (default 0; see :func:`tuned_settings`)."""
    rates = _rates(rates)
    configs = factor_configs(rates, tuple(seeds), n_automata, dropouts)
    run_jobs([(factor_run_dir(root, f, c), c) for f, c in configs], jobs)
    return collect_factors(root, Path(root) / "factors.json", seeds, n_automata, rates, dropouts)


def estimated_cpu_seconds(
    seeds: tuple[int, ...] = FACTOR_SEEDS, n_automata: int = FACTOR_N
) -> dict[str, float]:
    """The CPU seconds of every run of the table from :data:`STEP_CPU_SECONDS` (measured at
    N = 100: the cost of a step does not depend on N), keyed ``<factor>/<model>_seed<s>``, and
    ``"total"``. A run: ``steps`` steps, ``steps // eval_every`` validations, then two
    validations and two test scorings."""
    out: dict[str, float] = {}
    for factor, c in factor_configs({m: 1e-3 for m in FACTOR_MODELS}, tuple(seeds), n_automata):
        step, validation, test = STEP_CPU_SECONDS[factor][c.model]
        evaluations = c.steps // (c.eval_every or c.steps)
        out[f"{factor}/{c.model}_seed{c.seed}"] = c.steps * step + (evaluations + 2) * validation + 2 * test
    out["total"] = sum(out.values())
    return out


def _stats(values: list[float]) -> dict[str, Any]:
    return {"values": values, "mean": sum(values) / len(values), "min": min(values), "max": max(values)}


def collect_factors(
    root: str | os.PathLike[str],
    out: str | os.PathLike[str],
    seeds: tuple[int, ...] = FACTOR_SEEDS,
    n_automata: int = FACTOR_N,
    rates: dict[str, float] | None = None,
    dropouts: dict[str, float] | None = None,
) -> dict[str, Any]:
    """The table of the finished runs under ``root``, written to ``out`` (JSON) and returned.

    ``table["factors"][factor]`` holds ``changes`` (the fields it changes) and, per model with at
    least one finished seed, ``{"seeds": [...], "best_step": [...], "best": {"accuracy": s,
    "tvd": s}, "last": {...}}`` where each ``s`` is ``{"values": one per seed, "mean", "min",
    "max"}`` of the test scores (500 test automata unless the runs scored fewer) of the
    best-validation weights (``best``) or the last step's (``last``). Unfinished runs are listed
    in ``missing``; ``paper`` holds the paper's (accuracy, TVD) at this N where it has one.
    """
    rates = _rates(rates)
    table: dict[str, Any] = {
        "protocol": {
            "n_automata": n_automata, "seeds": list(seeds), "models": list(FACTOR_MODELS),
            "eval_every": EVAL_EVERY, "baseline_steps": SWEEP_STEPS,
            "best": "the weights with the lowest validation TVD over the evaluations",
            "last": "the weights of the last step (the course's protocol)",
        },
        "chosen_learning_rates": rates,
        "dropouts": _check_dropouts(dropouts),
        "paper": {m: list(PAPER_NUMBERS[m][n_automata]) for m in FACTOR_MODELS
                  if n_automata in PAPER_NUMBERS[m]},
        "factors": {},
        "missing": [],
    }  # fmt: skip
    changes = factor_changes(n_automata)
    finished: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for factor, config in factor_configs(rates, tuple(seeds), n_automata, dropouts):
        path = factor_run_dir(root, factor, config)
        result = read_result(path)
        if result is None:
            table["missing"].append(f"{factor}/{path.name}")
            continue
        if result.get("config") != config.to_dict() or "test_best" not in result:
            raise ValueError(f"{path} holds another run (config {result.get('config')}): move it away")
        finished.setdefault((factor, config.model), []).append(result)
    for factor in FACTORS:
        models: dict[str, Any] = {}
        for model in FACTOR_MODELS:
            results = sorted(finished.get((factor, model), []), key=lambda r: r["config"]["seed"])
            if not results:
                continue
            models[model] = {
                "seeds": [r["config"]["seed"] for r in results],
                "best_step": [r["best_step"] for r in results],
                **{
                    which: {m: _stats([float(r[key][m]) for r in results]) for m in ("accuracy", "tvd")}
                    for which, key in (("best", "test_best"), ("last", "test_last"))
                },
            }
        table["factors"][factor] = {"changes": changes[factor], "models": models}
    with atomic_path(Path(out)) as tmp:
        tmp.write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
    return table
