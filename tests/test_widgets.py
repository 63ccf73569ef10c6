"""Widgets are thin: they build headless, and the pure function behind them is correct."""

from __future__ import annotations

import ipywidgets as widgets
import matplotlib
import numpy as np
import pytest

from mosaics_edu.softmax import DEMO_SCORES, bandwidth_softmax, draw_bandwidth_softmax
from mosaics_edu.widgets import defaults, interactive_figure

matplotlib.use("Agg")


def test_bandwidth_softmax_limits():
    flat = bandwidth_softmax(DEMO_SCORES, beta=0.0)
    assert np.allclose(flat["weights"], 1 / len(DEMO_SCORES))
    assert np.isclose(flat["entropy"], np.log(len(DEMO_SCORES)))
    sharp = bandwidth_softmax(DEMO_SCORES, beta=1e3)["weights"]
    assert sharp.argmax() == DEMO_SCORES.argmax() and sharp.max() > 0.999


@pytest.mark.parametrize("kwargs, match", [
    ({"scores": np.zeros((2, 2)), "beta": 1.0}, "scores"),
    ({"scores": DEMO_SCORES, "beta": -1.0}, "beta"),
    ({"scores": DEMO_SCORES, "beta": float("nan")}, "beta"),
])
def test_bandwidth_softmax_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        bandwidth_softmax(**kwargs)


def test_interactive_figure_builds_and_redraws_without_a_browser():
    calls = []

    def compute(scores, beta, shift):
        calls.append(beta)
        return bandwidth_softmax(scores, beta, shift)

    controls = {"scores": DEMO_SCORES,
                "beta": widgets.FloatSlider(value=1.0, min=0, max=5),
                "shift": widgets.FloatSlider(value=0.0, min=-5, max=5)}
    box = interactive_figure(compute, draw_bandwidth_softmax, controls, display_now=False)
    assert isinstance(box, widgets.VBox)
    assert defaults(controls)["beta"] == 1.0 and defaults(controls)["scores"] is DEMO_SCORES
    controls["beta"].value = 2.0  # what a learner's slider move does in the kernel
    assert calls[-1] == 2.0


def test_interactive_figure_rejects_results_instead_of_functions():
    with pytest.raises(TypeError, match="compute and draw must be functions"):
        interactive_figure(bandwidth_softmax(DEMO_SCORES, 1.0), draw_bandwidth_softmax, {})
