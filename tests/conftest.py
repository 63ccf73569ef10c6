"""Shared pytest set-up for unit tests and notebook tests."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
# Two notebook kernels share 2 cores in CI: one thread each keeps them from fighting.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("JUPYTEXT_CEILING_DIRECTORIES", str(ROOT))


# The notebooks this session runs share one run cache (mosaics_edu/training/run_cache.py): chapter 05
# trains the same two models in JupyterLab and in the `pytest --nbval` check of the saved file
# (and, with no browser, in the nbclient runs); the first to finish a model stores it and the
# others load it. The folder is made empty here when the session starts and deleted when it ends,
# so a loaded run was trained in this session. Its name is handed only to the notebooks' kernels
# (notebook_run.with_session_runs): the tests that train in their own process never load a run.
SESSION_RUNS = "MOSAICS_SESSION_RUNS"


def pytest_configure(config):
    if hasattr(config, "workerinput") or os.environ.get(SESSION_RUNS):
        return  # an xdist worker inherits the controller's folder
    config._mosaics_session_runs = tempfile.mkdtemp(prefix="mosaics-session-runs-")
    os.environ[SESSION_RUNS] = config._mosaics_session_runs


def pytest_terminal_summary(terminalreporter, config):
    """One line: how many runs the notebooks trained and how many they loaded instead."""
    folder = getattr(config, "_mosaics_session_runs", None)
    if not folder:
        return
    trained = len(list(Path(folder).glob("run-*.pt"))) + len(list(Path(folder).glob("result-*.pt")))
    log = Path(folder) / "loaded.log"
    loaded = log.read_text().splitlines() if log.exists() else []
    if trained or loaded:
        terminalreporter.write_line(f"notebook training runs and results: {trained} computed, {len(loaded)} "
                                    "loaded from this session's run cache "
                                    "(mosaics_edu/training/run_cache.py)")


def pytest_unconfigure(config):
    folder = getattr(config, "_mosaics_session_runs", None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        os.environ.pop(SESSION_RUNS, None)
