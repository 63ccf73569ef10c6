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
# # 07 · In-context learning on RegBench-mini
#
# Chapter 06 read in-context learning off the loss of two story models. Stories mix many skills,
# so this chapter measures the same ability where nothing else can help: on RegBench (Akyürek
# et al., 2024). Each task there is a small formal language the model has never seen. The model
# reads a few strings of the language and must predict what may come next. The Memory Mosaics
# paper reports that a mosaic trained on only 100 such languages predicts a valid next symbol
# about 92 % of the time on new ones, against about 52 % for a transformer of the same size. We
# build a CPU-sized version of the benchmark, score models on it, show *why* a memory unit can
# learn a language in context, and read our sweep beside the paper's figure.
#
# **Prerequisites.** Chapter 02 (the memory unit: keys from the past, values that peek one step
# ahead, retrieval at a bandwidth β), chapter 05 (training a language model, the learning-rate
# choice on validation) and chapter 06 (in-context learning as doing better from what the
# context shows). From computer science: a finite automaton (states and labelled arrows; the
# chapter recalls what it needs). From probability: a distribution over a finite set.
#
# **By the end of this chapter you will be able to**
#
# - say what RegBench asks: languages from random automata, never the same in training and test,
#   learned from the strings in the context alone;
# - compute the *reference distribution* (what a perfect in-context learner would predict)
#   yourself, and read the two scores, accuracy and TVD;
# - build the in-context bigram, and show that one memory unit, with the current symbol as its
#   key and the next as its value, is that bigram at a large β and the unigram at β = 0;
# - read a sweep of a mosaic, a GPT and an LSTM over the number of training languages, next to
#   in-context n-gram baselines and the paper's numbers, and say what a fair tuning and the
#   paper's checkpoint change at N = 100.
#
# Time: about an hour and a quarter with the exercises. Nothing is trained here: the notebook
# loads models and results the package ships (the commands that made them are given) and runs in
# well under a minute. The last cell prints how long your run took.

# %%
import time

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch

from mosaics_edu.course import tuning
from mosaics_edu.course.checks import ch07
from mosaics_edu.course.regbench import (
    CPU_SIZES,
    PAPER_NUMBERS,
    PAPER_SIZES,
    SEP,
    SYMBOLS,
    TRAINING_SIZES,
    Automaton,
    InContextNGram,
    MemoryBigram,
    Sample,
    draw_raw_table,
    draw_sample,
    draw_samples,
    evaluate,
    load_factors,
    load_shipped_model,
    load_sweep,
    load_tuning,
    make_batch,
    minimise,
    reference_distribution,
    shipped_result,
    sweep_table,
    test_automata,
)
from mosaics_edu.course.regbench.draw import draw_automaton
from mosaics_edu.course.regbench.metrics import score_probabilities
from mosaics_edu.course.regbench.view import draw_prediction_view, prediction_view
from mosaics_edu.course.widgets import defaults, interactive_figure

torch.set_num_threads(1)
_ = torch.manual_seed(0)
_notebook_start = time.perf_counter()  # the last cell prints the wall time of the whole run

# %% [markdown]
# ## 1 · A language from a random automaton
#
# A RegBench language is given by a *deterministic finite automaton* (DFA): a few states, and
# arrows between them labelled with symbols. A string belongs to the language if you can read it
# by following arrows from the start state 0. Every state accepts, and a missing arrow means
# "not in the language". The benchmark draws the automaton at random:
#
# - 4 to 12 states;
# - an alphabet of 4 to 18 symbols out of `a` … `r`;
# - 1 to 3 outgoing arrows per state, with distinct symbols, to distinct states, never to the
#   state itself.
#
# Then it *minimises* the automaton: states that allow exactly the same continuations are merged,
# and states that cannot be reached are dropped. The minimal automaton of a language is unique up
# to the numbering of its states, so numbering the states in breadth-first order gives a
# canonical form. The package uses that form to keep every test language out of every training
# set.

# %%
rng = np.random.default_rng(3)
raw, alphabet = draw_raw_table(rng)
minimal, _ = minimise(raw)
print(f"drawn: {len(raw)} states, alphabet {''.join(SYMBOLS[a - 1] for a in alphabet)!r}")
print(f"after minimisation: {len(minimal)} states")
fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
draw_automaton(Automaton([{SYMBOLS[a - 1]: t for a, t in row.items()} for row in raw]), axes[0],
               title=f"as drawn ({len(raw)} states)")
draw_automaton(Automaton(minimal), axes[1], title=f"minimised ({len(minimal)} states)")
plt.tight_layout()
plt.show()
assert len(minimal) <= len(raw)

# %% [markdown]
# RegBench reads the automaton as a *probabilistic* one: a string is a random walk from state 0,
# and in each state every outgoing symbol is equally likely. There is no stop probability: the
# length of each string is drawn first.

# %% [markdown] tags=["going-further"]
# > **Going further (optional).** The package samples strings for you (the cells below use it);
# > write the sampler yourself if you want to own this step.
#
# **Exercise 7.1 — `sample_string`** (★, 10 minutes). Return a list of `length` symbol ids: start
# in state 0, pick one of the state's outgoing symbols uniformly at random with `rng` (for
# example `syms[rng.integers(len(syms))]`), follow its arrow, repeat. `automaton.out_symbols(state)`
# gives the sorted ids of the outgoing symbols and `automaton.step(state, symbol)` the next state.
# The check tests that your strings can be read by the automaton, have the right length, depend
# on `rng` alone, and that every outgoing symbol comes up equally often. `length` $\ge 1$; a state
# may have a single way out (then there is nothing to choose, but the symbol still counts). Return
# a list of Python ints.

# %% [markdown] tags=["hints", "going-further"]
# <details><summary><b>Hint 1</b> (a nudge)</summary>
#
# A loop of `length` steps with a `state` variable that starts at 0: in each step choose one of
# the symbols leaving `state`, record it, and move `state` along its arrow.
# </details>
#
# <details><summary><b>Hint 2</b> (the approach)</summary>
#
# `syms = automaton.out_symbols(state)`; `symbol = syms[int(rng.integers(len(syms)))]` (all of
# them equally likely: the upper bound is `len(syms)`); append it; `state =
# automaton.step(state, symbol)`. Draw every random number from `rng`, never from `np.random`.
# </details>
#
# <details><summary><b>Hint 3</b> (the key line)</summary>
#
# ```python
# state = automaton.step(state, symbol)  # follow the arrow of the symbol just drawn
# ```
# </details>

# %% tags=["exercise", "going-further"]
def sample_string(automaton: Automaton, length: int, rng: np.random.Generator) -> list[int]:
    """A uniform random walk of ``length`` symbols from state 0 (symbol ids 1..18)."""
    ### BEGIN SOLUTION
    out, state = [], 0
    for _ in range(length):
        syms = automaton.out_symbols(state)
        symbol = syms[int(rng.integers(len(syms)))]
        out.append(symbol)
        state = automaton.step(state, symbol)
    return out
    ### END SOLUTION


# %% tags=["check", "going-further"]
ch07.check_sample_string(sample_string)

# %% [markdown]
# A training or test example, a *sample*, is several strings of one language joined
# by the separator `|`. The benchmark's samples have 10–19 strings of 1–49 symbols. That is too
# long to train on a laptop CPU in a course's time, so RegBench-mini keeps the automata exactly
# and shrinks the samples to 5–10 strings of 1–20 symbols. Here are the first three strings of a
# sample, and the lengths of both kinds, measured on 300 samples:

# %%
automaton = test_automata()[0]
sample = draw_sample(automaton, np.random.default_rng(0))
print(f"test automaton 0: {automaton}")
print("a sample's first strings:", " | ".join(sample.strings[:3]), "| …")
lengths = {}
for name, sizes in (("RegBench-mini (CPU)", CPU_SIZES), ("RegBench (paper)", PAPER_SIZES)):
    r = np.random.default_rng(1)
    lengths[name] = np.array([len(draw_sample(automaton, r, sizes).tokens) for _ in range(300)])
    print(f"{name:>20}: {lengths[name].mean():5.0f} tokens per sample on average, "
          f"at most {sizes.max_tokens}")
assert lengths["RegBench (paper)"].mean() > 3 * lengths["RegBench-mini (CPU)"].mean()

# %% [markdown]
# The model never sees the automaton, only samples. Training shows it one sample each from N
# different automata, over and over. Testing uses 500 other automata, so no test language was
# ever trained on: the only way to predict well is to work the language out from the strings
# already read in the sample. That is in-context learning.
#
# ## 2 · What a perfect in-context learner would predict, and two scores
#
# After reading part of a string, the next symbol is drawn uniformly among the outgoing symbols
# of the state reached. That uniform distribution is the **reference distribution**: the best any
# model can predict, if it has fully worked out the automaton. At input position $t$ of a sample:
#
# - run the automaton over the current string, up to and including token $t$; a `|` resets it to
#   state 0;
# - the reference $r_t$ is uniform over the outgoing symbols of the state reached. The columns of
#   the separator `|` and of the pad `.` are 0 in every row, even at the end of a string, where the
#   next token really is `|`. (Models are never trained to predict `|`: its targets are masked.)
#
# There is one row per input position, every token but the last one.
#
# **Exercise 7.2 — `reference_rows`** (★★, 15 minutes). Return the reference distribution of a
# sample as an array of shape (L − 1, 20), where L = `len(sample.tokens)` and 20 is the vocabulary
# (`.` = 0, `a` … `r` = 1 … 18, `|` = 19 = `SEP`). Use `sample.automaton.step` and
# `.out_symbols`. A sample has $L \ge 2$ tokens, holds one string or several joined by `|`, and
# neither starts nor ends with `|`; the row of a `|` token is the reference at the start of the
# next string (state 0). Every row sums to 1.

# %% [markdown] tags=["hints"]
# <details><summary><b>Hint 1</b> (a nudge)</summary>
#
# Read the tokens one by one with a `state` variable: row $t$ is about what may follow tokens
# $0 \dots t$, so token $t$ is read before row $t$ is written.
# </details>
#
# <details><summary><b>Hint 2</b> (the approach)</summary>
#
# For `t in range(L - 1)`: `state = 0` if token $t$ is `SEP`, else `automaton.step(state, token)`;
# then put `1 / len(syms)` in the columns `syms = automaton.out_symbols(state)` of row $t$.
# </details>
#
# <details><summary><b>Hint 3</b> (the key line)</summary>
#
# ```python
# state = 0 if tokens[t] == SEP else sample.automaton.step(state, tokens[t])
# ```
# </details>

# %% tags=["exercise"]
def reference_rows(sample: Sample) -> np.ndarray:
    """(L-1, 20): row t is uniform over the valid next symbols after tokens[: t + 1]."""
    ### BEGIN SOLUTION
    tokens = sample.tokens
    ref = np.zeros((len(tokens) - 1, 20))
    state = 0
    for t in range(len(tokens) - 1):
        state = 0 if tokens[t] == SEP else sample.automaton.step(state, tokens[t])
        syms = list(sample.automaton.out_symbols(state))
        ref[t, syms] = 1 / len(syms)
    return ref
    ### END SOLUTION


# %% tags=["check"]
ch07.check_reference_rows(reference_rows)

# %% [markdown]
# RegBench scores a model's next-token distribution $p_t$ (a softmax over all 20 tokens) against
# $r_t$ in two ways, pooled over every position of every test sample:
#
# - **accuracy**: the share of positions whose argmax $\arg\max_v p_t(v)$ is a valid next symbol,
#   i.e. $r_t(v) > 0$. It does not have to be the symbol that actually came next: any valid one
#   counts. Predicting `|` is always wrong.
# - **TVD**, the total variation distance: $\frac12 \sum_v |p_t(v) - r_t(v)|$, averaged over
#   positions. It is 0 for a perfect learner and 1 for a model that puts all its mass on invalid
#   tokens. Accuracy only asks for the top guess; TVD also asks whether the probabilities are
#   spread equally over *all* the valid symbols.

# %% [markdown] tags=["going-further"]
# > **Going further (optional).** The package computes both scores for you (the cells below
# > use it); write them yourself if you want to own this step.
#
# **Exercise 7.3 — `accuracy_and_tvd`** (★, 10 minutes). Given `probs` and `reference`, both
# (P, 20) for P ≥ 1 positions, each row summing to 1, return `(accuracy, tvd)` as two floats.
# When several symbols share a row's top probability, the first of them (lowest id, the one
# `np.argmax` returns) is the prediction. Do not modify the arguments.

# %% [markdown] tags=["hints", "going-further"]
# <details><summary><b>Hint 1</b> (a nudge)</summary>
#
# Both scores are computed per position and then averaged over the P positions: a hit or miss
# for the accuracy, a distance for the TVD.
# </details>
#
# <details><summary><b>Hint 2</b> (the approach)</summary>
#
# Accuracy: `probs.argmax(axis=1)` gives each row's prediction; it is a hit when the reference
# gives it a probability above 0; average the hits. TVD: half the sum over the vocabulary
# (axis 1) of the absolute differences, then the mean over positions.
# </details>
#
# <details><summary><b>Hint 3</b> (the key line)</summary>
#
# ```python
# hits = reference[np.arange(len(probs)), probs.argmax(axis=1)] > 0  # (P,)
# ```
# </details>

# %% tags=["exercise", "going-further"]
def accuracy_and_tvd(probs: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """Micro-averaged (accuracy, TVD) of predictions probs against reference; both (P, V)."""
    ### BEGIN SOLUTION
    valid = reference[np.arange(len(probs)), probs.argmax(axis=1)] > 0  # (P,)
    tvd = 0.5 * np.abs(probs - reference).sum(axis=1)  # (P,)
    return float(valid.mean()), float(tvd.mean())
    ### END SOLUTION


# %% tags=["check", "going-further"]
ch07.check_accuracy_and_tvd(accuracy_and_tvd)

# %% [markdown]
# Two yardsticks need no training at all. The first is the uniform guess, which spreads its mass
# equally over the 18 symbols: it knows nothing of the language. It is not a lower bound, though:
# a model that puts its mass on symbols the language never uses scores below it. The second, the
# **in-context n-gram**, counts, in the sample read so far, which symbol followed each context of
# n − 1 symbols within a string, and predicts from those counts.
# Nothing is trained, so whatever it knows, it learned from the sample itself. A bigram that has
# seen enough of the sample knows which symbols follow which. That is exactly the automaton when
# a symbol determines the state. For an automaton where two states can be entered by the same
# symbol, the trigram does better.
#
# **Exercise 7.4 — `bigram_next`** (★★, 20 minutes). Write the in-context bigram. Given the
# token ids of a sample, return an array (L, 20) whose row t predicts token t + 1 from
# `tokens[: t + 1]`:
#
# - count pairs (context, symbol) *within* strings: the context of a string's first symbol is
#   the start of the string (use 0, the pad id, as a start marker), the context of any other
#   symbol is the symbol before it;
# - row t is the normalised counts of what followed the current context: the last symbol read,
#   or the start marker if token t is `|`. Count the pair ending at token t before predicting;
# - if that context has not been seen yet, back off to the counts of every symbol read so far;
#   if nothing has been read, predict uniformly over the 18 symbols;
# - `|` is never counted and never predicted.
#
# A context has been *seen* once at least one pair starting with it has been counted. There is one
# row per token, L in all (exercise 7.2 has L − 1): the last row predicts what would follow the
# whole sample, which no score uses but which costs nothing. Return an array `(L, 20)` whose rows
# sum to 1; do not modify `tokens`.

# %% [markdown] tags=["hints"]
# <details><summary><b>Hint 1</b> (a nudge)</summary>
#
# Keep a `(20, 20)` table of counts, `counts[context, symbol]`, and the current context; read the
# tokens one at a time, updating the table *before* writing the row for that token.
# </details>
#
# <details><summary><b>Hint 2</b> (the approach)</summary>
#
# On `|`: the context becomes 0 (the start marker), nothing is counted. On a symbol: count
# `(context, symbol)`, then the symbol becomes the context. The row is `counts[context]`
# normalised, or, if that row is empty, the column sums `counts.sum(axis=0)` normalised.
# </details>
#
# <details><summary><b>Hint 3</b> (the key line)</summary>
#
# ```python
# row = counts[prev] if counts[prev].sum() > 0 else counts.sum(axis=0)  # back off if unseen
# ```
# </details>

# %% tags=["exercise"]
def bigram_next(tokens: list[int]) -> np.ndarray:
    """(L, 20): row t = the in-context bigram's distribution of token t+1 after tokens[: t + 1]."""
    ### BEGIN SOLUTION
    counts = np.zeros((20, 20))  # counts[context, symbol]; context 0 = start of a string
    prev, rows = 0, []
    for tok in tokens:
        if tok == SEP:
            prev = 0
        else:
            counts[prev, tok] += 1
            prev = tok
        row = counts[prev] if counts[prev].sum() > 0 else counts.sum(axis=0)
        if row.sum() == 0:
            row = np.r_[0.0, np.ones(18), 0.0]
        rows.append(row / row.sum())
    return np.array(rows)
    ### END SOLUTION


# %% tags=["check"]
ch07.check_bigram(bigram_next)

# %% [markdown]
# The package's `InContextNGram(n)` does the same for any n, backing off from the longest context
# seen so far to shorter ones, and returns log-probabilities, so `evaluate` can score it like
# any model. `evaluate` scores any model on any list of automata. Here are the n-grams on the 500
# test automata (a second or two each), with the package's `reference_distribution` and the
# uniform guess on one sample as a sanity check. The benchmark's own n-grams back off another way
# (`backoff="leftover"`: a context's unused mass goes to the symbols never seen after it); we score
# both.

# %%
tests = test_automata()
ngram = {n: evaluate(InContextNGram(n), tests) for n in (1, 2, 3)}
ngram_leftover = {n: evaluate(InContextNGram(n, backoff="leftover"), tests) for n in (1, 2, 3)}
for n, s in ngram.items():
    print(f"in-context {n}-gram: {s}  | the benchmark's back-off: {ngram_leftover[n]}")
one = draw_sample(tests[1], np.random.default_rng(0))
ref = reference_distribution(one)
uniform = np.zeros_like(ref)
uniform[:, 1:19] = 1 / 18
hits_u, tvd_u = score_probabilities(torch.from_numpy(uniform), torch.from_numpy(ref))  # sums over positions
print(f"uniform over the 18 symbols, on one sample: accuracy {hits_u / len(ref):.2f} (its argmax is 'a'), "
      f"TVD {tvd_u / len(ref):.2f}")
assert ngram[1].tvd > ngram[2].tvd and ngram[2].accuracy > ngram[1].accuracy
assert abs(ngram_leftover[1].accuracy - ngram[1].accuracy) < 1e-9  # a unigram has nothing to
assert abs(ngram_leftover[1].tvd - ngram[1].tvd) < 1e-9  # back off to: the same predictor
for n in (2, 3):  # the benchmark's back-off: a little lower accuracy, a higher TVD
    assert ngram[n].accuracy - 0.02 < ngram_leftover[n].accuracy < ngram[n].accuracy
    assert ngram_leftover[n].tvd > ngram[n].tvd + 0.05
assert score_probabilities(torch.from_numpy(ref), torch.from_numpy(ref)) == (len(ref), 0.0)  # TVD 0

# %% [markdown]
# The in-context unigram only learns which symbols the language uses. The bigram and trigram
# learn which symbol may follow which, and they are far better on both scores (printed above).
# The benchmark's back-off has the same unigram and, for n = 2 and 3, a higher TVD: the mass it
# gives to unseen symbols is taken from valid ones. Below we compare with the stronger,
# longest-context lines.
# These lines are what to compare trained models with. A model at unigram level has not learned
# the language from the context. One at the 2–3-gram level has.
#
# ### Why a memory unit learns in context
#
# Chapter 02's memory unit already holds an in-context bigram. Give it the simplest features: the
# key of position $s$ is the symbol $x_s$, one-hot ($\lambda = 0$: no leaky average), and the value
# peeks at the next one, $v_s = \mathrm{onehot}(x_{s+1})$. At position $t$ it reads the pairs
# $s < t$, as chapter 02's causal retrieval does:
#
# $$\hat p_t = \sum_{s<t} \frac{e^{\beta\, k_t \cdot k_s}}{\sum_{s'<t} e^{\beta\, k_t \cdot k_{s'}}}\; v_s,
# \qquad k_t \cdot k_s = [x_s = x_t].$$
#
# Every earlier occurrence of the current symbol scores $\beta$, every other pair 0. With a large
# $\beta$ the occurrences share the weight equally, and $\hat p_t$ is the average of the symbols
# that followed them: the in-context bigram, found by retrieval rather than counting. A symbol not
# seen before matches no pair, so all pairs share the weight: the average of every next symbol so
# far, which is how the bigram backs off to the unigram. At $\beta = 0$ every row is that average.
#
# **Exercise 7.5 — `memory_bigram`** (★★, 10 minutes). `symbols` is a 1-D int array of $T \ge 1$
# ids in `[0, vocab)` (one RegBench-mini string, say), `vocab` the number of ids, `beta` $\ge 0$.
# Return a `(T, vocab)` float array whose row $t$ is $\hat p_t$ above: the prediction of
# $x_{t+1}$ from the stored pairs (key $x_s$, value $x_{s+1}$) for $s = 0 \dots t-1$. Compute the
# softmax of $\beta\, k_t \cdot k_s$ over those pairs and the weighted sum of their values; do not
# count. Row 0 (the first position) reads an empty memory: uniform, `1 / vocab` in every column.
# A symbol not seen before gets equal weights on all the stored pairs, and several matching
# pairs (ties) share the weight equally. `beta` may be 1000: subtract the largest score before
# `exp`. Do not modify `symbols`.

# %% [markdown] tags=["hints"]
# <details><summary><b>Hint 1</b> (a nudge)</summary>
#
# Row $t$ needs one score per pair $s < t$: $\beta$ where `x[s] == x[t]`, 0 elsewhere. Turn the
# scores into weights that sum to 1 and average the next symbols `x[s + 1]` with them.
# </details>
#
# <details><summary><b>Hint 2</b> (the approach)</summary>
#
# Start from `np.full((T, vocab), 1 / vocab)` (row 0 stays so). For $t \ge 1$: the scores are
# `beta * (x[:t] == x[t])`, shape `(t,)`; the values are the one-hot rows of `x[1 : t + 1]`,
# shape `(t, vocab)` (`np.eye(vocab)[...]`); row $t$ is the softmax weights times the values.
# </details>
#
# <details><summary><b>Hint 3</b> (the key line)</summary>
#
# ```python
# w = np.exp(scores - scores.max())  # shifted: no overflow at beta = 1000; then divide by w.sum()
# ```
# </details>

# %% tags=["exercise"]
def memory_bigram(symbols: np.ndarray, vocab: int, beta: float) -> np.ndarray:
    """(T, vocab): row t = sum over s < t of softmax_s(beta [x_s == x_t]) onehot(x_{s+1}); row 0 uniform."""
    ### BEGIN SOLUTION
    x = np.asarray(symbols)
    out = np.full((len(x), vocab), 1.0 / vocab)  # row 0: an empty memory
    for t in range(1, len(x)):
        scores = beta * (x[:t] == x[t])  # (t,): k_t . k_s for one-hot keys
        w = np.exp(scores - scores.max())
        w /= w.sum()
        out[t] = w @ np.eye(vocab)[x[1 : t + 1]]  # the values peek at x_{s+1}
    return out
    ### END SOLUTION


# %% tags=["check"]
ch07.check_memory_bigram(memory_bigram)

# %% [markdown]
# The package's `MemoryBigram(β)` reads whole samples this way (with its own reference, not your
# function). It puts a `|` in front of the sample, so the key `|` stands for the start of a
# string, and stores no pair whose value is `|`, which the n-grams never predict. We score it at
# three values of β on the 500 test samples, and compare its predictions, position by position,
# with the in-context 1-gram's and 2-gram's. Both return float32 log-probabilities, so "the same"
# means within `TOL` = 10⁻⁶, float32 rounding.
#
# > **Predict before you run.** At β = 1 the earlier occurrences of the current symbol weigh
# > e ≈ 2.7 times as much as any other pair. Will the unit score like the unigram, like the bigram,
# > or between them, and on which of the two scores?
#
# <details><summary>What the run showed</summary>
#
# Between them, on both scores: better than the unigram (β = 0) and worse than the bigram
# (β = 40) in accuracy and in TVD (printed and asserted below). A few matching pairs among many
# others do not outweigh them at e to 1, so the unit blends the two estimates.
# </details>

# %%
memory = {beta: evaluate(MemoryBigram(beta), tests) for beta in (0.0, 1.0, 40.0)}
for beta, s in memory.items():
    print(f"memory unit, β = {beta:g}: {s}")
test_samples = draw_samples(tests)  # the samples evaluate scores (seed 0)
x_test, _ = make_batch(test_samples)
scored = torch.arange(x_test.shape[1]) < torch.tensor([[len(s.tokens) - 1] for s in test_samples])  # (B, T)
TOL = 1e-6
for beta, n in ((40.0, 2), (0.0, 1)):
    diff = (MemoryBigram(beta)(x_test).exp() - InContextNGram(n)(x_test).exp()).abs().amax(-1)[scored].max()
    same = "the same as" if diff < TOL else "NOT the same as"
    print(f"β = {beta:g}: {same} the in-context {n}-gram at all {int(scored.sum())} positions "
          f"(within {TOL:g})")
    assert diff < TOL, f"β = {beta:g} vs the {n}-gram: {diff:.2e}"
acc, tvd = [m.accuracy for m in memory.values()], [m.tvd for m in memory.values()]
assert acc[0] < acc[1] < acc[2] and tvd[0] > tvd[1] > tvd[2], "β = 1 lies between the 1-gram and the 2-gram"

# %% [markdown]
# At β = 40 the memory unit makes the 2-gram's predictions at every scored position, and at
# β = 0 the 1-gram's; β = 1 lies between on both scores (printed above). β sets how sharply the
# memory picks out the earlier occurrences of the current symbol. Nothing was trained: a key that
# names the current symbol and a value that peeks at the next are enough for a memory unit to
# learn a bigram in context, and a trained mosaic has to find such keys and values itself.
#
# ## 3 · The sweep: a mosaic, a GPT and an LSTM, trained on N languages
#
# The package trained three models of the same size on N = 100, 500, 2 500 and 10 000 training
# automata, with one fixed sample each, and scored them on the 500 test automata:
#
# - a **mosaic** (chapter 05's `MemoryMosaicLM`);
# - a **GPT**, the transformer;
# - an **LSTM**, a recurrent control that the benchmark found to be a weak in-context learner.
#
# All three get the same recipe: the same number of AdamW steps at batch 32, warm-up then cosine,
# weight decay and clipping. A small learning-rate sweep (10⁻³, 2·10⁻³, 4·10⁻³ at N = 100) was
# applied to every model in the same way. Each model's rate is the one with the lowest
# *validation* TVD; the test set played no part in choosing. The command that made it all
# (resumable):
#
# ```bash
# python -m mosaics_edu.regbench sweep --root runs/regbench_sweep --jobs 2
# python -m mosaics_edu.regbench ship --root runs/regbench_sweep   # copies the results into the package
# ```
#
# One run alone: `python -m mosaics_edu.regbench train --model mosaic --n-automata 100 --seed 0`.

# %%
record = load_sweep()
proto = record["protocol"]
rates = record["chosen_learning_rates"]
sweep = sweep_table(record)
first = {r["config"]["model"]: r for r in record["runs"]}  # one run per model, for its size
c0 = first["gpt"]["config"]
print(f"every run: {proto['steps']} steps at batch {c0['batch_size']}, warm-up {c0['warmup']}, "
      f"weight decay {c0['weight_decay']}, clipping {c0['grad_clip']}; "
      f"{c0['n_layer']} layers, width {c0['n_embd']}, {c0['n_head']} heads")
print("parameters:", {m: r["parameters"] for m, r in first.items()})
print("learning rates chosen on validation TVD at N = 100:", rates)
print(f"runs shipped: {len(record['runs'])}; not finished when shipped: {record['missing'] or 'none'}")
sizes_ = [r["parameters"] for r in first.values()]
assert max(sizes_) / min(sizes_) < 1.01, "the three models have the same size (±1 %)"

# %% [markdown]
# The table: test accuracy and TVD of every model at every N. Where there are two seeds (N = 100
# and N = 10 000), it gives the mean ± half the spread between them.
#
# > **Predict before you run.** Trained on N = 100 languages, will any of the three models use its
# > context better than the in-context unigram, which only counts the symbols the sample has used
# > so far? How will the mosaic's accuracy move as N grows to 10 000?
#
# <details><summary>What the run showed</summary>
#
# At N = 100 none does: all three are below the unigram on both scores, having learned their
# 100 training samples by heart. With more languages the mosaic climbs: past the unigram at
# N = 500, past the bigram's accuracy at N = 2 500, and then it levels off (the table: N = 10 000
# adds less than 0.02 in accuracy). At N = 10 000 the GPT is still below the bigram on both
# scores, and the LSTM's TVD is near the unigram's. All asserted further down.
# </details>

# %%
def fmt_cell(row: dict, metric: str) -> str:
    mean, half = row["mean"][metric], (row["max"][metric] - row["min"][metric]) / 2
    return f"{mean:.3f} ± {half:.3f}" if len(row["seeds"]) > 1 else f"{mean:.3f}        "


ns = sorted({n for by_n in sweep.values() for n in by_n})
print(f"{'model':>7} {'N':>6} {'seeds':>6} | {'accuracy':>15} | {'TVD':>15}")
for model in ("mosaic", "gpt", "lstm"):
    for n, row in sweep[model].items():
        print(f"{model:>7} {n:>6} {len(row['seeds']):>6} | {fmt_cell(row, 'accuracy'):>15} | "
              f"{fmt_cell(row, 'tvd'):>15}")
for n, s in ngram.items():
    print(f"{str(n) + '-gram':>7} {'-':>6} {'-':>6} | {s.accuracy:>8.3f}        | {s.tvd:>8.3f}")

# %% [markdown]
# The weights of the N = 100, seed-0 mosaic and GPT are shipped too (in half precision). Scored
# again here on all 500 test automata, they must give the numbers of their `result.json`, up to
# the rounding of their weights to fp16:

# %%
trained = {name: load_shipped_model(name) for name in ("mosaic", "gpt")}
for name, model in trained.items():
    again, shipped = evaluate(model, tests), shipped_result(name)["test"]
    print(f"{name:>6}: now {again}; shipped: accuracy {shipped['accuracy']:.3f}, TVD {shipped['tvd']:.3f}")
    assert abs(again.accuracy - shipped["accuracy"]) < 0.01 and abs(again.tvd - shipped["tvd"]) < 0.01

# %% [markdown]
# ### The figure, beside the paper's
#
# Accuracy and TVD against N for the three models. Error bars show the spread between seeds,
# where there are two. Dotted lines are the in-context n-grams. Open markers are the paper's
# numbers for the same models (Memory Mosaics paper, RegBench figure, digitised), at the N where
# both sweeps have a point. Dash-dotted grey lines: the bigram and trigram with the benchmark's
# back-off.

# %%
colors = {"mosaic": "C0", "gpt": "C3", "lstm": "C2"}
labels = {"mosaic": "mosaic", "gpt": "GPT (transformer)", "lstm": "LSTM"}
fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
for ax, metric, col in ((axes[0], "accuracy", 0), (axes[1], "tvd", 1)):
    for model in ("mosaic", "gpt", "lstm"):
        n_ = np.array(sorted(sweep[model]))
        mean = np.array([sweep[model][n]["mean"][metric] for n in n_])
        lo = mean - np.array([sweep[model][n]["min"][metric] for n in n_])
        hi = np.array([sweep[model][n]["max"][metric] for n in n_]) - mean
        ax.errorbar(n_, mean, yerr=[lo, hi], marker="o", capsize=3, color=colors[model], label=labels[model])
        paper = {n: v[col] for n, v in PAPER_NUMBERS[model].items() if n in sweep[model]}
        ax.plot(list(paper), list(paper.values()), "o", mfc="none", ms=10, mew=1.5, color=colors[model],
                label=f"paper: {labels[model]}")
    for n, s in ngram.items():
        v = s.accuracy if metric == "accuracy" else s.tvd
        ax.axhline(v, ls=":", color="0.4", lw=1)
        ax.text(max(TRAINING_SIZES) * 1.2, v, f"{n}-gram", va="center", fontsize=8, color="0.3")
    for n in (2, 3):  # the benchmark's back-off (its unigram is the same line)
        v = ngram_leftover[n].accuracy if metric == "accuracy" else ngram_leftover[n].tvd
        ax.axhline(v, ls="-.", color="0.65", lw=1)
    ax.set_xscale("log")
    ax.set_xlim(min(TRAINING_SIZES) / 1.5, max(TRAINING_SIZES) * 2.5)
    ax.set_xticks(TRAINING_SIZES, [f"{n:,}" for n in TRAINING_SIZES])
    ax.set_xlabel("N, training automata")
    ax.set_ylabel({"accuracy": "accuracy (↑)", "tvd": "TVD (↓)"}[metric])
axes[0].legend(fontsize=7, ncol=2, loc="lower right")
axes[0].set_title("argmax is a valid next symbol")
axes[1].set_title("distance to the reference distribution")
plt.tight_layout()
plt.show()

# %% [markdown]
# Start with N = 100, the paper's headline. There, our three models score *below the in-context
# unigram* on both measures (asserted below). Trained on 100 languages, none of them uses its
# context as well as simply counting which symbols the sample has used so far. The mosaic is
# ahead of the GPT on both scores, as in the paper, but it is nowhere near the paper's 0.92. The
# differences at N = 100:

# %%
mean = {m: {n: sweep[m][n]["mean"] for n in sweep[m]} for m in sweep}
n_small = min(ns)
ours = {m: (mean[m][n_small]["accuracy"], mean[m][n_small]["tvd"]) for m in ("mosaic", "gpt", "lstm")}
print(f"N = {n_small}:  {'ours (mean over seeds)':>24} | {'paper':>14} | difference (ours - paper)")
for m in ("mosaic", "gpt", "lstm"):
    pa, pt = PAPER_NUMBERS[m][n_small]
    print(f"{labels[m]:>18}: acc {ours[m][0]:.2f}, TVD {ours[m][1]:.2f} | acc {pa:.2f}, TVD {pt:.2f} | "
          f"acc {ours[m][0] - pa:+.2f}, TVD {ours[m][1] - pt:+.2f}")
for m in ("mosaic", "gpt", "lstm"):
    assert ours[m][0] < ngram[1].accuracy and ours[m][1] > ngram[1].tvd, f"{m} is below the unigram"
assert ours["mosaic"][0] > ours["gpt"][0] and ours["mosaic"][1] < ours["gpt"][1], "mosaic ahead of GPT"
assert ours["mosaic"][0] < PAPER_NUMBERS["mosaic"][n_small][0] - 0.3, "far below the paper's mosaic"

# %% [markdown]
# With more training languages the mosaic is ahead of the GPT at every N, on both scores. Its
# accuracy passes the unigram at N = 500 and the bigram from N = 2 500 on, then levels off
# (N = 2 500 and 10 000 within 0.02). At N = 10 000 its TVD is far below the unigram's: it reads
# a new language from its context. The GPT there, same size, same training, is above the unigram
# in accuracy but below the bigram on both scores. The LSTM stays near the unigram, as the
# benchmark's does with few languages (0.42 at N = 100; with about 40 000 it reaches 0.81, and GLA
# and RetNet 0.92-0.93). In the paper the transformer's accuracy nears the mosaic's by N = 2 500
# (0.92 vs 0.94) while its TVD stays higher (0.23 vs 0.19); ours is far from either, after far
# fewer steps. All asserted below (N = 10 000: two seeds; N = 500 and 2 500: one).

# %%
n_big = max(ns)
big_mean = {m: mean[m][n_big] for m in ("mosaic", "gpt", "lstm")}
for m, v in big_mean.items():
    print(f"N = {n_big}, {labels[m]:>18}: accuracy {v['accuracy']:.3f}, TVD {v['tvd']:.3f}")
print(f"in-context 1-gram: accuracy {ngram[1].accuracy:.3f}, TVD {ngram[1].tvd:.3f}; 2-gram: accuracy "
      f"{ngram[2].accuracy:.3f}, TVD {ngram[2].tvd:.3f}")
assert n_big == 10_000
assert big_mean["mosaic"]["accuracy"] > ngram[2].accuracy, "the mosaic beats the bigram's accuracy"
assert big_mean["mosaic"]["tvd"] < ngram[1].tvd - 0.1, "far below the unigram's TVD"
assert big_mean["gpt"]["accuracy"] > ngram[1].accuracy
assert big_mean["gpt"]["accuracy"] < ngram[2].accuracy and big_mean["gpt"]["tvd"] > ngram[2].tvd
assert big_mean["mosaic"]["accuracy"] > big_mean["gpt"]["accuracy"] + 0.1
assert big_mean["mosaic"]["tvd"] < big_mean["gpt"]["tvd"] - 0.1
assert abs(big_mean["lstm"]["tvd"] - ngram[1].tvd) < 0.06, "the LSTM sits near the unigram"
for n in ns:  # the mosaic ahead of the GPT at every N, on both scores
    assert mean["mosaic"][n]["accuracy"] > mean["gpt"][n]["accuracy"], n
    assert mean["mosaic"][n]["tvd"] < mean["gpt"][n]["tvd"], n
acc_mosaic = [mean["mosaic"][n]["accuracy"] for n in ns]
assert ns == [100, 500, 2500, 10_000] and all(np.diff(acc_mosaic[:3]) > 0.1), "rises up to N = 2 500"
assert abs(acc_mosaic[3] - acc_mosaic[2]) < 0.02, "then levels off: N = 2 500 and 10 000 within 0.02"
assert mean["mosaic"][500]["accuracy"] > ngram[1].accuracy and mean["mosaic"][500]["tvd"] < ngram[1].tvd
assert mean["mosaic"][2500]["accuracy"] > ngram[2].accuracy
assert PAPER_NUMBERS["gpt"][2500][0] > 0.9 and mean["gpt"][2500]["accuracy"] < 0.6, "ours has not caught up"
# the paper's numbers quoted above (accuracy, TVD)
assert PAPER_NUMBERS["gpt"][2500] == (0.92, 0.23) and PAPER_NUMBERS["mosaic"][2500] == (0.94, 0.19)
assert PAPER_NUMBERS["lstm"][100][0] == 0.42 and PAPER_NUMBERS["lstm"][40000][0] == 0.81

# %% [markdown] tags=["going-further"]
# > **Going further (optional): why so low at N = 100?** 1,000 steps of 32 samples are 320 passes
# > over the same 100 samples: the models learn them by heart. At the end their training loss is
# > less than half their validation loss (printed, asserted). At N = 10 000 each sample is seen
# > about three times, and the two losses agree within 10 % (asserted).

# %% tags=["going-further"]
at_n = {n_small: {}, n_big: {}}  # the seed-0 run of each model at the chosen rate
for r in record["runs"]:
    c = r["config"]
    if c["n_automata"] in at_n and c["seed"] == 0 and c["lr"] == rates[c["model"]]:
        at_n[c["n_automata"]][c["model"]] = r
for n, runs in at_n.items():
    print(f"N = {n} ({proto['steps'] * 32 / n:.1f} passes over the training samples), seed 0:")
    for m in ("mosaic", "gpt", "lstm"):
        r = runs[m]
        print(f"{labels[m]:>20}: training loss over the last 50 steps {r['loss_log'][-1][1]:.2f}, "
              f"validation loss {r['validation_loss']:.2f} (nats per predicted symbol)")
for m, r in at_n[n_small].items():
    assert r["loss_log"][-1][1] < 0.5 * r["validation_loss"], f"{m} memorised its training samples"
for m, r in at_n[n_big].items():
    assert r["loss_log"][-1][1] > 0.9 * r["validation_loss"], f"{m} did not memorise at N = {n_big}"

# %% [markdown]
# ### A fair chance for both models, and the paper's checkpoint
#
# The sweep chose each rate from three values at one seed (the GPT's was the largest tried), and
# it keeps the last step where the paper keeps the best-validation checkpoint. So at N = 100 both
# models were tuned again with the same budget: rates from 10⁻³, doubling, × dropout 0 or 0.1,
# seed 0, each run scored by its best validation TVD (validated every 50 steps). While a model's
# best rate sat at an edge, both grids grew by one rate. Each model's best setting then ran with
# two more seeds. The test set played no part. The command (resumable):
#
# ```bash
# python -m mosaics_edu.regbench tune --root runs/regbench_factors --jobs 2
# ```
#
# > **Predict before you run.** Which model gains more: the GPT, whose rate sat at the edge, or
# > the mosaic? How much of the gain comes from keeping the best checkpoint instead of the last?
#
# <details><summary>What the run showed</summary>
#
# The mosaic, by far, and mostly from the rate. Tuned, it passes the in-context unigram on both
# scores at every seed, already at its last checkpoint; the best checkpoint adds a little, and
# its TVD is then better than the paper's 0.57, its accuracy still below 0.92. The GPT stays below
# the unigram, and below the paper's 0.52, with either checkpoint. So the gap between the two
# models is larger with both tuned than in the sweep. All asserted below.
# </details>

# %%
fight = load_tuning()  # every run of the fair fight, as mosaics_edu.course.tuning describes it
assert tuning.problems(fight) == [], tuning.problems(fight)  # the rules of a fair fight hold


def chosen_runs(model: str) -> list[dict]:
    """The runs of ``model``'s chosen setting, one per seed."""
    s = fight["chosen"][model]
    return sorted((r for r in fight["runs"] if r["model"] == model and r["lr"] == s["lr"]
                   and r["dropout"] == s["dropout"]), key=lambda r: r["seed"])


best, last = ({m: {metric: np.array([r[f"test_{w}"][metric] for r in chosen_runs(m)])
               for metric in ("accuracy", "tvd")} for m in ("mosaic", "gpt")} for w in ("best", "last"))
print("chosen on validation:", fight["chosen"])
print("test scores at N = 100 (tuned: mean ± standard deviation over 3 seeds; the sweep: mean of 2)")
for m in ("mosaic", "gpt"):
    for w, v in (("best", best[m]), ("last", last[m])):
        print(f"{labels[m]:>18}, tuned, {w} checkpoint: accuracy {v['accuracy'].mean():.3f} ± "
              f"{v['accuracy'].std(ddof=1):.3f}, TVD {v['tvd'].mean():.3f} ± {v['tvd'].std(ddof=1):.3f}")
    print(f"{'':>20}the sweep: accuracy {ours[m][0]:.3f}, TVD {ours[m][1]:.3f}; the paper: accuracy "
          f"{PAPER_NUMBERS[m][100][0]}, TVD {PAPER_NUMBERS[m][100][1]}")
for v in best["mosaic"], last["mosaic"]:  # the mosaic passes the unigram at every seed, the GPT never
    assert (v["accuracy"] > ngram[1].accuracy).all() and (v["tvd"] < ngram[1].tvd).all()
for v in best["gpt"], last["gpt"]:
    assert (v["accuracy"] < ngram[1].accuracy).all() and (v["tvd"] > ngram[1].tvd).all()
assert last["mosaic"]["accuracy"].min() > ours["mosaic"][0] + 0.2, "most of the gain: the rate"
assert (last["mosaic"]["accuracy"] < best["mosaic"]["accuracy"]).all(), "the best checkpoint adds"
assert (best["mosaic"]["tvd"] < PAPER_NUMBERS["mosaic"][100][1]).all()
assert (best["mosaic"]["accuracy"] < PAPER_NUMBERS["mosaic"][100][0] - 0.05).all()
assert (best["gpt"]["accuracy"] < PAPER_NUMBERS["gpt"][100][0]).all()
assert best["mosaic"]["accuracy"].min() - best["gpt"]["accuracy"].max() > ours["mosaic"][0] - ours["gpt"][0]

# %% [markdown] tags=["going-further"]
# > **Going further (optional): the grids.** Each model's validation TVD at seed 0, for every rate
# > and dropout tried, and the spread of its chosen setting over seeds. With dropout, the GPT's
# > stays within a hair of its best up to the next-to-largest rate, which the largest breaks: its
# > rate barely matters (asserted). The mosaic's falls steadily with the rate, with dropout ahead
# > at all but the largest rate, to a rate far past the sweep's grid (asserted).

# %% tags=["going-further"]
grid_lrs = sorted({r["lr"] for r in fight["runs"]})
for m in ("mosaic", "gpt"):
    print(tuning.grid_table(fight, m, "lower is better", lrs=grid_lrs, score="validation TVD"))
seed0 = {(r["model"], r["lr"], r["dropout"]): r["val"] for r in fight["runs"] if r["seed"] == 0}
gpt_row = [seed0["gpt", lr, 0.1] for lr in grid_lrs[:-1]]  # dropout 0.1, all but the largest rate
assert max(gpt_row) - min(gpt_row) < 0.015 and seed0["gpt", grid_lrs[-1], 0.1] > max(gpt_row) + 0.03
mosaic_row = [seed0["mosaic", lr, 0.1] for lr in grid_lrs]
assert mosaic_row[0] - min(mosaic_row) > 0.15, "the mosaic's validation TVD falls with the rate"
assert fight["chosen"]["mosaic"]["lr"] > 4 * max(proto["learning_rates"]), "far past the sweep's grid"
assert all(seed0["mosaic", lr, 0.1] < seed0["mosaic", lr, 0.0] for lr in grid_lrs[:-1])
hours = fight["wall_seconds"] / 3600
print(f"the whole fight: {len(fight['runs'])} runs, {hours:.1f} hours of one-thread runs")

# %% [markdown]
# Other differences remain: our models are half as wide (64 against 128), read samples a quarter
# as long (≈ 86 tokens against ≈ 374), train for far fewer steps at large N, and keep the sweep's
# rates at N ≥ 500. The box below changes one of them at a time at N = 100.

# %% [markdown] tags=["going-further"]
# > **Going further (optional): one difference at a time.** Which difference keeps our mosaic
# > from the paper's 0.92 at N = 100? Each row below starts from each model's tuned setting above
# > (its rate and dropout; both checkpoints scored on the test automata) and
# > changes one thing toward the paper's protocol: the paper's sample sizes (≈ 374 tokens a sample
# > instead of ≈ 86), width 128 with 8 heads instead of 64 with 4, or the paper's number of
# > optimiser steps (800 instead of 1,000: its 200 epochs of 4 batches). The command (resumable):
# >
# > ```bash
# > python -m mosaics_edu.regbench factors --root runs/regbench_factors --jobs 2 \
# >     --tuning mosaics_edu/assets/regbench/tuning.json
# > ```
# >
# > Two seeds (0 and 1) have run, and one difference stands out at both: **the length of the
# > samples**. With the paper's sample sizes the mosaic's accuracy reaches the paper's 0.92 (each
# > seed within 0.01 of it) and its TVD falls far below the paper's 0.57. The GPT gains a little,
# > its accuracy still below the paper's 0.52 and its TVD a little below the paper's 0.69. Longer
# > samples give each language more context to read *and* the models more tokens per step (about
# > 4.3 times as many); these runs do not tell the two apart. The paper's number of steps moves
# > neither model by 0.02. Width 128 leaves the mosaic where it was and does not help the GPT: at
# > both seeds its accuracy is lower and its TVD higher than at width 64, by much at seed 0 and by
# > little at seed 1 (at the rate tuned for width 64; it was not tuned again). In every row the
# > mosaic is ahead of the GPT on both scores, at both seeds. All asserted below.

# %% tags=["going-further"]
factors = load_factors()  # python -m mosaics_edu.regbench factors --tuning ... (see CONTRIBUTING)
assert factors["missing"] == [], f"unfinished runs: {factors['missing']}"
assert factors["chosen_learning_rates"] == {m: fight["chosen"][m]["lr"] for m in ("mosaic", "gpt")}
assert factors["dropouts"] == {m: fight["chosen"][m]["dropout"] for m in ("mosaic", "gpt")}
FACTOR_LABELS = {"baseline": "tuned, as above", "paper_sizes": "paper's sample sizes",
                 "width128": "width 128, 8 heads", "paper_steps": "paper's 800 steps"}
rows = {f: factors["factors"][f]["models"] for f in FACTOR_LABELS}
seeds = factors["protocol"]["seeds"]
for m in ("mosaic", "gpt"):  # the baseline row is the fair fight's own runs, seeds 0 and 1
    fought = [r["test_best"]["accuracy"] for r in chosen_runs(m) if r["seed"] in seeds]
    assert np.allclose(rows["baseline"][m]["best"]["accuracy"]["values"], fought)


def factor_scores(st: dict) -> str:
    """Accuracy and TVD of one row: the mean over seeds, with the range when there are several."""
    acc = st["accuracy"]
    spread = f" [{acc['min']:.2f}, {acc['max']:.2f}]" if len(seeds) > 1 else ""
    return f"acc {acc['mean']:.3f}{spread}, TVD {st['tvd']['mean']:.3f}"


print(f"test scores at N = {factors['protocol']['n_automata']}, " + (
    f"seed {seeds[0]}" if len(seeds) == 1 else f"mean over seeds {seeds} (the range in brackets)"))
for m in ("mosaic", "gpt"):
    print(f"{labels[m]:>18} | {'':>20} | {'best-validation checkpoint':^34} | {'last checkpoint':^34}")
    for f, name in FACTOR_LABELS.items():
        best_cell, last_cell = (factor_scores(rows[f][m][w]) for w in ("best", "last"))
        print(f"{'':>18} | {name:>20} | {best_cell:^34} | {last_cell:^34}")
    pa, pt = PAPER_NUMBERS[m][100]
    print(f"{'':>18} | {'the paper':>20} | acc {pa:.2f}, TVD {pt:.2f}")

fig, axes = plt.subplots(1, 2, figsize=(12, 4))
x = np.arange(len(FACTOR_LABELS))
for ax, metric, col in ((axes[0], "accuracy", 0), (axes[1], "tvd", 1)):
    for j, m in enumerate(("mosaic", "gpt")):
        for which, marker, fill in (("best", "o", colors[m]), ("last", "s", "none")):
            st = [rows[f][m][which][metric] for f in FACTOR_LABELS]
            avg = np.array([v["mean"] for v in st])
            err = [avg - [v["min"] for v in st], [v["max"] for v in st] - avg]
            ax.errorbar(x + (j - 0.5) * 0.3 + (0.06 if which == "last" else -0.06), avg, yerr=err,
                        fmt=marker, mfc=fill, color=colors[m], capsize=3, ls="none",
                        label=f"{labels[m]}, {which} checkpoint")
        ax.axhline(PAPER_NUMBERS[m][100][col], color=colors[m], ls="--", lw=1)
    unigram = ngram[1].accuracy if metric == "accuracy" else ngram[1].tvd
    ax.axhline(unigram, color="0.4", ls=":", lw=1)
    ax.set_xticks(x, [FACTOR_LABELS[f].replace(", ", ",\n") for f in FACTOR_LABELS], fontsize=8)
    ax.set_ylabel({"accuracy": "test accuracy (↑)", "tvd": "test TVD (↓)"}[metric])
axes[0].set_title("dashed: the paper's N = 100; dotted: in-context unigram", fontsize=9)
fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=4, fontsize=8)
plt.tight_layout(rect=(0, 0.08, 1, 1))
plt.show()

assert seeds == [0, 1], "the text above speaks of seeds 0 and 1"
at_best = {f: {m: rows[f][m]["best"] for m in ("mosaic", "gpt")} for f in FACTOR_LABELS}
base, sizes_row = at_best["baseline"], at_best["paper_sizes"]
wide, steps_row = at_best["width128"], at_best["paper_steps"]
paper = {m: PAPER_NUMBERS[m][100] for m in ("mosaic", "gpt")}
assert all(abs(a - paper["mosaic"][0]) < 0.01 for a in sizes_row["mosaic"]["accuracy"]["values"])
assert sizes_row["mosaic"]["tvd"]["max"] < paper["mosaic"][1] - 0.1  # far below 0.57
gain = sizes_row["gpt"]["accuracy"]["mean"] - base["gpt"]["accuracy"]["mean"]
assert 0 < gain < 0.05 and sizes_row["gpt"]["accuracy"]["max"] < paper["gpt"][0]
assert 0 < paper["gpt"][1] - sizes_row["gpt"]["tvd"]["max"] < 0.05  # a little below 0.69
for m in ("mosaic", "gpt"):
    assert abs(steps_row[m]["accuracy"]["mean"] - base[m]["accuracy"]["mean"]) < 0.02
assert all(abs(wide["mosaic"][k]["mean"] - base["mosaic"][k]["mean"]) < 0.02 for k in ("accuracy", "tvd"))
for k, worse in (("accuracy", np.less), ("tvd", np.greater)):  # the GPT at width 128, seed by seed
    assert all(worse(wide["gpt"][k]["values"], base["gpt"][k]["values"]))
drop = np.subtract(base["gpt"]["accuracy"]["values"], wide["gpt"]["accuracy"]["values"])
assert drop[0] > 0.05 and drop[1] < 0.02  # by much at seed 0, by little at seed 1
for row in at_best.values():  # the mosaic ahead of the GPT in every row, on both scores
    assert row["mosaic"]["accuracy"]["min"] > row["gpt"]["accuracy"]["max"]
    assert row["mosaic"]["tvd"]["max"] < row["gpt"]["tvd"]["min"]

# %% [markdown]
# ## 4 · Token by token
#
# **Widget.** Pick a test automaton and a stretch of its sample. The left side draws the
# automaton. On the right, each column is an input position, labelled with the token read there.
# The colours show the probability each trained model (seed 0) gives to every symbol next. Orange
# dots mark the valid next symbols, the reference. A box marks each model's top guess: green if it
# is valid, red if not. The row "other" collects the mass on `|`, `.` and the symbols this
# automaton does not use. The menu "trained on" switches between the models trained on N = 100
# languages, which memorised them, and the same two models trained on N = 10,000 languages, which
# the sweep of §3 showed reading a new language from its context.

# %%
trained_big = {name: load_shipped_model(name, n_automata=10_000) for name in ("mosaic", "gpt")}
controls = {
    "models": widgets.Dropdown(options=[("N = 100", trained), ("N = 10,000", trained_big)], value=trained,
                               description="trained on"),
    "automata": tests,
    "index": widgets.IntSlider(value=0, min=0, max=49, description="automaton"),
    "start": widgets.IntSlider(value=0, min=0, max=150, step=10, description="start"),
    "width": 30,
}
interactive_figure(prediction_view, draw_prediction_view, controls, figsize=(13, 5.5))

# %% [markdown]
# At the defaults (test automaton 0, its first 30 positions), the cell below counts each model's
# valid top guesses in the window, and gives their scores over the whole sample, for both choices
# of the menu. At either N the mosaic's top guess is valid more often than the GPT's, both in the
# window and over the sample, and both models do better at N = 10,000 (asserted). Look at where the
# boxes are red at N = 100. Some guesses are symbols this language never uses, in the row "other":
# a sign of a model recalling its training languages instead of reading this one. Then switch to
# N = 10,000, and move the sliders to other automata and other stretches of their samples.

# %%
views = {label: prediction_view(**(defaults(controls) | {"models": models}))
         for label, models in (("N = 100", trained), ("N = 10,000", trained_big))}
print("sample:", views["N = 100"]["text"][:90], "…")
hits = {}
for label, view in views.items():
    hits[label] = {m: int(v.sum()) for m, v in view["valid_choice"].items()}
    scores = {m: f"accuracy {view['accuracy'][m]:.2f}, TVD {view['tvd'][m]:.2f}" for m in trained}
    print(f"{label:>10}: valid top guesses in the {len(view['positions'])} positions shown {hits[label]}; "
          f"whole sample {scores}")
    assert np.allclose(view["reference"].sum(axis=1), 1)
    assert hits[label]["mosaic"] > hits[label]["gpt"]
    assert view["accuracy"]["mosaic"] > view["accuracy"]["gpt"]
for m in trained:
    assert views["N = 10,000"]["accuracy"][m] > views["N = 100"]["accuracy"][m]
    assert hits["N = 10,000"][m] > hits["N = 100"][m]

# %% [markdown]
# ## Summary
#
# - RegBench's languages come from random automata, minimised so that each language has one
#   canonical form. Training and test languages never overlap, so a good test score can only
#   come from learning in context.
# - The reference distribution is uniform over the valid next symbols. Accuracy asks whether
#   the top guess is valid; TVD asks whether the whole distribution matches the reference.
# - With no training at all, the in-context bigram and trigram already score well on both (§2).
#   They are the yardstick for a learner. One memory unit with one-hot keys and values that peek
#   at the next symbol is the in-context bigram at a large β and the unigram at β = 0 (§2).
# - In the sweep, at N = 100, all three models stay below the in-context unigram: they memorise
#   their training samples. With more languages the mosaic pulls ahead (past the bigram's
#   accuracy from N = 2 500), the GPT stays below the bigram and the LSTM near the unigram.
# - Tuned with the same budget at N = 100 and kept at the best-validation checkpoint, the mosaic
#   passes the unigram on both scores, with a TVD below the paper's; the GPT stays below it.
#
# ## Recap questions
#
# 1. Why must the test automata differ from every training automaton, and how does the package
#    make sure they do?
#
# <details><summary>Answer</summary>
#
# If a test language had been trained on, a model could predict it from memory, and the score
# would not measure in-context learning. The package compares *canonical forms*: minimal
# automata with their states numbered breadth-first. Two automata have the same canonical form
# exactly when they define the same language.
# </details>
#
# 2. At the last symbol of a string the next token is `|`. Why does the reference give `|` no
#    mass there, and why is that fair to the models?
#
# <details><summary>Answer</summary>
#
# String lengths are drawn in advance, so where a string ends carries no information about the
# language. The reference is the automaton's distribution over continuations. The models are
# never trained to predict `|` (its targets are masked), so no model is penalised for an event
# it could not learn.
# </details>
#
# 3. A model puts probability 0.6 on one valid symbol and 0.4 on another, in a state with three
#    valid symbols. What are its accuracy and TVD at that position?
#
# <details><summary>Answer</summary>
#
# Accuracy 1: the argmax is valid. TVD ½(|0.6 − ⅓| + |0.4 − ⅓| + |0 − ⅓|) = ½ · (0.267 + 0.067
# + 0.333) = ⅓. Accuracy only rewards the top guess. TVD also asks for the right spread.
# </details>
#
# 4. Why do we compare models with the in-context n-grams and not only with each other?
#
# <details><summary>Answer</summary>
#
# The n-grams say what learning from the context alone can reach, with no training. A trained
# model at the unigram level has not learned to use the context. One at the 2–3-gram level has.
# Two models can differ from each other and both still be below the bigram.
# </details>
#
# ## Further reading
#
# - Akyürek, Wang, Kim, Andreas, *In-Context Language Learning: Architectures and Algorithms*
#   (ICML 2024, arXiv:2401.12973): RegBench, the n-gram baselines, and "n-gram heads" in
#   transformers.
# - Zhang, Nolte, Sadhukhan, Chen, Bottou, *Memory Mosaics*, ICLR 2025 (arXiv:2405.06394): the
#   RegBench figure this chapter compares with.
# - Hopcroft, Motwani, Ullman, *Introduction to Automata Theory, Languages, and Computation*,
#   chapter 4: DFA minimisation (the package's `minimise` uses Moore's partition refinement).
#
# Next: **08 · Looking inside a trained mosaic** — what each head of the two story models retrieves.
# %%
print(f"this notebook ran in {time.perf_counter() - _notebook_start:.0f} s")
