"""What chapter 07's widget shows: one test automaton, its sample, and two models' predictions.

:func:`prediction_view` is the pure part (no plotting): it draws the automaton's evaluation
sample (the one :func:`~mosaics_edu.course.regbench.metrics.evaluate` scores), runs every model on it
once, and returns, for a window of positions, the input tokens, the reference distribution
(uniform over the valid next symbols), each model's next-token probabilities and whether its
argmax is a valid next symbol. :func:`draw_prediction_view` draws that result: the automaton on
the left, one heat map per model on the right (rows: the automaton's symbols, then "other" for
the rest of the vocabulary; columns: the positions; colour: the model's probability; a dot marks
each valid next symbol, a box the model's choice, green if valid and red if not).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.patches import Rectangle

from .automata import Automaton
from .datasets import draw_samples
from .draw import draw_automaton
from .metrics import reference_distribution
from .vocab import SEP, SYMBOLS, decode

__all__ = ["prediction_view", "draw_prediction_view"]


def _states(automaton: Automaton, tokens: Sequence[int]) -> list[int]:
    """The state after each token (a separator resets to 0)."""
    out, state = [], 0
    for tok in tokens:
        state = 0 if tok == SEP else automaton.step(state, tok)
        out.append(state)
    return out


@torch.no_grad()
def prediction_view(
    models: Mapping[str, torch.nn.Module],
    automata: Sequence[Automaton],
    index: int = 0,
    start: int = 0,
    width: int = 24,
) -> dict[str, Any]:
    """The predictions of every model in ``models`` on the evaluation sample of ``automata[index]``.

    Returns a dict with ``automaton``, ``text`` (the whole sample), ``positions`` (the window
    ``start … start+width-1``, clipped to the sample), ``inputs`` (the input token at each
    position, a letter or ``|``), ``states`` (the state reached after it), ``rows`` (the symbol
    ids shown: the automaton's alphabet), ``reference`` (W, 20), ``probs[name]`` (W, 20),
    ``valid_choice[name]`` (W,) bool, and over the whole sample ``accuracy[name]`` and
    ``tvd[name]``.
    """
    if not isinstance(models, Mapping) or not models:
        raise ValueError("models must be a non-empty dict {name: model}")
    if not isinstance(index, int) or not 0 <= index < len(automata):
        raise ValueError(f"index must be an integer in 0..{len(automata) - 1}, got {index!r}")
    if not isinstance(width, int) or width < 1 or not isinstance(start, int) or start < 0:
        raise ValueError(f"start must be an integer >= 0 and width >= 1, got {start!r} and {width!r}")
    sample = draw_samples(list(automata[: index + 1]))[-1]  # the sample evaluate() scores
    tokens = list(sample.tokens)
    ref = reference_distribution(sample)  # (L-1, V)
    n_pos = len(ref)
    start = min(start, max(0, n_pos - width))
    window = np.arange(start, min(n_pos, start + width))
    x = torch.tensor([tokens[:-1]])  # (1, L-1)
    probs, valid, acc, tvd = {}, {}, {}, {}
    for name, model in models.items():
        model.eval()
        out = model(x)
        logits = out[0] if isinstance(out, tuple | list) else out  # (1, L-1, V)
        p = torch.softmax(logits[0].double(), dim=-1).numpy()  # (L-1, V)
        ok = ref[np.arange(n_pos), p.argmax(axis=1)] > 0  # (L-1,)
        probs[name], valid[name] = p[window], ok[window]
        acc[name] = float(ok.mean())
        tvd[name] = float(0.5 * np.abs(p - ref).sum(axis=1).mean())
    states = _states(sample.automaton, tokens)
    return {
        "automaton": sample.automaton,
        "index": index,
        "text": decode(tokens),
        "positions": window,
        "inputs": [decode([tokens[t]]) for t in window],
        "states": [states[t] for t in window],
        "rows": list(sample.automaton.alphabet),
        "reference": ref[window],
        "probs": probs,
        "valid_choice": valid,
        "accuracy": acc,
        "tvd": tvd,
    }


def draw_prediction_view(view: dict[str, Any], fig: plt.Figure) -> None:
    """Draw a :func:`prediction_view` result on ``fig``: the automaton, then one heat map per model."""
    names = list(view["probs"])
    grid = fig.add_gridspec(len(names), 2, width_ratios=[1, 3.2], wspace=0.08, hspace=0.45)
    a = view["automaton"]
    draw_automaton(a, fig.add_subplot(grid[:, 0]), fontsize=8,
                   title=f"test automaton {view['index']} ({a.n_states} states)")  # fmt: skip
    rows = view["rows"]
    cols = np.arange(len(view["positions"]))
    for i, name in enumerate(names):
        ax = fig.add_subplot(grid[i, 1])
        full = view["probs"][name]  # (W, V)
        p = np.vstack([full[:, rows].T, 1 - full[:, rows].sum(axis=1)])  # (symbols + "other", W)
        ax.imshow(p, aspect="auto", cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
        vr, vc = np.nonzero(view["reference"][:, rows].T > 0)
        ax.plot(vc, vr, "o", ms=3, color="C1", label="valid next symbol")
        choice = view["probs"][name].argmax(axis=1)  # (W,) token ids
        for c, tok in zip(cols, choice, strict=True):
            ok = bool(view["valid_choice"][name][c])
            r = rows.index(int(tok)) if int(tok) in rows else len(rows)  # off the alphabet: "other"
            ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, lw=1.5, ec="green" if ok else "red"))
        ax.set_yticks(range(len(rows) + 1))
        ax.set_yticklabels([SYMBOLS[s - 1] for s in rows] + ["other"], fontsize=7)
        ax.set_xticks(cols)
        ax.set_xticklabels(view["inputs"], fontsize=7)
        ax.set_xlim(-0.5, len(cols) - 0.5)
        ax.set_ylim(len(rows) + 0.5, -0.5)
        ax.set_title(f"{name}: p(next symbol | input so far); box = argmax (green valid, red not); "
                     f"whole sample: accuracy {view['accuracy'][name]:.2f}, TVD {view['tvd'][name]:.2f}",
                     fontsize=8)  # fmt: skip
        if i == 0:
            ax.legend(loc="upper right", fontsize=7, framealpha=0.8)
