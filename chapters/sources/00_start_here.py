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
# models trained on a GPU. This chapter checks your set-up and shows how the notebooks, the
# exercises and their checks work.
#
# **Prerequisites.** Python and numpy (arrays, broadcasting, `axis=`), and a first idea of what
# training a neural network means. Every later chapter lists its own, chapter by chapter.
#
# **By the end of this chapter you will be able to**
#
# - tell which Python, torch and device the course is running on;
# - find the learner and the solutions notebook of every chapter;
# - do an exercise and check it with `pytest`, and read what a failing check tells you;
# - move a widget, and know what runs when nobody moves it;
# - read the course's notation: one name per quantity, from the first chapter to the last.

# %% [markdown]
# ## 1. Your environment
#
# Everything the course needs comes with the package `mosaics_edu`. The report below says which
# versions you run and which device torch will use: `cuda` (an NVIDIA GPU), `mps` (Apple
# silicon) or `cpu`. Every chapter runs on a CPU within its stated time; a GPU only makes the
# optional large runs of chapters 05 and 10 practical.

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch

import mosaics_edu
from mosaics_edu.core.env import environment_report
from mosaics_edu.course.checks import ch00
from mosaics_edu.course.diagrams import draw_course_map
from mosaics_edu.course.softmax import DEMO_SCORES, beta_softmax, draw_beta_softmax
from mosaics_edu.course.widgets import defaults, interactive_figure

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
# The map below is the whole course: three chapters on one memory, three on networks of memories
# and training them, three on learning in context and looking inside a trained model, then v2,
# scaling out to many GPUs and a project of your own.

# %%
draw_course_map()
plt.show()

# %% [markdown]
# Each chapter starts with its prerequisites, what you will be able to do and its **learner time**
# (reading at 200 words a minute, plus the minutes its exercises state, plus its running time:
# counted the same way for every chapter). Material you may skip sits in boxes marked **Going
# further (optional)**, whose minutes are stated apart. Then it alternates a little prose, one equation, the
# few lines of code that compute it, and a plot with one sentence saying what it shows. Claims
# from the papers are not just quoted: each is **measured in the notebook and asserted**, so if
# the code were wrong the notebook would stop there.
#
# Before the key experiments a **Predict before you run** box asks you to commit to an answer;
# run the cell, then open the folded answer, which says what the run showed. Every chapter ends
# the same way: a summary, recap questions with folded answers, further reading. Terms are
# defined where they first appear and collected in the course's **glossary**; the **exercise
# index** lists every exercise, and the **paper ↔ course map** says which claims of the two
# papers the course reproduces (all three are in `book/` in the course folder, and pages of the
# course's website).
#
# **Exercises** come as a short goal, a difficulty (★ easy, ★★ medium, ★★★ hard), a time
# estimate, a function whose body says `raise NotImplementedError()`, and right below it a
# **check** cell. Replace the stub by your code, run the cell, run the check. A check compares
# your function with the package's reference on a few inputs and, when they differ, tries the
# usual mistakes of that exercise to tell you which one you made, shows the inputs it failed on,
# and points to a hint. Each exercise has three folded hints above its code cell (a nudge, the
# approach, the key line): open them one at a time, when you are stuck.
#
# Nothing depends on your answers: if you skip an exercise, its check prints that it is not done
# yet and "Run All" goes on; the rest of the chapter runs on the package's own implementation.
#
# **Checking a whole notebook.** Save it, then from the course folder run
# `pytest --nbval-lax chapters/NN_name.ipynb`: every cell is executed in a fresh kernel and every
# check must pass; under pytest a failing check fails its cell, naming the exercise. (`--nbval`
# also compares the outputs you saved; `--nbval-lax` only requires that nothing fails, which is
# what you want for your own notebook.)

# %%
command = "pytest --nbval-lax chapters/00_start_here.ipynb"
print("When you have done the exercises below, save this notebook and run, from the course folder:")
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
# > **Predict before you run.** What does the literal formula give for the scores
# > [1000, 1001, 1002]: the right weights, all zeros, or something else?
#
# <details><summary>What the run showed</summary>
#
# `nan` for every weight (asserted): $e^{1000}$ overflows to `inf`, and `inf/inf` is `nan`.
# The weights themselves are ordinary numbers — the stable softmax below computes them.
# </details>
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
# row sums to 1. `x` is a float array (float64 or float32; answer in the same precision or
# higher) with at least one axis; a row may hold a single score (its weight is 1) and scores may
# be `-inf` (a masked item: weight 0), but every row has at least one finite score. Scores can be
# as large as $\pm 1500$. Do not modify `x` in place.

# %% [markdown] tags=["hints"]
# <details><summary><b>Hint 1</b> (a nudge)</summary>
#
# Adding the same number to every score of a row does not change its weights. Which number makes
# every exponent $\le 0$, so that `exp` can neither overflow nor give only zeros?
# </details>
#
# <details><summary><b>Hint 2</b> (the approach)</summary>
#
# Per row (the last axis): subtract the row's maximum, exponentiate, divide by the row's sum.
# Every reduction runs over `axis=-1` and keeps that axis (`keepdims=True`) so that it broadcasts
# back against the row.
# </details>
#
# <details><summary><b>Hint 3</b> (the key line)</summary>
#
# ```python
# z = x - x.max(axis=-1, keepdims=True)  # (..., n): each row's largest score is now 0
# ```
# </details>

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
# associative memory, the knob you will turn in every chapter (section 5 says which β each chapter
# means). Move the sliders: `beta` reshapes
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
#
# > **Predict before you run.** With β = 0, what weight does each of the 8 items get? With
# > β = 100? And what does adding 500 to every score change?
#
# <details><summary>What the run showed</summary>
#
# β = 0: every item gets 1/8 (printed; asserted equal to 1/n), the entropy is ln 8. β = 100: the
# item with the best score takes almost all the weight (asserted above 0.99). The shift of 500:
# nothing, to within 10⁻¹² (asserted).
# </details>

# %%
shown = beta_softmax(**defaults(controls))
assert np.isclose(shown["weights"].sum(), 1.0)

flat = beta_softmax(DEMO_SCORES, beta=0.0)["weights"]
sharp = beta_softmax(DEMO_SCORES, beta=100.0)["weights"]
shifted = beta_softmax(DEMO_SCORES, beta=1.0, shift=500.0)["weights"]
flat_entropy = float(beta_softmax(DEMO_SCORES, beta=0.0)["entropy"])
print(f"beta=0   -> weights all {flat[0]:.4f} (1/n = {1 / len(DEMO_SCORES):.4f}), "
      f"entropy {flat_entropy:.2f} nats (ln n = {np.log(len(DEMO_SCORES)):.2f})")
print(f"beta=100 -> largest weight {sharp.max():.4f} on item {sharp.argmax()} "
      f"(best score: item {DEMO_SCORES.argmax()})")
shift_gap = np.abs(shifted - shown["weights"]).max()
print(f"shift=500 leaves the weights unchanged to within 1e-12: {shift_gap < 1e-12}")
assert np.allclose(flat, 1 / len(DEMO_SCORES))
assert np.isclose(flat_entropy, np.log(len(DEMO_SCORES)))
assert sharp.argmax() == DEMO_SCORES.argmax() and sharp.max() > 0.99
assert np.allclose(shifted, shown["weights"], atol=1e-12)

# %% [markdown]
# **Exercise 0.2 — `weight_entropy`** (★★, 10 minutes). Write the entropy of the weights
# $w = \mathrm{softmax}(\beta s)$ over the last axis, in nats:
#
# $$H = -\sum_i w_i \ln w_i , \qquad 0 \le H \le \ln n .$$
#
# The literal formula breaks exactly where the widget gets interesting: with a large β most
# weights underflow to 0, and $0 \cdot \ln 0 = 0 \cdot (-\infty)$ is `nan`. Work with the
# *log-weights* $\ln w_i = z_i - \ln \sum_j e^{z_j}$, $z = \beta s - \max_j \beta s_j$, which stay
# finite, and count a term whose weight is 0 as 0 (its limit). Shapes: scores `(..., n)`, a number
# `beta` → entropies `(...)`, one per row. `beta` is any real number: 0 gives uniform weights
# ($H = \ln n$), a negative β favours the *smallest* scores, and $|\beta \cdot s|$ may reach
# the thousands. A row of one item has $H = 0$. Do not modify `scores` in place.

# %% [markdown] tags=["hints"]
# <details><summary><b>Hint 1</b> (a nudge)</summary>
#
# The entropy is a sum over the last axis, in nats (natural log), and never negative:
# $H = -\sum_i w_i \ln w_i$. The trouble is only $\ln w_i$ where $w_i$ underflows to 0.
# </details>
#
# <details><summary><b>Hint 2</b> (the approach)</summary>
#
# Compute $z = \beta s$ first, then shift *z* by its own row maximum (with β < 0 the largest
# $z$ does not come from the largest score). The log-weights $z - \ln\sum_j e^{z_j}$ are finite;
# exponentiate them for the weights and sum $w \cdot \ln w$, counting the terms where $w = 0$
# as 0 (`np.where`).
# </details>
#
# <details><summary><b>Hint 3</b> (the key line)</summary>
#
# ```python
# log_w = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))  # z already shifted by its row max
# ```
# </details>

# %% tags=["exercise"]
def weight_entropy(scores: np.ndarray, beta: float) -> np.ndarray:
    """Entropy (nats) of softmax(beta * scores) over the last axis. (..., n) -> (...)."""
    ### BEGIN SOLUTION
    z = beta * scores
    z = z - z.max(axis=-1, keepdims=True)  # (..., n): the largest is 0
    log_w = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))  # (..., n): finite log-weights
    w = np.exp(log_w)
    return -np.where(w > 0, w * log_w, 0.0).sum(axis=-1)  # (...): 0 · ln 0 counts as 0
    ### END SOLUTION


# %% tags=["check"]
ch00.check_weight_entropy(weight_entropy)

# %% [markdown]
# ## 5. Notation, once for the whole course
#
# Every quantity has one name, the same in the papers' formulas, in the code and in the widgets.
#
# | in code | symbol | what it is |
# |---|---|---|
# | `keys` | $k_t$ | what a memory stores and is asked with: a summary of the past up to position $t$ |
# | `values` | $v_t$ | what a memory stores to answer with; in a memory unit it peeks one step ahead |
# | `decay` | $\lambda$ | the fraction of the past a leaky average keeps per step: larger λ, longer memory |
# | `beta` | $\beta$ | the bandwidth: how sharply a memory picks the keys nearest the query |
# | `gamma` | $\gamma$ | the value's mix of the input now and the next one |
# | `t`, `s`, `T`, `n` | $t, s, T, n$ | current position, stored position, sequence length, stored pairs |
# | memory unit | | one memory with its key and value extractors; answers at $t$ from the pairs $s < t$ |
# | contextual memory | C-mem | memory units whose pairs come from the context being read |
# | persistent memory | P-mem | a memory whose keys and values are learned tables (in place of an MLP) |
# | mosaic | | a network of many memory units — heads side by side, blocks stacked — trained together |
# | `n_head`, a head `h` | $H$, $h$ | the heads (memory units) of a contextual memory, and the index of one |
# | `n_layer`, `n_embd` | $L$, $d$ | the number of blocks, and the width of the residual stream $x$ |
# | `pmem_size` | $P$ | the learned pairs per head of a persistent memory (chapter 04) |
# | `alpha` | $\alpha_h$ | the norm of head $h$'s values (chapter 04) |
# | | $\sigma$ | the Gaussian kernel's width, $1/\sqrt{2\beta}$ (chapter 01) |
# | `world_size` | $W$ | the processes (GPUs) of data-parallel training (chapter 10) |
#
# Memory Mosaics v2 (chapter 09) adds:
#
# | in code | symbol | what it is |
# |---|---|---|
# | `beta0`, `beta1` | $\beta(n) = \beta_1 n^{\rho} + \beta_0$ | a bandwidth growing with the pairs $n$ held |
# | gate, decay | $g_t$, $\lambda_t$ | the gated keys' input gate and decay, computed from $x_t$ |
# | `short_window` | $T_s$ | the short-term memory reads the last $T_s - 1$ positions |
# | `delay` | $m$ | the long-term memory reads positions $\le t - m$; $m$ random in training |
#
# The v2 paper writes the exponent of β(n) as α and the short-term span as $h$; the course keeps α
# for the value norm and $h$ for a head, so they are ρ and $T_s$ here.
#
# The formulas behind the first rows: keys $\bar k_t = \tilde k_t + \lambda\, \bar k_{t-1}$,
# $k_t = \bar k_t / \lVert \bar k_t \rVert$ (chapter 02); values
# $v_t = \gamma\, x_t + (1-\gamma)\, x_{t+1}$ (chapter 02); retrieval
# $y_t = \sum_{s<t} \mathrm{softmax}_s(\cdot)\, v_s$ with the scores below.
#
# **Which β?** Chapters 01–02 write the Gaussian kernel $\exp(-\beta\lVert k - k'\rVert^2)$. For
# unit keys $\lVert k - k'\rVert^2 = 2 - 2\,k\cdot k'$, so it is $\mathrm{softmax}(2\beta\, k\cdot k')$.
# The papers, and the models from chapter 02's induction head on, write
# $\mathrm{softmax}(\beta\, \hat k\cdot \hat k')$: **the papers' β is twice the Gaussian β of
# chapters 01–02.** Each chapter says which one it uses where the two meet.
#
# ## Summary
#
# - The report at the top tells you your versions and device; every chapter runs on a CPU.
# - Open the learner notebooks in `chapters/`; the worked answers are in `chapters/solutions/`.
# - An exercise is a stub plus a check; a failing check names the exercise and the likely mistake.
# - The entropy of the weights measures their spread, from $\ln n$ (average) to 0 (lookup); it
#   is computed from the log-weights, so that underflowing weights give no `nan`.
#   Check a whole notebook with `pytest --nbval-lax chapters/NN_name.ipynb`.
# - A widget wires sliders to a pure function; tests assert on that function.
# - Softmax needs its maximum subtracted; its bandwidth β moves it from averaging to lookup.
# - One notation for the course (section 5); the papers' β is twice chapters 01–02's Gaussian β.
#
# ## Recap questions
#
# 1. Why may the stable softmax subtract each row's maximum without changing the weights?
# 2. What weights does $\beta = 0$ give, and what does a very large β give?
# 3. Which command checks a whole notebook you saved, and what does `--nbval-lax` not compare?
# 4. A leaky average with $\lambda = 0.9$ and one with $\lambda = 0.1$: which remembers longer?
# 5. A Gaussian kernel with β = 15 on unit keys equals a softmax of $k\cdot k'$ times what number?
#
# <details><summary>Answers</summary>
#
# 1. Adding a constant $c$ to every score of a row multiplies numerator and denominator by the
#    same $e^{c}$; with $c = -\max_j s_j$ no exponent is positive, so nothing overflows.
# 2. β = 0: every item the same weight $1/n$ (an average). Large β: all the weight on the highest
#    score (a lookup) — both measured in section 4.
# 3. `pytest --nbval-lax chapters/NN_name.ipynb`; `--nbval-lax` runs every cell but does not
#    compare the outputs you saved with new ones (plain `--nbval` does).
# 4. $\lambda = 0.9$ keeps 90 % of the past per step: an input's weight halves in about 6.6 steps
#    ($\ln 0.5 / \ln 0.9$), against a third of a step for $\lambda = 0.1$.
# 5. 30: the Gaussian β = 15 is $\mathrm{softmax}(2 \cdot 15\, k\cdot k')$, the papers' β = 30.
#
# </details>
#
# ## Further reading
#
# - J. Zhang, N. Nolte, R. Sadhukhan, B. Chen, L. Bottou. *Memory Mosaics*. ICLR 2025
#   (arXiv:2405.06394).
# - J. Zhang, L. Bottou. *Memory Mosaics at Scale*. NeurIPS 2025 (arXiv:2507.03285).
# - The `nbval` documentation, for what `pytest --nbval` and `--nbval-lax` compare.
#
# Next: **01 · An associative memory is a kernel regressor.**
