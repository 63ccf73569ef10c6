"""Training tokens/s on this CPU: one process against two gloo processes under torchrun.

    python tools/measure_ddp_cpu.py        # a few minutes on 2 cores; writes the JSON below

For the Memory Mosaic and the GPT baseline at ``cpu-tiny`` (batch 16 x 128 tokens, 2 micro-batches
per step: a global batch of 32 sequences), three set-ups train the same steps on the same data:

- ``1 process, 1 thread``:  ``python -m mosaics_edu.train ... --grad-accum 2 --threads 1``
- ``1 process, 2 threads``: the same with ``--threads 2`` (both cores, inside one process)
- ``2 processes (gloo)``:   ``torchrun --standalone --nproc-per-node 2 -m mosaics_edu.train ...
  --grad-accum 2 --threads 1 --backend gloo`` (both cores, one micro-batch per process)

It records each run's tokens/s (wall clock, train steps only, as the trainer prints it), the
tokens per CPU-second of its train steps (rank 0's CPU time, times the number of processes), the
command line's own summary lines, the largest weight difference between the 2-process run and
the 1-process run, and the machine's load average around each run (other programs sharing the
cores lower the wall-clock numbers), into ``mosaics_edu/assets/ddp_cpu_throughput.json``, which
chapter 10 prints. Runs go to ``runs/ddp_cpu/`` (not shipped).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
OUT_JSON = ROOT / "mosaics_edu" / "assets" / "ddp_cpu_throughput.json"
RUNS = ROOT / "runs" / "ddp_cpu"
STEPS = 30
COMMON = ["--preset", "cpu-tiny", "--batch-size", "16", "--grad-accum", "2", "--max-steps",
          str(STEPS), "--eval-interval", str(STEPS), "--eval-batches", "2", "--log-interval", "10",
          "--no-progress"]  # fmt: skip
SETUPS = {
    "1 process, 1 thread": ([sys.executable, "-m", "mosaics_edu.train"], ["--threads", "1"]),
    "1 process, 2 threads": ([sys.executable, "-m", "mosaics_edu.train"], ["--threads", "2"]),
    "2 processes (gloo)": (
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "mosaics_edu.train"],
        ["--threads", "1", "--backend", "gloo"],
    ),
}  # fmt: skip


def _shown(cmd: list[str]) -> str:
    """The command as a reader types it (python / torchrun, relative paths)."""
    text = " ".join(cmd).replace(f"{sys.executable} -m torch.distributed.run", "torchrun")
    return text.replace(sys.executable, "python").replace(str(ROOT) + "/", "")


def main() -> None:
    from mosaics_edu.training import TrainConfig, prepare_data
    from mosaics_edu.training.checkpoint import load_checkpoint

    prepare_data(TrainConfig.from_preset("cpu-tiny"))  # cached: no run times the preparation
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    results: dict = {
        "made_by": "python tools/measure_ddp_cpu.py",
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "machine": f"{os.cpu_count()} CPU cores, {platform.processor() or platform.machine()}",
        "torch": torch.__version__,
        "steps": STEPS,
        "global_batch": "16 sequences x 2 micro-batches = 32 sequences of 128 tokens per step",
        "runs": [],
    }
    for model in ("mosaic", "gpt"):
        for name, (launcher, extra) in SETUPS.items():
            out = RUNS / f"{model}-{name.split(' (')[0].replace(' ', '-').replace(',', '')}"
            cmd = [*launcher, "--model", model, *COMMON, *extra, "--out-dir", str(out)]
            load_before = os.getloadavg()[0]
            done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
            if done.returncode:
                raise SystemExit(f"{_shown(cmd)} failed:\n{done.stderr[-3000:]}")
            summary = json.loads((out / "summary.json").read_text())
            tokens = summary["tokens_per_s"] * summary["train_s"]
            run = {
                "model": model, "setup": name, "command": _shown(cmd),
                "tokens_per_s": round(summary["tokens_per_s"]),
                "tokens_per_cpu_s": round(tokens / (summary["train_cpu_s"] * summary["world_size"])),
                "load_avg_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                "val_loss": round(summary["val_loss"], 4),
                "out_dir": str(out.relative_to(ROOT)),
                "printed": [line for line in done.stdout.splitlines()
                            if line.startswith(("global batch", "throughput"))],
            }  # fmt: skip
            results["runs"].append(run)
            print(json.dumps(run), flush=True)
        one = load_checkpoint(RUNS / f"{model}-1-process-1-thread" / "ckpt.pt")["model"]
        two = load_checkpoint(RUNS / f"{model}-2-processes" / "ckpt.pt")["model"]
        diff = max(float((one[k] - two[k]).abs().max()) for k in one)
        results[f"{model}_max_weight_diff_2proc_vs_1proc"] = diff
        print(f"{model}: max |weight difference| 2 processes vs 1 = {diff:.3g}", flush=True)
    OUT_JSON.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {OUT_JSON.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
