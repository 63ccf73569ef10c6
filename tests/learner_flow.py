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

The ``pytest --nbval`` step runs on the chapters of ``NBVAL_ON_STUBS`` only (chapter 00, seconds);
what it proves beyond the session run is proven for every chapter elsewhere: every printed output
is compared between two thread counts by the run with the exercises done and its ``pytest --nbval``
(the same cells: the cells after an exercise never read it, :func:`stub_problems`), and every check
raises on a stub under pytest (tests/check_contract.py). Where a browser is installed, only
chapter 00 is run with its stubs at all (tests/ui); :func:`stub_problems` checks, without running
them, what the stubs of every chapter could break.

Two runners do the session part: the browser tests (tests/ui: JupyterLab in Chromium, widgets
moved) and, where no browser is installed, ``tests/chapters/test_learner_notebooks.py`` (nbclient).
"""

from __future__ import annotations

import ast
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
    if "mosaics_edu/course/checks/" in out or "Traceback (most recent call last)" in out:
        problems.append(f"a failed check shows its message alone, no traceback through the checks:\n"
                        f"{out[-3000:]}")
    return problems


def with_answers(stem: str, wrong: dict[str, str] | None = None) -> nbformat.NotebookNode:
    """The learner notebook of ``stem`` with every exercise cell holding the solution from the
    solutions notebook (or ``wrong[name]`` for the exercise that defines ``name``). Its code cells
    are then exactly the solutions notebook's (asserted when nothing is wrong)."""
    from build_notebooks import LEARNER_DIR, SOLUTIONS_DIR

    learner = nbformat.read(LEARNER_DIR / f"{stem}.ipynb", as_version=4)
    solved = nbformat.read(SOLUTIONS_DIR / f"{stem}.ipynb", as_version=4)
    assert [c.id for c in learner.cells] == [c.id for c in solved.cells], (
        f"{stem}: the learner and solutions notebooks differ in their cells; run "
        "python tools/build_notebooks.py")
    filled = 0
    for mine, answer in zip(learner.cells, solved.cells, strict=True):
        if "exercise" in mine.metadata.get("tags", []):
            mine.source = answer.source
            for name, source in (wrong or {}).items():
                if re.search(rf"^def {name}\(", answer.source, re.M):
                    mine.source = source
            filled += 1
    assert filled, f"{stem} has no exercise cell"
    if not wrong:  # this run stands for the solutions notebook's: the same code, cell by cell
        differ = [i for i, (a, b) in enumerate(zip(learner.cells, solved.cells, strict=True))
                  if a.cell_type == "code" and a.source != b.source]
        assert not differ, f"{stem}: code cells {differ} differ from the solutions notebook's"
    return learner


def _names_read(source: str) -> set[str]:
    """Every bare name a cell's code reads (IPython lines starting with % or ! are skipped)."""
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
    return {n.id for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Name)}


def stub_problems(nb: nbformat.NotebookNode) -> list[str]:
    """What could stop "Run All" of a learner notebook with its stubs, found without running it:

    - an exercise whose stub does not raise ``NotImplementedError`` (what every check reports as
      "not implemented yet": tests/check_contract.py tries each check on such a stub);
    - an exercise without exactly one check cell after it that calls its check on it;
    - a cell after an exercise, other than its check, that reads the exercise's name: with the stub
      it would raise, and "Run All" would stop there.
    """
    problems: list[str] = []
    defined: dict[str, int] = {}  # exercise name -> its cell
    checked: dict[str, list[int]] = {}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        tags = cell.metadata.get("tags", [])
        if "exercise" in tags:
            tree = ast.parse(cell.source)
            for node in tree.body:
                if isinstance(node, ast.FunctionDef | ast.ClassDef):
                    defined[node.name] = i
                    raises = [n for n in ast.walk(node) if isinstance(n, ast.Raise) and n.exc is not None
                              and "NotImplementedError" in ast.unparse(n.exc)]
                    if not raises:
                        problems.append(f"cell {i}: the stub of {node.name} does not raise "
                                        "NotImplementedError")
            continue
        reads = _names_read(cell.source)
        if "check" in tags:
            m = re.search(r"check_\w+\((\w+)", cell.source)
            if m:
                checked.setdefault(m.group(1), []).append(i)
            reads -= {m.group(1)} if m else set()  # a check may also take earlier exercises
            reads -= set(defined)
        for name in sorted(reads & set(defined)):
            problems.append(f"cell {i} reads the exercise {name!r} (cell {defined[name]}): with the "
                            "learner's stub it raises and Run All stops there; use the package's "
                            "reference instead")
    for name, at in defined.items():
        cells = checked.get(name, [])
        if len(cells) != 1 or cells[0] < at:
            problems.append(f"the exercise {name!r} (cell {at}) needs exactly one check cell after it "
                            f"calling its check on it; found {cells}")
    return problems
