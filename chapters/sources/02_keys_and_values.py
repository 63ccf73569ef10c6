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
# # 02 · Keys from the past, values from the future
#
# Chapter 01 built a memory that stores pairs and answers by kernel smoothing. Here the memory
# meets a **time series**, with keys built from the past and values that peek one step ahead. This
# is the *elementary memory unit* of Memory Mosaics, and with nothing else it already
# learns in context: it predicts a periodic signal once it has seen one period, and it performs
# an induction step ("… a b … a → b") in a single layer.
#
# **Prerequisites.** Chapter 01 (retrieval by kernel smoothing, the bandwidth β, equal-norm keys
# and softmax attention). From PyTorch, for section 8: tensors, `nn.Module`, a forward pass that
# returns logits, and what a causal mask is in a transformer's attention.
#
# **By the end of this chapter you will be able to**
#
# - build the keys (a leaky average of the past) and the values (a one-step peek into the future)
#   of a memory unit (going further: compute the leaky average three ways);
# - retrieve strictly causally — from pairs $s < t$ only — and explain why $s \le t$ would cheat and
#   why position 0 answers 0;
# - write a "no peeking" test for any predictor;
# - measure in-context prediction: the error falls once the memory holds one period, and only with
#   leaky keys where the signal passes the same value going up and going down;
# - write the forward pass of a one-layer induction head made of one memory unit, train it, and
#   compare it with a one-layer transformer.

# %%
import inspect
import time
from collections.abc import Callable

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch

from mosaics_edu.core import memory
from mosaics_edu.core.features import leaky_average
from mosaics_edu.course import induction, toys
from mosaics_edu.course.checks import ch02
from mosaics_edu.course.diagrams import draw_memory_unit
from mosaics_edu.course.widgets import defaults, interactive_figure

# One thread: every number printed below is then the same on any computer (a sum split over threads
# adds in an order that depends on their number).
torch.set_num_threads(1)

# %% [markdown]
# ## 1. The elementary memory unit
#
# A feature extractor turns the inputs $x_0, x_1, \dots$ into a key series and a value series:
#
# $$k_t = \varphi(x_t, x_{t-1}, \dots), \qquad v_t = \psi(x_{t+1}, x_t), \qquad
#   y_t = \sum_{s < t} \mathrm{softmax}_s\!\big(-\beta \lVert k_t - k_s \rVert^2\big)\, v_s .$$
#
# The key summarises the **past** (up to $t$); the value **peeks** one step into the future. At
# time $t$ the unit answers $y_t$, an estimate of $\mathbb{E}[v_t \mid k_t]$, from the pairs it
# stored at times $s < t$. One step later $x_{t+1}$ arrives, $v_t$ becomes computable and the
# pair $(k_t, v_t)$ joins the memory. If $v_t = x_{t+1}$, then $y_t$ is a prediction of the next
# input, learned from the sequence itself — *in context*, with no weight changing.
#
# The diagram draws it for $t = 5$. Every key $k_s$ is built from $x_0 \dots x_s$ (blue: the
# leaky average carries the past along); every value $v_s$ reads $x_s$ and $x_{s+1}$ (red: the
# peek). The answer $y_5$ reads the pairs $s = 0 \dots 4$ only (green). Each of them holds an input
# of index $s + 1 \le 5 = t$: no stored pair contains anything after $x_t$. The pair $s = 5$
# would: its value holds $x_6$.
# Our series: a periodic signal with period $P = 20$ steps, two harmonics with random phases and a
# little noise. To make vectors out of scalar readings we *lift* each $x_t$ to a soft one-hot vector
# on 24 bins (`toys.lift`) — the role a token embedding or $W_\varphi$ plays in a real model.

# %%
draw_memory_unit(T=8, t=5)
plt.show()

# %%
P = 20
series = toys.periodic_signal(1, 100, period=P, seed=3)[0]  # (100,)
lifted = toys.lift(series)  # (100, 24)
fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 4), sharex=True)
ax1.plot(series, c="k")
ax1.axvline(P, c="tab:green", ls=":", label="one period")
ax1.set(ylabel=r"$x_t$")
ax1.legend(fontsize=8)
ax2.imshow(lifted.T, aspect="auto", origin="lower", cmap="Greys", extent=(-0.5, 99.5, -1.6, 1.6))
ax2.set(xlabel="time t", ylabel=r"lift($x_t$): 24 bins")
plt.tight_layout()
plt.show()
print("series", series.shape, "-> lifted", lifted.shape)

# %% [markdown]
# ## 2. Keys: a leaky average of the past
#
# The key of position $t$ is a leaky average of the lifted inputs, normalised to unit length:
#
# $$\bar k_t = \tilde k_t + \lambda\, \bar k_{t-1}, \quad \bar k_{-1} = 0, \qquad
#   k_t = \bar k_t / \lVert \bar k_t \rVert ,$$
#
# with $\tilde k_t$ the lifted input and a decay $0 \le \lambda < 1$. With $\lambda = 0$ the key is
# the current input alone; with $\lambda$ near 1 it remembers a long stretch of the past. The
# normalisation makes chapter 01's identity hold: the Gaussian kernel on these keys *is*
# $\mathrm{softmax}(2\beta\, k_t \cdot k_s)$.
#
# **Exercise 2.1 — `leaky_keys`** (★, 10 minutes). Shapes: features `(T, d)` → keys `(T, d)`, each
# row of (Euclidean) norm 1, with $T \ge 1$ and float64 or float32 features; `decay` is a number
# $0 \le \lambda < 1$ (λ = 0: each key is its own input, normalised). The inputs never make a
# $\bar k_t$ exactly 0. A loop over time is fine. Do not modify `features` in place.

# %% [markdown] tags=["hints"]
# <details><summary><b>Hint 1</b> (a nudge)</summary>
#
# Two steps, in this order: first the leaky average $\bar k_t$ over time (a running state that
# starts at 0), then the normalisation of each $\bar k_t$ on its own.
# </details>
#
# <details><summary><b>Hint 2</b> (the approach)</summary>
#
# Loop over $t$ with a state vector of length $d$: `state = features[t] + decay * state`, store
# it as row $t$. Then divide every row by its norm over the features, `axis=1` (or -1), with
# `keepdims=True`.
# </details>
#
# <details><summary><b>Hint 3</b> (the key line)</summary>
#
# ```python
# state = features[t] + decay * state  # k̄_t: the state carries the whole past
# ```
# </details>

# %% tags=["exercise"]
def leaky_keys(features: np.ndarray, decay: float) -> np.ndarray:
    """k̄_t = features_t + decay * k̄_{t-1}; k_t = k̄_t / ||k̄_t||. features (T, d) -> (T, d)."""
    ### BEGIN SOLUTION
    k_bar = np.zeros_like(features, dtype=np.float64)  # (T, d)
    state = np.zeros(features.shape[1])
    for t in range(features.shape[0]):
        state = features[t] + decay * state
        k_bar[t] = state
    return k_bar / np.linalg.norm(k_bar, axis=1, keepdims=True)  # (T, d), unit rows
    ### END SOLUTION


# %% tags=["check"]
ch02.check_leaky_keys(leaky_keys)

# %% [markdown] tags=["going-further"]
# ### The leaky average three ways
#
# > **Going further (optional).** How the package computes the same keys fast; nothing later in
# > the chapter needs it.
#
# The recursion is clear but runs one step at a time. Unrolled,
# $\bar k_t = \sum_{s \le t} \lambda^{t-s}\tilde k_s$:
# one multiplication by the lower-triangular $T\times T$ matrix $C_{ts} = \lambda^{t-s}$ ($s \le t$),
# which is parallel but costs $O(T^2)$. The package's default is a chunked **scan**: inside chunks
# of about $\sqrt T$ steps it uses the small matrix, and it carries the state from chunk to chunk,
# $O(T)$ time and memory. The official code also multiplies $C$ by $(1-\lambda)$ (a *normalised*
# exponential moving average); since keys are normalised afterwards, that factor changes nothing.
# We check all four on a long random input.

# %% tags=["going-further"]
feats = np.random.default_rng(0).standard_normal((2048, 32))  # (T, d)
decay = 0.9
forms, seconds = {}, {}
for method in ("recurrent", "matrix", "scan"):
    start = time.perf_counter()
    forms[method] = leaky_average(feats, decay, method=method)  # (2048, 32)
    seconds[method] = time.perf_counter() - start
forms["(1-λ)·matrix"] = (1 - decay) * forms["matrix"]


def unit(k):
    return k / np.linalg.norm(k, axis=-1, keepdims=True)


for name, k in forms.items():
    gap_raw = np.abs(k - forms["recurrent"]).max()
    gap_unit = np.abs(unit(k) - unit(forms["recurrent"])).max()
    before = f"{gap_raw:.1e}" if gap_raw >= 1e-10 else "below 1e-10"
    print(f"{name:>13}: max gap to the recursion {before} before, below 1e-10 after normalising: "
          f"{gap_unit < 1e-10}" + (f"  ({seconds[name] * 1e3:.0f} ms)" if name in seconds else ""))
    assert gap_unit < 1e-10
assert np.abs(forms["(1-λ)·matrix"] - forms["recurrent"]).max() > 1.0  # differs before normalising
print("the T×T matrix holds", 2048**2, "numbers; the scan never builds it")

# %% [markdown] tags=["going-further"]
# (The times printed depend on your machine; chapter 04 compares the forms at several lengths.)

# %% [markdown]
# ## 3. Values: a peek into the future
#
# The value of position $t$ mixes the input of now and of the next step:
#
# $$v_t = \gamma\, x_t + (1-\gamma)\, x_{t+1}, \qquad x_T = 0 \text{ past the end of the window}.$$
#
# With $\gamma = 0$ the value is exactly the next input, which is what we want to predict here.
# (The models of chapter 04 first project $x$ by $W_\psi$ and normalise the mix; for a scalar
# signal normalising would erase the information, so we keep the raw mix.)

# %% [markdown]
# ## 4. Strictly causal retrieval
#
# Position $t$ predicts $x_{t+1}$, which its own value $v_t$ *contains*: reading its own pair would
# copy the answer, so the memory used at $t$ holds the pairs $s < t$ only (§1's diagram:
# nothing from the future). Position 0 has an **empty memory**; the softmax over no pairs is
# undefined (0/0), and the convention is to answer exactly 0.
#
# **Exercise 2.2 — `causal_predict`** (★★, 15 minutes). Put the unit together. From the keys
# `(T, d)` and the series `x` `(T, m)`: build the values $v_t = \gamma x_t + (1-\gamma) x_{t+1}$
# (with $x_T = 0$ past the end), then answer at every $t$ by chapter 01's kernel smoothing (the
# Gaussian β) over the pairs $s < t$ only; answer 0 is 0. Returns `(T, m)`. Write the masked
# softmax yourself: give the pairs $s \ge t$ the score $-\infty$ before the stable softmax, and
# treat row 0, which has no pair at all, on its own. Do not modify `x` in place.
#
# The arguments: unit keys `(T, d)` with $T \ge 1$ (for $T = 1$ the answer is one row of zeros),
# `x` `(T, m)`, a bandwidth `beta` $\ge 0$ (β = 0 averages the past values with equal weights;
# β can be in the thousands, where every $e^{-\beta\lVert k_t - k_s\rVert^2}$ of a row underflows
# unless you subtract the row's largest score), a mix $0 \le \gamma \le 1$. Float64 or float32.

# %% [markdown] tags=["hints"]
# <details><summary><b>Hint 1</b> (a nudge)</summary>
#
# Three pieces, one after the other: the values (a mix of `x` and `x` shifted up by one row, with a
# row of zeros at the end), the `(T, T)` scores with everything at or after the diagonal masked,
# and the stable softmax of chapter 00 on every row but row 0.
# </details>
#
# <details><summary><b>Hint 2</b> (the approach)</summary>
#
# Scores $-\beta\lVert k_t - k_s\rVert^2$ by broadcasting; `np.where(np.tri(T, T, k=-1, dtype=bool),
# scores, -np.inf)` keeps $s < t$ only. Row 0 is all $-\infty$: leave it out of the softmax
# (rows `1:`), subtract each row's maximum, `exp`, divide by the row sum, multiply by the values,
# and put the result under a row of zeros.
# </details>
#
# <details><summary><b>Hint 3</b> (the key line)</summary>
#
# ```python
# scores = np.where(np.tri(T, T, k=-1, dtype=bool), scores, -np.inf)[1:]  # rows 1..T-1, s < t
# ```
# </details>

# %% tags=["exercise"]
def causal_predict(keys: np.ndarray, x: np.ndarray, beta: float, gamma: float) -> np.ndarray:
    """y_t = Σ_{s<t} softmax_s(-β||k_t - k_s||²) v_s with v_s = γ x_s + (1-γ) x_{s+1}; y_0 = 0.

    keys (T, d), x (T, m) -> answers (T, m).
    """
    ### BEGIN SOLUTION
    T = keys.shape[0]
    x_next = np.concatenate([x[1:], np.zeros_like(x[:1])])  # (T, m): x_{t+1}, 0 past the end
    values = gamma * x + (1 - gamma) * x_next  # (T, m)
    scores = -beta * ((keys[:, None, :] - keys[None, :, :]) ** 2).sum(-1)  # (T, T): [t, s]
    past = np.tri(T, T, k=-1, dtype=bool)  # (T, T): past[t, s] = s < t
    scores = np.where(past, scores, -np.inf)[1:]  # (T-1, T): row 0 has no pair, left out
    weights = np.exp(scores - scores.max(axis=1, keepdims=True))
    weights = weights / weights.sum(axis=1, keepdims=True)  # (T-1, T): zero for s >= t
    answers = np.zeros((T, x.shape[1]))  # (T, m): row 0 stays 0, an empty memory
    answers[1:] = weights @ values
    return answers
    ### END SOLUTION


# %% tags=["check"]
ch02.check_causal_predict(causal_predict)

# %% [markdown]
# From here on we use the package's memory unit, `toys.predict_next(x, decay, beta)`: lifted
# inputs → leaky keys → values $v_t = x_{t+1}$ ($\gamma = 0$) → retrieval from $s < t$. What
# would the forbidden mask $s \le t$ do? It would look wonderful: with a sharp kernel each
# position finds its own key and copies its own value, the very number it is asked to predict —
# from the first step, before it has seen anything.

# %%
signals = toys.periodic_signal(200, 100, period=P, seed=0)  # (200, 100): random phases
keys_all = toys.unit_keys(signals, 0.5)  # (200, 100, 24)
values_all = toys.peek_values(signals[..., None])  # (200, 100, 1)
cheat = memory.kernel_regression(keys_all, values_all, keys_all, 30.0,
                                 mask=np.tri(100, dtype=bool))[..., 0]  # (200, 100)
honest = toys.predict_next(signals, 0.5, 30.0)[0]  # (200, 100)
err_cheat = np.mean((cheat[:, 1:P] - signals[:, 2 : P + 1]) ** 2)
err_honest = np.mean((honest[:, 1:P] - signals[:, 2 : P + 1]) ** 2)
print(f"error over the first period (t = 1 … {P - 1}): mask s <= t {err_cheat:.4f}, "
      f"mask s < t {err_honest:.4f}")
print(f"position 0 of the honest unit answers {np.abs(honest[:, 0]).max()} on all 200 series")
assert err_cheat < 0.1 * err_honest and np.all(honest[:, 0] == 0.0)

# %% [markdown]
# ## 5. Your own "no peeking" test
#
# Masks are easy to get wrong by one, so every model of the course is tested for peeking: change the
# future and see whether the past notices. The prediction at position $s$ may use $x_0 \dots x_s$
# only.
#
# **Exercise 2.3 — `no_peeking`** (★★, 10 minutes). `predict` maps an array `(T,)` to predictions
# `(T,)`. Return `True` when the predictions at positions $0 \dots t$ are unchanged after you replace
# $x_{t+1}, \dots, x_{T-1}$ (all of them) by other numbers, `False` otherwise. Do not modify `x`
# in place. `t` is any position $0 \le t \le T-1$; at $t = T-1$ there is no future to replace,
# so the answer is `True`. "Unchanged" means equal to within $10^{-9}$ at most: a leak can be tiny,
# and `np.allclose`'s default tolerance (about $10^{-5}$ of the values) would hide it. `predict`
# always gives the same predictions for the same series, so you may call it as often as you like.
# Return a Python `bool`.

# %% [markdown] tags=["hints"]
# <details><summary><b>Hint 1</b> (a nudge)</summary>
#
# Make a copy of `x` in which every value after position $t$ is different, run `predict` on both
# series, and compare only the first $t + 1$ predictions.
# </details>
#
# <details><summary><b>Hint 2</b> (the approach)</summary>
#
# `changed = x.copy()`; give `changed[t + 1:]` new numbers (random ones, say; the slice is empty at
# $t = T-1$); compare `predict(x)[: t + 1]` with `predict(changed)[: t + 1]` with a tiny tolerance
# and wrap the result in `bool(...)`.
# </details>
#
# <details><summary><b>Hint 3</b> (the key line)</summary>
#
# ```python
# np.allclose(before, after, rtol=0, atol=1e-12)  # an absolute tolerance far below any leak
# ```
# </details>

# %% tags=["exercise"]
def no_peeking(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, t: int) -> bool:
    """True iff predict(x)[: t + 1] does not depend on x[t + 1:]. x (T,)."""
    ### BEGIN SOLUTION
    changed = x.copy()
    changed[t + 1:] = np.random.default_rng(0).normal(0.0, 3.0, size=len(x) - t - 1)
    return bool(np.allclose(predict(x)[: t + 1], predict(changed)[: t + 1], rtol=0, atol=1e-12))
    ### END SOLUTION


# %% tags=["check"]
ch02.check_no_peeking(no_peeking)

# %% [markdown]
# We run the package's version of the test, `toys.no_peeking`, at every position on the memory unit,
# and on the same unit with the mask $s \le t$:

# %%
x0 = signals[0]


def unit_honest(x):
    return toys.predict_next(x, 0.5, 30.0)[0]


def unit_cheat(x):
    k = toys.unit_keys(x, 0.5)
    v = toys.peek_values(x[:, None])  # (T, 1)
    return memory.kernel_regression(k, v, k, 30.0, mask=np.tri(len(x), dtype=bool))[:, 0]


honest_ok = [toys.no_peeking(unit_honest, x0, t) for t in range(len(x0) - 1)]
cheat_ok = [toys.no_peeking(unit_cheat, x0, t) for t in range(len(x0) - 1)]
print(f"mask s < t : passes the test at {sum(honest_ok)} of {len(honest_ok)} positions")
print(f"mask s <= t: passes the test at {sum(cheat_ok)} of {len(cheat_ok)} positions")
assert all(honest_ok) and not any(cheat_ok)

# %% [markdown]
# ## 6. Learning in context: one period is enough
#
# We run the unit (decay $\lambda = 0.5$, $\beta = 30$) on 200 series with random
# phases and measure the squared error of its prediction of $x_{t+1}$ at every position $t$.
#
# > **Predict before you run.** How will the error move with the position: fall steadily as pairs
# > accumulate, or stay high and then drop? If it drops, where? And how does it compare with
# > simply predicting "no change"?
#
# <details><summary>What the run showed</summary>
#
# It stays high, above the "no change" baseline, for a whole period, then drops more than tenfold
# right after position P (both asserted); the reading below the plot says why.
# </details>

# %%
err_pos = toys.error_by_position(signals, decay=0.5, beta=30.0)  # (99,)
no_change = np.mean(np.diff(signals, axis=1) ** 2)  # error of predicting x_{t+1} = x_t
plt.figure(figsize=(8, 3.4))
plt.semilogy(np.arange(1, 99), err_pos[1:], c="tab:blue", label="memory unit, λ = 0.5")
plt.axvline(P, c="tab:green", ls=":", label=f"one period (P = {P})")
plt.axhline(no_change, c="gray", ls="--", label=r"predict 'no change' ($\hat x_{t+1} = x_t$)")
plt.xlabel("position t (pairs in memory = t)")
plt.ylabel(r"squared error of $\hat x_{t+1}$")
plt.legend(fontsize=8)
plt.show()

# %%
early, late = err_pos[1:P].mean(), err_pos[P + 2 : 2 * P].mean()
print(f"mean squared error: positions 1-{P - 1} (less than a period) {early:.4f}; "
      f"positions {P + 2}-{2 * P - 1} (one period stored) {late:.4f}; ratio {early / late:.0f}x")
print(f"predicting 'no change' instead: {no_change:.4f}")
assert late < 0.1 * early
assert early > no_change > late

# %% [markdown]
# Reading the plot: during the first period the memory holds only pairs from other phases of the
# signal, whose values are the wrong next inputs, so the unit does worse than predicting "no change"
# (grey line). Once the memory holds one period, every new key has a stored neighbour one period
# back, whose value is the right next input.
#
# ## 7. Why a *leaky* average
#
# Within one period the signal passes the same value going up and going down. We compare a unit
# whose key is $x_t$ alone ($\lambda = 0$) with a leaky one, after two periods of context.
#
# > **Predict before you run.** After two periods of context, is the unit with λ = 0 about as good
# > as the leaky one, or worse? Where along the signal would it go wrong?
#
# <details><summary>What the run showed</summary>
#
# Worse: the leaky unit's error is under 0.3 times the λ = 0 unit's (asserted); the reading below
# the plot says where and why.
# </details>

# %%
err_plain = toys.error_by_position(signals, decay=0.0, beta=30.0)
late_plain, late_leaky = err_plain[2 * P :].mean(), err_pos[2 * P :].mean()
pred_plain = toys.predict_next(signals[0], 0.0, 30.0)[0]
pred_leaky = toys.predict_next(signals[0], 0.5, 30.0)[0]
t_show = np.arange(60, 99)
plt.figure(figsize=(9, 3.4))
plt.plot(t_show + 1, signals[0, t_show + 1], "k", lw=1, label=r"$x_{t+1}$")
plt.plot(t_show + 1, pred_plain[t_show], "o-", ms=3, c="tab:orange", label="key = x_t alone (λ = 0)")
plt.plot(t_show + 1, pred_leaky[t_show], "s-", ms=3, c="tab:blue", label="leaky key (λ = 0.5)")
plt.xlabel("time t + 1")
plt.ylabel("next input and its predictions")
plt.legend(fontsize=8)
plt.show()
print(f"mean squared error after two periods: key = x_t alone {late_plain:.4f}, "
      f"leaky key {late_leaky:.4f} ({late_plain / late_leaky:.1f}x smaller)")
assert late_leaky < 0.3 * late_plain
miss = np.abs(pred_plain[t_show] - signals[0, t_show + 1])  # (39,): the λ = 0 unit's errors
worst = t_show[np.argsort(-miss)[:2]] + 1  # the two times t + 1 it misses most
direction = np.sign(signals[0, worst] - signals[0, worst - 1])  # +1: the signal is rising there
print(f"the λ = 0 unit misses most at times {worst.tolist()} (by {np.sort(miss)[::-1][:2].round(2)}), "
      f"where the signal is {['falling' if d < 0 else 'rising' for d in direction]}")

# %% [markdown]
# Reading the plot: the $\lambda = 0$ unit goes wrong at a few steps (the two worst are printed
# above), where the current value also occurs with the signal moving the other way: a key of $x_t$
# alone cannot tell the two apart, so the memory averages "next value going up" with "next value
# going down". A leaky key also remembers the last few values, hence the direction.
# The widget below lets you explore both knobs: the decay λ and β. The lower panel shows which
# stored pairs the prediction at one position (red) retrieves: with a good setting, the pairs
# exactly one, two and three periods earlier.

# %%
controls = {
    "decay": widgets.FloatSlider(value=0.5, min=0.0, max=0.95, step=0.05, description="decay λ"),
    "beta": widgets.FloatLogSlider(value=30.0, base=10, min=0, max=3, step=0.1, description="beta"),
    "query": widgets.IntSlider(value=70, min=1, max=98, description="position"),
}
interactive_figure(toys.memory_unit_demo, toys.draw_memory_unit_demo, controls, figsize=(9, 5));

# %%
shown = toys.memory_unit_demo(**defaults(controls))
w, q = shown["weights"], int(shown["query"])
one_back = sum(w[[q - j * P - 1, q - j * P, q - j * P + 1]].sum() for j in (1, 2, 3))
print(f"at position {q}: weights on pairs s >= t: {w[q:].sum()}, weight within ±1 step of "
      f"t-P, t-2P, t-3P: {one_back:.3f}; error of the whole series {float(shown['mse']):.4f}")
assert w[q:].sum() == 0.0 and one_back > 0.9

# %% [markdown]
# ## 8. An induction head in one layer
#
# Language models learn in context too. A famous mechanism is the **induction head**: having seen
# "… a b …", when "a" comes again predict "b". In a transformer it takes two layers: one to write
# "the previous token was a" into the position of b, one to find it. A memory unit does it in one:
# the key of a position is (mostly) its own token, the value peeks at the next token. When "a"
# comes again its key finds the stored key of the first "a", whose value is "b".
#
# The model, `induction.MemoryUnitLM`, is a token embedding, one memory unit and an unembedding:
#
# $$x = E[\text{tokens}], \qquad y_t = \sum_{s<t} \mathrm{softmax}_s(k_t\cdot k_s)\, v_s
#   \;(y_0 = 0), \qquad \text{logits} = U\,\mathrm{LN}(x + W_o\, y).$$
#
# Its key extractor (`KeyExtractor`, chapter 04 studies it) returns keys $k_t = s\,\hat k_t$: a
# leaky average of $W_\varphi x$, normalised, times a learned scale $s$. So
# $k_t\cdot k_s = s^2\, \hat k_t\cdot\hat k_s = \beta\, \hat k_t\cdot\hat k_s$ with $\beta = s^2$:
# **from here on, β is the papers' β** — twice the Gaussian β of sections 1–7 (a Gaussian
# $\exp(-\beta_G\lVert k-k'\rVert^2)$ on unit keys is $\mathrm{softmax}(2\beta_G\, k\cdot k')$). The
# value extractor (`ValueExtractor`) returns values that peek at token $t+1$, as in section 3.
#
# **Exercise 2.4 — `memory_unit_lm`** (★★★, 20 minutes). Write the forward pass. You get the
# model's parts: `model.embed` (tokens `(B, T)` → `(B, T, d)`), `model.keys` and `model.values`
# (`(B, T, d)` → `(B, 1, T, d)`: one head; take `[:, 0]`), `model.proj` ($W_o$), `model.ln`
# (LayerNorm) and `model.unembed` ($U$). Retrieve from the pairs $s < t$ with the scores
# $k_t\cdot k_s$ — no factor 2, no $1/\sqrt d$: the keys carry β — and answer exactly 0 at
# position 0. Return the logits `(B, T, vocab)` (not probabilities). `tokens` holds `B` sequences
# of length $T \ge 1$ (for $T = 1$ only position 0, with its empty memory); the scores can reach
# $\pm 2\cdot 10^4$ when β is large, so mask with $-\infty$ and let `torch.softmax` subtract the
# maximum. Do not change the model.

# %% [markdown] tags=["hints"]
# <details><summary><b>Hint 1</b> (a nudge)</summary>
#
# Follow the formula from left to right with the model's parts: embed, keys and values, the
# masked retrieval over $s < t$, then the residual $x + W_o y$, the LayerNorm and the unembedding.
# </details>
#
# <details><summary><b>Hint 2</b> (the approach)</summary>
#
# Scores `k @ k.transpose(-1, -2)` `(B, T, T)`; fill the entries with $s \ge t$ with
# `float("-inf")` (a `tril(-1)` mask), `torch.softmax(..., dim=-1)`; row 0 is then all `nan`
# (0/0), so replace it by 0 (`nan_to_num`). Then `y = weights @ v` and
# `model.unembed(model.ln(x + model.proj(y)))`.
# </details>
#
# <details><summary><b>Hint 3</b> (the key line)</summary>
#
# ```python
# past = torch.ones(T, T, dtype=torch.bool).tril(-1)  # (T, T): True where s < t
# ```
# </details>

# %% tags=["exercise"]
def memory_unit_lm(model: induction.MemoryUnitLM, tokens: torch.Tensor) -> torch.Tensor:
    """One-layer induction head. tokens (B, T) int64 -> logits (B, T, vocab)."""
    ### BEGIN SOLUTION
    T = tokens.shape[1]
    x = model.embed(tokens)  # (B, T, d)
    k = model.keys(x)[:, 0]  # (B, T, d): keys s·k̂_t, so k_t·k_s = β k̂_t·k̂_s
    v = model.values(x)[:, 0]  # (B, T, d): values peeking at token t+1
    scores = k @ k.transpose(-1, -2)  # (B, T, T): [b, t, s]
    past = torch.ones(T, T, dtype=torch.bool, device=tokens.device).tril(-1)  # (T, T): s < t
    scores = scores.masked_fill(~past, float("-inf"))
    weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)  # row 0: all -inf -> nan -> 0
    y = weights @ v  # (B, T, d); y_0 = 0
    h = x + model.proj(y)  # (B, T, d): residual
    return model.unembed(model.ln(h))  # (B, T, vocab)
    ### END SOLUTION


# %% tags=["check"]
ch02.check_memory_unit_lm(memory_unit_lm)

# %% [markdown]
# The package's `MemoryUnitLM.forward`, which the training below uses, computes the same with
# `memory.softmax_attention(k, v, k, 1.0, mask)`: chapter 01's dot form
# $\mathrm{softmax}(2 \cdot 0.5\; k\cdot k')$ — a Gaussian β of 0.5 on keys of norm $s$ is exactly
# the papers' $\mathrm{softmax}(\beta\,\hat k\cdot\hat k')$. Here is its source:

# %%
print(inspect.getsource(induction.MemoryUnitLM.forward))

# %% [markdown]
# The task: each sequence repeats a block of `period` distinct random tokens (vocabulary 32, period
# drawn between 4 and 16, length 48). From position `period` on, every next token is determined by
# induction; since the period changes from sequence to sequence, no fixed positional offset works.
# We train, with the same budget (300 Adam steps of 32 fresh sequences, lr 3·10⁻³):
#
# - `MemoryUnitLM` (above): one memory unit with learned decay λ, peek mix γ and β, retrieval
#   from $s < t$. **No positional encoding.**
# - `AttentionOnlyLM` with one layer: token + learned position embeddings → one causal attention
#   layer ($W_q, W_k, W_v, W_o$) → unembedding. And, as a reference point, the same with two layers.
#
# Accuracy is measured on 1,000 held-out sequences at the positions that induction determines.
# This cell takes about 20 seconds on a laptop CPU.

# %%
test_tokens, test_periods = induction.periodic_tokens(1000, seed=999)  # (1000, 48), (1000,)
vocab = 32
makers = {
    "memory unit (1 layer)": lambda: induction.MemoryUnitLM(vocab, n_embd=64),
    "transformer, 1 layer": lambda: induction.AttentionOnlyLM(vocab, n_embd=64, block_size=48, n_layer=1),
    "transformer, 2 layers": lambda: induction.AttentionOnlyLM(vocab, n_embd=64, block_size=48, n_layer=2),
}
results = {}
for name, make in makers.items():
    torch.manual_seed(0)
    model = make()
    start = time.perf_counter()
    losses = induction.train_lm(model, steps=300, batch=32, lr=3e-3, seed=0)
    acc = induction.induction_accuracy(model, test_tokens, test_periods)
    n_params = sum(p.numel() for p in model.parameters())
    results[name] = {"losses": losses, "accuracy": acc, "params": n_params}
    print(f"{name:>22}: {n_params:6d} parameters, final loss {np.mean(losses[-20:]):.3f}, "
          f"held-out induction accuracy {acc:.3f}  ({time.perf_counter() - start:.1f} s)")

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.4))
for name, r in results.items():
    ax1.plot(np.convolve(r["losses"], np.ones(10) / 10, mode="valid"), label=name)
ax1.set(xlabel="training step", ylabel="cross-entropy (10-step mean)", title="training")
ax1.legend(fontsize=8)
ax2.bar(range(3), [r["accuracy"] for r in results.values()],
        color=["tab:blue", "tab:orange", "tab:green"])
ax2.axhline(1 / vocab, c="gray", ls=":", label="chance 1/32")
ax2.set(xticks=range(3),
        xticklabels=["memory unit\n1 layer", "transformer\n1 layer", "transformer\n2 layers"],
        ylabel="held-out accuracy", ylim=(0, 1.05), title="induction positions")
ax2.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %%
acc_unit = results["memory unit (1 layer)"]["accuracy"]
acc_t1 = results["transformer, 1 layer"]["accuracy"]
acc_t2 = results["transformer, 2 layers"]["accuracy"]
print(f"held-out accuracy: memory unit {acc_unit:.3f}, 1-layer transformer {acc_t1:.3f}, "
      f"2-layer transformer {acc_t2:.3f}")
assert acc_unit > 0.95, "one memory unit should solve induction"
assert acc_t1 < 0.6, "a one-layer attention-only transformer should not"
assert acc_unit > acc_t1 + 0.3

# %% [markdown]
# Reading the numbers: the single memory unit predicts the induced tokens almost perfectly,
# without any positional encoding; the one-layer transformer, with its position embeddings and
# *more* parameters, stays far below, though above chance (what it learns instead we did not
# analyse); given a second layer, the transformer solves the task too. (The final losses stay well
# above 0: they include the first block's positions, whose tokens cannot be predicted.) The
# difference is not capacity but structure: a one-layer transformer's
# key at position s knows only token s, while the memory unit's value at s already holds token
# s+1.
#
# ## Summary
#
# - The elementary memory unit stores $(k_t, v_t)$ with keys from the past
#   ($\bar k_t = \tilde k_t + \lambda\bar k_{t-1}$, normalised) and values peeking one step ahead
#   ($v_t = \gamma x_t + (1-\gamma)x_{t+1}$).
# - It retrieves from pairs $s < t$ only, and position 0 answers exactly 0. A "no peeking" test —
#   change the future, check the past — catches leaks.
# - (Going further) The leaky average can be computed by the recursion, a $T\times T$ matrix, or an
#   $O(T)$ scan; all agree, and a $(1-\lambda)$ factor vanishes in the normalisation.
# - On a periodic signal the unit's error drops by more than an order of magnitude once the memory
#   holds one period; where the signal takes the same value going up and down, only leaky keys
#   predict well.
# - One memory unit is an induction head (you wrote its forward pass): it solves a held-out
#   induction task that a one-layer attention-only transformer trained with the same budget does
#   not.
#
# ## Recap questions
#
# 1. Why does the memory at position $t$ hold the pairs $s < t$ and not $s \le t$? What would the
#    error look like over the first period with $s \le t$?
# 2. The text says a stored value $v_s$ holds an input of index $s + 1 \le t$. Is that a statement
#    about the values of the inputs or about their positions?
# 3. What does the decay λ buy on a periodic signal that a key of $x_t$ alone cannot do?
# 4. To test a predictor for peeking at position $t$, which inputs do you change and which
#    predictions do you compare?
# 5. In `MemoryUnitLM` the scores are $k_t\cdot k_s$. Why no factor 2 (as in chapter 01's
#    $\mathrm{softmax}(2\beta\,k\cdot k_i)$) and no $1/\sqrt d$?
#
# <details><summary>Answers</summary>
#
# 1. Its own value $v_t$ contains $x_{t+1}$, the input it must predict: with $s \le t$ it copies
#    the answer, and the error is near 0 from the first step, before anything was learned
#    (section 4 measures it).
# 2. About positions (indices): every stored pair was built from inputs $x_0 \dots x_t$, whatever
#    their sizes.
# 3. A leaky key also remembers the last few inputs, so it tells "going up" from "going down"
#    through the same value; the λ = 0 key averages the two directions' next values (section 7).
# 4. Change every input after $t$ ($x_{t+1} \dots x_{T-1}$), never $x_t$, and compare the
#    predictions at positions $0 \dots t$, $t$ included.
# 5. The keys carry the learned scale $s$, so $k_t\cdot k_s = s^2\,\hat k_t\cdot\hat k_s$: $s^2$ is the
#    papers' β (twice a Gaussian β) and it replaces the transformer's fixed $1/\sqrt d$.
#
# </details>
#
# ## Further reading
#
# - J. Zhang, N. Nolte, R. Sadhukhan, B. Chen, L. Bottou. *Memory Mosaics*. ICLR 2025
#   (arXiv:2405.06394) — the elementary memory unit (Figure 1), leaky keys, peeking values.
# - J. Zhang, L. Bottou. *Memory Mosaics at Scale*. NeurIPS 2025 (arXiv:2507.03285) — §2–3: the
#   key and value extractors and the one-layer induction head.
# - C. Olsson et al. *In-context Learning and Induction Heads*. Transformer Circuits Thread, 2022.
# - A. Bietti, V. Cabannes, D. Bouchacourt, H. Jégou, L. Bottou. *Birth of a Transformer: A Memory
#   Viewpoint*. NeurIPS 2023 — why a transformer needs two layers for induction.
#
# Next: **03 · Three moons: predictive disentanglement.**
