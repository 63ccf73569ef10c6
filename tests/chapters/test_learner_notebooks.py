"""Every learner notebook runs, every exercise check fails on its stub, and nothing else fails.

This is what proves that no check can pass silently on an empty stub. It also proves that skipping
an exercise never stops a chapter: the notebook runs as in a learner's session (no pytest in the
kernel's environment), where a failing check prints its message and "Run All" goes on, so every
cell after an unsolved exercise runs; then (chapter 00) the saved notebook goes through the
learner's ``pytest --nbval``, where every check raises, and must fail on exactly the check cells,
each naming its exercise, with no frame of the checks in the report (tests/learner_flow.py).

Where Chromium and Playwright are installed (CI), this nbclient run is skipped: the browser tests
(tests/ui) run chapter 00 with its stubs in JupyterLab, and every chapter with its exercises done;
what the stubs of the other chapters could break is checked here without running them
(``test_the_stubs_cannot_stop_run_all``, always run).
"""

from __future__ import annotations

import nbformat
import pytest
from build_notebooks import LEARNER_DIR, sources
from learner_flow import (
    BROWSER_AVAILABLE,
    NBVAL_ON_STUBS,
    learner_clone,
    nbval_problems,
    session_env,
    session_problems,
    stub_problems,
)
from notebook_run import execute

SOURCES = sources()


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_the_stubs_cannot_stop_run_all(src):
    """Without running: each stub raises NotImplementedError, each exercise has its check cell after
    it, and no other cell after it reads it (learner_flow.stub_problems)."""
    problems = stub_problems(nbformat.read(LEARNER_DIR / f"{src.stem}.ipynb", as_version=4))
    assert not problems, f"chapter {src.stem}:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    "src", SOURCES,
    ids=lambda p: p.stem)
@pytest.mark.skipif(BROWSER_AVAILABLE, reason="run in JupyterLab by tests/ui/test_widget_in_browser.py")
def test_checks_fail_on_stubs_and_nothing_else_fails(src, tmp_path):
    path = LEARNER_DIR / f"{src.stem}.ipynb"
    (tmp_path / "sockets").mkdir()
    nb = execute(nbformat.read(path, as_version=4), LEARNER_DIR, allow_errors=True,
                 sockets=tmp_path / "sockets", env=session_env())
    problems, exercises = session_problems(nb, src.stem)
    assert not problems, f"chapter {src.stem}:\n" + "\n".join(problems)
    # the saved notebook, checked as the learner does: fails on exactly the unsolved exercises
    saved = learner_clone(tmp_path / "clone") / path.name
    nbformat.write(nb, saved)
    if src.stem in NBVAL_ON_STUBS:  # the others' stubs: see tests/learner_flow.py
        problems = nbval_problems(saved, src.stem, exercises)
        assert not problems, f"chapter {src.stem}, saved:\n" + "\n".join(problems)
