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
# # 06 · In-context learning on stories
#
# The papers' strongest claim is that Memory Mosaics learn *in context* better than transformers
# of the same size. In-context learning means doing better on a sequence because of what came
# earlier in that same sequence, with no change to the weights. This chapter reads it off the
# loss, position by position: a model that learns in context pays less for a token the further
# into its context window the token is. The first Memory Mosaics paper finds the mosaic and the
# transformer on par on text like their training stories, and the mosaic's loss falling further
# on text unlike them. We compare two small story models of equal size, each tuned with the same
# budget, on stories like their training data and on three kinds of stories that are not, and
# we follow the names the stories repeat. Chapter 07 measures the same skill a second way, on
# small formal languages, and chapter 08 opens these two models up.
#
# **Prerequisites.** Chapter 05 (training a language model: the loss in nats per token,
# validation, learning-rate tuning over seeds) and chapter 04 (the mosaic block and its GPT
# twin). From statistics: a mean, a percentile, and the idea of resampling with replacement.
#
# **By the end of this chapter you will be able to**
#
# - measure in-context learning as the loss at each position of the context, in and out of the
#   training distribution;
# - build a paired bootstrap band yourself, and say why pairing makes it narrower;
# - read a comparison over seeds and held-out sets, and say which held-out set rewards a model
#   that merely copies;
# - measure copying directly, as the probability of a name at its later mentions, and say what
#   the paper's result is and which half of it this course reproduces;
# - test a hypothesis about where copying happens by silencing heads, with the result that would
#   refute it stated before the run.
#
# Time: under an hour with the exercise. Nothing is trained here: the notebook loads the models
# and results the package ships (the commands that made them are given). The last cell prints
# how long your run took.

# %%
import json
import time

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch

from mosaics_edu.course import copying, icl, inspection, tuning
from mosaics_edu.course.checks import ch06
from mosaics_edu.course.widgets import defaults, interactive_figure
from mosaics_edu.data import generate_stories
from mosaics_edu.data.stories import generate_ood_stories

torch.set_num_threads(1)
_ = torch.manual_seed(0)
_notebook_start = time.perf_counter()  # the last cell prints the wall time of the whole run

# %% [markdown]
# ## 1 · The loss position by position, in and out of distribution
#
# A language model that learns *in context* gets better at predicting the next token the more of
# its context it has read: a name it has seen twice, a sentence pattern that keeps coming back.
# The papers measure this with the **per-position loss**: cut held-out text into windows, run the
# model once per window, and instead of averaging the cross-entropy over the whole window keep
# it at every position `t` — the loss of predicting token `t + 1` from tokens `0 … t` — averaged
# over windows. Their figure 8 shows that, for a Memory Mosaic and a transformer of the same size
# trained on the same stories, the mosaic's curve falls lower deeper into the context, and that
# the difference is largest **out of distribution**, on text unlike the training stories, where a
# model can only do well by using what its context shows it.
#
# We repeat the measurement at course scale with two models the package ships, trained with
# `python -m mosaics_edu.train` on the generated stories of chapter 05 (BPE tokens this time): a
# mosaic and a GPT with two blocks each — two blocks are what a transformer needs for an
# *induction head*, the circuit that copies what followed an earlier occurrence of the current
# token — with the same parameter count, data, steps, batch and schedule. (The mosaic's
# persistent memory gets a few more pairs than its default so that its size matches the GPT's,
# which spends parameters on a table of positions the mosaic does not have.)
#
# A comparison is only as good as its weaker model, so each model was tuned the way chapter 05
# tuned its one-block pair, with the same budget: peak learning rates on a grid of at least four,
# dropout 0 and 0.1, the grid extended until the best rate lay strictly inside it, then three
# seeds at each model's best setting, all judged on the validation stories
# (`tools/sweep_stories.py --comparison stories`; its evidence ships as `tuning.json` and is
# checked by the rules of `mosaics_edu.course.tuning`). The shipped models are each model's best setting
# at seed 0. The grid first:

# %%
fight = tuning.load(tuning.ASSETS / "stories" / "tuning.json")
assert tuning.problems(fight) == [], tuning.problems(fight)
tuned = tuning.summary(fight)  # per model: chosen setting, and mean, spread and values over seeds
lrs = sorted({r["lr"] for r in fight["runs"]})  # both models' rates: one column each, aligned
for kind in icl.STORY_MODEL_KINDS:
    print(tuning.grid_table(fight, kind, "nats per token", lrs))  # the grid at seed 0, the chosen setting
untuned = {r["model"]: r["val"] for r in fight["runs"]
           if (r["lr"], r["dropout"], r["seed"]) == (3e-3, 0.0, 0)}
tuned_gap = tuned["gpt"]["mean"] - tuned["mosaic"]["mean"]
print(f"GPT minus mosaic: {untuned['gpt'] - untuned['mosaic']:+.3f} at the shared rate 3e-3 (seed 0), "
      f"{tuned_gap:+.3f} tuned (mean over seeds); the worst mosaic seed "
      f"{max(tuned['mosaic']['values']):.3f}, the best GPT seed {min(tuned['gpt']['values']):.3f}")
print(f"the whole sweep: {len(fight['runs'])} runs, {fight['cpu_seconds'] / 3600:.1f} CPU-hours")
assert max(tuned["mosaic"]["values"]) < min(tuned["gpt"]["values"]), "the mosaic ahead at every seed"
assert all(tuned[k]["setting"]["lr"] > 3e-3 and tuned[k]["setting"]["dropout"] == 0 for k in tuned)
assert all(untuned[k] - tuned[k]["mean"] > 0.05 for k in tuned), "tuning helped both models"

# %% [markdown]
# Both models prefer a larger peak rate than the 3·10⁻³ an untuned comparison would give them
# both, and both choose no dropout at this length. Tuning lowers both validation losses by more
# than 0.05 nats, and the mosaic stays ahead on the validation stories at every seed (printed and
# asserted above). The two shipped models, loaded:

# %%
story_models = {kind: icl.load_story_model(kind)[0] for kind in icl.STORY_MODEL_KINDS}
story_tokenizer = icl.load_story_model("mosaic")[1]
BLOCK = story_models["mosaic"].config.block_size  # 256 tokens of context
story_info = {kind: icl.story_model_info(kind) for kind in icl.STORY_MODEL_KINDS}
for kind, info in story_info.items():
    print(f"{kind:6s}: {info['n_params']:,} parameters, {info['model_config']['n_layer']} blocks, "
          f"context {BLOCK} tokens, {info['step']:,} steps ({info['cpu_time_s'] / 60:.1f} CPU-minutes "
          f"on one thread); loss {info['train_loss_logged']:.3f} on training windows, "
          f"{info['val_loss_shipped']:.3f} on validation windows (nats per token)")
sizes = [info["n_params"] for info in story_info.values()]
assert abs(sizes[0] - sizes[1]) / max(sizes) < 0.01, "equal sizes, within 1 %"

# %% [markdown]
# **Held-out text, two kinds.** *In distribution*: new stories from the training generator, from
# a random stream no training run reads (`split="test"`). *Out of distribution*: stories that
# differ in two ways at once. Their names come from a held-out pool, built like the training
# names but with no name in common, so no name can have been memorised. And their structure is a
# grammar the models never saw: a question game in which one sentence frame, drawn per story,
# repeats turn after turn. Every word of it occurs in the training stories (no token is new to
# the models); the order is what is new. Here is one:

# %%
N_WINDOWS = 96  # windows per condition; each starts at the first token of a story
held_out = {
    "in distribution": generate_stories(N_WINDOWS + 4, seed=0, split="test"),
    "out of distribution": generate_ood_stories(N_WINDOWS + 4, seed=0, mode="game"),
}
print(held_out["out of distribution"][0].text)
for cond, stories in held_out.items():
    story_tokens = np.mean([len(story_tokenizer.encode(st.text)) for st in stories])
    print(f"{cond}: {story_tokens:.0f} tokens per story on average")

# %% [markdown]
# Each window holds `BLOCK + 1` tokens and starts where a story starts, so position `t` means
# "`t` tokens into a story". Stories are shorter than a window (the averages above), so the end of
# a window reads into the next story, as training windows do.
#
# `icl.per_position_loss` returns one loss per window and position. To say how sure we are of the
# average curve, `icl.bootstrap_band` resamples the windows with replacement many times and keeps
# the central 90 % of the resampled averages at each position. Both models are measured on the
# same windows, so their difference is a *paired* comparison: we bootstrap the difference itself,
# which is much tighter than comparing two separate bands.
#
# **Exercise 6.1 — `paired_band`** (★★, 15 minutes). Build that band yourself. `losses_a` and
# `losses_b` are `(N, T)` float arrays: two models' losses on the same `N` windows, position by
# position. `idx` is an `(n_boot, N)` int array of window indices, one row per bootstrap
# replicate (drawn with replacement, as `np.random.default_rng(seed).integers(0, N, (n_boot, N))`
# does; the caller draws them, so your answer is exact). `level` is in `(0, 1)`, e.g. 0.9.
# Return `(mean, lo, hi)`, three `(T,)` float arrays: `mean` is the mean over the `N` windows of
# the difference `losses_a − losses_b`; replicate `r` is the mean of the difference over the
# windows `idx[r]`; `lo` and `hi` are the `(1 − level) / 2` and `(1 + level) / 2` quantiles of
# the replicates at each position (`np.quantile`'s default). Do not modify the inputs.

# %% [markdown] tags=["hints"]
# <details><summary><b>Hint 1</b> (a nudge)</summary>
#
# Both models read the same windows, so a window that is hard for one is hard for the other. Take
# the difference first, window by window, and resample *that*: one array of shape `(N, T)`.
# </details>
#
# <details><summary><b>Hint 2</b> (the approach)</summary>
#
# `d = losses_a - losses_b`. Fancy indexing `d[idx]` has shape `(n_boot, N, T)`: replicate `r`'s
# windows. Average over the windows (axis 1) to get `(n_boot, T)` replicate means; the band is
# the spread of those means over the replicates (axis 0), not the spread of the windows.
# </details>
#
# <details><summary><b>Hint 3</b> (the key line)</summary>
#
# ```python
# lo, hi = np.quantile(reps, [(1 - level) / 2, (1 + level) / 2], axis=0)  # the central `level`
# ```
# </details>

# %% tags=["exercise"]
def paired_band(losses_a: np.ndarray, losses_b: np.ndarray, idx: np.ndarray,
                level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, lo, hi), each (T,): the mean of losses_a - losses_b over windows, and its band."""
    ### BEGIN SOLUTION
    d = losses_a - losses_b  # (N, T): the paired difference, window by window
    reps = d[idx].mean(axis=1)  # (n_boot, N, T) -> (n_boot, T): one mean per replicate
    lo, hi = np.quantile(reps, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return d.mean(axis=0), lo, hi
    ### END SOLUTION


# %% tags=["check"]
ch06.check_paired_band(paired_band)

# %% [markdown]
# The package's `icl.bootstrap_band(losses_a - losses_b, n_boot, seed=0)` draws `idx` from the
# seed and computes the same band; the table below uses it.
#
# > **Predict before you run.** Where will the mosaic's lead over the GPT be larger: on stories
# > like the training ones, or on the question game? Will the lead grow deeper into the context?
#
# <details><summary>What the run showed</summary>
#
# Out of distribution, at every range of positions. The mosaic is ahead at every range in both
# conditions, with bands above zero, but out of distribution its lead is larger at every range and
# grows deeper into the context. On the question game both losses fall by more than half a nat
# along the window: both models learn in context. All of this is asserted a few cells below; the
# table prints the gaps.
# </details>

# %%
story_losses = {}  # (kind, condition) -> (N_WINDOWS, BLOCK) losses in nats
for cond, stories in held_out.items():
    windows = icl.story_windows(story_tokenizer, stories, BLOCK, n_windows=N_WINDOWS)  # (N, BLOCK+1)
    for kind, model in story_models.items():
        story_losses[kind, cond] = icl.per_position_loss(model, windows)
story_bands = {key: icl.bootstrap_band(value, n_boot=400) for key, value in story_losses.items()}

EDGES = [0, 8, 32, 64, 128, 192, 256]  # ranges of positions for the table


def binned(values: np.ndarray) -> np.ndarray:
    """(N, BLOCK) per-position values -> (N, bins): the mean over each range of positions."""
    return np.stack([values[:, a:b].mean(axis=1) for a, b in zip(EDGES[:-1], EDGES[1:], strict=True)], axis=1)


story_table, story_gap = {}, {}
for cond in held_out:
    print(f"{cond}: mean loss (nats per token) over positions")
    story_ranges = zip(EDGES[:-1], EDGES[1:], strict=True)
    print("  positions   " + "".join(f"{f'{a}-{b - 1}':>13s}" for a, b in story_ranges))
    for kind in story_models:
        story_table[kind, cond] = binned(story_losses[kind, cond]).mean(axis=0)
        print(f"  {kind:10s}" + "".join(f"{v:13.3f}" for v in story_table[kind, cond]))
    gap = icl.bootstrap_band(binned(story_losses["gpt", cond] - story_losses["mosaic", cond]), n_boot=400)
    story_gap[cond] = gap
    cells = zip(gap.mean, gap.lo, gap.hi, strict=True)
    print("  gpt-mosaic" + "".join(f"  {m:+.3f}±{(h - l) / 2:.3f}" for m, l, h in cells))

# %% [markdown]
# The last row of each table is the GPT's loss minus the mosaic's (positive: the mosaic predicts
# better), with half the width of its 90 % bootstrap band. The figure draws the same curves
# position by position, lightly smoothed for the eye (a moving average over 9 positions; the
# numbers above are not smoothed), with their bands.

# %%
def smooth_curve(y: np.ndarray, width: int = 9) -> np.ndarray:
    """Centred moving average (for display only)."""
    kernel = np.ones(width) / width
    return np.convolve(y, kernel, mode="same") / np.convolve(np.ones_like(y), kernel, mode="same")


story_colors = {"mosaic": "C0", "gpt": "C3"}
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
positions = np.arange(BLOCK)
for ax, cond in zip(axes, held_out, strict=True):
    for kind, color in story_colors.items():
        band = story_bands[kind, cond]
        ax.fill_between(positions, smooth_curve(band.lo), smooth_curve(band.hi), color=color, alpha=0.25)
        ax.plot(positions, smooth_curve(band.mean), color=color, label=kind)
    ax.set(title=cond, xlabel="position in the window (tokens from the story's start)",
           ylabel="loss (nats per token)")
    ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# **Where do the curves cross?** `icl.curve_crossings` lists the positions where the order of two
# curves changes, after smoothing them over 16 positions so that a wiggle of one position does not
# count. The last crossing is the position from which one model stays ahead to the end.

# %%
crossings = {}
for cond in held_out:
    gpt_curve, mosaic_curve = story_bands["gpt", cond].mean, story_bands["mosaic", cond].mean
    crossings[cond] = icl.curve_crossings(gpt_curve, mosaic_curve, smooth=16)
    ahead = "mosaic" if gpt_curve[-16:].mean() > mosaic_curve[-16:].mean() else "gpt"
    where = f"at positions {crossings[cond]}" if crossings[cond] else "nowhere"
    since = f"from position {crossings[cond][-1]}" if crossings[cond] else "at every position"
    print(f"{cond}: the smoothed curves cross {where}; the {ahead} is ahead {since} on")

# %% [markdown]
# What the table, the figure and the crossings show, checked by the assertions below:
#
# - **Both models learn in context out of distribution.** On the question game, both losses fall
#   by more than half a nat from the first turns (positions 8-31) to the later ones (128-191): the
#   frame they have never seen gets cheaper once it has been read a few times.
# - **Out of distribution the mosaic is ahead at every range of positions, and its lead grows
#   deeper into the context**: the gap in the later ranges is larger than in the first, with bands
#   that do not overlap zero.
# - **In distribution the mosaic is ahead too, by less**: the band of the gap is above zero in
#   every range of positions. Position by position the smoothed curves still cross early in the
#   window, where the two are close; the last crossing printed above is where the mosaic takes the
#   lead for good.
# - **The gap is larger out of distribution than in distribution**, in every range of positions.
#
# The paper (v1, Fig. 8) finds the two models **on par in distribution**, and the mosaic ahead
# **out of distribution** (on Simple English Wikipedia) once a few dozen tokens are in the context.
# We reproduce the second half. The first we do not: in distribution our mosaic is ahead already,
# with both models tuned.
#
# In the figure the two models' bands overlap in places out of distribution: each band carries the spread
# between windows, which is shared by both models; the paired bands of the table do not.
# The in-distribution loss rises again towards the end of the window: that is where the next
# story begins, with new names the model cannot know yet. (The tall peak near the start is a
# name too, the hero's first mention, as the section on names below checks.)

# %%
gap_in, gap_out = story_gap["in distribution"], story_gap["out of distribution"]
for kind in story_models:
    curve = story_table[kind, "out of distribution"]
    assert curve[4] < curve[1] - 0.5, f"{kind}: out of distribution, the loss falls along the window"
assert np.all(gap_out.lo > 0), "out of distribution, the mosaic is ahead at every range (band above 0)"
assert gap_out.mean[4:].min() > gap_out.mean[0] + 0.2, "its lead grows deeper into the context"
assert np.all(gap_in.lo > 0), "in distribution, the mosaic is ahead at every range (band above 0)"
assert np.all(gap_out.mean > gap_in.mean), "the gap is larger out of distribution, at every range"
assert crossings["in distribution"] and not crossings["out of distribution"]
print("asserted: in-context learning out of distribution for both; the mosaic ahead in both "
      "conditions, its lead growing with position and larger out of distribution")

# %% [markdown]
# ## 2 · Three seeds, four held-out sets
#
# Everything above is one run of each model, seed 0. Is the order a matter of the seed, or of
# the question game? The sweep trained each chosen setting with three seeds; `tools/score_story_runs.py`
# scored all six runs (weights rounded to float16, as shipped) on four held-out sets of 96
# windows and ships the result. Two sets are new here: **held-out names** are training-grammar
# stories whose names come from the held-out pool, and the **walk** is another grammar the models
# never saw, written only with training words, in which each name is said once and no sentence
# frame comes back. The question game repeats its frame turn after turn, so it rewards copying by
# construction; the walk does not. We measure how much each set rewards copying with a model
# that knows no language at all: `icl.copyable_fraction` predicts the token that followed the
# latest earlier occurrence of the last two tokens in the same window, and counts how often that
# is right.

# %%
seeds = json.loads((tuning.ASSETS / "stories" / "seeds.json").read_text())
set_stories = {
    "in distribution": held_out["in distribution"],
    "held-out names": generate_ood_stories(N_WINDOWS + 4, seed=0, mode="names"),
    "question game": held_out["out of distribution"],
    "walk": generate_ood_stories(N_WINDOWS + 4, seed=0, mode="walk"),
}
copyable = {name: icl.copyable_fraction(icl.story_windows(story_tokenizer, st, BLOCK, n_windows=N_WINDOWS))
            for name, st in set_stories.items()}
seed_loss = {(r["model"], name): [] for r in seeds["runs"] for name in set_stories}
for r in seeds["runs"]:
    for name in set_stories:
        seed_loss[r["model"], name].append(r["sets"][name]["mean"])
print(f"{'held-out set':16s} {'copier':>7s} {'mosaic (3 seeds)':>18s} {'GPT (3 seeds)':>18s} "
      f"{'GPT − mosaic':>13s}")
seed_gap = {}
for name in set_stories:
    m, g = np.array(seed_loss["mosaic", name]), np.array(seed_loss["gpt", name])
    seed_gap[name] = g.mean() - m.mean()
    print(f"{name:16s} {copyable[name]:7.2f} {m.mean():11.3f} ± {m.std(ddof=1):.3f} "
          f"{g.mean():11.3f} ± {g.std(ddof=1):.3f} {seed_gap[name]:+13.3f}")
assert all(len(v) == 3 for v in seed_loss.values()), "three seeds per model"
for name in set_stories:
    assert max(seed_loss["mosaic", name]) < min(seed_loss["gpt", name]), f"{name}: the mosaic at every seed"
assert copyable["question game"] > 3 * copyable["walk"], "the game rewards copying, the walk hardly"
assert copyable["walk"] < copyable["in distribution"]
uniform_guess = np.log(story_tokenizer.vocab_size)  # the loss of a uniform guess over the vocabulary
print(f"a uniform guess over the {story_tokenizer.vocab_size} tokens: {uniform_guess:.3f} nats per token")
for name in ("held-out names", "question game", "walk"):
    assert seed_gap[name] > seed_gap["in distribution"], name
for name in ("question game", "walk"):
    assert seed_gap[name] > 3 * seed_gap["in distribution"], name
assert np.mean(seed_loss["mosaic", "walk"]) < uniform_guess < min(seed_loss["gpt", "walk"])
assert abs(seed_gap["walk"] / seed_gap["question game"] - 1) < 0.25, "about as large on both grammars"

# %% [markdown]
# The order does not depend on the seed: on every held-out set the worst of the mosaic's three
# seeds is ahead of the best of the GPT's (asserted). The gap grows as the text moves away from
# the training stories: larger with names the models never saw than with training names, and
# more than three times the in-distribution gap on both new grammars (asserted). It is not only
# copying: the walk rewards a copier least of all four sets (the copier column), and the gap there
# is about as large as on the question game (within a quarter). On the walk both models are lost,
# though: the mosaic's loss is just below that of a uniform guess over the vocabulary, and the
# GPT's is above it at every seed (printed, asserted) — it is confidently wrong about a grammar it
# never saw.

# %% [markdown]
# ## 3 · Names, recalled
#
# Much of what a story model can learn in context is a name: a story introduces its hero once and
# then repeats the name again and again. A name's **first** mention cannot be predicted from the
# context (the model can only guess among thousands of names); every **later** mention can be
# *copied*. `icl.name_recall` finds every mention of a story's names in its window (with the
# package's `name_spans`) and reads from the per-position losses above the model's probability of
# the whole name there — the product over the name's tokens, each given everything before it —
# along with the distance, in tokens, back to the name's previous mention. In distribution the
# names come from the training pool (each story draws its own); out of distribution from the
# held-out pool, so every name is new to the models.
#
# > **Predict before you run.** Will both models copy a name at its later mentions? Does it matter
# > how far back its previous mention lies, or whether the names and the story frame are new?
#
# <details><summary>What the run showed</summary>
#
# Both copy: for both models, in both conditions, a later mention is on average more than 100
# times as probable as a first one. But in distribution the GPT's copying falls once the previous
# mention lies 32 to 63 tokens back (under a third of its value at 16 to 31 tokens), while the
# mosaic's is still above 0.5 there. Out of distribution the GPT's later mentions get a mean
# probability under 0.05; the mosaic's stay above that. All asserted below the figure.
# </details>

# %%
DIST_EDGES = [0, 8, 16, 32, 64, 128]
story_mentions, recall, repeat_prob = {}, {}, {}
for cond, stories in held_out.items():
    for kind in story_models:
        mentions = icl.name_recall(None, story_tokenizer, stories, BLOCK, losses=story_losses[kind, cond],
                                   n_windows=N_WINDOWS)
        story_mentions[kind, cond] = mentions
        recall[kind, cond] = icl.recall_by_distance(mentions, DIST_EDGES)
        repeat_prob[kind, cond] = np.mean([m.prob for m in mentions if not m.first])
for cond in held_out:
    print(f"{cond}: mean probability of the whole name")
    print("  first mention           " + "   ".join(
        f"{kind} {recall[kind, cond]['first_mean_prob'][0]:.1e}" for kind in story_models))
    print("  every later mention     " + "   ".join(
        f"{kind} {repeat_prob[kind, cond]:.3f}  " for kind in story_models))
    for j, (a, b) in enumerate(zip(DIST_EDGES[:-1], DIST_EDGES[1:], strict=True)):
        row = "   ".join(f"{kind} {recall[kind, cond]['mean_prob'][j]:.3f}  " for kind in story_models)
        print(f"  {a:3d}-{b - 1:3d} tokens back    {row} ({recall['mosaic', cond]['count'][j]} mentions)")

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), sharey=True)
for ax, cond in zip(axes, held_out, strict=True):
    for kind, color in story_colors.items():
        r = recall[kind, cond]
        keep = r["count"] >= 20  # ranges with too few mentions are left out
        mid = (r["lo"] + r["hi"]) / 2
        ax.plot(mid[keep], r["mean_prob"][keep], "o-", color=color, label=f"{kind}, later mentions")
        ax.axhline(r["first_mean_prob"][0], color=color, ls=":", label=f"{kind}, first mention")
    ax.set(title=cond, yscale="log", ylim=(1e-7, 1.5),
           xlabel="tokens since the name's previous mention", ylabel="probability of the whole name")
    ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# Both models copy: at a later mention a name is far more probable than at its first, where it
# is one guess among thousands. But they copy unequally (the printout; asserted below):
#
# - **in distribution**, the GPT copies a name whose previous mention is recent less surely than
#   the mosaic, and once that mention lies more than about 32 tokens back its probability falls
#   (few mentions lie that far back: the counts are printed); the mosaic's stays high at every
#   distance these stories offer;
# - **out of distribution**, with held-out names in the question game, the GPT's copying almost
#   disappears at every distance, while the mosaic still copies (less well than on familiar
#   stories).
#
# A hypothesis, which section 4 tests: the mosaic's contextual memory is built to retrieve "what
# followed a context like this one" anywhere in the window, whatever the text around it, while the
# GPT has to learn such a circuit from its training stories (with learned positions) and may have
# learned one that depends on them.
#
# **What we could not reproduce, and what differs from the paper.** Our models are tiny (about
# 0.18 M parameters, two blocks, a context of 256 BPE tokens, 1,500 steps on one CPU core) and our
# stories are generated from a small grammar; the paper trains GPT-2-small-sized models on
# BabiStories and measures out of distribution on Simple English Wikipedia. We reproduce half of
# its finding, the mosaic ahead out of distribution, deeper in the context; the other half, parity
# in distribution, we do not see, although each model was tuned with the same budget and the
# order holds at every seed. We have not checked how the gap changes with depth, width or longer
# training: the GPT's training loss is below its validation loss (printed when the models were
# loaded), so more data might help it more than more steps.

# %%
for cond in held_out:
    for kind in story_models:
        assert repeat_prob[kind, cond] > 100 * recall[kind, cond]["first_mean_prob"][0], (kind, cond)
    assert repeat_prob["mosaic", cond] > 1.5 * repeat_prob["gpt", cond], cond
ratio = {cond: repeat_prob["mosaic", cond] / repeat_prob["gpt", cond] for cond in held_out}
assert ratio["out of distribution"] > ratio["in distribution"]
near, far = recall["gpt", "in distribution"]["mean_prob"][2:4]  # 16-31 and 32-63 tokens back
assert far < 0.3 * near, "in distribution the GPT's copying falls beyond ~32 tokens"
assert recall["mosaic", "in distribution"]["mean_prob"][3] > 0.5, "the mosaic's does not"
assert repeat_prob["gpt", "out of distribution"] < 0.05 < repeat_prob["mosaic", "out of distribution"]
# the tall early peak of the in-distribution loss curves is the hero's first mention
hero_at = [m.position for m in story_mentions["mosaic", "in distribution"]
           if m.first and m.name == held_out["in distribution"][m.story].names[0]]
peak_at = int(np.argmax(story_bands["mosaic", "in distribution"].mean[:32]))
print(f"the hero's name first appears from token {np.median(hero_at):.0f} on (median over stories); the "
      f"in-distribution loss peaks at position {peak_at}, which predicts token {peak_at + 1}: "
      f"{peak_at + 1 - np.median(hero_at):.0f} tokens into the name")
assert abs(peak_at + 1 - np.median(hero_at)) <= 2
print("later mentions, mosaic/GPT probability ratio: "
      + ", ".join(f"{cond} {value:.1f}x" for cond, value in ratio.items()))

# %% [markdown]
# **Widget.** One story window at a time: pick a held-out set and a window, and see both models'
# loss at every position of its first tokens. Each dotted line marks a name: grey where the name
# is mentioned for the first time, coloured where it comes again and can be copied. The loss
# plotted at a line is the loss of the name's first token.


# %%
def story_view(condition: str, window: int, width: int) -> dict:
    """Both models' loss along the first ``width`` positions of one window, and its name mentions
    with each model's loss on the whole name (nats: the sum over the name's tokens)."""
    t = np.arange(width)  # position t predicts token t + 1
    loss = {kind: story_losses[kind, condition][window, :width] for kind in story_models}
    found = {kind: [m for m in story_mentions[kind, condition] if m.story == window and m.position <= width]
             for kind in story_models}
    marks = [(m.position - 1, m.name, m.first, {kind: -found[kind][j].log_prob for kind in story_models})
             for j, m in enumerate(found["mosaic"])]  # (position predicting it, name, first?, name loss)
    return {"t": t, "loss": loss, "marks": marks, "condition": condition, "window": window}


def draw_story_view(view: dict, fig: plt.Figure) -> None:
    ax = fig.add_subplot(1, 1, 1)
    for kind, color in story_colors.items():
        ax.plot(view["t"], view["loss"][kind], color=color, lw=1, label=kind)
    top = max(float(v.max()) for v in view["loss"].values())
    for pos, name, first, _ in view["marks"]:
        ax.axvline(pos, color="0.6" if first else "C2", ls=":", lw=1)
        ax.text(pos, top * 1.02, name if first else f"{name} again", rotation=90, fontsize=7,
                va="bottom", ha="center", color="0.4" if first else "C2")
    ax.set(xlabel="position t (predicting token t + 1)", ylabel="loss (nats)", ylim=(0, top * 1.35),
           title=f"{view['condition']}, window {view['window']}")
    ax.legend(fontsize=8, loc="upper right")


controls = {
    "condition": widgets.Dropdown(options=list(held_out), value="out of distribution", description="set"),
    "window": widgets.IntSlider(value=0, min=0, max=N_WINDOWS - 1, description="window"),
    "width": widgets.IntSlider(value=96, min=32, max=BLOCK, step=32, description="positions"),
}
interactive_figure(story_view, draw_story_view, controls, figsize=(12, 4))

# %% [markdown]
# At the defaults (the question game, window 0), the cell below gives each model's mean loss on
# the whole name (the sum over its tokens) at first mentions and at later mentions in that window.
# Both models pay more than 10 nats for a name they meet for the first time. At its later
# mentions the mosaic's loss falls to less than half of that, while the GPT's barely moves
# (asserted). Move the window slider to other stories, and switch to the in-distribution set,
# where the GPT copies too.

# %%
view = story_view(**defaults(controls))
name_loss = {kind: {first: np.mean([nl[kind] for _, _, f, nl in view["marks"] if f == first])
                    for first in (True, False)} for kind in story_models}
counts = {first: sum(f == first for _, _, f, _ in view["marks"]) for first in (True, False)}
print(f"window {view['window']}: {counts[True]} first and {counts[False]} later mentions; mean loss on "
      "the whole name, first | later mentions: "
      + ", ".join(f"{kind} {v[True]:.1f} | {v[False]:.1f}" for kind, v in name_loss.items()))
assert counts[True] >= 1 and counts[False] >= 2
assert min(v[True] for v in name_loss.values()) > 10, "a first mention costs more than 10 nats"
assert name_loss["mosaic"][False] < 0.5 * name_loss["mosaic"][True], "the mosaic copies"
assert name_loss["gpt"][False] > 0.8 * name_loss["gpt"][True], "the GPT's loss barely moves"

# %% [markdown]
# ## 4 · Where the copying happens: the hypothesis, tested
#
# The hypothesis of section 3 can be tested on the question game, where it was stated. Each
# model's contextual memory (the GPT's attention) has two blocks of four heads: chapter 04's
# memory units. Three measurements find the heads that copy names and follow them out of
# distribution:
#
# 1. **Which heads copy, in distribution?** Silence one head (zero its output, as if that memory
#    unit answered nothing) and measure how much the loss rises on the tokens of a name's later
#    mentions *beyond* how much it rises on the story's other tokens: a head whose removal breaks
#    everything is not a copying head. Each model's two heads with the largest such cost are its
#    **copying heads** (`copying.head_name_costs`, `copying.copying_heads`).
# 2. **Do the same heads still read the right place?** At each token of a later mention, a head's
#    **prefix-matching weight** is its retrieval weight on the stored pairs that bring this very
#    token from an earlier mention of the same name, found by the token before it: the pattern of
#    an *induction head* (chapter 08 studies it at length). A head reading all its pairs equally
#    would put the *chance* weight there (`copying.prefix_matching`).
# 3. **Do they still carry the copying?** The **copying gain** is the loss on the tokens of first
#    mentions minus the loss on the tokens of later mentions (nats per name token): what the
#    context is worth. Silence both copying heads together and see what share of the gain goes
#    (`copying.copying_share`).
#
# Three sets of 48 windows each, from stories none of the sections above used: test stories (in
# distribution), held-out names in the training grammar (new names, familiar text) and the
# question game (new names, new text).
#
# **What would refute the hypothesis** (fixed before this run, after a look at other windows):
#
# - the mosaic's copying heads keep less than 80 % of their in-distribution prefix-matching
#   weight on the question game, or carry there less than half the share of the copying gain
#   they carry in distribution: its mechanism would not transfer;
# - the GPT's copying heads keep 80 % of it or more on the question game, or keep nearly as
#   much as the mosaic's (within 0.1): whatever breaks the GPT's copying would then lie outside
#   what its copying heads read;
# - the GPT's heads lose it already with held-out names in the training grammar: they would then
#   depend on the names, not on the text around them.
#
# > **Predict before you run.** On the question game, will the GPT's copying heads still look
# > at the earlier mention of a name? If its copying almost disappears there, does what is left
# > of it still go through the same heads?
#
# <details><summary>What the run showed</summary>
#
# The mosaic's copying heads read the earlier mention on the question game as they do on test
# stories (they keep more than 90 % of their prefix-matching weight), and silencing them costs it
# about the same share of its copying gain in both. The GPT's copying heads keep less than
# three quarters of theirs on the question game, at the same distances from the earlier mention
# too, but all of it (within 5 %) with held-out names in the training grammar; and most of what
# is left of the GPT's copying on the question game goes through them. No refutation criterion
# is met (all printed and asserted below the figure).
# </details>

# %%
N_COPY, COPY_START = 48, 1000  # windows per set; the first story of each (none used above)
copy_sets = {
    "test stories": generate_stories(N_COPY + 8, seed=0, split="test", start=COPY_START),
    "held-out names": generate_ood_stories(N_COPY + 8, seed=0, mode="names", start=COPY_START),
    "question game": generate_ood_stories(N_COPY + 8, seed=0, mode="game", start=COPY_START),
}
name_sets = {cond: copying.name_tokens(story_tokenizer, stories, BLOCK, n_windows=N_COPY)
             for cond, stories in copy_sets.items()}
for cond, nt in name_sets.items():
    counts = ", ".join(f"{int(nt.target_mask(g).sum()):,} {g}" for g in copying.TARGET_GROUPS)
    print(f"{cond:>15}: targets {counts}")
L, H = story_models["mosaic"].config.n_layer, story_models["mosaic"].config.n_head  # 2 blocks, 4 heads
name_costs = {kind: copying.head_name_costs(model, name_sets["test stories"])
              for kind, model in story_models.items()}
copy_heads = {kind: copying.copying_heads(costs, k=2) for kind, costs in name_costs.items()}
for kind, costs in name_costs.items():
    print(f"{kind}: loss change when one head is zeroed (test stories), later mentions | other tokens")
    for i in range(L):
        print("   " + "   ".join(f"{i}.{h} {costs['later'][i, h]:+.3f} | {costs['other'][i, h]:+.3f}"
                                 for h in range(H)))
    print(f"   copying heads: {', '.join(f'{i}.{h}' for i, h in copy_heads[kind])}")

# %%
COPY_EDGES = [0, 8, 16, 32, 64, BLOCK]  # tokens back to the nearest source pair
copy_share, copy_match = {}, {}
for kind, model in story_models.items():
    offset = inspection.value_offset(model)
    for cond, nt in name_sets.items():
        maps = inspection.trace(model, nt.idx).maps
        copy_match[kind, cond] = {i: copying.prefix_matching(maps[i], nt, offset)
                                  for i, _ in copy_heads[kind]}  # per block of a copying head
        copy_share[kind, cond] = copying.copying_share(model, nt, copy_heads[kind])


def head_weights(kind: str, cond: str) -> np.ndarray:
    """(2,): each copying head's mean prefix-matching weight on later mentions."""
    return np.array([copy_match[kind, cond][i].mean[h] for i, h in copy_heads[kind]])


def kept(kind: str, cond: str, reference: str = "test stories") -> float:
    """The copying heads' prefix-matching weight on ``cond`` over the same in ``reference``."""
    return float(head_weights(kind, cond).sum() / head_weights(kind, reference).sum())


print(f"{'model':>6} {'set':>15} {'loss later':>10} {'first':>6} {'gain':>6} {'w/o heads':>9} "
      f"{'carried':>7}   prefix-matching weight per copying head (chance)")
for (kind, cond), s in copy_share.items():
    weights = "  ".join(f"{i}.{h} {w:.3f}" for (i, h), w in zip(copy_heads[kind], head_weights(kind, cond),
                                                                  strict=True))
    chance_level = copy_match[kind, cond][copy_heads[kind][0][0]].chance_mean
    print(f"{kind:>6} {cond:>15} {s['later']:10.3f} {s['first']:6.3f} {s['gain']:6.3f} "
          f"{s['gain_ablated']:9.3f} {s['carried']:7.2f}   {weights}  ({chance_level:.3f})")

fig, axes = plt.subplots(1, 2, figsize=(12, 3.6), sharey=True)
mid = [(a + b) / 2 for a, b in zip(COPY_EDGES[:-1], COPY_EDGES[1:], strict=True)]
copy_binned = {}
for ax, kind in zip(axes, story_models, strict=True):
    for cond, style in zip(name_sets, ("o-", "s--", "^-"), strict=True):
        per_head = []
        for i, h in copy_heads[kind]:
            means, counts = copy_match[kind, cond][i].by_distance(COPY_EDGES)
            per_head.append(means[:, h])
        copy_binned[kind, cond] = np.mean(per_head, axis=0), counts
        keep = counts >= 20  # distance ranges with too few queries are left out
        ax.plot(np.array(mid)[keep], copy_binned[kind, cond][0][keep], style, label=cond)
    ax.set(xscale="log", xlabel="tokens back to the earlier mention's pair", ylim=(0, 1),
           title=f"{kind}: copying heads {', '.join(f'{i}.{h}' for i, h in copy_heads[kind])}")
    ax.legend(fontsize=8)
axes[0].set_ylabel("prefix-matching weight")
plt.tight_layout()
plt.show()

# %%
ratio = {(kind, cond): kept(kind, cond)
         for kind in story_models for cond in ("held-out names", "question game")}
same_distance = {}  # one distance range that both sets fill well: 16 to 31 tokens back
for kind in story_models:
    test_mean, test_n = copy_binned[kind, "test stories"]
    game_mean, game_n = copy_binned[kind, "question game"]
    same_distance[kind] = float(game_mean[2] / test_mean[2])
    assert min(test_n[2], game_n[2]) >= 100, "enough queries 16 to 31 tokens back in both sets"
    carried = ", ".join(f"{copy_share[kind, c]['carried']:.0%}" for c in name_sets)
    print(f"{kind}: the copying heads keep {ratio[kind, 'question game']:.0%} of their prefix-matching "
          f"weight on the question game ({same_distance[kind]:.0%} at 16-31 tokens back: {game_n[2]} and "
          f"{test_n[2]} queries), {ratio[kind, 'held-out names']:.0%} with held-out names; they carry "
          f"{carried} of the copying gain on the three sets")
last_block = copy_match["mosaic", "test stories"][L - 1].mean
print(f"mosaic, test stories: prefix-matching weight of the {H} heads of block {L - 1}: "
      f"{np.round(last_block, 3)}")
mos_share, gpt_share = ({c: copy_share[k, c]["carried"] for c in name_sets} for k in ("mosaic", "gpt"))
# the hypothesis, as the criteria stated it before the run
assert ratio["mosaic", "question game"] >= 0.8, "the mosaic's copying heads still read the earlier mention"
assert mos_share["question game"] >= 0.5 * mos_share["test stories"], "and still carry its copying"
assert ratio["gpt", "question game"] < 0.8, "the GPT's copying heads read it less"
assert ratio["gpt", "question game"] < ratio["mosaic", "question game"] - 0.1
assert ratio["gpt", "held-out names"] >= 0.8, "not because of the names: the text around them"
# what the prose says besides
mos_costs, gpt_costs = name_costs["mosaic"], name_costs["gpt"]
assert all(i == L - 1 and mos_costs["later"][i, h] < 0.3 and mos_costs["other"][i, h] < 0.03
           for i, h in copy_heads["mosaic"])
assert (last_block > 0.8).all() and mos_share["test stories"] < 0.5
assert {i for i, _ in copy_heads["gpt"]} == set(range(L)) and gpt_share["test stories"] > 0.5
assert ratio["mosaic", "question game"] > 0.9
assert abs(mos_share["question game"] - mos_share["test stories"]) < 0.1
assert ratio["gpt", "question game"] < 0.75 and same_distance["gpt"] < 0.75, "also at the same distance"
assert ratio["gpt", "held-out names"] >= 0.95
assert gpt_share["question game"] > 0.5, "most of what is left of the GPT's copying goes through them"
gain = {(k, c): copy_share[k, c]["gain"] for k in story_models for c in name_sets}
assert gain["gpt", "question game"] < 0.6 * gain["gpt", "test stories"], "the GPT's copying gain falls"
assert gain["mosaic", "question game"] > gain["mosaic", "test stories"], "the mosaic's does not"
assert copy_share["mosaic", "question game"]["later"] > 10 * copy_share["mosaic", "test stories"]["later"]
for kind, cond in copy_share:
    for i, h in copy_heads[kind]:
        assert copy_match[kind, cond][i].mean[h] > 3 * copy_match[kind, cond][i].chance_mean, (kind, cond)

# %% [markdown]
# The two models' copying heads differ. The mosaic's are two heads of the last block; silencing one
# of them costs the names less than a third of a nat per token and the other tokens almost nothing
# (the first table). All four heads of that block read the earlier mentions (the line printed
# last), so silencing two of them removes less than half of the mosaic's copying gain: the others
# still copy. The GPT's copying heads are one head of each block, and silencing them removes most
# of its copying gain on test stories. Every copying head, in every set, puts at least three
# times the chance weight on the pairs that bring the name (asserted).
#
# **The hypothesis survives its test**: none of the results that would have refuted it came out.
# On the question game the mosaic's copying heads read the earlier mention of a name as they do on
# test stories (more than 90 % of the weight kept), and carry about the same share of its copying
# gain, which is no smaller there. The GPT's copying heads keep less than three quarters of their
# weight on the question game. The drop is not one of distance: at the same distance from the
# earlier mention it is as large (the figure, and the printout for 16 to 31 tokens back). Nor is
# it one of names: with held-out names in the training grammar they keep all of it (within 5 %).
# What they depend on is the text around the name. They remain the GPT's main way to copy: most
# of what is left of its copying gain on the question game goes through them (the "carried"
# column), and that gain is down to about half of what it is on test stories or less.
#
# Limits. This test shows where the copying heads read and what silencing them costs, not what
# the rest of each model does with what they bring, nor how much of the GPT's loss on the question
# game arises elsewhere (chapter 08 follows a name's logit through both models). The mosaic's
# retrieval transfers, yet its loss on later mentions still rises many times on the
# question game (the "loss later" column): reading the right pair is not all it takes when the
# text around is new. Two small models, one seed each, 48 windows per set: the "carried" share of
# the GPT, measured on a small gain, moves most from one sample of windows to another.

# %% [markdown]
# ## Summary
#
# - Two story models of equal size, each tuned with the same budget and chosen on validation,
#   show in-context learning in their per-position loss: both pay less for a token deeper into
#   the context, and the mosaic's loss falls lower than the GPT's.
# - A paired bootstrap band of the difference is narrower than two separate bands: the windows'
#   own difficulty moves both models together and cancels in the difference.
# - Over three seeds and four held-out sets the order never changes, and the gap grows out of
#   distribution. The question game rewards a model that copies names; the walk, a new grammar
#   that repeats nothing, rewards copying least, and the gap there is as large.
# - Both models copy names, but the GPT's copying fades with the distance to the previous
#   mention and almost vanishes on held-out names, while the mosaic's does not.
# - Where the copying happens: on the question game the mosaic's copying heads read the earlier
#   mention of a name as in distribution and carry as much of its copying; the GPT's read it less,
#   at any distance, though not with new names alone, and what is left of its copying goes mostly
#   through them. Its copying circuit depends on the text around the names.
# - The paper finds parity in distribution and a mosaic advantage out of distribution. We
#   reproduce the second half; the first we do not: our mosaic is ahead in distribution too.
#
# ## Recap questions
#
# 1. Why bootstrap the *difference* of the two models' losses rather than compare each model's
#    band?
#
# <details><summary>Answer</summary>
#
# Both models are measured on the same windows, and much of the spread of the loss comes from
# the windows themselves (an easy story, a hard one). That spread moves both curves together.
# Resampling the difference window by window cancels it, so the band of the difference is much
# narrower than the two separate bands suggest.
# </details>
#
# 2. Why is the question game, taken alone, weak evidence that one model generalises better out
#    of distribution, and what does the walk add?
#
# <details><summary>Answer</summary>
#
# The question game repeats its names and its frames, so a model that copies what followed the
# last occurrence of a token scores well there whatever else it knows: a lead there may only
# mean better copying. The walk is written in a grammar no training story uses and mentions
# each name once, so copying earns little there. The mosaic's lead on the walk is as large as on
# the game, so it is not only a lead in copying.
# </details>
#
# 3. The GPT was tuned with the same budget as the mosaic, yet it is behind in distribution,
#    where the paper finds the two on par. Name two differences between our setting and the
#    paper's that could explain this.
#
# <details><summary>Answer</summary>
#
# Scale: our models have two blocks and a fraction of a million parameters, trained for 1,500
# steps, where the paper trains GPT-2-small-sized models far longer. Data: our stories come from
# a small grammar, the paper's from a large language model (BabiStories). The GPT also learns a
# table of positions that the mosaic does not need; with so little training it may not have
# learned it well. We have not tested which of these matters.
# </details>
#
# ## Further reading
#
# - Zhang, Nolte, Sadhukhan, Chen, Bottou, *Memory Mosaics*, ICLR 2025 (arXiv:2405.06394): the
#   per-position loss in and out of distribution (its figure 8).
# - Olsson et al., *In-context Learning and Induction Heads* (2022): the per-position loss as a
#   measure of in-context learning, and the circuit chapter 08 looks for.
# - Efron and Tibshirani, *An Introduction to the Bootstrap* (1993), chapters 6 and 13: bootstrap
#   standard errors and percentile intervals.
#
# Next: **07 · In-context learning on RegBench-mini** — learning a new language from its strings,
# and why a memory unit can.
# %%
print(f"this notebook ran in {time.perf_counter() - _notebook_start:.0f} s")
