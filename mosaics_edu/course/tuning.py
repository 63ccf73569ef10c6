"""Fair fights: the tuning discipline every mosaic-vs-baseline comparison of the course follows.

A comparison ships its evidence as ``mosaics_edu/assets/<comparison>/tuning.json``::

    {
      "comparison": "stories",                  # the folder's name
      "metric": "validation loss (nats/token)", # what ``val`` is
      "higher_is_better": false,
      "setting_keys": ["lr", "dropout"],        # the hyper-parameters that were tuned
      "commands": ["python tools/sweep_stories.py --jobs 2"],   # what made the file (resumable)
      "cpu_seconds": 12345.0,                   # what the whole sweep cost
      "runs": [{"model": "gpt", "lr": 0.006, "dropout": 0.1, "seed": 0, "val": 0.57,
                "steps": 1500, ...}, ...],      # every run tried, on the *validation* split
      "chosen": {"gpt": {"lr": 0.006, "dropout": 0.1}, "mosaic": {...}}
    }

The rules (:func:`problems` lists every broken one; a test runs it on every shipped file):

1. each model's chosen setting has the best mean validation score of all its settings (the mean
   over the seeds that setting was run with);
2. the chosen learning rate lies strictly inside the grid of learning rates tried at the chosen
   values of the other keys, and that grid has at least ``MIN_LRS`` rates;
3. the chosen setting was run with at least ``MIN_SEEDS`` seeds;
4. the same tuning budget for every model: if ``dropout`` is tuned, every model tried the same
   dropout values (0 and 0.1 among them), and no model tried more than ``BUDGET_SLACK`` times as
   many settings as another.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import defaultdict
from pathlib import Path

__all__ = [
    "MIN_LRS",
    "MIN_SEEDS",
    "BUDGET_SLACK",
    "REQUIRED_DROPOUTS",
    "load",
    "problems",
    "setting_scores",
    "best_setting",
    "summary",
    "grid_table",
    "shipped_files",
    "REQUIRED_COMPARISONS",
]

MIN_LRS = 4
MIN_SEEDS = 3
BUDGET_SLACK = 1.25  # one model may try up to 25 % more settings (a grid extended at one edge)
REQUIRED_DROPOUTS = (0.0, 0.1)
ASSETS = Path(__file__).resolve().parents[1] / "assets"
# Every mosaic-vs-baseline comparison the course ships, by its folder under assets/: chapter 05's
# one-block pair ("one_block"), the chapter 06 and 08 story models ("stories"), chapter 07's
# RegBench-mini sweep ("regbench"), chapter 09's length-extrapolation runs ("v2").
REQUIRED_COMPARISONS: tuple[str, ...] = ("one_block", "stories", "regbench", "v2")


def shipped_files() -> list[Path]:
    """Every ``tuning.json`` the package ships, one per comparison."""
    return sorted(ASSETS.glob("*/tuning.json"))


def load(path: str | Path) -> dict:
    """Read a ``tuning.json``; a missing or unreadable file is refused with its path."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"tuning file {path} not found: run the commands of its comparison "
                                "(see CONTRIBUTING.md, 'Fair fights').")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"tuning file {path} is not valid JSON ({exc}); re-run its sweep.") from exc


def _setting(run: dict, keys: list[str]) -> tuple:
    return tuple(run[k] for k in keys)


def setting_scores(data: dict, model: str) -> dict[tuple, list[float]]:
    """Validation scores of ``model``'s runs grouped by setting (values of ``setting_keys``)."""
    keys = data["setting_keys"]
    out: dict[tuple, list[float]] = defaultdict(list)
    for run in data["runs"]:
        if run["model"] == model:
            out[_setting(run, keys)].append(float(run["val"]))
    return dict(out)


def best_setting(data: dict, model: str) -> tuple:
    """The setting with the best mean validation score (ties: the first in sorted order)."""
    scores = setting_scores(data, model)
    if not scores:
        raise ValueError(f"no runs of model {model!r} in this tuning file")
    sign = -1.0 if data["higher_is_better"] else 1.0
    return min(sorted(scores, key=repr), key=lambda s: sign * statistics.fmean(scores[s]))


def summary(data: dict) -> dict[str, dict]:
    """Per model: its chosen setting, and the mean, spread (sample std) and values over seeds."""
    keys = data["setting_keys"]
    out = {}
    for model, chosen in data["chosen"].items():
        vals = setting_scores(data, model).get(tuple(chosen[k] for k in keys), [])
        out[model] = {
            "setting": dict(chosen),
            "n_seeds": len(vals),
            "mean": statistics.fmean(vals) if vals else math.nan,
            "std": statistics.stdev(vals) if len(vals) > 1 else math.nan,
            "values": vals,
        }
    return out


def problems(data: dict) -> list[str]:
    """Every rule of the module docstring that ``data`` breaks (empty: a fair fight)."""
    found = []
    for field in ("comparison", "metric", "higher_is_better", "setting_keys", "commands", "runs",
                  "chosen"):
        if field not in data:
            found.append(f"missing field {field!r}")
    if found:
        return found
    keys = list(data["setting_keys"])
    if "lr" not in keys:
        found.append("setting_keys must include 'lr': the learning rate is always tuned")
    if not data["commands"]:
        found.append("'commands' is empty: say how the runs were made")
    for i, run in enumerate(data["runs"]):
        missing = [k for k in ["model", "seed", "val", "steps", *keys] if k not in run]
        if missing:
            found.append(f"run {i} lacks {missing}")
        elif not math.isfinite(float(run["val"])):
            found.append(f"run {i} ({run['model']}) has a non-finite validation score {run['val']}")
    if found:
        return found
    budgets = {}
    for model, chosen in data["chosen"].items():
        scores = setting_scores(data, model)
        if not scores:
            found.append(f"{model}: chosen but never run")
            continue
        budgets[model] = len(scores)
        want = tuple(chosen.get(k) for k in keys)
        if want not in scores:
            found.append(f"{model}: the chosen setting {chosen} was never run")
            continue
        best = best_setting(data, model)
        if best != want:
            found.append(f"{model}: chosen {dict(zip(keys, want, strict=True))} (mean "
                         f"{statistics.fmean(scores[want]):.4g}) but {dict(zip(keys, best, strict=True))} "
                         f"has the better mean {statistics.fmean(scores[best]):.4g}")
        others = [k for k in keys if k != "lr"]
        lrs = sorted({s[keys.index("lr")] for s in scores
                      if all(s[keys.index(k)] == chosen[k] for k in others)})
        if len(lrs) < MIN_LRS:
            found.append(f"{model}: only {len(lrs)} learning rates {lrs} at the chosen "
                         f"{ {k: chosen[k] for k in others} }; try at least {MIN_LRS}")
        if lrs and not lrs[0] < chosen["lr"] < lrs[-1]:
            found.append(f"{model}: the chosen lr {chosen['lr']} is at the edge of the grid {lrs}: "
                         "extend the grid past it")
        seeds = {r["seed"] for r in data["runs"]
                 if r["model"] == model and _setting(r, keys) == want}
        if len(seeds) < MIN_SEEDS:
            found.append(f"{model}: {len(seeds)} seed(s) at the chosen setting; run at least "
                         f"{MIN_SEEDS}")
    if "dropout" in keys:
        tried = {m: {r["dropout"] for r in data["runs"] if r["model"] == m} for m in data["chosen"]}
        for model, values in tried.items():
            lacking = [d for d in REQUIRED_DROPOUTS if d not in values]
            if lacking:
                found.append(f"{model}: dropout {lacking} never tried (each model gets "
                             f"{list(REQUIRED_DROPOUTS)} at least)")
        if len({frozenset(v) for v in tried.values()}) > 1:
            found.append(f"the models tried different dropout values: {tried}")
    if budgets and max(budgets.values()) > BUDGET_SLACK * min(budgets.values()):
        found.append(f"unequal tuning budgets (settings tried per model): {budgets}")
    return found


def grid_table(
    data: dict, model: str, unit: str, lrs: list[float] | None = None, score: str = "validation loss"
) -> str:
    """``model``'s seed-0 validation scores as a dropout × learning-rate table (one row when
    dropout was not tuned), then its chosen setting with the mean ± sample std over its seeds:
    the text chapters print.

    ``lrs``: the columns (default: the rates ``model`` tried; pass both models' rates to align
    two tables). A rate the model did not try at some dropout leaves its cell blank. ``score``: what
    the numbers are, for the title.
    """
    grid = [r for r in data["runs"] if r["model"] == model and r["seed"] == 0]
    lrs = sorted({r["lr"] for r in grid}) if lrs is None else list(lrs)
    tuned_dropout = "dropout" in data["setting_keys"]
    lines = [f"{model}: {score} at seed 0 ({unit})",
             ("  dropout \\ lr " if tuned_dropout else "  lr           ")
             + "".join(f"{lr:>8g}" for lr in lrs)]  # fmt: skip
    for dropout in sorted({r["dropout"] for r in grid}) if tuned_dropout else [None]:
        row = {r["lr"]: r["val"] for r in grid if not tuned_dropout or r["dropout"] == dropout}
        label = f"{dropout:12g}" if tuned_dropout else f"{'val':>12}"
        lines.append(f"  {label} " + "".join(f"{row[lr]:8.3f}" if lr in row else " " * 8 for lr in lrs))
    t = summary(data)[model]
    chosen = f"lr {t['setting']['lr']:g}"
    if tuned_dropout:
        chosen += f", dropout {t['setting']['dropout']:g}"
    lines.append(f"  chosen: {chosen}; over its {t['n_seeds']} seeds {t['mean']:.3f} ± {t['std']:.3f} "
                 "(mean ± standard deviation)")
    return "\n".join(lines)
