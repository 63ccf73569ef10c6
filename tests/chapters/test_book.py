"""The course website (book/, Jupyter Book 1) holds every chapter with all of its figures.

Reads a built site: `python tools/build_book.py` (README, "The course as a website"), which runs
the solutions notebooks into book/_executed/ under the suite's hang protection, then renders them.
`.ci/run` builds it first and sets MOSAICS_REQUIRE_BOOK=1, so there a missing site fails; elsewhere
the tests skip until the site has been built.
"""

from __future__ import annotations

import os
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BOOK = ROOT / "book"
HTML = BOOK / "_build" / "html"
CHAPTERS = sorted(p.stem for p in (ROOT / "chapters" / "solutions").glob("[0-9][0-9]_*.ipynb"))
BUILD = 'pip install -e ".[book]" && python tools/build_book.py'


def test_every_chapter_and_the_reference_pages_are_in_the_table_of_contents():
    toc = yaml.safe_load((BOOK / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]
    assert files[:5] == ["intro", "notation", "glossary", "exercises", "paper_map"]
    assert files[5:] == [f"chapters/{name}" for name in CHAPTERS], f"book/_toc.yml lists {files}"
    assert (BOOK / "chapters").resolve() == (BOOK / "_executed").resolve()  # tools/build_book.py


@pytest.fixture(scope="module")
def site() -> Path:
    if not (HTML / "intro.html").exists():
        if os.environ.get("MOSAICS_REQUIRE_BOOK") == "1":
            pytest.fail(f"the course website is not built; run: {BUILD}")
        pytest.skip(f"the course website is not built; run: {BUILD}")
    return HTML


class _Cells(HTMLParser):
    """Per notebook cell on a page: the image sources in its output, in page order."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[list[str]] = []
        self._stack: list[str] = []  # for each open <div>: "cell", "output" or ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "div":
            classes = (dict(attrs).get("class") or "").split()
            kind = "cell" if "cell" in classes else "output" if "cell_output" in classes else ""
            if kind == "cell":
                self.cells.append([])
            self._stack.append(kind)
        elif tag == "img" and "output" in self._stack and self.cells:
            self.cells[-1].append(dict(attrs).get("src") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "div" and self._stack:
            self._stack.pop()


def _draws(source: str) -> bool:
    """A cell that shows a figure by itself: a top-level plt.show() or an interactive figure."""
    return any(line.startswith(("plt.show()", "interactive_figure(")) for line in source.splitlines())


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_page_holds_its_figures(site, name):
    """Each code cell that draws (a top-level ``plt.show()`` or an interactive figure's static
    view) shows at least one image on its page, and every image on the page exists."""
    page = site / "chapters" / f"{name}.html"
    assert page.exists(), f"{page} missing; run: {BUILD}"
    parser = _Cells()
    parser.feed(page.read_text(encoding="utf-8"))
    nb = nbformat.read(ROOT / "chapters" / "solutions" / f"{name}.ipynb", as_version=4)
    shown = [c for c in nb.cells
             if c.cell_type == "code" and "remove-cell" not in c.metadata.get("tags", [])]
    assert len(parser.cells) == len(shown), (
        f"{name}: {len(parser.cells)} code cells on the page, {len(shown)} in the notebook; rebuild: {BUILD}")
    drawing = 0
    for i, (cell, images) in enumerate(zip(shown, parser.cells, strict=True)):
        where = f"{name}, code cell {i} ({cell.source.splitlines()[0][:50]!r})"
        if _draws(cell.source):
            drawing += 1
            assert images, f"{where} draws a figure, its page shows none"
        for src in images:
            assert (page.parent / src).resolve().is_file(), f"{where}: image {src} missing"
    assert drawing > 0 and sum(map(len, parser.cells)) >= drawing, f"{name}: figures missing"
    html = page.read_text(encoding="utf-8")
    assert "application/vnd.jupyter.widget-view+json" not in html, "the site embeds no live widget"
    assert "Traceback" not in html, f"{name}: an error was rendered"


@pytest.mark.parametrize("page, must", [("intro", ["Course map", "00_start_here.html"]),
                                         ("notation", ["Notation", "decay", "beta"]),
                                         ("glossary", ["Glossary", "memory unit", "10_scaling_out.html"]),
                                         ("exercises", ["Exercise index", "batch_layout"]),
                                         ("paper_map", ["Paper", "RegBench", "reproduced"])])
def test_reference_pages(site, page, must):
    text = (site / f"{page}.html").read_text(encoding="utf-8")
    for word in must:
        assert word in text, f"{page}.html lacks {word!r}"
