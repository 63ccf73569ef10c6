"""Every learner notebook runs, every exercise check fails on its stub, and nothing else fails.

This is what proves that no check can pass silently on an empty stub. It also proves that skipping
an exercise never stops a chapter: the notebook runs as in a learner's session (no pytest in the
kernel's environment), where a failing check prints its message and "Run All" goes on, so every
cell after an unsolved exercise runs; then the saved notebook goes through the learner's
``pytest --nbval``, where every check raises, and must fail on exactly the check cells, each
naming its exercise, with no frame of the checks in the report. (The solutions notebooks are run,
filled into the learner notebook and checked with strict nbval, by
``tests/test_saved_notebooks.py``.)
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import nbformat
import pytest
from build_notebooks import LEARNER_DIR, ROOT, sources
from notebook_run import execute

SOURCES = sources()


def _errors(cell: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [o for o in cell.get("outputs", []) if o.output_type == "error"]


def _called(cell: nbformat.NotebookNode) -> str:
    m = re.search(r"(\w+(?:\.\w+)*)\(", cell.source)
    return m.group(1) if m else cell.source.strip()[:60]


def _execute(path, sockets, env=None) -> nbformat.NotebookNode:
    """Run a notebook, keeping errors in the outputs. The kernel talks over unix sockets (no TCP
    port can clash with a kernel of the other test worker). A kernel that stops working or dies is
    caught and the notebook re-run once by ``notebook_run`` (tools/kernel_guard.py)."""
    return execute(nbformat.read(path, as_version=4), LEARNER_DIR, allow_errors=True, sockets=sockets,
                   env=env)


def _session_env() -> dict[str, str]:
    """A learner's notebook session: nothing of pytest in the kernel's environment."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_") and k != "MOSAICS_CHECKS"}


def _text(cell: nbformat.NotebookNode) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.output_type == "stream")


REPORTED = re.compile(r"^✗ \[chapter (\w+) · exercise '(\w+)'\] is not implemented yet: [^\n]*\n$")


def _pytest_nbval(saved, cwd) -> subprocess.CompletedProcess:
    """The learner's command on the saved notebook, in a fresh process, from a layout like a clone
    (the project's pytest configuration beside chapters/)."""
    for name in ("pyproject.toml", "conftest.py"):
        (cwd / name).symlink_to(ROOT / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    cmd = [sys.executable, "-m", "pytest", "--nbval", "-p", "no:cacheprovider", os.path.relpath(saved, cwd)]
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    res.stdout = re.sub(r"\x1b\[[0-9;]*m", "", res.stdout)
    return res


@pytest.mark.parametrize(
    "src", SOURCES,
    ids=lambda p: p.stem)
def test_checks_fail_on_stubs_and_nothing_else_fails(src, tmp_path):
    path = LEARNER_DIR / f"{src.stem}.ipynb"
    (tmp_path / "sockets").mkdir()
    nb = _execute(path, tmp_path / "sockets", env=_session_env())
    problems, exercises = [], []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        errs, is_check = _errors(cell), "check" in cell.metadata.get("tags", [])
        if errs:
            problems.append(f"cell {i} failed with {errs[0].ename}: {errs[0].evalue[:200]} — in a "
                            "learner's session nothing may stop Run All: a check reports its failure, "
                            f"and later cells must not depend on the learner's answers:\n{cell.source[:300]}")
        elif cell.execution_count is None:
            problems.append(f"cell {i} did not run")
        elif is_check:
            m = REPORTED.match(_text(cell))
            if not m or m.group(1) != src.stem:
                problems.append(f"cell {i}: the check `{_called(cell)}` should say in one line that the "
                                f"exercise is not implemented yet; it printed {_text(cell)[:300]!r}")
            else:
                exercises.append(m.group(2))
        elif "✗ [chapter" in _text(cell):
            problems.append(f"cell {i} (not a check) reports a failed check: {_text(cell)[:200]}")
    assert not problems, f"chapter {src.stem}:\n" + "\n".join(problems)

    # the saved notebook, checked as the learner does: fails on exactly the unsolved exercises
    (tmp_path / "chapters").mkdir()
    saved = tmp_path / "chapters" / path.name
    nbformat.write(nb, saved)
    res = _pytest_nbval(saved, tmp_path)
    code = [c for c in nb.cells if c.cell_type == "code"]
    out = res.stdout
    assert res.returncode == 1 and f"{len(exercises)} failed, {len(code) - len(exercises)} passed" in out, (
        f"`pytest --nbval` on the saved {path.name} should fail on its {len(exercises)} check cells "
        f"and pass the other {len(code) - len(exercises)} cells:\n{out[-6000:]}\n{res.stderr[-2000:]}")
    for name in exercises:
        assert f"CheckFailed: [chapter {src.stem} · exercise '{name}'] is not implemented yet" in out, (
            f"the report should name the unsolved exercise {name!r}:\n{out[-6000:]}")
    assert "mosaics_edu/checks/" not in out and "Traceback (most recent call last)" not in out, (
        f"a failed check shows its message alone, no traceback through the checks:\n{out[-6000:]}")
