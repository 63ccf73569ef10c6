"""Root pytest hooks: notebook runs that a busy machine cannot fail, and a strict ``--nbval`` that
passes on a learner's own saved notebook.

No limit may trip because a machine is slow or busy. The limits here and in pyproject.toml's addopts
are hang protection: an hour per cell, ten minutes for a kernel to start or for a finished cell's
last output (the longest cell of the course takes well under a minute on an idle laptop).

``pytest --nbval chapters/NN_name.ipynb`` compares the outputs the learner saved with a fresh run's.
Two things legitimately differ between the runs, and are handled here so that the learner types no
extra flag:

- what varies from run to run in printed text (timings, memory addresses, ...): both sides are
  rewritten by the patterns of ``nbval_sanitize.cfg`` before they are compared;
- a cell that shows a widget: the widget draws into its own output area, which only a front end
  (JupyterLab, Colab) keeps apart from the cell's outputs; nbval has no front end, so the drawing
  would arrive as extra cell output. Such a cell still runs (an error fails it); its outputs are not
  compared.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

try:
    from nbval.plugin import IPyNbCell
except ImportError:  # pragma: no cover - nbval is a dependency
    IPyNbCell = None

# One math thread per process. The test command runs two workers on two cores, and each starts
# notebook kernels: with the libraries' default of one thread per core, threads outnumber cores and
# OpenBLAS's spinning threads make the small matrix products of the chapters 10-20 times slower on
# a busy machine (measured: chapter 02's solutions took 520 s at load 4 with 2 threads, 26 s with
# one). Set before numpy or torch is imported here, and inherited by every kernel and subprocess;
# a value the caller set wins.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

SANITIZE = Path(__file__).resolve().parent / "nbval_sanitize.cfg"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def pytest_configure(config):
    # nbval opens the file relative to the current folder; an absolute path works from anywhere
    # (the repository root, chapters/). A file given on the command line wins.
    if hasattr(config.option, "nbval_sanitize_with") and config.option.nbval_sanitize_with is None:
        config.option.nbval_sanitize_with = str(SANITIZE)


def _shows_a_widget(cell) -> bool:
    return any(WIDGET_VIEW in out.get("data", {}) for out in cell.get("outputs", []))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    for item in items:
        if IPyNbCell is not None and isinstance(item, IPyNbCell):
            # nbval waits only 5 s for output after a cell finishes; a busy machine can take
            # longer, a hung kernel takes forever: wait long enough that only a hang trips it.
            item.output_timeout = 600
            if _shows_a_widget(item.cell):
                item.options["check"] = False
    items.sort(key=_longest_first_rank)  # stable: the order within each rank is kept


# The few tests that take many CPU-minutes each start first, one per worker, so the rest of the
# suite fills the other worker around them instead of waiting behind them at the end (under
# ``--dist loadgroup`` work is handed out in collection order). Measured on 2 cores: chapter 03's
# retrain trains two models for ~13 CPU-minutes each; the browser module runs every chapter.
LONGEST_FIRST = (
    "tests/test_moons.py::test_chapter_assertions_hold_on_models_retrained_from_scratch",
    "tests/ui/",
)


def _longest_first_rank(item) -> int:
    for rank, prefix in enumerate(LONGEST_FIRST):
        if item.nodeid.startswith(prefix):
            return rank
    return len(LONGEST_FIRST)

