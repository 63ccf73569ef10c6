"""The learner-flow rules (tests/learner_flow.py) on small made-up notebooks: what they accept and
what they reject, so the browser and nbclient runs of the chapters cannot pass on a broken flow."""

from __future__ import annotations

import nbformat
from learner_flow import defined_exercises, session_problems, stub_problems

STEM = "99_made_up"


def _report(name: str) -> str:
    return f"✗ [chapter {STEM} · exercise '{name}'] is not implemented yet: fill in the stub\n"


def _notebook(exercise_sources: list[str], reported: list[str]) -> nbformat.NotebookNode:
    """Exercise cells, then one run check cell per name in ``reported`` (printing its report)."""
    cells = []
    for source in exercise_sources:
        cell = nbformat.v4.new_code_cell(source, execution_count=len(cells) + 1)
        cell.metadata["tags"] = ["exercise"]
        cells.append(cell)
    for name in reported:
        cell = nbformat.v4.new_code_cell(f"chNN.check_{name}({name})", execution_count=len(cells) + 1)
        cell.metadata["tags"] = ["check"]
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=_report(name))]
        cells.append(cell)
    return nbformat.v4.new_notebook(cells=cells)


EXERCISES = ["def first(x):\n    raise NotImplementedError\n",
             "class Second:\n    pass\n\n\ndef third():\n    ...\n"]


def test_defined_exercises_lists_functions_and_classes_in_order():
    assert defined_exercises(_notebook(EXERCISES, [])) == ["first", "Second", "third"]


def test_every_exercise_checked_once_in_order_passes():
    problems, named = session_problems(_notebook(EXERCISES, ["first", "Second", "third"]), STEM)
    assert problems == [] and named == ["first", "Second", "third"]


def test_an_exercise_without_its_check_is_reported():
    problems, _ = session_problems(_notebook(EXERCISES, ["first", "third"]), STEM)
    assert len(problems) == 1 and "'Second'" in problems[0] and "exactly one check" in problems[0]


def test_a_check_twice_or_out_of_order_is_reported():
    for reported in (["first", "first", "Second", "third"], ["Second", "first", "third"]):
        problems, _ = session_problems(_notebook(EXERCISES, reported), STEM)
        assert len(problems) == 1 and "exactly one check" in problems[0], reported


def test_a_check_that_passes_on_a_stub_is_reported():
    nb = _notebook(EXERCISES, ["first", "Second", "third"])
    nb.cells[-1].outputs[0].text = "✓ third: passed\n"  # a check that a stub got past
    problems, _ = session_problems(nb, STEM)
    assert problems and "not implemented yet" in problems[0]


# --- stub_problems: what would stop Run All with the stubs, found without running --------------


def _stub_notebook(*cells: tuple[str, str | None]) -> nbformat.NotebookNode:
    """Code cells from (source, tag or None)."""
    out = []
    for source, tag in cells:
        cell = nbformat.v4.new_code_cell(source)
        if tag:
            cell.metadata["tags"] = [tag]
        out.append(cell)
    return nbformat.v4.new_notebook(cells=out)


STUB = "def first(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n"


def test_a_safe_stub_notebook_has_no_problems():
    nb = _stub_notebook(("import numpy as np", None), (STUB, "exercise"),
                        ("chNN.check_first(first)", "check"), ("print(np.pi)  # uses the package", None))
    assert stub_problems(nb) == []


def test_a_later_cell_reading_an_exercise_is_reported():
    nb = _stub_notebook((STUB, "exercise"), ("chNN.check_first(first)", "check"),
                        ("%matplotlib inline\ny = first(3)", None))
    (problem,) = stub_problems(nb)
    assert "cell 2 reads the exercise 'first'" in problem


def test_a_stub_that_does_not_raise_is_reported():
    nb = _stub_notebook(("def first(x):\n    return None\n", "exercise"),
                        ("chNN.check_first(first)", "check"))
    (problem,) = stub_problems(nb)
    assert "does not raise NotImplementedError" in problem


def test_a_missing_misplaced_or_doubled_check_is_reported():
    for cells in ([(STUB, "exercise")],
                  [("chNN.check_first(first)", "check"), (STUB, "exercise")],
                  [(STUB, "exercise")] + [("chNN.check_first(first)", "check")] * 2):
        (problem,) = stub_problems(_stub_notebook(*cells))
        assert "needs exactly one check cell after it" in problem, cells


def test_a_check_may_take_earlier_exercises():
    second = STUB.replace("first", "second")
    nb = _stub_notebook((STUB, "exercise"), ("chNN.check_first(first)", "check"), (second, "exercise"),
                        ("chNN.check_second(second, first)", "check"))
    assert stub_problems(nb) == []
