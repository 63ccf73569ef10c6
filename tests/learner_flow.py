"""A learner's flow on a learner notebook with every exercise left unsolved, and what it must show.

The flow: open the chapter in a notebook session (no pytest in the kernel's environment, the
math libraries' default thread count), "Run All", save, then check the saved file with
``pytest --nbval`` as the README says. What it must show:

- in the session, nothing stops "Run All": every code cell runs, none ends in an error, each check
  cell says in one line that its exercise is not implemented yet (no traceback), and no other cell
  reports a failed check (later cells never use the learner's answers);
- each exercise of the notebook is named by exactly one check cell, in order (so no exercise is
  left without a check that fails on its stub);
- ``pytest --nbval`` on the saved notebook re-runs every cell with one math thread: it fails on
  exactly the check cells, each naming its exercise, with no frame of the checks in the report,
  and passes every other cell, outputs compared.

The ``pytest --nbval`` step runs on the chapters of ``NBVAL_ON_STUBS`` only (chapter 00, seconds).
On the others it would be a fourth run of the chapter in the test command, and what it proves
beyond the session run is proven elsewhere: every printed output is compared between two thread
counts by the solutions run and its ``pytest --nbval`` (tests/test_saved_notebooks.py), which run
the same cells (the cells after an exercise never use the learner's answer: checked above), and
every check raises on the chapter's own stub under pytest (tests/test_checks_chNN.py, through
tests/check_contract.py).

Two runners do the session part: the browser tests (tests/ui: JupyterLab in Chromium, widgets
moved) and, where no browser is installed, ``tests/test_learner_notebooks.py`` (nbclient).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
from kernel_guard import run_watched
from notebook_run import learner_env, with_session_runs

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# the browser tests can run here: Debian's Chromium and the playwright package
# (MOSAICS_NO_BROWSER=1 runs the learner flow with nbclient instead)
BROWSER_AVAILABLE = (os.path.exists(CHROMIUM) and importlib.util.find_spec("playwright") is not None
                     and os.environ.get("MOSAICS_NO_BROWSER") != "1")
CONFIG = ("pyproject.toml", "conftest.py")  # what pytest reads in a learner's clone
# the chapters whose saved stub notebook also goes through ``pytest --nbval`` (module docstring)
NBVAL_ON_STUBS = ("00_start_here",)
REPORTED = re.compile(r"^✗ \[chapter (\w+) · exercise '(\w+)'\] is not implemented yet: [^\n]*\n$")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def session_env() -> dict[str, str]:
    """A learner's notebook session: JupyterLab's thread defaults and nothing of pytest (whose
    presence makes a failing check raise instead of report)."""
    return {k: v for k, v in learner_env().items()
            if not k.startswith("PYTEST_") and k != "MOSAICS_CHECKS"}


def learner_clone(root: Path) -> Path:
    """``root`` laid out like a learner's clone: the project's pytest configuration beside
    ``chapters/`` (returned)."""
    root.mkdir(parents=True, exist_ok=True)
    for name in CONFIG:
        if not (root / name).exists():
            (root / name).symlink_to(ROOT / name)
    (root / "chapters").mkdir(exist_ok=True)
    return root / "chapters"


def _text(cell: nbformat.NotebookNode) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def _called(cell: nbformat.NotebookNode) -> str:
    m = re.search(r"(\w+(?:\.\w+)*)\(", cell.source)
    return m.group(1) if m else cell.source.strip()[:60]


def defined_exercises(nb: nbformat.NotebookNode) -> list[str]:
    """The functions and classes the exercise cells define, in notebook order."""
    return [name for c in nb.cells if "exercise" in c.metadata.get("tags", [])
            for name in re.findall(r"^(?:def|class) (\w+)", c.source, re.M)]


def session_problems(nb: nbformat.NotebookNode, stem: str) -> tuple[list[str], list[str]]:
    """What is wrong with a learner notebook run in a session with its stubs (module docstring),
    and the exercises its check cells named."""
    problems, exercises = [], []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        errs = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if errs:
            problems.append(f"cell {i} failed with {errs[0]['ename']}: {errs[0]['evalue'][:200]} — in a "
                            "learner's session nothing may stop Run All: a check reports its failure, "
                            f"and later cells must not depend on the learner's answers:\n{cell.source[:300]}")
        elif cell.execution_count is None:
            problems.append(f"cell {i} did not run")
        elif "check" in cell.metadata.get("tags", []):
            m = REPORTED.match(_text(cell))
            if not m or m.group(1) != stem:
                problems.append(f"cell {i}: the check `{_called(cell)}` should say in one line that the "
                                f"exercise is not implemented yet; it printed {_text(cell)[:300]!r}")
            else:
                exercises.append(m.group(2))
        elif "✗ [chapter" in _text(cell):
            problems.append(f"cell {i} (not a check) reports a failed check: {_text(cell)[:200]}")
    if not problems and exercises != defined_exercises(nb):
        problems.append(f"the check cells named the exercises {exercises}, in this order; the exercise "
                        f"cells define {defined_exercises(nb)}: each needs exactly one check, after it")
    return problems, exercises


def pytest_nbval(saved: Path, cwd: Path) -> subprocess.CompletedProcess:
    """The learner's command on the saved notebook, in a fresh process (watched for hangs)."""
    env = with_session_runs({k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")})
    cmd = [sys.executable, "-m", "pytest", "--nbval", "-p", "no:cacheprovider",
           os.path.relpath(saved, cwd)]
    res = run_watched(cmd, cwd=cwd, env=env)
    res.stdout = ANSI.sub("", res.stdout)
    return res


def nbval_problems(saved: Path, stem: str, exercises: list[str]) -> list[str]:
    """Run ``pytest --nbval`` on the saved stub notebook (from the clone's root) and say what is
    wrong with its report (module docstring)."""
    nb = nbformat.read(saved, as_version=4)
    res = pytest_nbval(saved, saved.parent.parent)
    n_code = sum(c.cell_type == "code" for c in nb.cells)
    out, problems = res.stdout, []
    want = f"{len(exercises)} failed, {n_code - len(exercises)} passed"
    if res.returncode != 1 or want not in out:
        problems.append(f"`pytest --nbval` on the saved {saved.name} should fail on its {len(exercises)} "
                        f"check cells and pass the other {n_code - len(exercises)} cells:\n{out[-6000:]}\n"
                        f"{res.stderr[-2000:]}")
    for name in exercises:
        if f"CheckFailed: [chapter {stem} · exercise '{name}'] is not implemented yet" not in out:
            problems.append(f"the report should name the unsolved exercise {name!r}:\n{out[-3000:]}")
    if "mosaics_edu/checks/" in out or "Traceback (most recent call last)" in out:
        problems.append(f"a failed check shows its message alone, no traceback through the checks:\n"
                        f"{out[-3000:]}")
    return problems
