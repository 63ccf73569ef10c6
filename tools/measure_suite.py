"""Run the README's test command and measure what a learner's laptop would feel: wall time, peak
memory of every process the command starts, and kernels alive during and after the run.

    python tools/measure_suite.py [--runs N] [--out runs/suite.jsonl] [-- extra pytest arguments]

Every 2 s it sums, over the command's whole process tree (pytest workers, notebook kernels,
nbval subprocesses, JupyterLab, the browser), the resident set size (RSS: shared library pages
counted once per process, so an upper bound) and the proportional set size (PSS: shared pages
split between the processes that map them, the memory the tree really holds), and counts the
notebook kernels; at the end it reads the CPU time of every process of the tree (user + system),
which a busy machine barely changes: on an idle machine with N cores the command cannot take less
than that divided by N. At the PSS peak it also records the PSS of each kind of process (notebook
kernels, nbval subprocesses, JupyterLab, the browser and its Playwright driver, pytest workers, the
pytest controller, other: ``KINDS``). One JSON line per run is appended to ``--out``; a summary is
printed. A run fails (exit 1) if the command fails or a kernel is still alive after it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
GIB = 1024**3


def readme_command(marker: str = "test") -> str:
    """The command after ``<!-- ci:<marker> -->`` in README.md (as .ci/run reads it)."""
    lines = (ROOT / "README.md").read_text().splitlines()
    start = lines.index(f"<!-- ci:{marker} -->")
    return lines[start + 2].strip()


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _is_kernel(p: psutil.Process) -> bool:
    try:
        return "ipykernel_launcher" in " ".join(p.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


# What a process of the tree is, for the memory breakdown: the first needle its command line holds.
# An xdist worker is started by execnet as `python -u -c "import sys;exec(eval(sys.stdin.readline()))"`
# (its command line names neither xdist nor execnet); the controller and nested runs are `-m pytest`.
KINDS = (("kernel", "ipykernel_launcher"), ("nbval", "--nbval"), ("jupyterlab", "jupyter-lab"),
         ("jupyterlab", "jupyter_server"), ("browser", "chromium"),
         ("playwright driver", "playwright/driver"),
         ("pytest worker", "exec(eval(sys.stdin.readline()))"), ("pytest", "-m pytest"))


def kind_of(cmdline: str) -> str:
    """The kind (``KINDS``) of a process with this command line; "other" if none matches."""
    return next((kind for kind, needle in KINDS if needle in cmdline), "other")


def _kind(p: psutil.Process) -> str:
    return kind_of(" ".join(p.cmdline()))


def sample(pid: int, with_pss: bool) -> dict:
    rss = pss = 0
    kernels = 0
    by_kind: dict[str, float] = {}
    for p in _tree(pid):
        try:
            if with_pss:
                info = p.memory_full_info()
                rss += info.rss
                pss += info.pss
                kind = _kind(p)
                by_kind[kind] = by_kind.get(kind, 0) + info.pss
            else:
                rss += p.memory_info().rss
            kernels += _is_kernel(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return {"rss": rss, "pss": pss if with_pss else None, "kernels": kernels, "by_kind": by_kind}


def run_once(command: str) -> dict:
    mark = f"measure-{os.getpid()}-{time.time_ns()}"
    env = {**os.environ, "MOSAICS_MEASURE_MARK": mark}
    start, load0 = time.monotonic(), os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(["bash", "-c", command], cwd=ROOT, env=env)
    peak_rss = peak_pss = peak_kernels = 0
    peak_by_kind: dict[str, float] = {}
    loads, n = [], 0
    while proc.poll() is None:
        s = sample(proc.pid, with_pss=n % 5 == 0)
        peak_rss, peak_kernels = max(peak_rss, s["rss"]), max(peak_kernels, s["kernels"])
        if s["pss"] is not None and s["pss"] > peak_pss:
            peak_pss, peak_by_kind = s["pss"], s["by_kind"]
        loads.append(os.getloadavg()[0])
        n += 1
        time.sleep(2)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # every process of the tree that was waited for
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    time.sleep(2)
    leftover = []
    for p in psutil.process_iter(["pid"]):
        try:
            if p.environ().get("MOSAICS_MEASURE_MARK") == mark and p.status() != psutil.STATUS_ZOMBIE:
                leftover.append(" ".join(p.cmdline())[:120])
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    return {"command": command, "exit": proc.returncode, "wall_s": round(wall, 1), "cpu_s": round(cpu),
            "peak_rss_gib": round(peak_rss / GIB, 2), "peak_pss_gib": round(peak_pss / GIB, 2),
            "peak_pss_by_kind_gib": {k: round(v / GIB, 2) for k, v in sorted(peak_by_kind.items())},
            "peak_kernels": peak_kernels, "left_alive": leftover,
            "load_start": round(load0, 2), "load_mean": round(sum(loads) / max(len(loads), 1), 2),
            "cpus": os.cpu_count(), "when": time.strftime("%Y-%m-%d %H:%M:%S")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="consecutive runs (default 1)")
    parser.add_argument("--out", default="runs/suite.jsonl", help="JSON lines appended here")
    parser.add_argument("extra", nargs="*", help="arguments appended to the test command")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error(f"--runs {args.runs}: give at least 1")
    command = " ".join([readme_command("test"), *args.extra])
    out = ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    failed = 0
    for i in range(args.runs):
        result = run_once(command)
        with out.open("a") as f:
            f.write(json.dumps(result) + "\n")
        ok = result["exit"] == 0 and not result["left_alive"]
        failed += not ok
        print(f"run {i + 1}/{args.runs}: exit {result['exit']}, {result['wall_s'] / 60:.1f} min, "
              f"{result['cpu_s'] / 60:.1f} CPU-min, "
              f"peak RSS {result['peak_rss_gib']} GiB, peak PSS {result['peak_pss_gib']} GiB, "
              f"kernels at once <= {result['peak_kernels']}, left alive {len(result['left_alive'])}, "
              f"mean load {result['load_mean']}", flush=True)
        print(f"  at the PSS peak (GiB): {result['peak_pss_by_kind_gib']}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
