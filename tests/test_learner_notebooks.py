"""Every learner notebook runs, every exercise check fails on its stub, and nothing else fails.

This is what proves that no check can pass silently on an empty stub. (The solutions notebooks
are run, filled into the learner notebook and checked with strict nbval, by
``tests/test_saved_notebooks.py``.)
"""

from __future__ import annotations

import re

import nbformat
import pytest
from build_notebooks import LEARNER_DIR, sources
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from notebook_run import execute

SOURCES = sources()


def _errors(cell: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [o for o in cell.get("outputs", []) if o.output_type == "error"]


def _called(cell: nbformat.NotebookNode) -> str:
    m = re.search(r"(\w+(?:\.\w+)*)\(", cell.source)
    return m.group(1) if m else cell.source.strip()[:60]


def _execute(path, sockets, attempts: int = 2) -> nbformat.NotebookNode:
    """Run a notebook, keeping errors in the outputs. The kernel talks over unix sockets (no TCP
    port can clash with a kernel of the other test worker). Its limits are hang protection only
    (``notebook_run``); a run whose kernel stalls or dies is retried once."""
    for attempt in range(attempts):
        nb = nbformat.read(path, as_version=4)
        (sockets / str(attempt)).mkdir()
        try:
            return execute(nb, LEARNER_DIR, allow_errors=True, sockets=sockets / str(attempt))
        except (CellTimeoutError, DeadKernelError):
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


@pytest.mark.parametrize(
    "src", SOURCES,
    ids=lambda p: p.stem)
def test_checks_fail_on_stubs_and_nothing_else_fails(src, tmp_path):
    path = LEARNER_DIR / f"{src.stem}.ipynb"
    nb = _execute(path, tmp_path)
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        errs, is_check = _errors(cell), "check" in cell.metadata.get("tags", [])
        if is_check and not errs:
            problems.append(f"cell {i}: the check `{_called(cell)}` PASSED on the learner's stub "
                            "— a check must fail until the exercise is done")
        elif is_check and errs[0].ename != "CheckFailed":
            problems.append(f"cell {i}: the check `{_called(cell)}` failed with "
                            f"{errs[0].ename}: {errs[0].evalue[:200]} — it should raise CheckFailed "
                            "with a message for the learner")
        elif not is_check and errs:
            problems.append(f"cell {i} (not a check) failed in the learner notebook with "
                            f"{errs[0].ename}: {errs[0].evalue[:200]} — later cells must not "
                            f"depend on the learner's answers:\n{cell.source[:300]}")
    assert not problems, f"chapter {src.stem}:\n" + "\n".join(problems)
