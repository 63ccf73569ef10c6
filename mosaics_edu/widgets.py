"""Thin widgets: a pure function computes what is drawn, the widget only wires sliders to it.

Every widget of the course is built by :func:`interactive_figure`. It takes

- ``compute(**params) -> result``: a pure function (no plotting, no globals) that a test or a
  notebook cell can call and assert on, and
- ``draw(result, fig) -> None``: draws that result on a matplotlib figure.

In JupyterLab or Colab the sliders recompute and redraw. Under ``pytest --nbval`` there is no
browser: the widget is built once with its default values, and the notebook asserts on
``compute(**defaults)`` directly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import matplotlib.pyplot as plt

__all__ = ["interactive_figure", "defaults"]


def defaults(controls: Mapping[str, Any]) -> dict[str, Any]:
    """The current value of every control: what the widget draws before anyone moves it."""
    return {name: getattr(c, "value", c) for name, c in controls.items()}


def interactive_figure(
    compute: Callable[..., Any],
    draw: Callable[[Any, plt.Figure], None],
    controls: Mapping[str, Any],
    figsize: tuple[float, float] = (9.0, 3.5),
    display_now: bool = True,
) -> Any:
    """Build (and by default display) sliders + a figure that redraws ``draw(compute(**values))``.

    ``controls`` maps each keyword of ``compute`` to an ipywidgets control (or a fixed value).
    Returns the ``ipywidgets.VBox`` holding the controls and the output area.
    """
    import ipywidgets as widgets
    from IPython.display import display

    if not callable(compute) or not callable(draw):
        raise TypeError("interactive_figure(compute, draw, controls): compute and draw must be "
                        "functions; pass the functions themselves, not their results.")
    live = {k: c for k, c in controls.items() if isinstance(c, widgets.ValueWidget)}
    fixed = {k: c for k, c in controls.items() if k not in live}

    def _redraw(**values: Any) -> None:
        fig = plt.figure(figsize=figsize)
        draw(compute(**fixed, **values), fig)
        plt.show()

    out = widgets.interactive_output(_redraw, live)
    out.layout.min_height = f"{int(figsize[1] * 100) + 20}px"
    box = widgets.VBox([widgets.HBox(list(live.values())), out])
    if display_now:
        display(box)
    return box
