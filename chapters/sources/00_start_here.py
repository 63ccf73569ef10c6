# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 00 · Start here
#
# *Memory Mosaics, step by step* builds Memory Mosaics — networks of associative memories that do
# what transformers do, transparently — from a single kernel-regression memory up to language
# models trained on a GPU. This chapter takes five minutes: it checks your set-up and shows how
# the notebooks, the exercises and their checks work.
#
# **By the end of this chapter you will be able to**
#
# - tell which Python, torch and device the course is running on;
# - find the learner and the solutions notebook of every chapter;
# - do an exercise and check it with `pytest`, and read what a failing check tells you;
# - move a widget, and know what runs when nobody moves it.

# %% [markdown]
# ## 1. Your environment
#
# Everything the course needs comes with the package `mosaics_edu`. The report below says which
# versions you run and which device torch will use: `cuda` (an NVIDIA GPU), `mps` (Apple
# silicon) or `cpu`. Every chapter runs on a CPU within its stated time; a GPU only makes the
# optional large runs of chapters 05 and 08 practical.

# %%
import numpy as np
import torch

import mosaics_edu
from mosaics_edu.checks import ch00
from mosaics_edu.env import environment_report
from mosaics_edu.softmax import DEMO_SCORES, beta_softmax, draw_beta_softmax
from mosaics_edu.widgets import defaults, interactive_figure

report = environment_report()
for name, version in report.items():
    print(f"{name:>12}: {version}")

# %% [markdown]
# The course needs torch ≥ 2.2 and Python ≥ 3.11. Let us make sure, so that a wrong environment
# fails here, with a clear message, rather than three chapters later.

# %%
torch_major_minor = tuple(int(p) for p in torch.__version__.split("+")[0].split(".")[:2])
assert torch_major_minor >= (2, 2), f"torch {torch.__version__} is too old: pip install 'torch>=2.2'"
assert report["device"] in {"cpu", "cuda", "mps"}
print(f"OK: torch {torch.__version__} on {report['device']}, mosaics_edu {mosaics_edu.__version__}")

# %% [markdown]
# ## 2. How the course works
#
# Every chapter exists three times, all made from one source:
#
# | file | what it is for |
# |---|---|
# | `chapters/NN_name.ipynb` | **the learner notebook** — open this one; exercises hold stubs |
# | `chapters/solutions/NN_name.ipynb` | the solutions notebook — every exercise filled in |
# | `chapters/sources/NN_name.py` | the source both are generated from (for maintainers) |
#
# Each chapter starts with what you will be able to do, then alternates a little prose, one
# equation, the few lines of code that compute it, and a plot with one sentence saying what it
# shows. Claims from the papers are not just quoted: each is **measured in the notebook and
# asserted**, so if the code were wrong the notebook would stop there.
#
# **Exercises** come as a short goal, a difficulty (★ easy, ★★ medium, ★★★ hard), a time
# estimate, a function whose body says `raise NotImplementedError()`, and right below it a
# **check** cell. Replace the stub by your code, run the cell, run the check. A check compares
# your function with the package's reference on a few inputs and, when they differ, tries the
# usual mistakes of that exercise to tell you which one you made.
#
# Later chapters never depend on your answers: if you skip an exercise, the rest of the chapter
# still runs on the package's own implementation.
#
# **Checking a whole notebook.** Save it, then from the course folder run
# `pytest --nbval-lax chapters/NN_name.ipynb`: every cell is executed in a fresh kernel and every
# check must pass. (`--nbval` also compares the outputs you saved; `--nbval-lax` only requires
# that nothing fails, which is what you want for your own notebook.)

# %%
command = "pytest --nbval-lax chapters/00_start_here.ipynb"
print("When you have done the exercise below, save this notebook and run, from the course folder:")
print("   ", command)

# %% [markdown]
# **On Colab.** The "Open in Colab" badge at the top of every notebook opens it on Colab; the
# first code cell then installs `mosaics_edu` there and keeps Colab's own torch. For a GPU choose
# *Runtime → Change runtime type → GPU* before running anything. Colab has no `pytest` step: the
# check cells are your feedback there.

# %% [markdown]
# ## 3. Warm-up exercise: a softmax that never overflows
#
# Attention — and, as chapter 01 shows, an associative memory — turns scores $s_i$ into weights
#
# $$w_i = \frac{e^{s_i}}{\sum_j e^{s_j}} .$$
#
# Computed literally this breaks: $e^{1000}$ is `inf` in float64, and `inf/inf` is `nan`.
# Since adding a constant $c$ to every score multiplies numerator and denominator by the same
# $e^{c}$, the weights do not change; choosing $c = -\max_j s_j$ makes every exponent $\le 0$,
# so nothing overflows and the largest term is exactly 1, so the sum is at least 1.
#
# Watch the literal formula fail first:

# %%
with np.errstate(over="ignore", invalid="ignore"):
    x = np.array([1000.0, 1001.0, 1002.0])
    naive = np.exp(x) / np.exp(x).sum()
print("naive softmax of [1000, 1001, 1002]:", naive)
assert np.isnan(naive).all(), "float64 overflow is expected here"

# %% [markdown]
# **Exercise 0.1 — `stable_softmax`** (★, 5 minutes). Write a softmax over the **last** axis of
# an array of any shape that works for the scores above. Shapes: `(..., n) -> (..., n)`, every
# row sums to 1.

# %% tags=["exercise"]
def stable_softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis. x: (..., n) -> (..., n), rows summing to 1, never nan."""
    ### BEGIN SOLUTION
    z = x - x.max(axis=-1, keepdims=True)  # (..., n): every row's maximum is now 0
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)
    ### END SOLUTION


# %% tags=["check"]
ch00.check_stable_softmax(stable_softmax)

# %% [markdown]
# If the check fails, read its message: it names the chapter and the exercise and, when your
# answer matches a common mistake (overflow, wrong axis, forgetting to normalise, subtracting the
# global instead of the per-row maximum), it says which.
#
# ## 4. A first widget: the bandwidth β
#
# Multiplying the scores by a number $\beta \ge 0$ before the softmax controls how *peaked* the
# weights are. With $\beta = 0$ every item gets the same weight (an average); as $\beta$ grows the
# weight concentrates on the highest score (a lookup). This $\beta$ is the **bandwidth** of an
# associative memory, the knob you will turn in every chapter. Move the sliders: `beta` reshapes
# the weights, while `shift` (a constant added to every score) changes nothing — the reason the
# stable softmax is allowed to subtract the maximum. The right panel's title gives the entropy of
# the weights, a one-number summary of how spread they are: $\ln 8 \approx 2.08$ nats for the
# uniform weights over these 8 items, 0 for a lookup.

# %%
import ipywidgets as widgets

controls = {
    "scores": DEMO_SCORES,
    "beta": widgets.FloatLogSlider(value=1.0, base=10, min=-2, max=2, step=0.1, description="beta"),
    "shift": widgets.FloatSlider(value=0.0, min=-500, max=500, step=10, description="shift"),
}
interactive_figure(beta_softmax, draw_beta_softmax, controls);

# %% [markdown]
# With no browser (for instance under `pytest`), nobody moves the sliders; what the widget draws
# at its defaults is still computed by the same pure function, so we can assert on it. Let us also
# measure the two claims of the paragraph above: the weights move from uniform to one-hot as β
# grows, and a shift changes nothing.

# %%
shown = beta_softmax(**defaults(controls))
assert np.isclose(shown["weights"].sum(), 1.0)

flat = beta_softmax(DEMO_SCORES, beta=0.0)["weights"]
sharp = beta_softmax(DEMO_SCORES, beta=100.0)["weights"]
shifted = beta_softmax(DEMO_SCORES, beta=1.0, shift=500.0)["weights"]
flat_entropy = float(beta_softmax(DEMO_SCORES, beta=0.0)["entropy"])
print(f"beta=0   -> weights all {flat[0]:.4f} (1/n = {1 / len(DEMO_SCORES):.4f}), "
      f"entropy {flat_entropy:.2f} nats (ln n = {np.log(len(DEMO_SCORES)):.2f})")
print(f"beta=100 -> largest weight {sharp.max():.4f} on item {sharp.argmax()} (best score: item {DEMO_SCORES.argmax()})")
print(f"shift=500 changes the weights by at most {np.abs(shifted - shown['weights']).max():.1e}")
assert np.allclose(flat, 1 / len(DEMO_SCORES))
assert np.isclose(flat_entropy, np.log(len(DEMO_SCORES)))
assert sharp.argmax() == DEMO_SCORES.argmax() and sharp.max() > 0.99
assert np.allclose(shifted, shown["weights"], atol=1e-12)

# %% [markdown]
# ## Summary
#
# - The report at the top tells you your versions and device; every chapter runs on a CPU.
# - Open the learner notebooks in `chapters/`; the worked answers are in `chapters/solutions/`.
# - An exercise is a stub plus a check; a failing check names the exercise and the likely mistake.
#   Check a whole notebook with `pytest --nbval-lax chapters/NN_name.ipynb`.
# - A widget wires sliders to a pure function; tests assert on that function.
# - Softmax needs its maximum subtracted; its bandwidth β moves it from averaging to lookup.
#
# ## Further reading
#
# - J. Zhang, N. Nolte, R. Sadhukhan, B. Chen, L. Bottou. *Memory Mosaics*. ICLR 2025
#   (arXiv:2405.06394).
# - J. Zhang, L. Bottou. *Memory Mosaics at Scale*. NeurIPS 2025 (arXiv:2507.03285).
# - The `nbval` documentation, for what `pytest --nbval` and `--nbval-lax` compare.
#
# Next: **01 · An associative memory is a kernel regressor.**
