"""Widgets are thin: they build headless, and the pure function behind them is correct."""

from __future__ import annotations

import base64

import ipywidgets as widgets
import matplotlib
import numpy as np
import pytest

from mosaics_edu.course.softmax import DEMO_SCORES, beta_softmax, draw_beta_softmax
from mosaics_edu.course.widgets import WIDGET_VIEW, build_interactive_figure, defaults, interactive_figure

matplotlib.use("Agg")


def test_beta_softmax_limits():
    flat = beta_softmax(DEMO_SCORES, beta=0.0)
    assert np.allclose(flat["weights"], 1 / len(DEMO_SCORES))
    assert np.isclose(flat["entropy"], np.log(len(DEMO_SCORES)))
    sharp = beta_softmax(DEMO_SCORES, beta=1e3)["weights"]
    assert sharp.argmax() == DEMO_SCORES.argmax() and sharp.max() > 0.999


@pytest.mark.parametrize("kwargs, match", [
    ({"scores": np.zeros((2, 2)), "beta": 1.0}, "scores"),
    ({"scores": DEMO_SCORES, "beta": -1.0}, "beta"),
    ({"scores": DEMO_SCORES, "beta": float("nan")}, "beta"),
])
def test_beta_softmax_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        beta_softmax(**kwargs)


def test_interactive_figure_builds_and_redraws_without_a_browser():
    calls = []

    def compute(scores, beta, shift):
        calls.append(beta)
        return beta_softmax(scores, beta, shift)

    controls = {"scores": DEMO_SCORES,
                "beta": widgets.FloatSlider(value=1.0, min=0, max=5),
                "shift": widgets.FloatSlider(value=0.0, min=-5, max=5)}
    built = build_interactive_figure(compute, draw_beta_softmax, controls)
    assert isinstance(built.box, widgets.VBox) and built.names == ("beta", "shift")
    assert built.default_png.startswith(b"\x89PNG"), "the default view is kept as a PNG"
    assert calls == [1.0], "built once, drawn once at the default values"
    assert defaults(controls)["beta"] == 1.0 and defaults(controls)["scores"] is DEMO_SCORES
    controls["beta"].value = 2.0  # what a learner's slider move does in the kernel
    assert calls[-1] == 2.0


def test_interactive_figure_rejects_results_instead_of_functions():
    with pytest.raises(TypeError, match="compute and draw must be functions"):
        interactive_figure(beta_softmax(DEMO_SCORES, 1.0), draw_beta_softmax, {})


def _controls():
    return {"scores": DEMO_SCORES, "beta": widgets.FloatSlider(value=1.0, min=0, max=5)}


def test_interactive_figure_displays_once_and_returns_nothing(monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda *a, **k: shown.append((a, k)))
    result = interactive_figure(beta_softmax, draw_beta_softmax, _controls())
    assert result is None, "returning the widget too makes a cell without ';' show it twice"
    assert len(shown) == 1
    (bundle,), kwargs = shown[0]
    assert kwargs == {"raw": True}
    assert bundle[WIDGET_VIEW]["model_id"], "the live widget"
    assert base64.b64decode(bundle["image/png"]).startswith(b"\x89PNG"), "its static fallback"
    assert bundle["text/plain"] == "Interactive figure; its controls: beta."


def test_a_cell_ending_in_interactive_figure_shows_one_widget(tmp_path):
    """In a real kernel, with and without the trailing ';', the cell has exactly one widget output."""
    nbformat = pytest.importorskip("nbformat")
    from notebook_run import execute
    setup = ("import ipywidgets as widgets\n"
             "from mosaics_edu.course.softmax import DEMO_SCORES, beta_softmax, draw_beta_softmax\n"
             "from mosaics_edu.course.widgets import interactive_figure\n"
             "def controls():\n"
             "    return {'scores': DEMO_SCORES, 'beta': widgets.FloatSlider(value=1.0, min=0, max=5)}")
    call = "interactive_figure(beta_softmax, draw_beta_softmax, controls())"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(setup),
                                         nbformat.v4.new_code_cell(call),
                                         nbformat.v4.new_code_cell(call + ";")])
    execute(nb, tmp_path, sockets=tmp_path)  # guarded: a lost message cannot stall it
    for cell in nb.cells[1:]:
        views = [o for o in cell.outputs if WIDGET_VIEW in o.get("data", {})]
        assert len(views) == 1, f"{cell.source!r} shows {len(views)} widgets"
        assert "image/png" in views[0]["data"]
        assert not [o for o in cell.outputs if o.output_type == "error"]
