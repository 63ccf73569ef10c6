"""Command line: train and evaluate three-moons runs, writing small checkpoints + metrics.

    python -m mosaics_edu.moons train --out DIR --seeds 0 1 2 --units 3 1 --tasks standard variant

Each run writes ``DIR/moons_<task>_<units>u_seed<seed>.pt`` (weights) and ``.json`` (config,
seed, training history, metrics), atomically. The shipped results were made with
``--out mosaics_edu/assets`` (see the chapter 03 closing note for the exact commands).
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from .runs import EvalSettings, train_and_save
from .train import MoonsConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mosaics_edu.moons", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train", help="train, evaluate and save runs")
    tr.add_argument("--out", required=True, help="output folder")
    tr.add_argument("--seeds", type=int, nargs="+", default=[0])
    tr.add_argument("--units", type=int, nargs="+", default=[3, 1], choices=[1, 3])
    tr.add_argument("--tasks", nargs="+", default=["standard"], choices=["standard", "variant"])
    tr.add_argument("--steps", type=int, default=500)
    tr.add_argument("--batch-size", type=int, default=64)
    tr.add_argument("--eval-windows", type=int, default=EvalSettings.n_windows)
    tr.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    tr.add_argument("--progress", action="store_true", help="show a progress bar per run")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    settings = EvalSettings(n_windows=args.eval_windows)
    for task in args.tasks:
        for seed in args.seeds:
            for units in args.units:
                config = MoonsConfig(n_units=units, task=task, seed=seed, steps=args.steps,
                                     batch_size=args.batch_size)
                t0 = time.perf_counter()
                path = train_and_save(config, args.out, settings, progress=args.progress)
                print(f"{config.name}: wrote {path} in {time.perf_counter() - t0:.0f} s",
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
