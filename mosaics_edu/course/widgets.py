"""Thin widgets: a pure function computes what is drawn, the widget only wires sliders to it.

Every widget of the course is built by :func:`interactive_figure`. It takes

- ``compute(**params) -> result``: a pure function (no plotting, no globals) that a test or a
  notebook cell can call and assert on, and
- ``draw(result, fig) -> None``: draws that result on a matplotlib figure.

In JupyterLab or Colab the sliders recompute and redraw. Under ``pytest --nbval`` there is no
browser: the widget is built once with its default values, and the notebook asserts on
``compute(**defaults)`` directly. Where no widget can run (the course website, GitHub) the same
output shows the default view as an image.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt

__all__ = [
    "interactive_figure", "build_interactive_figure", "InteractiveFigure", "defaults", "LiveLossPlot",
]


def defaults(controls: Mapping[str, Any]) -> dict[str, Any]:
    """The current value of every control: what the widget draws before anyone moves it."""
    return {name: getattr(c, "value", c) for name, c in controls.items()}


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


@dataclass
class InteractiveFigure:
    """A built but not yet displayed widget: its box and its default view as a PNG."""

    box: Any                   # ipywidgets.VBox: the controls above the output area
    names: tuple[str, ...]     # the keywords of ``compute`` that a control sets
    default_png: bytes | None  # the figure drawn at the controls' default values (None: nothing drawn)

    def mimebundle(self) -> dict[str, Any]:
        """What one ``display`` sends: the live widget, its default view as an image, a short text.

        A widget front end (JupyterLab, Colab, VS Code) shows the widget; anything else — a static
        website, GitHub's notebook viewer, a notebook reopened without its kernel — shows the image.
        """
        bundle: dict[str, Any] = {
            "text/plain": f"Interactive figure; its controls: {', '.join(self.names) or 'none'}.",
            WIDGET_VIEW: {"version_major": 2, "version_minor": 0, "model_id": self.box.model_id},
        }
        if self.default_png is not None:
            bundle["image/png"] = base64.b64encode(self.default_png).decode("ascii")
        return bundle


def build_interactive_figure(
    compute: Callable[..., Any],
    draw: Callable[[Any, plt.Figure], None],
    controls: Mapping[str, Any],
    figsize: tuple[float, float] = (9.0, 3.5),
) -> InteractiveFigure:
    """Sliders + a figure that redraws ``draw(compute(**values), fig)``, built but not displayed.

    ``controls`` maps each keyword of ``compute`` to an ipywidgets control (or a fixed value).
    Tests use this to reach the widget; notebooks call :func:`interactive_figure`.
    """
    import ipywidgets as widgets

    if not callable(compute) or not callable(draw):
        raise TypeError("interactive_figure(compute, draw, controls): compute and draw must be "
                        "functions; pass the functions themselves, not their results.")
    live = {k: c for k, c in controls.items() if isinstance(c, widgets.ValueWidget)}
    fixed = {k: c for k, c in controls.items() if k not in live}
    first_view: list[bytes] = []

    def _redraw(**values: Any) -> None:
        fig = plt.figure(figsize=figsize)
        draw(compute(**fixed, **values), fig)
        if not first_view:  # interactive_output draws once at the defaults while it is built
            buf = io.BytesIO()
            fig.savefig(buf, format="png", bbox_inches="tight")
            first_view.append(buf.getvalue())
        plt.show()

    out = widgets.interactive_output(_redraw, live)
    out.layout.min_height = f"{int(figsize[1] * 100) + 20}px"
    box = widgets.VBox([widgets.HBox(list(live.values())), out])
    return InteractiveFigure(box, tuple(live), first_view[0] if first_view else None)


def interactive_figure(
    compute: Callable[..., Any],
    draw: Callable[[Any, plt.Figure], None],
    controls: Mapping[str, Any],
    figsize: tuple[float, float] = (9.0, 3.5),
) -> None:
    """Display sliders + a figure that redraws ``draw(compute(**values), fig)`` as they move.

    Displays exactly once and returns ``None``: a cell that ends with this call, with or without a
    trailing ``;``, shows one widget (returning the widget as well would show it twice). The same
    output carries the default view as a PNG, for front ends that cannot run widgets.
    """
    from IPython.display import display

    display(build_interactive_figure(compute, draw, controls, figsize).mimebundle(), raw=True)


class LiveLossPlot:
    """A training callback that redraws train/validation loss curves in a notebook as it runs.

    ``train.train(config, callbacks=[LiveLossPlot()])``. Outside IPython it only records the
    curves; ``figure()`` draws them at any time.
    """

    def __init__(self, title: str = "", every_eval: bool = True):
        self.title = title
        self.every_eval = every_eval
        self.train: list[tuple[int, float]] = []  # (step, batch loss)
        self.evals: list[tuple[int, float, float]] = []  # (step, train loss, validation loss)
        self._handle = None

    def __call__(self, event: dict) -> None:
        if event["kind"] == "train":
            self.train.append((event["step"], event["loss"]))
        elif event["kind"] == "eval":
            self.evals.append((event["step"], event["train_loss"], event["val_loss"]))
            if self.every_eval:
                self._show()

    def figure(self) -> plt.Figure:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        if self.train:
            s, v = zip(*self.train, strict=True)
            ax.plot(s, v, color="0.7", lw=1, label="train (batch)")
        if self.evals:
            s, tr, va = zip(*self.evals, strict=True)
            ax.plot(s, tr, "o-", label="train (eval)")
            ax.plot(s, va, "o-", label="validation")
        ax.set_xlabel("step")
        ax.set_ylabel("loss (nats/token)")
        ax.set_title(self.title)
        ax.legend()
        fig.tight_layout()
        return fig

    def _show(self) -> None:
        try:
            from IPython import get_ipython
            from IPython.display import display
        except ImportError:
            return
        if get_ipython() is None:
            return
        fig = self.figure()
        if self._handle is None:
            self._handle = display(fig, display_id=True)
        else:
            self._handle.update(fig)
        plt.close(fig)
