"""The diagrams drawn by code: they draw without error and carry the labels the chapters cite."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from pathlib import Path  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from mosaics_edu.course import diagrams  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def test_course_map_names_every_chapter():
    fig = diagrams.draw_course_map()
    labels = " ".join(diagrams.figure_labels(fig))
    for num, title, _ in diagrams.COURSE:
        assert f"{num} · {title}" in labels
    chapters = sorted(p.stem[:2] for p in (ROOT / "chapters" / "sources").glob("[0-9][0-9]_*.py"))
    assert [num for num, _, _ in diagrams.COURSE] == chapters, "diagrams.COURSE lists every chapter"
    plt.close(fig)


def test_memory_unit_shows_past_keys_peeking_values_and_strict_memory():
    fig = diagrams.draw_memory_unit(T=8, t=5)
    labels = diagrams.figure_labels(fig)
    text = " ".join(labels)
    assert "keys (past)" in text and "values (peek ahead)" in text
    assert "the pairs s < 5" in text and "$v_{5}$ holds $x_{6}$" in text
    assert "$y_{5} \\approx x_{6}$" in labels
    assert sum(lab.startswith("$k_{") for lab in labels) == 8
    plt.close(fig)


def test_memory_unit_draws_on_a_given_axis_and_validates():
    fig, ax = plt.subplots()
    assert diagrams.draw_memory_unit(ax=ax, T=6, t=3) is fig
    with pytest.raises(ValueError, match="t="):
        diagrams.draw_memory_unit(T=6, t=5)
    plt.close(fig)


def test_block_comparison_shows_both_blocks_and_their_budgets():
    fig = diagrams.draw_block_comparison()
    text = " ".join(diagrams.figure_labels(fig))
    assert "contextual memory (C-mem)" in text and "persistent memory (P-mem)" in text
    assert "causal self-attention" in text and "MLP d → 4d → d" in text
    assert "3d²" in text and "7d²" in text and "4d²" in text and "8d²" in text
    assert "no position table" in text and "position table (T·d)" in text
    assert text.count("LN₁ (gain only)") == 2
    plt.close(fig)
