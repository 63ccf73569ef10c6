"""mosaics_edu.course.regbench.draw (automaton drawings) and .view (chapter 07's widget, compute + draw)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.patches import Circle, FancyArrowPatch  # noqa: E402

from mosaics_edu.course.regbench import (  # noqa: E402
    Automaton,
    InContextNGram,
    draw_samples,
    evaluate_samples,
    test_automata,
)
from mosaics_edu.course.regbench.draw import draw_automaton, edge_labels, state_positions  # noqa: E402
from mosaics_edu.course.regbench.view import draw_prediction_view, prediction_view  # noqa: E402


def _state_circles(ax):
    return [p for p in ax.patches if isinstance(p, Circle) and p.get_zorder() == 3]


def test_positions_are_deterministic_and_start_on_the_left():
    pos = state_positions(6)
    assert pos.shape == (6, 2) and np.allclose(pos, state_positions(6))
    assert np.allclose(pos[0], [-1, 0]) and np.allclose(np.linalg.norm(pos, axis=1), 1)
    assert len({tuple(np.round(p, 6)) for p in pos}) == 6  # no two states on top of each other
    assert np.allclose(state_positions(1), [[0, 0]])
    with pytest.raises(ValueError, match="n_states"):
        state_positions(0)


def test_edge_labels_group_parallel_edges():
    a = Automaton([{"a": 1, "c": 1, "b": 0}, {"d": 0}])
    assert edge_labels(a) == {(0, 1): "a,c", (0, 0): "b", (1, 0): "d"}


@pytest.mark.parametrize("index", [0, 1, 9])
def test_every_state_and_edge_label_is_drawn(index):
    a = test_automata()[index]
    fig, ax = plt.subplots()
    assert draw_automaton(a, ax, highlight=[0]) is ax
    circles = _state_circles(ax)
    assert len(circles) == a.n_states
    centres = np.array([c.center for c in circles])
    assert np.allclose(centres, state_positions(a.n_states))
    texts = [t.get_text() for t in ax.texts]
    for label in edge_labels(a).values():
        assert label in texts
    assert "start" in texts and [str(s) for s in range(a.n_states)] == [t for t in texts if t.isdigit()]
    arrows = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
    loops = sum(1 for s, t in edge_labels(a) if s == t)
    assert len(arrows) == len(edge_labels(a)) - loops + 1  # one per edge (not loops) + the start arrow
    assert circles[0].get_facecolor() != circles[-1].get_facecolor() or a.n_states == 1
    plt.close(fig)


def test_drawing_is_deterministic_and_handles_self_loops():
    one = Automaton([{"a": 0, "b": 0}])  # one state, two self-loops: one label "a,b"
    fig, (ax1, ax2) = plt.subplots(1, 2)
    draw_automaton(one, ax1)
    draw_automaton(one, ax2)
    assert [t.get_text() for t in ax1.texts] == [t.get_text() for t in ax2.texts]
    assert [t.get_position() for t in ax1.texts] == [t.get_position() for t in ax2.texts]
    assert "a,b" in [t.get_text() for t in ax1.texts]
    plt.close(fig)


def test_bad_input_is_refused_with_its_name():
    with pytest.raises(TypeError, match="automaton"):
        draw_automaton("0->1")
    with pytest.raises(ValueError, match="highlight"):
        draw_automaton(test_automata()[0], highlight=[99])


def test_prediction_view_agrees_with_evaluate():
    automata = test_automata()[:4]
    models = {"bigram": InContextNGram(2), "unigram": InContextNGram(1)}
    view = prediction_view(models, automata, index=3, start=5, width=10)
    sample = draw_samples(automata)[3]  # the sample evaluate() scores for automaton 3
    assert view["text"] == str(sample) and list(view["positions"]) == list(range(5, 15))
    assert np.allclose(view["reference"].sum(axis=1), 1)
    for name, model in models.items():
        scores = evaluate_samples(model, [sample])
        assert view["accuracy"][name] == pytest.approx(scores.accuracy)
        assert view["tvd"][name] == pytest.approx(scores.tvd)
        p = view["probs"][name]
        assert p.shape == (10, 20)
        valid = view["reference"][np.arange(10), p.argmax(axis=1)] > 0
        assert (view["valid_choice"][name] == valid).all()
    assert view["accuracy"]["bigram"] > view["accuracy"]["unigram"]
    late = prediction_view(models, automata, index=3, start=10_000, width=10)  # clipped to the sample
    assert late["positions"][-1] == len(sample.tokens) - 2
    fig = plt.figure(figsize=(10, 4))
    draw_prediction_view(view, fig)
    assert len(fig.axes) == 3
    plt.close(fig)
    with pytest.raises(ValueError, match="index"):
        prediction_view(models, automata, index=4)
