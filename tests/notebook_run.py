"""Execute a notebook from a test: hang protection without any limit that a busy machine can trip.

The work is done by ``tools/kernel_guard.py`` (shared with the website build): channel reads in
short slices (a lost ZeroMQ wake-up costs seconds, not the hour it once cost), a watchdog that
kills a kernel idle for minutes while a cell waits on it and re-runs the notebook once, and a kernel
that is always shut down when the run ends. Late output is waited for, never dropped.
"""

from __future__ import annotations

import os

import nbformat
from kernel_guard import KernelHang
from kernel_guard import execute as _guarded_execute

from mosaics_edu.training import run_cache

__all__ = ["execute", "KernelHang", "learner_env", "with_session_runs", "THREAD_VARS"]

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def learner_env() -> dict[str, str]:
    """The environment of a kernel started by JupyterLab on a learner's machine: the math libraries
    pick their default thread count (at least 2 here, so that a run differs in thread count from
    the suite's one-thread runs). Waiting threads sleep instead of spinning (OMP_WAIT_POLICY,
    OPENBLAS_THREAD_TIMEOUT): the same numbers, but no slowdown beside another busy process
    (measured on 2 busy cores: chapter 02 in 46 s instead of 405 s with spinning threads)."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    if (os.cpu_count() or 1) < 2:
        env.update({k: "2" for k in THREAD_VARS})
    env.update(OMP_WAIT_POLICY="PASSIVE", OPENBLAS_THREAD_TIMEOUT="4")
    return with_session_runs(env)


def with_session_runs(env: dict[str, str]) -> dict[str, str]:
    """``env`` for a notebook kernel (or a ``pytest --nbval`` run of one) of this test session:
    ``train.train`` in it loads a run that another notebook of the session already trained with
    the same inputs, and stores the runs it trains (tests/conftest.py, mosaics_edu/training/run_cache.py)."""
    folder = os.environ.get("MOSAICS_SESSION_RUNS")
    return {**env, run_cache.ENV: folder} if folder else dict(env)


def execute(
    nb: nbformat.NotebookNode,
    cwd: str | os.PathLike,
    *,
    allow_errors: bool = False,
    sockets: str | os.PathLike | None = None,
    env: dict[str, str] | None = None,
) -> nbformat.NotebookNode:
    """Run every cell of ``nb`` in place in a fresh ``python3`` kernel started in ``cwd``.

    ``allow_errors=False`` stops at the first failing cell (raising ``CellExecutionError``), as
    "Run All" in JupyterLab does; cells after it keep no outputs. ``sockets``: a folder for the
    kernel's unix sockets, so that no TCP port can clash with a kernel of another test worker.
    ``env``: the kernel's environment (default: this process's).
    """
    return _guarded_execute(nb, cwd, allow_errors=allow_errors, sockets=sockets, env=env)
