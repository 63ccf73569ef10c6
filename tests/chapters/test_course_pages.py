"""The course-level pages (glossary, exercise index, paper <-> course map, the README's learner-time
column) are what ``tools/course_pages.py`` makes from the chapters and the shipped results, the
glossary sends each term to a chapter that uses it, and every chapter states its learner time."""

from __future__ import annotations

import re

import nbformat
import pytest
from build_notebooks import SOLUTIONS_DIR, read_source, sources
from course_pages import CLAIMS, ROOT, pages
from glossary import GLOSSARY
from learner_time import BUDGET_MINUTES, OPTIONAL_TAG, chapter_times, learner_time, optional_problems

REGENERATE = "python tools/course_pages.py"

#: Chapters known to run over the learner-time budget, until they are shortened. A chapter over the
#: budget that is not listed here fails the test.
KNOWN_OVER_BUDGET: set[str] = set()


@pytest.fixture(scope="module")
def fresh() -> dict:
    return pages()


def test_every_page_is_fresh(fresh):
    stale = [str(p.relative_to(ROOT)) for p, text in fresh.items() if not p.exists() or p.read_text() != text]
    assert not stale, f"{stale} differ from what the chapters and shipped results give; run: {REGENERATE}"


def _markdown(stem_prefix: str) -> str:
    src = next(s for s in sources() if s.stem.startswith(stem_prefix))
    return "\n".join(c.source for c in read_source(src).cells
                     if c.cell_type == "markdown" and "hints" not in c.metadata.get("tags", []))


@pytest.mark.parametrize("term", GLOSSARY, ids=lambda t: t.term)
def test_each_glossary_term_points_to_a_chapter_that_uses_it(term):
    assert re.search(term.pattern, _markdown(term.chapter)), (
        f"glossary: '{term.term}' points to chapter {term.chapter}, whose text never says /{term.pattern}/; "
        "point it to the chapter that teaches it (tools/glossary.py)")


def test_the_glossary_has_the_courses_terms():
    names = " ".join(t.term for t in GLOSSARY)
    for term in ("memory unit", "C-mem", "P-mem", "peek", "leaky key", "induction head",
                 "in-context learning", "predictive disentanglement", "TVD", "bootstrap", "logit lens",
                 "direct logit attribution",
                 "ablation", "OOD", "MISE", "MFU", "SwiGLU", "all-reduce", "gloo, NCCL", "ZeRO-3", "RoPE"):
        assert term in names, f"the glossary (tools/glossary.py) lacks '{term}'"
    assert len({t.term for t in GLOSSARY}) == len(GLOSSARY), "a glossary term is listed twice"


def test_every_claim_of_the_paper_map_reads_its_result():
    for claim in CLAIMS:
        status, text = claim.result()
        assert status in {"reproduced", "partly", "not", "pending"} and text, claim.where


def test_every_chapter_states_its_learner_time_in_its_front_matter():
    for stem, t in chapter_times().items():
        nb = nbformat.read(SOLUTIONS_DIR / f"{stem}.ipynb", as_version=4)
        front = next(c.source for c in nb.cells[2:] if c.cell_type == "markdown")
        assert t.sentence() in front, f"{stem}: its notebooks do not state {t.sentence()!r}; run: " \
                                      "python tools/build_notebooks.py"


def test_no_chapter_runs_over_the_budget_unnoticed():
    over = {stem[:2]: t.total for stem, t in chapter_times().items() if t.total > BUDGET_MINUTES}
    print({k: f"{v} min, over by {v - BUDGET_MINUTES}" for k, v in over.items()})
    unnoticed = sorted(set(over) - KNOWN_OVER_BUDGET)
    assert not unnoticed, (f"chapters {unnoticed} take {[over[k] for k in unnoticed]} minutes, over the "
                           f"{BUDGET_MINUTES}-minute budget (python tools/learner_time.py: where it goes)")


def test_going_further_boxes_are_marked_and_counted_apart():
    for src in sources():
        problems = optional_problems(read_source(src))
        assert not problems, f"{src.stem}: {problems}"
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    tagged = {"tags": [OPTIONAL_TAG]}
    nb = nbformat.v4.new_notebook(cells=[
        md("word " * 400),
        md("> **Going further (optional).** " + "word " * 300, metadata=tagged),
        md("**Exercise 10.9 — `f`** (★, 10 minutes). Return 1.", metadata=tagged),
        md("hints", metadata={"tags": ["hints", OPTIONAL_TAG]}),
        code("def f() -> int:\n    return 1", metadata={"tags": ["exercise", OPTIONAL_TAG]}),
        code("check(f)", metadata={"tags": ["check", OPTIONAL_TAG]}),
        md("**Exercise 10.10 — `g`** (★, 5 minutes). Return 2."),
    ])
    readme = "## Course map\n\n| # | chapter | what | learner time | CPU time |\n|---|---|---|---|---|\n" \
             "| 99 | x | y | z | 30 s |\n"
    t = learner_time(nb, "99_made_up", readme)
    assert (t.reading, t.exercises, t.running, t.optional_reading, t.optional_exercises) == (3, 5, 1, 2, 10)
    assert t.total == 9 and "add about 12 more" in t.sentence()
    assert t.cell() == "9 min (3 + 5 + 1) + 12 min going further (optional)"
    assert optional_problems(nb) == []
    nb.cells[1].source = "word " * 300  # the box no longer says it is optional
    assert optional_problems(nb)
