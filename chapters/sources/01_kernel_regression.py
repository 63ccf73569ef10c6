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
# # 01 · An associative memory is a kernel regressor
#
# A Memory Mosaic is a network of small **associative memories**. Before building networks we
# build one memory and look at it closely. It stores pairs $(k_i, v_i)$ — a *key* and a
# *value* — and, asked with a key $k$, answers with a value. The answer the papers choose is a
# classical statistical estimator, Gaussian kernel smoothing, and it turns out to be exactly the
# softmax attention of transformers once the keys are normalised.
#
# **Prerequisites.** Chapter 00 (the stable softmax and its bandwidth β). From probability: a
# conditional expectation $\mathbb{E}[V \mid K = k]$, and the bias and variance of an estimator.
# From numpy: broadcasting and reductions over an axis.
#
# **By the end of this chapter you will be able to**
#
# - implement retrieval from an associative memory by Nadaraya–Watson kernel smoothing, and its
#   dot-product form;
# - explain what the bandwidth β trades (bias against variance) and why β should grow with the
#   number of stored pairs $n$;
# - show that for keys of equal norm the memory *is* softmax attention,
#   $\mathrm{softmax}(2\beta\,k\cdot k_i)$, and say what differs from a transformer's attention;
# - choose β from the stored pairs alone, by leave-one-out.

# %%
import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np

from mosaics_edu.core import memory
from mosaics_edu.course import toys
from mosaics_edu.course.checks import ch01
from mosaics_edu.course.widgets import defaults, interactive_figure

# %% [markdown]
# ## 1. Retrieval by kernel smoothing
#
# A memory holds $n$ pairs. Because they form a *set*, the answer must not depend on their
# order. The papers read the stored pairs as a sample from a joint distribution of keys and values,
# so the natural answer to a query $k$ is the conditional expectation $\mathbb{E}[V \mid K = k]$,
# estimated from the sample. The Nadaraya–Watson estimator does this by averaging the stored values,
# each weighted by how close its key is to the query:
#
# $$f(k) = \sum_{i=1}^n w_i(k)\, v_i, \qquad
#   w_i(k) = \frac{\exp(-\beta \lVert k - k_i \rVert^2)}{\sum_{j} \exp(-\beta \lVert k - k_j \rVert^2)} .$$
#
# The weights are a softmax of the scores $-\beta\lVert k - k_i\rVert^2$. The **bandwidth** β is
# an inverse squared width: the Gaussian kernel has width (standard deviation)
# $\sigma = 1/\sqrt{2\beta}$.
#
# Our first memory stores noisy samples of the function $f(x) = \sin(2\pi x) + x/2$ on $[0, 1]$:
# the keys are the $x_i$ and the values are $f(x_i)$ plus noise of standard deviation 0.3.

# %%
keys, values = toys.make_regression(60, dim=1, noise=0.3, seed=0)  # (60, 1), (60, 1)
print("keys", keys.shape, "values", values.shape)
print("first pairs:", np.round(np.c_[keys[:3], values[:3]], 3).tolist())

# %% [markdown]
# **Exercise 1.1 — `retrieve`** (★★, 15 minutes). Implement the retrieval above for any key
# dimension $d$ and value dimension $d_v$, for many queries at once, in two forms that share
# everything but the scores:
#
# - `form="gaussian"`: the scores $-\beta\lVert k - k_i\rVert^2$ above;
# - `form="dot"`: the scores $2\beta\, k\cdot k_i$ — the dot-product form of attention. Section 4
#   shows when the two forms give the same answer, and why the factor is 2.
#
# Shapes: keys `(n, d)`, values `(n, d_v)`, queries `(m, d)` → answers `(m, d_v)`, with
# $n, m \ge 1$ (a memory of one pair answers its value) and float64 or float32 arrays. `beta` is a
# number $\ge 0$: β = 0 gives every pair the same weight, the plain average of the values. Each
# query's weights are normalised over the **stored pairs**; a query equally close to two keys gives
# them equal weights. Use the stable softmax of chapter 00 (subtract each row's largest score):
# with a large β every $\exp(-\beta\lVert k-k_i\rVert^2)$ can underflow to 0, and 0/0 is `nan`.
# Any other `form` raises a `ValueError`. Do not modify the arguments in place.

# %% [markdown] tags=["hints"]
# <details><summary><b>Hint 1</b> (a nudge)</summary>
#
# Work with the `(m, n)` matrix of scores: one row per query, one column per stored pair. Each row
# then goes through chapter 00's softmax on its own, and the answer to a query is the weighted
# average of *all* the values, not the value of the best key.
# </details>
#
# <details><summary><b>Hint 2</b> (the approach)</summary>
#
# Gaussian: the squared distances by broadcasting, `queries[:, None, :] - keys[None, :, :]`
# (shape `(m, n, d)`), squared and summed over the last axis, times $-\beta$. Dot:
# `2 * beta * queries @ keys.T`. Then, for either form: subtract each row's maximum, `exp`, divide
# by the row's sum (`axis=1, keepdims=True`), and multiply the `(m, n)` weights by the `(n, d_v)`
# values.
# </details>
#
# <details><summary><b>Hint 3</b> (the key line)</summary>
#
# ```python
# scores = -beta * ((queries[:, None, :] - keys[None, :, :]) ** 2).sum(-1)  # (m, n)
# ```
# </details>

# %% tags=["exercise"]
def retrieve(keys: np.ndarray, values: np.ndarray, queries: np.ndarray, beta: float,
             form: str = "gaussian") -> np.ndarray:
    """Retrieval by kernel smoothing ("gaussian") or softmax(2β q·k_i) ("dot").

    keys (n, d), values (n, d_v), queries (m, d) -> answers (m, d_v).
    """
    ### BEGIN SOLUTION
    if form == "gaussian":
        scores = -beta * ((queries[:, None, :] - keys[None, :, :]) ** 2).sum(-1)  # (m, n)
    elif form == "dot":
        scores = 2 * beta * queries @ keys.T  # (m, n)
    else:
        raise ValueError(f"form must be 'gaussian' or 'dot', got {form!r}")
    scores = scores - scores.max(axis=1, keepdims=True)  # each row's best score is now 0
    weights = np.exp(scores)
    weights = weights / weights.sum(axis=1, keepdims=True)  # (m, n): rows sum to 1
    return weights @ values  # (m, d_v)
    ### END SOLUTION


# %% tags=["check"]
ch01.check_retrieve(retrieve)

# %% [markdown]
# From here on the chapter uses the package's implementations,
# `mosaics_edu.core.memory.kernel_regression(keys, values, queries, beta)` (the Gaussian form) and
# `memory.softmax_attention(keys, values, queries, 2 * beta)` (the dot form: the package's
# attention takes the multiplier of $k\cdot k_i$ itself as its β), which do the same in
# numpy or torch, batched, so the rest runs even if you skipped the exercise.
#
# ## 2. The bandwidth: from averaging to lookup
#
# Let us look at the fit — the answer for every query on a grid — for a small, a moderate and a
# large β.
#
# > **Predict before you run.** β = 3, 100 or 30,000: which fits the true function best, and what
# > goes wrong with the other two?
#
# <details><summary>What the run showed</summary>
#
# The moderate β = 100: its error to the true function is less than half that of either other
# (printed below the plot, asserted). β = 3 averages nearly the whole memory into a flat line (bias);
# β = 30,000 copies the nearest stored value, noise included, into a staircase (variance).
# </details>

# %%
grid = np.linspace(0, 1, 200)[:, None]  # (200, 1)
betas_shown = {"small β = 3": 3.0, "moderate β = 100": 100.0, "large β = 30000": 30000.0}
fig, axes = plt.subplots(1, 3, figsize=(12, 3.2), sharey=True)
fit_errors = {}
for ax, (label, beta) in zip(axes, betas_shown.items(), strict=True):
    fit = memory.kernel_regression(keys, values, grid, beta)[:, 0]  # (200,)
    fit_errors[beta] = np.mean((fit - toys.target_function(grid)) ** 2)
    ax.scatter(keys[:, 0], values[:, 0], s=10, c="tab:gray", label="stored pairs")
    ax.plot(grid[:, 0], toys.target_function(grid), "k--", lw=1, label="true f")
    ax.plot(grid[:, 0], fit, c="tab:blue", lw=2, label="retrieval (the fit)")
    ax.set(title=f"{label}: error {fit_errors[beta]:.3f}", xlabel="key")
axes[0].set_ylabel("value")
axes[0].legend(fontsize=7, loc="lower left")
plt.tight_layout()
plt.show()

# %% [markdown]
# Reading the plot: with a small β every answer averages almost the whole memory (a nearly flat
# line — high *bias*); with a huge β each answer copies the nearest stored value, noise included
# (a staircase — high *variance*); in between the fit follows the true function. We measure it:
# the squared error to the true function is smallest for the moderate β.

# %%
for beta, err in fit_errors.items():
    print(f"beta = {beta:>7g}: mean squared error to the true f = {err:.4f}")
assert fit_errors[100.0] < 0.5 * fit_errors[3.0] and fit_errors[100.0] < 0.5 * fit_errors[30000.0]

# %% [markdown]
# Behind every answer there is a set of weights, one per stored pair. Here are the weights of the
# answer to the query $k = 0.3$, for the same three bandwidths:

# %%
query = np.array([[0.3]])  # (1, 1)
order = np.argsort(keys[:, 0])
fig, axes = plt.subplots(1, 3, figsize=(12, 2.8), sharey=True)
spread = {}
for ax, (label, beta) in zip(axes, betas_shown.items(), strict=True):
    w_q = memory.kernel_weights(keys, query, beta)[0]  # (60,): one weight per stored pair
    spread[beta] = 1.0 / np.sum(w_q**2)  # effective number of pairs averaged
    ax.stem(keys[order, 0], w_q[order], basefmt=" ")
    ax.axvline(0.3, c="tab:red", lw=1)
    ax.set(title=f"{label}: ≈ {spread[beta]:.1f} pairs averaged", xlabel="stored key k_i",
           yscale="log", ylim=(1e-4, 1.5))
axes[0].set_ylabel("weight in the answer to k = 0.3")
plt.tight_layout()
plt.show()
for beta, m in spread.items():
    print(f"beta = {beta:>7g}: effective number of pairs in the answer 1/Σw² = {m:.1f}")
assert spread[3.0] > 30 and 3 < spread[100.0] < 20 and spread[30000.0] < 1.5

# %% [markdown]
# Reading the plot: at β = 3 the answer averages most of the memory, at β = 100 a handful of
# neighbours, at β = 30000 a single pair (the counts are printed below the plot). The widget
# lets you move β and $n$ and pick the query (red) yourself.

# %%
controls = {
    "n": widgets.IntSlider(value=60, min=10, max=400, step=10, description="n"),
    "beta": widgets.FloatLogSlider(value=100.0, base=10, min=0, max=5, step=0.1, description="beta"),
    "query": widgets.FloatSlider(value=0.3, min=0.0, max=1.0, step=0.01, description="query"),
}
interactive_figure(toys.fit_demo, toys.draw_fit_demo, controls);

# %% [markdown]
# At the defaults the answer is a weighted average of the handful of pairs whose keys are within
# about one kernel width $\sigma = 1/\sqrt{2\beta} \approx 0.07$ of the query:

# %%
shown = toys.fit_demo(**defaults(controls))
w = shown["weights"]
near = np.abs(shown["keys"] - shown["query"]) < 2 / np.sqrt(2 * shown["beta"])
print(f"weights sum to {w.sum():.6f}; {near.sum()} of {len(w)} pairs lie within 2σ of the query "
      f"and carry {w[near].sum():.3f} of the weight; largest single weight {w.max():.3f}")
assert np.isclose(w.sum(), 1.0) and w[near].sum() > 0.95 and w.max() < 0.5

# %% [markdown]
# Nothing here is special to one dimension. A 2-D memory storing noisy samples of
# $f(x_1, x_2) = \sin(2\pi x_1)\cos(\pi x_2)$ recovers the surface the same way:

# %%
keys2, values2 = toys.make_regression(400, dim=2, noise=0.3, seed=1)  # (400, 2), (400, 1)
g = np.linspace(0, 1, 50)
grid2 = np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 2)  # (2500, 2)
fit2 = memory.kernel_regression(keys2, values2, grid2, 100.0)[:, 0]  # (2500,)
truth2 = toys.target_function(grid2)
err2 = np.mean((fit2 - truth2) ** 2)
fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), constrained_layout=True)
for ax, (title, z) in zip(axes, [("true f", truth2), ("retrieval, β = 100", fit2)], strict=False):
    im = ax.imshow(z.reshape(50, 50), origin="lower", extent=(0, 1, 0, 1), vmin=-1.2, vmax=1.2,
                   cmap="coolwarm")
    ax.set(title=title, xlabel="x₁")
axes[0].set_ylabel("x₂")
axes[2].scatter(keys2[:, 0], keys2[:, 1], c=values2[:, 0], s=8, cmap="coolwarm", vmin=-1.2, vmax=1.2)
axes[2].set(title="the 400 stored (noisy) pairs", xlabel="x₁", aspect="equal")
plt.colorbar(im, ax=axes[1])
plt.show()
print(f"2-D memory: error to the true f {err2:.4f}; the noise variance is {0.3 ** 2:.2f}, "
      f"the variance of f itself {truth2.var():.3f}")
assert err2 < 0.25 * truth2.var()

# %% [markdown]
# ## 3. Bias and variance: β should grow with the memory
#
# Which β is "moderate" depends on how many pairs the memory holds. With $n$ pairs spread over
# $[0, 1]^d$, a kernel of width $\sigma$ averages about $n \sigma^d$ of them: the variance of the
# answer falls like $1/(n \sigma^d)$, while its bias (the curvature of $f$ across the kernel) grows
# like $\sigma^2$ — so the squared bias, its share of the squared error, grows like $\sigma^4$. For
# the error to go to zero as $n \to \infty$ we need $\sigma \to 0$ *and* $n \sigma^d \to \infty$.
# The papers (citing Nadaraya and Watson) note that the estimator is consistent when β grows like
# $\sqrt{n}$: then $\sigma \propto n^{-1/4}$, and $n \sigma^d \propto n^{1 - d/4} \to \infty$ for
# $d = 1, 2, 3$.
#
# We measure the error against the true function for memories of $n = 16 \dots 16384$ pairs
# (averaged over 5 draws) with three bandwidths: $\beta = 10\sqrt{n}$; a fixed $\beta = 40$ (the
# schedule's value at $n = 16$); and a fixed $\beta = 640$ (its value at $n = 4096$). This cell
# takes a few seconds.

# %%
sizes = [16, 64, 256, 1024, 4096, 16384]
schedules = {"β = 10√n": lambda n: 10 * np.sqrt(n), "fixed β = 40": lambda n: 40.0,
             "fixed β = 640": lambda n: 640.0}
curves = {dim: toys.error_vs_memory_size(sizes, schedules, dim=dim) for dim in (1, 2)}
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
for ax, (dim, c) in zip(axes, curves.items(), strict=True):
    for name in schedules:
        ax.loglog(c["sizes"], c[name], "o-", label=name)
    ax.set(title=f"{dim}-D toy regression", xlabel="memory size n", ylabel="error to the true f")
    ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# Reading the plot: the fixed β = 40 flattens out at its bias floor after a few hundred pairs; the
# fixed β = 640 pays a high variance while the memory is small, then improves fast — in 1-D it
# reaches its own floor near $n = 16384$, in 2-D (where each kernel covers fewer pairs) it is still
# improving there; the √n schedule keeps improving throughout. In numbers, for the last
# quadrupling of the memory (4096 → 16384 pairs):

# %%
for dim, c in curves.items():
    r = {name: c[name][-1] / c[name][-2] for name in schedules}
    print(f"{dim}-D: error ratio 16384/4096 pairs: "
          + ", ".join(f"{k}: {v:.2f}" for k, v in r.items())
          + f" | at n = 16: β=640 error {c['fixed β = 640'][0]:.3f} vs β=10√n {c['β = 10√n'][0]:.3f}")
    assert r["β = 10√n"] < 0.6, "the √n schedule should keep improving"
    assert r["fixed β = 40"] > 0.8, "a fixed small β should have flattened out"
    assert c["fixed β = 40"][-1] > 4 * c["β = 10√n"][-1]
    assert c["fixed β = 640"][0] > 1.4 * c["β = 10√n"][0], "a large fixed β overfits a small memory"
r1 = curves[1]["fixed β = 640"][-1] / curves[1]["fixed β = 640"][-2]
assert r1 > 0.7 and curves[1]["β = 10√n"][-1] < 0.6 * curves[1]["fixed β = 640"][-1]

# %% [markdown]
# The constant in front of $\sqrt n$ matters too: in 1-D the fixed β = 640 beats $10\sqrt n$ for
# the mid-sized memories (printed below) — the constant 10 is a little small for this function.
# What the theory guarantees is the trend: a schedule that grows like $\sqrt n$ keeps improving,
# any fixed β eventually stops.

# %%
c1 = curves[1]
mid = [i for i, n in enumerate(sizes) if 64 <= n <= 1024]
for i in mid:
    print(f"1-D, n = {sizes[i]:>5}: fixed β = 640 error {c1['fixed β = 640'][i]:.4f}, "
          f"β = 10√n = {10 * np.sqrt(sizes[i]):.0f} error {c1['β = 10√n'][i]:.4f}")
assert all(c1["fixed β = 640"][i] < c1["β = 10√n"][i] for i in mid)

# %% [markdown]
#
# Memory Mosaics v2 (chapter 09) makes exactly this adaptive: the bandwidth is a learned function
# $\beta(n) = \beta_1 n^\alpha + \beta_0$ of the number of stored pairs.
#
# ## 4. Equal-norm keys: kernel smoothing *is* softmax attention
#
# Expand the squared distance:
# $\lVert k - k_i \rVert^2 = \lVert k\rVert^2 + \lVert k_i \rVert^2 - 2\,k\cdot k_i$.
# The first term is the same for every stored pair, so it cancels between the numerator and the
# denominator of $w_i$. If every stored key has the **same norm**, the second term is a constant
# too and cancels as well, leaving
#
# $$w_i(k) = \frac{\exp(2\beta\, k\cdot k_i)}{\sum_j \exp(2\beta\, k\cdot k_j)}
#        = \mathrm{softmax}_i(2\beta\, k\cdot k_i):$$
#
# dot-product attention, with the query $k$, keys $k_i$, values $v_i$ and inverse temperature
# $2\beta$: the `form="dot"` of exercise 1.1. This is why Memory Mosaics L2-normalise their keys:
# it makes the kernel regression and the attention formula identical, and pins $k\cdot k_i$ to
# $[-1, 1]$ so that β alone sets the width.
#
# > **The papers' β.** The papers, and the models of this course from chapter 02's induction
# > head on, write this attention as $\mathrm{softmax}(\beta\, \hat k\cdot \hat k_i)$ on unit keys
# > $\hat k$: **their β is twice the Gaussian β of this chapter and chapter 02.** A Gaussian β of
# > 15 is the papers' β of 30. The notation table of chapter 00 lists both.
#
# Now the identity, measured. We draw random keys on the unit sphere in $\mathbb{R}^{16}$ and
# compare the two retrievals (the package's `kernel_regression` and `softmax_attention`) for
# several β; then we rescale the stored keys to random norms in $[0.5, 1.5]$ and compare again.

# %%
rng = np.random.default_rng(0)
k_unit = rng.standard_normal((200, 16))
k_unit /= np.linalg.norm(k_unit, axis=1, keepdims=True)  # (200, 16), every norm 1
v_rand = rng.standard_normal((200, 4))  # (200, 4)
q_unit = rng.standard_normal((50, 16))
q_unit /= np.linalg.norm(q_unit, axis=1, keepdims=True)  # (50, 16)
k_mixed = k_unit * rng.uniform(0.5, 1.5, size=(200, 1))  # (200, 16), norms in [0.5, 1.5]

gaps = {}
for beta in (0.5, 5.0, 50.0):
    for name, k in (("equal norms", k_unit), ("unequal norms", k_mixed)):
        nw = memory.kernel_regression(k, v_rand, q_unit, beta)
        att = memory.softmax_attention(k, v_rand, q_unit, 2 * beta)
        gaps[name, beta] = np.abs(nw - att).max()
        gap = f"{gaps[name, beta]:.2e}" if gaps[name, beta] >= 1e-12 else "below 1e-12"
        print(f"beta = {beta:>4}: {name:>13}: max |kernel smoothing - softmax(2β k·k_i)| {gap}")
assert all(gaps["equal norms", b] < 1e-12 for b in (0.5, 5.0, 50.0))
assert all(gaps["unequal norms", b] > 1e-2 for b in (0.5, 5.0, 50.0))

# %% [markdown]
# With equal norms the two agree to float64 rounding (every gap printed is below $10^{-12}$, as
# asserted); with unequal norms they differ, and more so as β grows (the gaps printed above). The
# difference is exactly the $\lVert k_i\rVert^2$ term: kernel smoothing is attention with a per-key
# bias $-\beta\lVert k_i\rVert^2$, which penalises long keys. We check that too:

# %%
scores = 2 * 5.0 * q_unit @ k_mixed.T - 5.0 * (k_mixed**2).sum(1)  # (50, 200)
weights = np.exp(scores - scores.max(1, keepdims=True))
weights /= weights.sum(1, keepdims=True)
gap_bias = np.abs(weights @ v_rand - memory.kernel_regression(k_mixed, v_rand, q_unit, 5.0)).max()
print(f"unequal norms, attention with the bias -β‖k_i‖²: max gap below 1e-12: {gap_bias < 1e-12}")
assert gap_bias < 1e-12

# %% [markdown]
# **What is the same as a transformer's attention, and what is not.** The weighted sum of
# values under a softmax of dot products is the same. The differences, which the rest of the
# course builds on:
#
# | | transformer attention | associative memory |
# |---|---|---|
# | query | $W_q x_t$, its own projection | the **key** of the current position (no $W_q$) |
# | temperature | fixed $1/\sqrt{d}$ | explicit bandwidth β (learned per head in chapter 04) |
# | key norm | free | normalised, so the softmax is a Gaussian kernel |
# | what it estimates | whatever training makes it | $\mathbb{E}[V \mid K = k]$ from the stored pairs |
#
# Chapter 02 adds the last difference: values that peek one step into the future, and no
# positional encoding.
#
# ## 5. Choosing β from the memory itself: leave-one-out
#
# In practice the true function is unknown, so we cannot measure the error as above. The memory
# can still test itself: answer each stored key $k_i$ from the *other* $n-1$ pairs and compare with
# $v_i$,
#
# $$\mathrm{LOO}(\beta) = \frac1n\sum_{i=1}^n \big\lVert f_{-i}(k_i) - v_i \big\rVert^2 ,\qquad
#   f_{-i}(k) = \sum_{j\ne i}
#   \frac{e^{-\beta\lVert k-k_j\rVert^2}}{\sum_{l\ne i} e^{-\beta\lVert k-k_l\rVert^2}}\, v_j .$$
#
# The pair must be left out: a memory asked with one of its own keys would otherwise answer with
# its own value, more and more exactly as β grows, and the error would reward the largest β.
#
# **Exercise 1.2 — `leave_one_out_error`** (★★, 10 minutes). Shapes: keys `(n, d)`,
# values `(n, d_v)` with $n \ge 2$, a bandwidth `beta` $\ge 0$ (the Gaussian form) → a Python
# float, the mean over the $n$ pairs of the squared error summed over the value dimensions. Pair
# $i$ is left out by its index: two pairs may share the same key, and then the other one still
# answers. Keys may be far apart (use the stable softmax). Do not modify the arguments in place.

# %% [markdown] tags=["hints"]
# <details><summary><b>Hint 1</b> (a nudge)</summary>
#
# Ask the memory with each of its own keys, as in exercise 1.1 with `queries = keys`, except that
# the answer to key $k_i$ may not use pair $i$.
# </details>
#
# <details><summary><b>Hint 2</b> (the approach)</summary>
#
# Compute the `(n, n)` scores $-\beta\lVert k_i - k_j\rVert^2$, take pair $i$ out of row $i$
# *before* the stable softmax (so the other weights still sum to 1), multiply by the values, and
# average over the pairs the squared error summed over the value dimensions.
# </details>
#
# <details><summary><b>Hint 3</b> (the key line)</summary>
#
# ```python
# np.fill_diagonal(scores, -np.inf)  # pair i gets weight exactly 0 in row i
# ```
# </details>

# %% tags=["exercise"]
def leave_one_out_error(keys: np.ndarray, values: np.ndarray, beta: float) -> float:
    """Mean over i of ||f_{-i}(k_i) - v_i||^2. keys (n, d), values (n, d_v) -> float."""
    ### BEGIN SOLUTION
    sq_dist = ((keys[:, None, :] - keys[None, :, :]) ** 2).sum(-1)  # (n, n)
    scores = -beta * sq_dist
    np.fill_diagonal(scores, -np.inf)  # a pair may not answer itself
    scores = scores - scores.max(axis=1, keepdims=True)
    weights = np.exp(scores)
    weights = weights / weights.sum(axis=1, keepdims=True)  # (n, n), zero diagonal
    answers = weights @ values  # (n, d_v)
    return float(np.mean(((answers - values) ** 2).sum(axis=1)))
    ### END SOLUTION


# %% tags=["check"]
ch01.check_leave_one_out_error(leave_one_out_error)

# %% [markdown]
# We now scan β on a memory of 200 pairs and compare three curves: the leave-one-out error (what
# the memory can compute), the in-sample error (the same with each pair allowed to answer itself),
# and the true error against $f$ (what we would like to minimise but cannot see).
#
# > **Predict before you run.** Which β will the in-sample error choose? Will leave-one-out's choice
# > land near the best β for the true error?
#
# <details><summary>What the run showed</summary>
#
# The in-sample error chooses the largest β of the grid (asserted): with its own pair in the memory,
# a key finds itself and copies its value. Leave-one-out lands within two grid steps of the best β
# for the true error (asserted), and on 8 memories its choice costs little (the ratios printed).
# </details>

# %%
keys_loo, values_loo = toys.make_regression(200, dim=1, noise=0.3, seed=0)  # (200, 1), (200, 1)
beta_grid = np.logspace(0, 5, 41)


def scan_beta(keys, values):
    """LOO, in-sample and true error for every β of the grid."""
    loo = np.array([toys.leave_one_out_error(keys, values, b) for b in beta_grid])
    in_sample = np.array([toys.in_sample_error(keys, values, b) for b in beta_grid])
    true_err = np.array([toys.retrieval_mse(keys, values, grid, b) for b in beta_grid])
    return loo, in_sample, true_err


loo, in_sample, true_err = scan_beta(keys_loo, values_loo)
plt.figure(figsize=(6.5, 3.6))
plt.semilogx(beta_grid, loo, label="leave-one-out error")
plt.semilogx(beta_grid, in_sample, label="in-sample error (pair answers itself)")
plt.semilogx(beta_grid, true_err + 0.3**2, label="true error + noise variance 0.09")
for curve, c in ((loo, "tab:blue"), (in_sample, "tab:orange"), (true_err, "tab:green")):
    plt.axvline(beta_grid[curve.argmin()], c=c, ls=":")
plt.plot([], [], c="gray", ls=":", label="dotted: where each curve is smallest")
plt.xlabel("β")
plt.ylabel("mean squared error")
plt.legend(fontsize=8)
plt.show()
steps_apart = abs(int(loo.argmin()) - int(true_err.argmin()))
print(f"β chosen by leave-one-out {beta_grid[loo.argmin()]:.0f}, by the in-sample error "
      f"{beta_grid[in_sample.argmin()]:.0f}; best β for the true error "
      f"{beta_grid[true_err.argmin()]:.0f} ({steps_apart} grid steps from the LOO choice)")
assert steps_apart <= 2 and in_sample.argmin() == len(beta_grid) - 1

# %% [markdown]
# Reading the plot: the in-sample error only falls as β grows (its minimum sits at the edge of
# the grid), while the leave-one-out curve has its minimum close to that of the true error (how
# close is printed below the plot; where the two coincide, the blue dotted line hides under the
# green one). (The LOO error predicts a *noisy* stored value, so it sits about one noise
# variance, 0.09, above the true error: we shifted the true error by that much to compare the
# shapes.)
#
# One memory could be lucky. We repeat the choice on 8 independent memories of 200 pairs and
# report, for each, how much worse the chosen β is than the best β of the grid (1.00 = as good).

# %%
ratios_loo, ratios_in = [], []
for seed in range(8):
    loo_s, in_s, true_s = scan_beta(*toys.make_regression(200, dim=1, noise=0.3, seed=seed))
    ratios_loo.append(true_s[loo_s.argmin()] / true_s.min())
    ratios_in.append(true_s[in_s.argmin()] / true_s.min())
    assert in_s.argmin() == len(beta_grid) - 1, "in-sample error should prefer the largest β"
print("true error of the LOO choice / best on the grid:      ", np.round(ratios_loo, 2))
print("true error of the in-sample choice / best on the grid:", np.round(ratios_in, 1))
print(f"LOO: median {np.median(ratios_loo):.2f}, worst {max(ratios_loo):.2f}; in-sample: "
      f"{min(ratios_in):.1f} to {max(ratios_in):.1f} times the best")
assert np.median(ratios_loo) < 1.2 and max(ratios_loo) < 2.0
assert min(ratios_in) > 5

# %% [markdown]
# Leave-one-out lands on or next to the best β on most memories (the median ratio is close to 1);
# on the unluckiest memory it pays the worst ratio printed, less than twice the best error,
# because 200 noisy pairs estimate the error curve only roughly. The in-sample choice is always
# the largest β of the grid, and its true error is several times the best (the range printed).

# %% [markdown]
# ## Summary
#
# - An associative memory answers a query with a weighted average of its stored values, weights
#   $\propto \exp(-\beta\lVert k - k_i\rVert^2)$: Nadaraya–Watson kernel smoothing, an estimate of
#   $\mathbb{E}[V\mid K=k]$.
# - β trades bias (small β: broad averages) against variance (large β: nearest-neighbour copies).
#   With β fixed the error stops improving as the memory grows; with β growing like $\sqrt{n}$
#   it keeps falling (measured above in 1-D and 2-D).
# - When all stored keys have the same norm, kernel smoothing equals
#   $\mathrm{softmax}(2\beta\,k\cdot k_i)$ attention to float precision; with unequal norms it is
#   attention plus a bias $-\beta\lVert k_i\rVert^2$. Unlike a transformer the query is the key
#   itself and β is explicit. The papers' β (in $\mathrm{softmax}(\beta\,\hat k\cdot\hat k_i)$) is
#   twice this chapter's Gaussian β.
# - Leave-one-out (never let a pair answer itself) picks a β close to the best one using the
#   stored pairs alone.
#
# ## Recap questions
#
# 1. Why must each query's weights be normalised over the stored pairs (axis 1 of the `(m, n)`
#    score matrix) and not over the queries?
# 2. You double the number of stored pairs. Should β go up, down, or stay? By roughly how much?
# 3. Which term of $\lVert k - k_i\rVert^2$ makes kernel smoothing differ from
#    $\mathrm{softmax}(2\beta\, k\cdot k_i)$, and when does it vanish from the weights?
# 4. Why does the in-sample error always pick the largest β, and what does leave-one-out change?
# 5. A paper's model uses $\mathrm{softmax}(\beta\,\hat k\cdot\hat k')$ with β = 8 on unit keys. Which
#    Gaussian β of this chapter gives the same weights?
#
# <details><summary>Answers</summary>
#
# 1. The answer to one query is a weighted *average* of the stored values: its weights, one per
#    stored pair, must sum to 1. Normalising over the queries mixes different questions.
# 2. Up, like $\sqrt{n}$: about $\sqrt 2 \approx 1.4$ times. The variance term can then afford a
#    narrower kernel, which lowers the bias (section 3).
# 3. $\lVert k_i\rVert^2$ (the $\lVert k\rVert^2$ term is the same for every pair of a query and
#    cancels). It vanishes when every stored key has the same norm.
# 4. A pair asked with its own key finds itself at distance 0; as β grows its own value takes all
#    the weight, so the error goes to 0. Leaving the pair out makes it predict a value it has not
#    seen, like the true error does.
# 5. β = 4: $\mathrm{softmax}(2\cdot 4\, k\cdot k')$ — the papers' β is twice the Gaussian one.
#
# </details>
#
# ## Further reading
#
# - J. Zhang, N. Nolte, R. Sadhukhan, B. Chen, L. Bottou. *Memory Mosaics*. ICLR 2025
#   (arXiv:2405.06394) — the associative memory and its link with attention.
# - J. Zhang, L. Bottou. *Memory Mosaics at Scale*. NeurIPS 2025 (arXiv:2507.03285) — §2 and the
#   footnote on consistency with $\beta \propto \sqrt{n}$; the adaptive bandwidth $\beta(n)$.
# - E. A. Nadaraya, "On estimating regression", 1964; G. S. Watson, "Smooth regression analysis",
#   1964 — the estimator.
# - A. Zhang, Z. Lipton, M. Li, A. Smola. *Dive into Deep Learning*, section "Attention Pooling by
#   Similarity" — the same estimator as attention pooling.
# - L. Wasserman. *All of Nonparametric Statistics*, ch. 5 — bias, variance and bandwidth choice
#   for kernel regression, including leave-one-out cross-validation.
#
# Next: **02 · Keys from the past, values from the future.**
