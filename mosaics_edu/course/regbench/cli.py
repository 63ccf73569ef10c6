"""``python -m mosaics_edu.regbench``: train one RegBench-mini run, or score the n-gram baselines.

    python -m mosaics_edu.regbench train --model mosaic --n-automata 100 --seed 0
    python -m mosaics_edu.regbench baselines
    python -m mosaics_edu.regbench ship --root runs/regbench_sweep   # copy results into the package
    python -m mosaics_edu.regbench factors --root runs/regbench_factors --jobs 2   # see factors.py
    python -m mosaics_edu.regbench tune --root runs/regbench_factors --jobs 2      # see fair.py

``train`` resumes an interrupted run in the same folder (``--out``, default
``runs/regbench/<model>_N<n>_seed<seed>``) and prints the path of its ``result.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields

import torch

from .datasets import N_TEST
from .factors import FACTOR_N, FACTOR_SEEDS, collect_factors, run_factors, tuned_settings
from .matched import MODEL_NAMES
from .metrics import evaluate
from .ngram import InContextNGram
from .sweep import SWEEP_STEPS, collect, run_sweep
from .train import SAMPLE_SIZES, RunConfig, default_run_dir, train_run

_DEFAULTS = {f.name: f.default for f in fields(RunConfig) if f.name not in ("model", "n_automata")}
_TYPES = {"eval_every": int}  # fields whose default (None) does not give the type
_CHOICES = {"sizes": tuple(SAMPLE_SIZES)}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mosaics_edu.regbench", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train one model on N training automata, then score it")
    t.add_argument("--model", required=True, choices=MODEL_NAMES)
    t.add_argument("--n-automata", required=True, type=int, help="N, the number of training automata")
    for name, default in _DEFAULTS.items():
        t.add_argument(
            "--" + name.replace("_", "-"), type=_TYPES.get(name, type(default)), default=default,
            choices=_CHOICES.get(name), help=f"default {default}",
        )  # fmt: skip
    t.add_argument("--out", default=None, help="run folder (default runs/regbench/<model>_N<n>_seed<seed>)")
    t.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    w = sub.add_parser("sweep", help="the whole sweep of chapter 07 (resumable): rates, then every N")
    w.add_argument("--root", default="runs/regbench_sweep", help="folder of the runs")
    w.add_argument("--jobs", type=int, default=2, help="runs at once, one thread each (default 2)")
    w.add_argument("--steps", type=int, default=SWEEP_STEPS, help=f"steps per run (default {SWEEP_STEPS})")
    c = sub.add_parser("collect", help="gather the sweep's finished runs into one JSON file")
    c.add_argument("--root", default="runs/regbench_sweep", help="folder of the runs")
    c.add_argument("--steps", type=int, default=SWEEP_STEPS, help=f"steps per run (default {SWEEP_STEPS})")
    c.add_argument("--out", required=True, help="the JSON file to write")
    s = sub.add_parser(
        "ship", help="copy the sweep's results and the N=100 and N=10000 mosaic/GPT runs into the package"
    )
    s.add_argument("--root", default="runs/regbench_sweep", help="folder of the runs")
    s.add_argument("--steps", type=int, default=SWEEP_STEPS, help=f"steps per run (default {SWEEP_STEPS})")
    f = sub.add_parser("factors", help="the N=100 protocol-factor runs (resumable), then their table")
    f.add_argument("--root", default="runs/regbench_factors", help="folder of the runs")
    f.add_argument("--jobs", type=int, default=2, help="runs at once, one thread each (default 2)")
    f.add_argument("--seeds", type=int, nargs="+", default=list(FACTOR_SEEDS), help="default 0 1")
    f.add_argument("--n-automata", type=int, default=FACTOR_N, help=f"N (default {FACTOR_N})")
    f.add_argument("--collect", action="store_true", help="only write the table of the finished runs")
    f.add_argument("--out", default=None, help="the table's JSON file (default <root>/factors.json)")
    f.add_argument("--tuning", default=None,
                   help="a tuning.json (regbench tune) whose chosen lr and dropout to use (default: the "
                   "shipped sweep's rates, dropout 0)")  # fmt: skip
    u = sub.add_parser("tune", help="the N=100 fair fight (resumable): lr x dropout grid, then seeds")
    u.add_argument("--root", default="runs/regbench_factors", help="folder of the runs (shared with factors)")
    u.add_argument("--jobs", type=int, default=2, help="runs at once, one thread each (default 2)")
    u.add_argument("--collect", action="store_true", help="only write tuning.json from the finished runs")
    u.add_argument("--out", default=None, help="the tuning file (default <root>/tuning.json)")
    b = sub.add_parser("baselines", help="score the in-context n-gram predictors on the test set")
    b.add_argument("--n", type=int, nargs="+", default=[1, 2, 3], help="the orders n (default 1 2 3)")
    b.add_argument("--n-eval", type=int, default=N_TEST, help=f"test automata to use (default {N_TEST})")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "sweep":
        try:
            run_sweep(args.root, jobs=args.jobs, steps=args.steps)
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        return 0
    if args.command == "factors":
        out = args.out or f"{args.root}/factors.json"
        try:
            rates, dropouts = tuned_settings(args.tuning) if args.tuning else (None, None)
            at = (tuple(args.seeds), args.n_automata, rates, dropouts)
            if args.collect:
                table = collect_factors(args.root, out, *at)
            else:
                table = run_factors(args.root, args.jobs, *at)
                if args.out:
                    table = collect_factors(args.root, out, *at)
        except (ValueError, FileNotFoundError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        print(f"table -> {out}; missing: {table['missing'] or 'none'}")
        return 0
    if args.command == "tune":
        from .fair import collect_tuning, run_tuning

        try:
            data = (collect_tuning if args.collect else run_tuning)(args.root, **(
                {"out": args.out} if args.collect else {"jobs": args.jobs, "out": args.out}))
        except (ValueError, FileNotFoundError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        out = args.out or f"{args.root}/tuning.json"
        print(f"{len(data['runs'])} runs; chosen {data['chosen']} -> {out}")
        return 0
    if args.command == "collect":
        record = collect(args.root, args.out, steps=args.steps)
        print(f"{len(record['runs'])} runs -> {args.out}; missing: {record['missing'] or 'none'}")
        return 0
    if args.command == "ship":
        from .shipped import ASSETS, ship

        record = ship(args.root, steps=args.steps)
        print(f"{len(record['runs'])} runs -> {ASSETS}; missing: {record['missing'] or 'none'}")
        return 0
    if args.command == "baselines":
        from .datasets import test_automata

        for n in args.n:
            print(f"{n}-gram: {evaluate(InContextNGram(n), test_automata()[: args.n_eval])}")
        return 0
    values = {name: getattr(args, name) for name in _DEFAULTS}
    try:
        config = RunConfig(model=args.model, n_automata=args.n_automata, **values)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.threads < 1:
        print("error: --threads must be >= 1", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    out = args.out or default_run_dir(config)
    result = train_run(config, out, progress=not args.no_progress)  # no stop_at: always a result
    keys = ("parameters", "validation", "test", "best_step", "test_best", "train_seconds")
    print(json.dumps({k: result[k] for k in keys if k in result}))
    print(f"result: {out}/result.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
