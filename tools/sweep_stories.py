"""Fair-fight sweeps of the two story comparisons: tune the mosaic and the GPT with one budget.

    nohup nice -n 10 python tools/sweep_stories.py --comparison one_block --jobs 1 > one_block.log 2>&1 &
    nohup nice -n 10 python tools/sweep_stories.py --comparison stories --jobs 1 > stories.log 2>&1 &
    python tools/sweep_stories.py --comparison stories --status     # what is done, what is next
    python tools/sweep_stories.py --comparison stories --write      # assets/stories/tuning.json

Comparisons (``COMPARISONS``):

- ``one_block``: chapter 05's pair, one block of width 64, 4 heads, context 256, characters,
  batch 8, 600 steps (the chapter's own recipe, ``TrainConfig.from_preset("cpu-tiny", ...)``);
- ``stories``: the chapter 06 and 08 story models, 2 blocks, width 64, 4 heads, context 256, BPE
  with 1,024 tokens, batch 16, 1,500 steps: exactly the command line of
  ``tools/train_story_models.sh``, with the learning rate, dropout and seed of each run.

The procedure (:func:`next_runs`), the same for both models of a comparison, repeated until it
asks for nothing: (1) every learning rate of ``LRS`` times every dropout of ``DROPOUTS`` at seed
0; (2) if a model's best setting (best mean validation loss over the seeds run) has its learning
rate at the edge of the rates tried at its dropout, the next rate beyond that edge (x2 or /2) at
that dropout; (3) otherwise seeds 1 and 2 at the best setting (a setting whose mean over 3 seeds
falls behind another setting's single seed hands the lead to that one, which then gets its seeds
too). ``stories`` then trains one long GPT run at its chosen setting (``LONG_STEPS``, seed 0), to
see whether an induction head forms later (``tools/score_story_runs.py`` scores it).

The score (``val``) is the validation loss over the whole validation stream
(:func:`mosaics_edu.course.compare.stream_loss`: every non-overlapping window of the 400 validation
stories), never the test split. Each run is one subprocess on one thread (``--jobs`` of them at
a time); a run writes its checkpoint at every evaluation and resumes from it, writes
``result.json`` atomically when it finishes and appends the same line to ``results.jsonl``; a
run whose ``result.json`` exists is skipped, so the sweep resumes where it stopped. The CPU
seconds of every run (its process's user + system time, summed over restarts) are recorded.
``stories`` runs also keep their weights every 100 steps (``snapshots/``) for the induction
curves.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mosaics_edu.core.atomic import atomic_path, atomic_write_bytes  # noqa: E402
from mosaics_edu.course import tuning  # noqa: E402
from mosaics_edu.course.compare import stream_loss  # noqa: E402
from mosaics_edu.training import TrainConfig, prepare_data, train  # noqa: E402
from mosaics_edu.training.cli import parse_config  # noqa: E402

MODELS = ("mosaic", "gpt")
SEEDS = (0, 1, 2)


@dataclass(frozen=True)
class Comparison:
    """One comparison's grid and recipe."""

    name: str
    lrs: tuple[float, ...]
    dropouts: tuple[float, ...]
    steps: int
    snapshot_every: int = 0  # keep the weights every N steps (0: never)
    long_steps: int = 0  # one long GPT run at its chosen setting (0: none)
    metric: str = ""
    notes: list[str] = field(default_factory=list)


COMPARISONS = {
    "one_block": Comparison(
        "one_block", lrs=(1.5e-3, 3e-3, 6e-3, 1.2e-2), dropouts=(0.0, 0.1), steps=600,
        metric="validation loss (nats per character) over every non-overlapping 256-character "
        "window of the 400 validation stories; lower is better",
    ),
    "stories": Comparison(
        "stories", lrs=(1.5e-3, 3e-3, 6e-3, 1.2e-2), dropouts=(0.0, 0.1), steps=1500,
        snapshot_every=100, long_steps=6000,
        metric="validation loss (nats per BPE token) over every non-overlapping 256-token window "
        "of the 400 validation stories; lower is better",
    ),
}  # fmt: skip

# tools/train_story_models.sh's flags, minus what a run sets (model, lr, dropout, seed, out dir)
STORY_FLAGS = [
    "--preset", "cpu-tiny", "--data", "stories", "--tokenizer", "bpe", "--bpe-vocab-size", "1024",
    "--n-train-stories", "4000", "--n-valid-stories", "400",
    "--n-layer", "2", "--n-head", "4", "--n-embd", "64", "--block-size", "256",
    "--batch-size", "16", "--min-lr", "1e-4", "--warmup-steps", "150",
    "--eval-interval", "100", "--eval-batches", "10", "--log-interval", "50",
    "--threads", "1", "--device", "cpu", "--dtype", "float32", "--no-progress",
]  # fmt: skip
STORY_PMEM = 288  # the mosaic's persistent memory pays for the GPT's position table (see the .sh)


def runs_dir(comparison: str) -> Path:
    return ROOT / "runs" / "sweeps" / comparison


def run_name(model: str, lr: float, dropout: float, seed: int, steps: int, default_steps: int) -> str:
    tail = "" if steps == default_steps else f"_steps{steps}"
    return f"{model}_lr{lr:g}_do{dropout:g}_s{seed}{tail}"


def make_config(comparison: str, model: str, lr: float, dropout: float, seed: int, steps: int,
                out_dir: Path) -> TrainConfig:
    """The training config of one run (the same recipe for both models but lr, dropout, seed)."""
    if comparison == "stories":
        argv = ["--model", model, *STORY_FLAGS, "--max-steps", str(steps), "--lr", repr(lr),
                "--dropout", repr(dropout), "--seed", str(seed), "--out-dir", str(out_dir)]
        if model == "mosaic":
            argv += ["--pmem-size", str(STORY_PMEM)]
        return parse_config(argv)[0]
    if comparison == "one_block":  # chapter 05, sections 3-4
        width, heads, context = 64, 4, 256
        shared = dict(n_layer=1, n_embd=width, n_head=heads, block_size=context, dropout=dropout)
        ov = dict(shared, pmem_size=int(3.5 * width) + context // 2) if model == "mosaic" else shared
        return TrainConfig.from_preset(
            "cpu-tiny", model=model, model_overrides=ov, batch_size=8, max_steps=steps,
            warmup_steps=steps // 10, eval_interval=100, eval_batches=10, threads=1, seed=seed,
            lr=lr, out_dir=str(out_dir))  # fmt: skip
    raise ValueError(f"comparison must be one of {sorted(COMPARISONS)}, got {comparison!r}")


# --------------------------------------------------------------------------------------------
# one run (in its own process)
# --------------------------------------------------------------------------------------------


def _cpu_now() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run_one(comparison: str, model: str, lr: float, dropout: float, seed: int, steps: int) -> dict:
    """Train one run (resuming it if it was interrupted), score it, write its result."""
    spec = COMPARISONS[comparison]
    name = run_name(model, lr, dropout, seed, steps, spec.steps)
    out = runs_dir(comparison) / name
    out.mkdir(parents=True, exist_ok=True)
    progress_file = out / "progress.json"
    # CPU seconds of the earlier processes of this run (it may have been interrupted)
    cpu_before = json.loads(progress_file.read_text())["cpu_s"] if progress_file.exists() else 0.0

    def save_progress(step: int) -> None:  # this process's CPU time counts from its start
        info = {"step": step, "cpu_s": cpu_before + _cpu_now()}
        atomic_write_bytes(progress_file, json.dumps(info).encode())

    torch.set_num_threads(1)
    config = make_config(comparison, model, lr, dropout, seed, steps, out)
    ckpt = out / "ckpt.pt"
    every = spec.snapshot_every
    stops = list(range(0, steps, every)) + [steps] if every else [steps]
    result = None
    for stop in stops:
        snap = out / "snapshots" / f"step{stop:05d}.pt"
        if every and snap.exists() and stop < steps:
            continue
        result = train(config, resume=ckpt if ckpt.exists() else None, progress=False,
                       until=stop if stop < steps else None)
        if every:
            with atomic_path(snap) as tmp:
                torch.save({k: v.detach().clone() for k, v in result.model.state_dict().items()}, tmp)
        save_progress(stop)
    assert result is not None
    model_ = result.model.eval()
    data = prepare_data(config)
    val = stream_loss(model_, data.valid, model_.config.block_size)
    evals = [h for h in result.history if h["kind"] == "eval"]
    save_progress(steps)
    row = {
        "model": model, "lr": lr, "dropout": dropout, "seed": seed, "steps": steps, "val": val,
        "val_logged": evals[-1]["val_loss"], "train_logged": evals[-1]["train_loss"],
        "cpu_seconds": round(json.loads(progress_file.read_text())["cpu_s"], 1), "run": name,
    }  # fmt: skip
    atomic_write_bytes(out / "result.json", json.dumps(row, indent=1).encode())
    line = (json.dumps(row) + "\n").encode()
    fd = os.open(runs_dir(comparison) / "results.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)  # one write of one short line: appended whole
    finally:
        os.close(fd)
    return row


# --------------------------------------------------------------------------------------------
# the procedure
# --------------------------------------------------------------------------------------------


def results(comparison: str) -> list[dict]:
    """Every finished run of a comparison (its ``result.json`` files)."""
    return [json.loads(p.read_text()) for p in sorted(runs_dir(comparison).glob("*/result.json"))]


def as_tuning(comparison: str, rows: list[dict]) -> dict:
    """The ``tuning.json`` content of these results (chosen = best mean validation loss)."""
    spec = COMPARISONS[comparison]
    tuned = [r for r in rows if r["steps"] == spec.steps]
    data = {
        "comparison": comparison, "metric": spec.metric, "higher_is_better": False,
        "setting_keys": ["lr", "dropout"],
        "commands": [f"nice -n 10 python tools/sweep_stories.py --comparison {comparison} --jobs 1",
                     f"python tools/sweep_stories.py --comparison {comparison} --write"],
        "cpu_seconds": round(sum(r["cpu_seconds"] for r in tuned), 1),
        "grid": {"lrs": list(spec.lrs), "dropouts": list(spec.dropouts), "seeds": list(SEEDS)},
        "runs": [{k: r[k] for k in ("model", "lr", "dropout", "seed", "steps", "val", "val_logged",
                                    "train_logged", "cpu_seconds")} for r in tuned],
        "chosen": {},
    }  # fmt: skip
    for model in MODELS:
        if any(r["model"] == model for r in tuned):
            lr, dropout = tuning.best_setting(data, model)
            data["chosen"][model] = {"lr": lr, "dropout": dropout}
    return data


def next_runs(comparison: str, rows: list[dict]) -> list[tuple]:
    """The runs the procedure asks for next, as (model, lr, dropout, seed, steps)."""
    spec = COMPARISONS[comparison]
    done = {(r["model"], r["lr"], r["dropout"], r["seed"], r["steps"]) for r in rows}
    grid = [(m, lr, d, 0, spec.steps) for m in MODELS for d in spec.dropouts for lr in spec.lrs]
    todo = [g for g in grid if g not in done]
    if todo:
        return todo
    data = as_tuning(comparison, rows)
    for model in MODELS:
        lr, dropout = tuning.best_setting(data, model)
        tried = sorted({r["lr"] for r in rows if r["model"] == model and r["dropout"] == dropout
                        and r["steps"] == spec.steps})
        if lr == tried[0]:
            todo.append((model, tried[0] / 2, dropout, 0, spec.steps))
        elif lr == tried[-1]:
            todo.append((model, tried[-1] * 2, dropout, 0, spec.steps))
        else:
            todo += [(model, lr, dropout, s, spec.steps) for s in SEEDS
                     if (model, lr, dropout, s, spec.steps) not in done]
    if todo or not spec.long_steps:
        return todo
    chosen = data["chosen"]["gpt"]
    long_run = ("gpt", chosen["lr"], chosen["dropout"], 0, spec.long_steps)
    return [] if long_run in done else [long_run]


def _launch(comparison: str, run: tuple) -> dict:
    model, lr, dropout, seed, steps = run
    name = run_name(model, lr, dropout, seed, steps, COMPARISONS[comparison].steps)
    out = runs_dir(comparison) / name
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    child = [sys.executable, __file__, "--comparison", comparison, "--child", json.dumps(run)]
    t0 = time.time()
    with open(out / "log.txt", "a") as log:
        proc = subprocess.run(child, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"run {name} failed (exit {proc.returncode}); see {out / 'log.txt'}")
    row = json.loads((out / "result.json").read_text())
    print(f"{time.strftime('%H:%M:%S')} done {name}: val {row['val']:.4f} (logged {row['val_logged']:.4f}, "
          f"train {row['train_logged']:.4f}), {row['cpu_seconds']:.0f} CPU-s, "
          f"{time.time() - t0:.0f} s wall", flush=True)
    return row


def sweep(comparison: str, jobs: int, max_cpu_hours: float) -> None:
    while True:
        rows = results(comparison)
        spent = sum(r["cpu_seconds"] for r in rows)
        todo = next_runs(comparison, rows)
        if not todo:
            print(f"nothing left to run: {len(rows)} runs, {spent / 3600:.2f} CPU-hours", flush=True)
            return
        if spent > max_cpu_hours * 3600:
            print(f"stopping: {spent / 3600:.2f} CPU-hours spent (limit {max_cpu_hours}); next "
                  f"would be {todo}", flush=True)
            return
        print(f"{time.strftime('%H:%M:%S')} {len(rows)} runs done ({spent / 3600:.2f} CPU-hours); "
              f"next {len(todo)}: {todo}", flush=True)
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            list(pool.map(lambda r: _launch(comparison, r), todo))


def write(comparison: str) -> Path:
    data = as_tuning(comparison, results(comparison))
    problems = tuning.problems(data)
    out = ROOT / "mosaics_edu" / "assets" / comparison / "tuning.json"
    atomic_write_bytes(out, (json.dumps(data, indent=1) + "\n").encode())
    print(f"wrote {out} ({len(data['runs'])} runs, {data['cpu_seconds'] / 3600:.2f} CPU-hours)")
    print("problems:" if problems else "no problems: a fair fight", *problems, sep="\n  ")
    return out


def status(comparison: str) -> None:
    rows = results(comparison)
    for r in sorted(rows, key=lambda r: (r["model"], r["dropout"], r["lr"], r["seed"], r["steps"])):
        print(f"{r['run']:>32}: val {r['val']:.4f}  logged val {r['val_logged']:.4f}  train "
              f"{r['train_logged']:.4f}  {r['cpu_seconds']:6.0f} CPU-s")
    print(f"{sum(r['cpu_seconds'] for r in rows) / 3600:.2f} CPU-hours; next: "
          f"{next_runs(comparison, rows)}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--comparison", required=True, choices=sorted(COMPARISONS))
    p.add_argument("--jobs", type=int, default=1, help="runs at a time (one thread each)")
    p.add_argument("--max-cpu-hours", type=float, default=4.0, help="stop launching past this")
    p.add_argument("--status", action="store_true", help="print the results and the next runs")
    p.add_argument("--write", action="store_true", help="write assets/<comparison>/tuning.json")
    p.add_argument("--child", help=argparse.SUPPRESS)  # one run, in this process
    args = p.parse_args()
    if args.jobs < 1:
        raise SystemExit(f"--jobs must be >= 1, got {args.jobs}")
    if args.child:
        run_one(args.comparison, *json.loads(args.child))
    elif args.status:
        status(args.comparison)
    elif args.write:
        write(args.comparison)
    else:
        sweep(args.comparison, args.jobs, args.max_cpu_hours)


if __name__ == "__main__":
    main()
