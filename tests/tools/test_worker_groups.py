"""The tests that must share one xdist worker get one (the root conftest.py's scheduler).

pytest-xdist 3.8 under pytest 9.2 no longer groups tests by their ``xdist_group`` marks
(pytest-dev/pytest-xdist#1386), so the root conftest.py groups them by path (``WORKER_GROUPS``).
These tests keep the path rule and the marks in step: every file that marks a group is grouped
under that name, and every group of the rule names files that carry its mark.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MARK = re.compile(r"""xdist_group\(\s*(?:name\s*=\s*)?["'](\w+)["']""")


@pytest.fixture(scope="module")
def root_conftest(pytestconfig):
    found = [p for p in pytestconfig.pluginmanager.get_plugins()
             if getattr(p, "__file__", None) and Path(p.__file__).resolve() == ROOT / "conftest.py"]
    assert found, "the root conftest.py is not loaded"
    return found[0]


def _marked_files() -> dict[str, str]:
    """Test files (repository-relative) and the xdist group their marks name."""
    marked = {}
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        names = set(MARK.findall(path.read_text()))
        assert len(names) <= 1, f"{path}: one xdist group per file, found {names}"
        if names:
            marked[path.relative_to(ROOT).as_posix()] = names.pop()
    return marked


def test_every_file_that_marks_a_group_is_scheduled_in_that_group(root_conftest):
    marked = _marked_files()
    assert "tests/ui/test_widget_in_browser.py" in marked and "tests/tools/test_ipywidgets7.py" in marked
    for rel, name in marked.items():
        assert root_conftest.worker_group(f"{rel}::test_x[00]") == name, (
            f"{rel} marks xdist_group({name!r}): add its path to WORKER_GROUPS in conftest.py")
    for prefix, name in root_conftest.WORKER_GROUPS.items():
        assert any(rel.startswith(prefix) and n == name for rel, n in marked.items()), (
            f"WORKER_GROUPS groups {prefix} as {name!r}, but no file there carries that mark")


def test_group_of_a_test_id(root_conftest):
    group = root_conftest.worker_group
    assert group("tests/ui/test_explorer_in_browser.py::test_typing") == "browser"
    assert group("tests/ui/test_widget_in_browser.py::test_chapter_runs[05]") == "browser"
    assert group("tests/tools/test_ipywidgets7.py::test_the_environment") == "ipywidgets7"
    assert group("tests/core/test_memory.py::test_x[a@b]") is None  # an "@" inside the parameters
    assert group("tests/core/test_memory.py::test_x[1]@other") == "other"  # xdist's own suffix wins
    assert group("tests/chapters/test_saved_notebooks.py::test_pytest_nbval[05_training]") is None
