"""The committed notebooks are exactly what the builder makes from the chapter sources."""

from __future__ import annotations

import re

import nbformat
import pytest
from build_notebooks import LEARNER_DIR, ROOT, SOLUTIONS_DIR, build, learner, read_source, solutions, sources

REBUILD = "python tools/build_notebooks.py"
SOURCES = sources()


def _cells(nb: nbformat.NotebookNode) -> list[tuple[str, str, list[str]]]:
    return [(c.cell_type, c.source, list(c.metadata.get("tags", []))) for c in nb.cells]


def test_there_are_chapters():
    assert SOURCES, "no chapter sources found in chapters/sources/"
    assert SOURCES[0].stem.startswith("00_"), "chapter 00 (start here) must exist"


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_committed_notebooks_match_a_fresh_build(src):
    stu, sol = build(src)
    for kind, fresh, path in [("learner", stu, LEARNER_DIR / f"{src.stem}.ipynb"),
                              ("solutions", sol, SOLUTIONS_DIR / f"{src.stem}.ipynb")]:
        assert path.exists(), f"chapter {src.stem}: {kind} notebook missing; run: {REBUILD}"
        committed = nbformat.read(path, as_version=4)
        assert _cells(committed) == _cells(fresh), (
            f"chapter {src.stem}: the {kind} notebook {path.name} is stale (it differs from "
            f"chapters/sources/{src.name}); run: {REBUILD}")


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_committed_notebooks_carry_no_outputs(src):
    for path in [LEARNER_DIR / f"{src.stem}.ipynb", SOLUTIONS_DIR / f"{src.stem}.ipynb"]:
        nb = nbformat.read(path, as_version=4)
        dirty = [i for i, c in enumerate(nb.cells)
                 if c.cell_type == "code" and (c.outputs or c.execution_count)]
        assert not dirty, f"{path.name}: cells {dirty} carry outputs; run: {REBUILD}"
        assert "widgets" not in nb.metadata, f"{path.name} carries widget state; run: {REBUILD}"


def _exercise_name(source: str) -> str:
    m = re.search(r"^\s*(?:def|class)\s+(\w+)", source, re.M)
    return m.group(1) if m else source.strip().splitlines()[0][:60]


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_solutions_notebook_holds_no_stub(src):
    nb = nbformat.read(SOLUTIONS_DIR / f"{src.stem}.ipynb", as_version=4)
    stubs = [_exercise_name(c.source) for c in nb.cells
             if c.cell_type == "code" and "raise NotImplementedError()" in c.source]
    assert not stubs, (f"chapter {src.stem}: the solutions notebook still has a learner stub in "
                       f"exercise(s) {stubs}; put the answer between ### BEGIN/END SOLUTION in "
                       f"the source and run: {REBUILD}")


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_every_exercise_has_a_solution_region_and_a_check(src):
    nb = read_source(src)
    cells = nb.cells
    for i, cell in enumerate(cells):
        tags = cell.metadata.get("tags", [])
        if "exercise" in tags:
            name = _exercise_name(cell.source)
            assert "### BEGIN SOLUTION" in cell.source, (
                f"chapter {src.stem}, exercise '{name}': an exercise cell needs a "
                f"### BEGIN SOLUTION ... ### END SOLUTION region")
            following = [c for c in cells[i + 1:] if c.cell_type == "code"][:1]
            assert following and "check" in following[0].metadata.get("tags", []), (
                f"chapter {src.stem}, exercise '{name}': the next code cell must be tagged 'check'")
        if "check" in tags:
            assert "assert " not in cell.source, (
                f"chapter {src.stem}: a check cell calls a check from mosaics_edu.course.checks; a bare "
                f"assert cannot diagnose: {cell.source[:80]!r}")


def test_builder_stubs_and_strips(tmp_path):
    src = tmp_path / "99_demo.py"
    src.write_text(
        "# %%\nimport math\n\n# %% tags=[\"exercise\"]\ndef f(x: float) -> float:\n"
        "    ### BEGIN SOLUTION\n    return math.sqrt(x)\n    ### END SOLUTION\n")
    nb = read_source(src)
    stu, sol = learner(nb, "99_demo"), solutions(nb, "99_demo")
    stu_src, sol_src = stu.cells[-1].source, sol.cells[-1].source
    assert "raise NotImplementedError()" in stu_src and "sqrt" not in stu_src
    assert "sqrt" in sol_src and "BEGIN SOLUTION" not in sol_src and "NotImplemented" not in sol_src
    assert stu.cells[1].metadata["tags"] == ["colab-setup", "remove-cell"]
    assert "colab.research.google.com" in stu.cells[0].source


def test_colab_cell_installs_the_package_alone_from_the_one_repo_setting():
    """Colab keeps its own torch and ipywidgets 7: the cell installs the package with --no-deps."""
    import build_notebooks

    cell = build_notebooks.COLAB_SETUP
    assert '"--no-deps"' in cell and 'if "google.colab" in sys.modules:' in cell
    assert f"git+https://github.com/{build_notebooks.REPO}@{build_notebooks.BRANCH}" in cell
    for name in ("torch", "ipywidgets", "jupyterlab", "widgetsnbextension"):
        assert f'"{name}' not in cell, f"the Colab cell must not install {name}"


def test_every_notebook_points_at_the_repo_setting():
    from build_notebooks import BRANCH, REPO

    for path in sorted(LEARNER_DIR.glob("[0-9]*.ipynb")) + sorted(SOLUTIONS_DIR.glob("[0-9]*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        where = f"{path.parent.name}/{path.name}"
        assert f"colab.research.google.com/github/{REPO}/blob/{BRANCH}/" in nb.cells[0].source, where
        assert f"git+https://github.com/{REPO}@{BRANCH}" in nb.cells[1].source, where


def test_builder_refuses_unbalanced_markers(tmp_path):
    src = tmp_path / "99_bad.py"
    src.write_text("# %%\ndef f():\n    ### BEGIN SOLUTION\n    return 1\n")
    with pytest.raises(ValueError, match="BEGIN SOLUTION"):
        learner(read_source(src), "99_bad")


#: Chapters whose exercises carry folded hints (every chapter, once all are written).
HINTED = ("00", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11")
HINT = re.compile(r"<details><summary><b>Hint (\d)</b>[^<]*</summary>(.*?)</details>", re.S)


@pytest.mark.parametrize("src", [s for s in SOURCES if s.stem[:2] in HINTED], ids=lambda p: p.stem)
def test_every_exercise_has_three_progressive_hints_in_the_learner_notebook(src):
    """Above each exercise cell of the learner notebook: a markdown cell tagged ``hints`` with three
    folded hints (a nudge, the approach, the key line), the last never the whole solution; and every
    "see hint N above" in the chapter's checks points at a hint that exists."""
    learner_nb = nbformat.read(LEARNER_DIR / f"{src.stem}.ipynb", as_version=4)
    solved = nbformat.read(SOLUTIONS_DIR / f"{src.stem}.ipynb", as_version=4)
    problems = []
    for i, cell in enumerate(learner_nb.cells):
        if "exercise" not in cell.metadata.get("tags", []):
            continue
        name = _exercise_name(cell.source)
        above = []
        for prev in reversed(learner_nb.cells[:i]):
            if prev.cell_type == "code":
                break
            above.append(prev)
        hints = [c for c in above if "hints" in c.metadata.get("tags", [])]
        found = HINT.findall(hints[0].source) if hints else []
        if [int(n) for n, _ in found] != [1, 2, 3]:
            problems.append(f"{name}: the cell above it needs a markdown cell tagged 'hints' with Hint 1, "
                            f"Hint 2, Hint 3 in <details> (found {[n for n, _ in found]})")
            continue
        solution = [ln.strip() for ln in solved.cells[i].source.splitlines()[1:] if ln.strip()
                    and not ln.strip().startswith(("#", '"""'))]
        key = [ln.strip() for ln in found[2][1].splitlines() if ln.strip() and not ln.startswith("```")]
        if len(key) >= len(solution) or all(ln in found[2][1] for ln in solution):
            problems.append(f"{name}: hint 3 gives {len(key)} lines, the whole solution "
                            f"({len(solution)} lines); it should give the key line only")
    checks = (ROOT / "mosaics_edu" / "course" / "checks" / f"ch{src.stem[:2]}.py").read_text()
    pointers = {int(n) for n in re.findall(r"see hint (\d) above", checks)}
    assert pointers <= {1, 2, 3}, f"{src.stem}: checks point at hints {sorted(pointers)}"
    assert not problems, f"chapter {src.stem}:\n" + "\n".join(problems)
