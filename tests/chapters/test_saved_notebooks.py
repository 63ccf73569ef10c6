"""``pytest --nbval`` on the learner's own saved notebook: passes when every exercise is right.

The learner's flow (README): open a chapter, do the exercises, run everything, save, then check the
notebook with ``pytest --nbval chapters/NN_name.ipynb`` and no other flag. Strict ``--nbval``
compares every saved output with a fresh run's, so whatever legitimately changes from one run to
the next (timings, ...) is seeded in the chapters or rewritten on both sides by the project's
configuration (``nbval_sanitize.cfg``, which the root ``conftest.py`` hands to nbval). Where a
browser is installed (CI), JupyterLab itself runs, saves and checks every chapter this way
(tests/ui/test_widget_in_browser.py) and the first test below is skipped; elsewhere, for every
chapter, it does what the learner does:

1. the learner notebook gets every exercise filled in from the solutions notebook;
2. it is executed as "Run All" in JupyterLab would (stopping at the first error), with the math
   libraries' default thread count (at least 2), and saved with its outputs;
3. a fresh ``python -m pytest --nbval`` on the saved file must pass; it re-runs every cell with
   one math thread (the root ``conftest.py``).

So every chapter is run with two different thread counts and every printed output compared: a
number that changes with the order of a parallel sum (one printed at the floating-point noise
floor) fails here, as it would fail for a learner.

The filled notebook's code cells are exactly the solutions notebook's (asserted), so this is also
the suite's run of every solutions notebook: the test command does not collect
``chapters/solutions/`` a second time.

And on the cheapest chapter, with one exercise wrong, the same command must fail with the check's
message. The saved notebook sits in a copy of the repository's layout (``chapters/NN_name.ipynb``
beside links to the real ``pyproject.toml`` and ``conftest.py``), so pytest finds the project's
configuration as it does in a learner's clone; half of the chapters are checked from the root,
half from ``chapters/``, the two places a learner runs the command from.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
from build_notebooks import ROOT, sources
from kernel_guard import run_watched
from learner_flow import BROWSER_AVAILABLE, with_answers
from nbclient.exceptions import CellExecutionError
from notebook_run import execute, learner_env, with_session_runs

from mosaics_edu.course.checks import CheckFailed, ch00

STEMS = [p.stem for p in sources()]
CONFIG = ("pyproject.toml", "conftest.py")  # what pytest reads in a learner's clone
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _learner_clone(tmp_path: Path) -> Path:
    """tmp_path laid out like the repository: the project's pytest configuration and chapters/."""
    for name in CONFIG:
        (tmp_path / name).symlink_to(ROOT / name)
    (tmp_path / "chapters").mkdir()
    return tmp_path


def _run_and_save(nb: nbformat.NotebookNode, clone: Path, stem: str) -> Path:
    """Run All (stops at the first error, like JupyterLab), then save with the outputs."""
    sockets = clone / "sockets"
    sockets.mkdir()
    try:
        execute(nb, clone / "chapters", sockets=sockets, env=learner_env())
    except CellExecutionError:
        pass  # the failing cell keeps its error output, the cells after it none: as saved by Lab
    path = clone / "chapters" / f"{stem}.ipynb"
    nbformat.write(nb, path)
    return path


def _pytest_nbval(saved: Path, cwd: Path) -> subprocess.CompletedProcess:
    """The learner's command in a fresh process: ``pytest --nbval <saved notebook>``."""
    env = with_session_runs({k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")})
    cmd = [sys.executable, "-m", "pytest", "--nbval", os.path.relpath(saved, cwd)]
    res = run_watched(cmd, cwd=cwd, env=env)  # a hung kernel is killed and the run repeated once
    res.stdout = ANSI.sub("", res.stdout)
    return res


# Each chapter is run twice (as saved, then by nbval): chapter 00 takes seconds and stays in the fast
# subset; the others take up to a minute and a half each on an idle 2-core machine.
CHAPTERS = [pytest.param(s, marks=() if s.startswith("00_") else pytest.mark.slow) for s in STEMS]


@pytest.mark.parametrize("stem", CHAPTERS)
@pytest.mark.skipif(BROWSER_AVAILABLE, reason="run, saved and checked in JupyterLab by tests/ui")
def test_pytest_nbval_passes_on_the_saved_notebook_when_every_exercise_is_right(stem, tmp_path):
    clone = _learner_clone(tmp_path)
    nb = with_answers(stem)
    saved = _run_and_save(nb, clone, stem)
    code = [c for c in nb.cells if c.cell_type == "code"]
    errors = [i for i, c in enumerate(code) if any(o.output_type == "error" for o in c.outputs)]
    first = next((o for c in code for o in c.outputs if o.output_type == "error"), None)
    assert not errors, (f"{stem}: code cells {errors} failed with the solutions filled in; the first: "
                        f"{first.ename if first else ''}: {first.evalue[-3000:] if first else ''}")
    assert all(c.execution_count for c in code), "the saved notebook must hold every cell's outputs"
    cwd = clone / "chapters" if STEMS.index(stem) % 2 == 0 else clone
    res = _pytest_nbval(saved, cwd)
    assert res.returncode == 0 and f"{len(code)} passed" in res.stdout, (
        f"`pytest --nbval` (run in {cwd.relative_to(clone) or '.'}/) failed on the learner's saved "
        f"{stem}.ipynb, every exercise right:\n{res.stdout[-6000:]}\n{res.stderr[-2000:]}")


WRONG_AXIS = '''def stable_softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis. x: (..., n) -> (..., n), rows summing to 1, never nan."""
    e = np.exp(x - x.max(axis=0, keepdims=True))  # the learner's mistake: axis 0
    return e / e.sum(axis=0, keepdims=True)'''


def test_pytest_nbval_fails_on_the_saved_notebook_with_the_checks_message(tmp_path):
    """One exercise wrong (the softmax over axis 0): the learner's command fails on that check."""
    stem = STEMS[0]
    assert stem.startswith("00_"), stem
    scope: dict = {"np": np}
    exec(WRONG_AXIS, scope)
    with pytest.raises(CheckFailed) as expected:
        ch00.check_stable_softmax(scope["stable_softmax"])
    clone = _learner_clone(tmp_path)
    nb = with_answers(stem, wrong={"stable_softmax": WRONG_AXIS})
    saved = _run_and_save(nb, clone, stem)
    res = _pytest_nbval(saved, clone)
    message = str(expected.value).splitlines()[0]
    assert res.returncode == 1 and "1 failed" in res.stdout, res.stdout[-6000:]
    assert "ch00.check_stable_softmax(stable_softmax)" in res.stdout, res.stdout[-6000:]
    assert f"CheckFailed: {message}" in res.stdout, (
        f"the report should carry the check's message {message!r}:\n{res.stdout[-6000:]}")
