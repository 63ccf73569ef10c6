"""How long a chapter takes a learner, computed from its source the same way for every chapter.

    python tools/learner_time.py          # a table: reading, exercises, running, total, budget

Learner time = **reading** + **exercises** + **running**:

- reading: every word a learner reads — the markdown (folded answers included, folded hints left
  out: they belong to an exercise's time) and the code outside the exercise and check cells — at
  ``WORDS_PER_MINUTE`` (200, below the 238 words a minute adults average on non-fiction, for text
  with equations and code), rounded up to whole minutes;
- exercises: the minutes each exercise states in its heading, ``**Exercise N.M — ...** (★★, 15
  minutes)``;
- running: the chapter's CPU time from the README's course map, rounded up to whole minutes.

Cells tagged ``going-further`` (``OPTIONAL_TAG``) are a chapter's optional material: a box that
opens with a markdown cell saying **Going further (optional)**, and any exercise inside it (its
heading, hints, exercise and check cells all carry the tag). Their reading and exercise minutes
are counted the same way but *apart*: the learner time is what the chapter asks of everyone, and
the optional minutes are stated beside it (front matter, README course map), never hidden. A box
holds only what nothing later in the course needs, never a chapter's caveat;
``tests/chapters/test_course_pages.py`` fails on a box that does not say it is optional.

``tools/build_notebooks.py`` writes the result into each notebook's front matter, and
``tools/course_pages.py`` into the README's course map; ``tests/chapters/test_course_pages.py`` keeps both
in sync and every chapter within ``BUDGET_MINUTES``.
"""

from __future__ import annotations

import ast
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

WORDS_PER_MINUTE = 200
BUDGET_MINUTES = 75
#: The tag of a chapter's optional cells ("going further"), counted apart from its learner time.
OPTIONAL_TAG = "going-further"
#: What the first cell of every run of optional cells must say, so that a learner sees it is optional.
OPTIONAL_BANNER = re.compile(r"\*\*Going further \(optional")

#: The heading of an exercise: number, title, difficulty, minutes.
EXERCISE = re.compile(r"\*\*Exercise (?P<number>\d+\.\d+) — (?P<title>.+?)\*\*\s*"
                      r"\((?P<stars>★+),\s*(?P<minutes>\d+)\s*minutes?\)", re.S)
#: A duration at the start of a course-map cell: "16 s", "85 s", "2 min", "1 min 30 s".
DURATION = re.compile(r"^\s*(?:(?P<min>\d+(?:\.\d+)?)\s*min)?\s*(?:(?P<s>\d+(?:\.\d+)?)\s*s\b)?")


@dataclass(frozen=True)
class Exercise:
    """One exercise as its chapter states it."""

    chapter: str  # "01_kernel_regression"
    number: str  # "1.2"
    title: str  # "`leave_one_out_error`"
    stars: int  # 1 to 3
    minutes: int
    builds: str  # the first sentence of the exercise function's docstring
    optional: bool = False  # inside a "going further" box


@dataclass(frozen=True)
class LearnerTime:
    """A chapter's learner time in whole minutes."""

    reading: int
    exercises: int
    running: int
    words: int
    optional_reading: int = 0  # the "going further" boxes, counted apart
    optional_exercises: int = 0

    @property
    def total(self) -> int:
        return self.reading + self.exercises + self.running

    @property
    def optional(self) -> int:
        return self.optional_reading + self.optional_exercises

    def sentence(self) -> str:
        """The line the notebooks' front matter shows."""
        line = (f"**Learner time:** about {self.total} minutes — reading {self.reading}, exercises "
                f"{self.exercises}, running {self.running}")
        if self.optional:
            line += (f"; the optional *going further* boxes add about {self.optional} more (reading "
                     f"{self.optional_reading}, exercises {self.optional_exercises})")
        return line + " (how this is counted: the README's course map)."

    def cell(self) -> str:
        """The README course map's learner-time cell."""
        core = f"{self.total} min ({self.reading} + {self.exercises} + {self.running})"
        return core + (f" + {self.optional} min going further (optional)" if self.optional else "")


def _tags(cell: nbformat.NotebookNode) -> list[str]:
    return list(cell.metadata.get("tags", []))


def reading_words(nb: nbformat.NotebookNode, optional: bool = False) -> int:
    """Words a learner reads: markdown (not the folded hints) and code outside exercises and checks;
    of the core cells, or (``optional``) of the "going further" ones."""
    words = 0
    for cell in nb.cells:
        tags = _tags(cell)
        if "hints" in tags or "exercise" in tags or "check" in tags or (OPTIONAL_TAG in tags) != optional:
            continue
        if cell.cell_type in ("markdown", "code"):
            words += len(cell.source.split())
    return words


def _docstring_sentence(code: str) -> str:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return ""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            doc = ast.get_docstring(node) or ""
            first = " ".join(doc.split("\n\n")[0].split())
            return first.split(". ")[0].rstrip(".") + ("." if first else "")
    return ""


def exercises(nb: nbformat.NotebookNode, chapter: str) -> list[Exercise]:
    """Every exercise of a chapter, in order, with what its function builds."""
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        for m in EXERCISE.finditer(cell.source):
            code = next((c.source for c in nb.cells[i + 1:] if "exercise" in _tags(c)), "")
            found.append(Exercise(chapter, m["number"], " ".join(m["title"].split()), len(m["stars"]),
                                  int(m["minutes"]), _docstring_sentence(code), OPTIONAL_TAG in _tags(cell)))
    return found


def optional_problems(nb: nbformat.NotebookNode) -> list[str]:
    """What keeps the "going further" boxes from being plainly optional: a run of tagged cells that
    does not open with the **Going further (optional** banner, or an exercise half inside a box."""
    problems, previous = [], False
    for i, cell in enumerate(nb.cells):
        tagged = OPTIONAL_TAG in _tags(cell)
        banner = cell.cell_type == "markdown" and OPTIONAL_BANNER.search(cell.source)
        if tagged and not previous and not banner:
            problems.append(f"cell {i} opens a going-further box without '**Going further (optional': "
                            f"{cell.source[:60]!r}")
        if "exercise" in _tags(cell) or "check" in _tags(cell) or "hints" in _tags(cell):
            if tagged != previous and "hints" not in _tags(cell):
                problems.append(f"cell {i}: an exercise's cells are all in a going-further box or none is")
        previous = tagged
    return problems


def course_map_rows(readme: str | None = None) -> dict[str, list[str]]:
    """The README's course-map table: chapter number -> its cells."""
    text = README.read_text() if readme is None else readme
    section = text.split("## Course map", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and re.fullmatch(r"\d\d", cells[0]):
            rows[cells[0]] = cells
    return rows


def running_seconds(chapter: str, readme: str | None = None) -> float:
    """The chapter's CPU time from the README's course map (its "CPU time" column)."""
    rows = course_map_rows(readme)
    number = chapter[:2]
    if number not in rows:
        raise ValueError(f"README.md's course map has no row for chapter {number}: add one (with its "
                         "CPU time) before building its notebooks")
    header = course_map_header(readme)
    cell = rows[number][header.index("CPU time")]
    m = DURATION.match(cell)
    if not m or not (m["min"] or m["s"]):
        raise ValueError(f"README.md, course map, chapter {number}: the CPU time {cell!r} does not start "
                         "with a duration like '16 s' or '2 min'")
    return float(m["min"] or 0) * 60 + float(m["s"] or 0)


def course_map_header(readme: str | None = None) -> list[str]:
    """The column names of the README's course map."""
    text = README.read_text() if readme is None else readme
    section = text.split("## Course map", 1)[1]
    line = next(ln for ln in section.splitlines() if ln.startswith("| #"))
    return [c.strip() for c in line.strip().strip("|").split("|")]


def learner_time(nb: nbformat.NotebookNode, chapter: str, readme: str | None = None) -> LearnerTime:
    """Reading + exercises + running of one chapter source (read with Jupytext)."""
    words = reading_words(nb)
    found = exercises(nb, chapter)
    return LearnerTime(reading=math.ceil(words / WORDS_PER_MINUTE),
                       exercises=sum(e.minutes for e in found if not e.optional),
                       running=math.ceil(running_seconds(chapter, readme) / 60), words=words,
                       optional_reading=math.ceil(reading_words(nb, optional=True) / WORDS_PER_MINUTE),
                       optional_exercises=sum(e.minutes for e in found if e.optional))


def chapter_times() -> dict[str, LearnerTime]:
    """Every chapter's learner time, in course order."""
    from build_notebooks import read_source, sources

    return {src.stem: learner_time(read_source(src), src.stem) for src in sources()}


def main() -> int:
    print(f"{'chapter':<26} {'words':>6} {'reading':>7} {'exercises':>9} {'running':>7} {'total':>5} "
          f"{'optional':>8}")
    for stem, t in chapter_times().items():
        over = f"  over {BUDGET_MINUTES} by {t.total - BUDGET_MINUTES}" if t.total > BUDGET_MINUTES else ""
        print(f"{stem:<26} {t.words:>6} {t.reading:>7} {t.exercises:>9} {t.running:>7} {t.total:>5} "
              f"{t.optional:>8}{over}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    raise SystemExit(main())
