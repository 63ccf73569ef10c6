"""Three moons on this CPU: the cost of a training step with and without subnormal numbers, and of
chapter 03's retrain test.

    OMP_NUM_THREADS=1 python tools/bench_moons.py                  # step times, ~5 minutes
    OMP_NUM_THREADS=1 python tools/bench_moons.py --runs           # + whole 500-step runs, seed 0
    OMP_NUM_THREADS=1 python tools/bench_moons.py --retrain-test   # + the slow retrain test
    OMP_NUM_THREADS=1 python tools/bench_moons.py --retrain-test --before REV  # ... also at REV

Everything runs on one math thread, as the shipped runs were trained. Each comparison runs in
this one process, side by side:

- **steps**: one training step (forward, clipped loss, backward, AdamW) on a fixed batch of 64
  training windows, for both models at initialisation and at the shipped seed-0 weights, and for
  a mosaic seed whose units each read one moon (sharp keys). "before" computes with subnormal
  numbers as they come (as the package did until it flushed them); "after" runs inside
  :func:`mosaics_edu.course.moons.subnormal.flush_subnormals`, as ``train_moons`` does now. Reported:
  the fastest and the median of ``--repeats`` steps, in CPU seconds of this thread (what the
  step costs, whatever else the machine runs) and in wall seconds.
- **runs** (``--runs``): ``train_moons`` of seed 0, both models, 500 steps (the paper's recipe),
  before (its undecorated body, subnormals as they come) and after; CPU seconds of the whole run.
- **retrain test** (``--retrain-test``): ``pytest -m slow tests/course/test_moons.py::
  test_chapter_assertions_hold_on_models_retrained_from_scratch`` in a subprocess; its wall time
  and the CPU time of its whole process tree (pytest and the notebook's kernel, polled every
  0.5 s). With ``--before REV`` the same test also runs on the tree of commit REV (exported with
  ``git archive`` into a temporary folder and imported from there).

The load average (``/proc/loadavg``) is printed before and after each part: with other programs
on the cores, wall times grow and CPU times grow a little (shared caches).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RETRAIN_TEST = "tests/course/test_moons.py::test_chapter_assertions_hold_on_models_retrained_from_scratch"


def load() -> str:
    """The load average: 1, 5 and 15 minutes."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def _step_timer(model, batch, repeats: int) -> tuple[list[float], list[float]]:
    """CPU and wall seconds of ``repeats`` training steps on ``batch`` (after one warm-up)."""
    from mosaics_edu.course.moons.evaluate import clipped_squared_error

    opt = torch.optim.AdamW(model.parameters(), lr=0.0, betas=(0.9, 0.999), weight_decay=0.0)

    def step() -> None:
        loss = clipped_squared_error(model(batch[:, :-1]), batch[:, 1:]).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()
    cpu, wall = [], []
    for _ in range(repeats):
        c0, w0 = time.thread_time(), time.perf_counter()
        step()
        cpu.append(time.thread_time() - c0)
        wall.append(time.perf_counter() - w0)
    return cpu, wall


def bench_steps(repeats: int) -> None:
    from mosaics_edu.course.moons import MoonMemory, load_run, sample_windows
    from mosaics_edu.course.moons.data import TRAIN_TRIPLES
    from mosaics_edu.course.moons.subnormal import flush_subnormals

    batch, _ = sample_windows(64, TRAIN_TRIPLES, torch.Generator().manual_seed(0))  # (64, 801, 6)
    clean = next(s for s in range(5)
                 if load_run(f"moons_standard_3u_seed{s}")[1]["metrics"]["clean_split"])

    def initial(units: int) -> MoonMemory:
        torch.manual_seed(0)
        return MoonMemory(units)

    models = {}
    for units in (3, 1):
        name = f"{units} unit{'s' if units > 1 else ''}"
        models[f"{name}, initialisation"] = lambda u=units: initial(u)
        models[f"{name}, trained seed 0"] = lambda u=units: load_run(f"moons_standard_{u}u_seed0")[0]
    models[f"3 units, trained seed {clean} (clean split)"] = (
        lambda: load_run(f"moons_standard_3u_seed{clean}")[0])
    print(f"\n## steps: one training step, batch 64 x 800, {repeats} repeats (load {load()})")
    print(f"{'model':36} {'':6} {'CPU fastest':>11} {'median':>7} {'wall fastest':>12} {'median':>7}")
    for name, make in models.items():
        res = {}
        for label in ("before", "after"):
            model = make().train()
            if label == "after":
                with flush_subnormals():
                    res[label] = _step_timer(model, batch, repeats)
            else:
                res[label] = _step_timer(model, batch, repeats)
        for label, (cpu, wall) in res.items():
            print(f"{name if label == 'before' else '':36} {label:6} {min(cpu):10.3f}s "
                  f"{statistics.median(cpu):6.3f}s {min(wall):11.3f}s {statistics.median(wall):6.3f}s")
        ratio = statistics.median(res["before"][0]) / statistics.median(res["after"][0])
        print(f"{'':36} {'ratio':6} {'':>11} {ratio:6.2f}x (median CPU, before / after)")
    print(f"(load {load()})")


def bench_runs() -> None:
    from mosaics_edu.course.moons.train import MoonsConfig, train_moons

    print(f"\n## runs: train_moons, seed 0, 500 steps (load {load()})")
    for units in (3, 1):
        cpu = {}
        for label, fn in (("before", train_moons.__wrapped__), ("after", train_moons)):
            c0 = time.process_time()
            _, history = fn(MoonsConfig(n_units=units, seed=0), progress=False)
            cpu[label] = time.process_time() - c0
            print(f"{units} unit(s) {label:6}: {cpu[label]:6.1f} CPU s ({cpu[label] / 500 * 1e3:.0f} ms a "
                  f"step), {history['seconds']:.0f} s wall, final loss {history['loss'][-1]:.5f}",
                  flush=True)
        print(f"{units} unit(s) ratio : {cpu['before'] / cpu['after']:.2f}x")
    print(f"(load {load()})")


def _tree_cpu(proc) -> float:
    """Run until ``proc`` ends, polling the CPU seconds of it and every descendant it starts."""
    import psutil

    seen: dict[int, float] = {}
    root = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            for p in [root, *root.children(recursive=True)]:
                try:
                    t = p.cpu_times()
                    seen[p.pid] = max(seen.get(p.pid, 0.0), t.user + t.system)
                except psutil.NoSuchProcess:
                    pass
        except psutil.NoSuchProcess:
            break
        time.sleep(0.5)
    return sum(seen.values())


def bench_retrain_test(tree: Path, label: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(tree)}
    cmd = [sys.executable, "-m", "pytest", "-p", "no:xdist", "-q", "-m", "slow", RETRAIN_TEST]
    print(f"\n## retrain test, {label} (load {load()})\n$ {' '.join(cmd[1:])}", flush=True)
    w0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=tree, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    cpu = _tree_cpu(proc)
    out = proc.communicate()[0]
    wall = time.perf_counter() - w0
    print(out.strip().splitlines()[-1] if out.strip() else "(no output)")
    print(f"{label}: exit {proc.returncode}, wall {wall:.0f} s, CPU {cpu:.0f} s (process tree) "
          f"(load {load()})", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7, help="steps timed per model and mode")
    parser.add_argument("--runs", action="store_true", help="also time whole 500-step runs")
    parser.add_argument("--retrain-test", action="store_true", help="also time the retrain test")
    parser.add_argument("--before", metavar="REV", help="with --retrain-test: also at commit REV")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread, load {load()}")
    bench_steps(args.repeats)
    if args.runs:
        bench_runs()
    if args.retrain_test:
        if args.before:
            with tempfile.TemporaryDirectory(prefix="bench_moons_") as tmp:
                archive = subprocess.run(["git", "archive", args.before], cwd=ROOT, check=True,
                                         capture_output=True).stdout
                subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
                bench_retrain_test(Path(tmp), f"before ({args.before})")
        bench_retrain_test(ROOT, "after (this tree)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
