"""Chapters speak to learners: how a shipped result was made, on which machine and under what load,
and what the test suite does, belong in CONTRIBUTING.md ("Notes on the shipped results"). This test
fails on the phrases that such passages use, so they cannot creep back into a chapter."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted((ROOT / "chapters" / "sources").glob("[0-9][0-9]_*.py"))

#: Phrases of a lab notebook, each with what the chapter should say instead.
LAB_PHRASES = {
    r"load average": "how busy a machine was",
    r"\bthe machine\b|\bthis machine\b|\bshared machine\b": "the machine a result was made on",
    r"\b2-core\b|\btwo-core\b": "the machine a result was made on",
    r"\bidle (laptop|machine|CPU|core)": "the machine a result was made on",
    r"[Rr]eproduction notes": "a box of notes on how a result was made",
    r"test suite|when tests run|\bCI\b": "what the tests do",
    r"was tried first|we tried|tried and dropped": "what was tried first",
    r"course's authors|no GPU was available|while (this chapter was|we were) writ": "the authors' hardware",
}


def _prose(path: Path) -> list[tuple[int, str]]:
    """The chapter's comment lines (markdown cells and code comments), with their line numbers."""
    return [(i, line) for i, line in enumerate(path.read_text().splitlines(), 1)
            if line.lstrip().startswith("#")]


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_no_lab_notebook_in_a_chapter(source):
    found = [f"{source.name}:{i}: {line.strip()[:100]} ({what})"
             for i, line in _prose(source) for pattern, what in LAB_PHRASES.items()
             if re.search(pattern, line)]
    assert not found, ("move to CONTRIBUTING.md, 'Notes on the shipped results':\n" + "\n".join(found))


def test_the_check_finds_a_lab_note(tmp_path):
    chapter = tmp_path / "99_x.py"
    chapter.write_text("# %% [markdown]\n# Trained on a shared machine at load average 6.\nx = 1\n")
    with pytest.raises(AssertionError, match="load average"):
        test_no_lab_notebook_in_a_chapter(chapter)
