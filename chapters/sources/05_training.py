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
# # 05 · Training a language model
#
# Chapter 04 built the mosaic block. Here we stack it into a language model, train it on
# children's stories next to a GPT of the same size, and compare them by validation loss, on the
# same data, for the same number of steps, each at the learning rate and dropout that suit it
# best (a fair fight: both models tuned with the same budget, on validation, over several seeds).
# The papers report the Memory Mosaic ahead of GPT-2 for a network of one block, and the two
# equal from eight blocks on. A laptop can test the first half of that claim.
#
# **Prerequisites.** Chapter 04 (the mosaic block, its contextual and persistent memories, and its
# GPT twin). From PyTorch: a module's parameters, `loss.backward()` and an optimizer's `step()`.
# From machine learning: cross-entropy, and why a validation set is kept apart from training.
#
# **By the end of this chapter you will be able to**
#
# - generate the course's story corpus and tokenize it by characters;
# - write the three pieces of a training loop the papers' recipe depends on: the warm-up +
#   cosine learning-rate schedule, AdamW's parameter groups, and one optimizer step;
# - train a one-block mosaic and a one-block GPT of equal parameter count, each at its tuned
#   setting, compare their validation losses over seeds, and say *why* they differ;
# - launch the same code on a GPU with the presets, knowing what to expect.
#
# Time: most of it is training the two models. The README's course map gives the measured time
# of this notebook; the last cell prints how long your run took.

# %%
import inspect
import math
import time

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch

from mosaics_edu import models
from mosaics_edu import training as train
from mosaics_edu.course import tuning
from mosaics_edu.course.checks import ch05
from mosaics_edu.course.compare import (
    char_loss_view,
    draw_char_loss_view,
    draw_loss_curves,
    name_copy_losses,
    stream_loss,
    summarise_runs,
)
from mosaics_edu.course.widgets import LiveLossPlot, defaults, interactive_figure
from mosaics_edu.data import CharTokenizer, generate_stories, get_batch, name_spans, story_corpus
from mosaics_edu.models.flops import training_flops_per_token

_ = torch.manual_seed(0)
_notebook_start = time.perf_counter()  # the last cell prints the wall time of the whole run

# %% [markdown]
# ## 1. The data: stories with names to copy
#
# The papers train on BabiStories, 2.2 million short stories written by a language model in the
# spirit of TinyStories, each with a first name drawn from a list of about 4,000. The course's
# package writes stories of the same shape itself, from a small grammar: a named main character,
# a place, an object, a small plot in 3–5 short paragraphs, and names drawn from thousands of
# procedurally generated ones. Deterministic by seed, any size, no download.

# %%
corpus = story_corpus(n_train=4000, n_valid=400, seed=0)
first_story = corpus["valid"].split("\n\n")[0]
print(first_story)
print()
print(f"train: {len(corpus['train']):,} characters, validation: {len(corpus['valid']):,}")

# %% [markdown]
# Names matter. A story uses its hero's name several times, and the names are many, so the
# model cannot learn "which name comes next" by heart. After a name has appeared once, though,
# its later occurrences can be **copied from the context**: exactly what an associative memory
# that stores (context → next token) pairs is built for. Let us count.

# %%
stories = generate_stories(400, seed=0, split="valid")
spans = [name_spans(s.text, s.names) for s in stories]
n_names = len({s.names[0] for s in generate_stories(4000, seed=0, split="train")})
per_story = np.array([len(sp) for sp in spans])
repeated = np.array([sum(x.repeated for x in sp) for sp in spans])
print(f"distinct hero names in 4,000 training stories: {n_names:,}")
print(f"name occurrences per story: mean {per_story.mean():.1f}, of which copyable (repeated): "
      f"{repeated.mean():.1f}")
assert n_names > 1000 and repeated.mean() > 2

# %% [markdown]
# On a CPU we model characters: the tokenizer maps each distinct character of the training
# text to an integer. It is tiny, lossless, and makes every name a sequence of letters the model
# must spell.

# %%
tok = CharTokenizer.train(corpus["train"])
print(f"vocabulary: {tok.vocab_size} characters:", repr("".join(tok.chars)))
ids = tok.encode(first_story[:40])
print(ids[:20], "…")
assert tok.decode(tok.encode(first_story)) == first_story

# %% [markdown]
# The training code keeps the tokenized corpus on disk as a `uint16` memory-mapped array (as
# the papers' code does) and draws training windows of `block_size + 1` tokens at random
# positions: inputs are the first `block_size`, targets the same shifted by one. Preparing it
# takes a few seconds once; later calls reopen the cache.

# %%
data_config = train.TrainConfig.from_preset("cpu-tiny")  # char-level stories, 4,000 + 400
data = train.prepare_data(data_config)
print(f"train tokens: {len(data.train):,}   validation tokens: {len(data.valid):,}   "
      f"vocabulary: {data.vocab_size}")
assert data.vocab_size == tok.vocab_size

# %% [markdown]
# ## 2. The loop, piece by piece
#
# Every step of the papers' recipe: draw a batch, compute the mean cross-entropy of the next
# token, back-propagate, clip the gradient norm to 1, and take an AdamW step with a learning rate
# that first rises linearly (warm-up) and then follows half a cosine down to a floor. The package's
# `Trainer` does exactly this (plus evaluation, logging and checkpoints). You will write its three
# pieces.
#
# **The schedule.** With peak $\eta_{\max}$, floor $\eta_{\min}$, $W$ warm-up steps and $S$ steps
# in all (steps counted from 0):
#
# $$\eta(s) = \begin{cases} \eta_{\max}\,\frac{s+1}{W} & s < W \\[2pt]
# \eta_{\min} + \frac{\eta_{\max}-\eta_{\min}}{2}
#   \left(1 + \cos\left(\pi\,\frac{s-W}{S-W}\right)\right) & W \le s < S \\[2pt]
# \eta_{\min} & s \ge S \end{cases}$$
#
# Why warm up: at the start Adam's second-moment estimates are based on very few gradients and
# its steps are erratic; small steps first keep the early, random model from being thrown into
# a bad region. Why the cosine: large steps early make progress, small steps at the end settle.
#
# **Exercise 5.1 — `lr_at`** (★, 10 minutes). Implement the schedule above. `step` is a 0-based
# int; $0 \le \eta_{\min} \le \eta_{\max}$; $0 \le W \le S$ and $S \ge 1$. Two edges follow from
# the cases: with $W = 0$ there is no warm-up (the cosine starts at step 0), and with $W = S$
# there is no cosine (step $W$ onwards gets $\eta_{\min}$): nothing may divide by zero. Return a
# float.

# %% [markdown] tags=["hints"]
# <details><summary><b>Hint 1</b> (a nudge)</summary>
#
# Three cases, tested in order: still warming up, already past the end, or in between. Each is
# one line of the formula.
# </details>
#
# <details><summary><b>Hint 2</b> (the approach)</summary>
#
# `if step < warmup_steps:` the linear ramp `(step + 1) / warmup_steps` of `max_lr`; then
# `if step >= max_steps:` return `min_lr` (this also covers $W = S$ before any division); else the
# progress `p = (step - warmup_steps) / (max_steps - warmup_steps)` in $[0, 1)$ and the half cosine.
# </details>
#
# <details><summary><b>Hint 3</b> (the key line)</summary>
#
# ```python
# return min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (max_lr - min_lr)
# ```
# </details>

# %% tags=["exercise"]
def lr_at(step: int, max_lr: float, min_lr: float, warmup_steps: int, max_steps: int) -> float:
    """Learning rate at optimizer step ``step`` (0-based): linear warm-up, cosine decay, floor."""
    ### BEGIN SOLUTION
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step >= max_steps:
        return min_lr
    progress = (step - warmup_steps) / (max_steps - warmup_steps)  # 0 -> 1
    return min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (max_lr - min_lr)
    ### END SOLUTION


# %% tags=["check"]
ch05.check_lr_at(lr_at)

# %% [markdown]
# Here is the schedule of the papers' GPU recipe (80,000 steps, 2,000 of warm-up, peak 5·10⁻³,
# floor 10⁻⁴) and the shape we use below on the CPU (600 steps, 60 of warm-up; drawn here with
# the `cpu-tiny` preset's peak 3·10⁻³, while §4 gives each model the peak tuned for it), drawn
# with the package's `train.lr_at`:

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3))
for ax, (name, peak, floor, warm, total) in zip(axes, [
        ("paper recipe (GPU)", 5e-3, 1e-4, 2000, 80_000),
        ("this chapter's shape (CPU)", 3e-3, 1e-4, 60, 600)], strict=True):
    steps = np.arange(0, total + total // 20)
    ax.plot(steps, [train.lr_at(int(s), peak, floor, warm, total) for s in steps])
    ax.axvline(warm, color="0.6", ls=":", label=f"end of warm-up ({warm})")
    ax.set_title(name)
    ax.set_xlabel("step")
    ax.legend(fontsize=8)
axes[0].set_ylabel("learning rate")
plt.tight_layout()
plt.show()
paper_lrs = [train.lr_at(s, 5e-3, 1e-4, 2000, 80_000) for s in (1999, 41_000, 80_000)]
print("paper recipe at the end of warm-up, mid-way, end:", paper_lrs)
assert math.isclose(paper_lrs[0], 5e-3) and math.isclose(paper_lrs[2], 1e-4)

# %% [markdown]
# **The parameter groups.** AdamW's weight decay pulls every decayed parameter a little toward
# zero at each step. That is a sensible prior for matrices — embeddings, projections, the
# persistent memory's tables — but not for the vectors and scalars: a LayerNorm gain of 0 or a
# bandwidth $\beta$ shrunk toward $e^0 = 1$ changes *what the layer computes*, not just how
# large its weights are. The papers' code therefore decays exactly the tensors with two or more
# dimensions.
#
# **Exercise 5.2 — `param_groups`** (★, 10 minutes). Return two groups for
# `torch.optim.AdamW`: `{"params": [...], "weight_decay": weight_decay}` for tensors with
# `p.dim() >= 2`, and `{"params": [...], "weight_decay": 0.0}` for the rest. Every parameter in
# exactly one group — mind the output head, which *is* the embedding matrix (weight tying). The
# check calls it on a mosaic and a GPT with several values of `weight_decay` > 0. Parameters that
# do not require gradients (frozen) may be left out or put in either group. Return a list of two
# dicts holding the parameter tensors themselves; do not change the model.

# %% [markdown] tags=["hints"]
# <details><summary><b>Hint 1</b> (a nudge)</summary>
#
# The rule is about the *shape* of a tensor, not its name: a LayerNorm gain is called `weight`
# but is a vector, a memory table is not called `weight` but has three dimensions.
# </details>
#
# <details><summary><b>Hint 2</b> (the approach)</summary>
#
# Go over `model.parameters()` once (it yields a tied tensor once, where `named_parameters` with
# `remove_duplicate=False` would give it twice), split by `p.dim() >= 2`, and give each group its
# `"weight_decay"` key explicitly.
# </details>
#
# <details><summary><b>Hint 3</b> (the key line)</summary>
#
# ```python
# decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
# ```
# </details>

# %% tags=["exercise"]
def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups: decay for tensors with >= 2 dims, none for vectors and scalars."""
    ### BEGIN SOLUTION
    params = [p for p in model.parameters() if p.requires_grad]  # a tied tensor appears once
    return [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    ### END SOLUTION


# %% tags=["check"]
ch05.check_param_groups(param_groups)

# %% [markdown]
# What that rule leaves undecayed in a mosaic: the LayerNorm gains and the per-head
# scalars — a handful of parameters, but the ones that set each memory's decay λ and β.

# %%
demo = models.MemoryMosaicLM(models.MosaicConfig(vocab_size=64, block_size=64, n_layer=1, n_head=4,
                                                 n_embd=64))
no_decay = [(n, tuple(p.shape)) for n, p in demo.named_parameters() if p.dim() < 2]
for n, shape in no_decay:
    print(f"  no decay: {n:35s} {shape}")
groups = train.param_groups(demo, 0.1)
n_dec, n_nodec = (sum(p.numel() for p in g["params"]) for g in groups)
print(f"decayed {n_dec:,} parameters, not decayed {n_nodec:,}")
assert n_dec + n_nodec == models.count_parameters(demo) and n_nodec == 2 * 64 + 64 + 7 * 4

# %% [markdown]
# **One step.** Gradients in PyTorch *accumulate* in `.grad`, so a step starts by zeroing them;
# then the forward pass (our models return `(logits, loss)` when given targets), the backward
# pass, clipping of the global gradient norm (all gradients together, as one long vector, scaled
# down if its norm exceeds `grad_clip`), and the optimizer's update.
#
# **Exercise 5.3 — `train_step`** (★★, 10 minutes). Write one step; return the loss as a Python
# float. The check runs it with SGD (where clipping shows directly in the update) and with
# AdamW, on a model that still holds gradients from an earlier step, with thresholds that clip,
# one that does not, and `grad_clip = 0`, which means "do not clip". `x` and `y` are `(B, T)`
# token ids (inputs and targets); `model(x, y)` returns `(logits, loss)`. Return this step's
# loss, computed before the update; do not modify `x` or `y`.

# %% [markdown] tags=["hints"]
# <details><summary><b>Hint 1</b> (a nudge)</summary>
#
# The order matters: gradients accumulate, so clear them first; clipping only matters between
# the backward pass and the optimizer's step.
# </details>
#
# <details><summary><b>Hint 2</b> (the approach)</summary>
#
# `model.train()`, `optimizer.zero_grad()`, `_, loss = model(x, y)`, `loss.backward()`, then
# `clip_grad_norm_` over *all* parameters together only `if grad_clip > 0`, then
# `optimizer.step()`, and return `loss.item()`.
# </details>
#
# <details><summary><b>Hint 3</b> (the key line)</summary>
#
# ```python
# torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)  # one norm over every gradient
# ```
# </details>

# %% tags=["exercise"]
def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor,
               y: torch.Tensor, grad_clip: float) -> float:
    """One optimizer step on the batch x, y (both (B, T) token ids); returns the loss."""
    ### BEGIN SOLUTION
    model.train()
    optimizer.zero_grad(set_to_none=True)
    _, loss = model(x, y)  # logits (B, T, V), mean cross-entropy
    loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return loss.item()
    ### END SOLUTION


# %% tags=["check"]
ch05.check_train_step(train_step)

# %% [markdown]
# The package's `Trainer` takes the same step, with what a real run adds around it: the learning
# rate of the schedule, gradient accumulation over micro-batches, mixed precision (the gradient
# scaler), data parallelism, and a stop on a non-finite loss. Its source:

# %%
print(inspect.getsource(train.Trainer.train_step))

# %% [markdown]
# Put together (with the package's reference pieces, so this runs whether or not you did the
# exercises), thirty steps on one repeated batch must drive its loss down — the smallest test
# that a training loop trains:

# %%
torch.manual_seed(0)
tiny = models.MemoryMosaicLM(models.MosaicConfig(vocab_size=data.vocab_size, block_size=64, n_layer=1,
                                                 n_head=4, n_embd=64))
opt = torch.optim.AdamW(train.param_groups(tiny, 0.1), lr=1e-2, betas=(0.9, 0.95))
xb, yb = get_batch(data.train, 4, 64, torch.Generator().manual_seed(0))  # (4, 64) each
losses = []
for s in range(30):
    for group in opt.param_groups:
        group["lr"] = train.lr_at(s, 1e-2, 1e-4, 2, 30)
    losses.append(train.basic_train_step(tiny, opt, xb, yb, grad_clip=1.0))
print("loss at steps 0, 15, 29:", [round(losses[i], 3) for i in (0, 15, 29)])
assert losses[-1] < 0.8 * losses[0]

# %% [markdown]
# ## 3. Two models of the same size
#
# Both models get one block, width 64, 4 heads and a context of 256 characters. The GPT has a
# learned position table (256 × 64 = 16,384 parameters); the mosaic has none. At the papers'
# size that table is under 1 % of the model, so the papers keep `pmem_size = 3.5·d` and accept the
# small difference. At our size it is a third of a block (a quarter of the whole GPT), so, to
# compare at **equal parameter count**, we give the mosaic's persistent memory the difference:
# `pmem_size = 3.5·d + 256/2` (two tables of 128 more rows of 64 = 16,384 parameters).

# %%
WIDTH, HEADS, CONTEXT = 64, 4, 256
shared = dict(n_layer=1, n_embd=WIDTH, n_head=HEADS, block_size=CONTEXT)
overrides = {
    "mosaic": dict(shared, pmem_size=int(3.5 * WIDTH) + CONTEXT // 2),
    "gpt": dict(shared),
}
vocab = train.padded_vocab_size(data.vocab_size)
sizes = {kind: models.count_parameters(train.build_model(kind, "cpu-tiny", vocab, **ov)[0])
         for kind, ov in overrides.items()}
print(f"parameters: mosaic {sizes['mosaic']:,}   GPT {sizes['gpt']:,}   "
      f"(difference {abs(sizes['mosaic'] - sizes['gpt']) / sizes['gpt']:.2%})")
assert abs(sizes["mosaic"] - sizes["gpt"]) / sizes["gpt"] < 0.001

# %% [markdown]
# ## 4. Training both, each at its best setting
#
# Same data, same batches (same seed), same number of steps and the same recipe for both: batch
# 8 × 256 characters, 600 steps, AdamW (0.9, 0.95) with weight decay 0.1 on matrices, 60 warm-up
# steps then a cosine down to 10⁻⁴, clipping at 1. Only the batch, the number of steps and the
# context are set here, to fit the time budget; the rest are the package's `cpu-tiny` defaults.
#
# One setting should not be shared: the **peak learning rate** (and, with it, dropout). The best
# rate depends on the architecture, so a rate shared by both models may suit one and starve the
# other, and the comparison would then measure that choice rather than the models. (The papers
# tuned their recipe for the transformer and reused it for the mosaic.) Here each model gets the
# same tuning budget, judged on the **validation** stories only: peak rates on a grid of at least
# four values, with dropout 0 and 0.1 at each, the grid extended until the best rate lies strictly
# inside it; then three seeds at each model's best setting. That sweep trains this section's
# runs about twenty times per model, too long for a notebook; the package ships its results,
# made by `tools/sweep_stories.py --comparison one_block` and checked by the rules of
# `mosaics_edu.course.tuning` (a test fails if a shipped file breaks them). The score is the loss over
# every window of the validation stories (`compare.stream_loss`). The grid, at seed 0:

# %%
fight = tuning.load(tuning.ASSETS / "one_block" / "tuning.json")
assert tuning.problems(fight) == [], tuning.problems(fight)
tuned = tuning.summary(fight)  # per model: chosen setting, and mean, spread and values over seeds
for kind in ("mosaic", "gpt"):
    print(tuning.grid_table(fight, kind, "nats per character"))  # the grid at seed 0, the chosen setting
print(f"the whole sweep: {len(fight['runs'])} runs, {fight['cpu_seconds'] / 60:.0f} CPU-minutes")

# %% [markdown]
# Each model is now trained here at its chosen setting, with seed 0: the sweep's seed-0 run of
# that setting, repeated. Each run shows a progress bar and redraws its loss curve at every
# evaluation (every 100 steps, on 10 fixed batches of each split). Each run uses one CPU
# thread, so the numbers it prints are the same on any computer.
#
# > **Predict before you run.** One block each, equal size, each at its own tuned setting: which
# > model ends with the lower validation loss, and by how much? Does it pull ahead early, or only
# > near the end of the 600 steps?
#
# <details><summary>What the run showed</summary>
#
# The mosaic, by more than a nat per character (the gap is printed with the curves; asserted).
# It is ahead at every evaluation from step 100 on (printed and asserted; the right panel shows the
# gap at each evaluation). For both models the training and validation losses agree (asserted):
# neither over-fits in 600 steps.
# </details>

# %%
STEPS = 600
runs, wall = {}, {}
for kind, ov in overrides.items():
    chosen = fight["chosen"][kind]  # this model's tuned peak learning rate and dropout
    config = train.TrainConfig.from_preset(
        "cpu-tiny", model=kind, model_overrides=dict(ov, dropout=chosen["dropout"]), batch_size=8,
        max_steps=STEPS, warmup_steps=STEPS // 10, eval_interval=100, eval_batches=10, threads=1,
        seed=0, lr=chosen["lr"])
    t0 = time.perf_counter()
    runs[kind] = train.train(config, data=data, callbacks=[LiveLossPlot(title=f"{kind}, one block")])
    wall[kind] = time.perf_counter() - t0

# %%
summary = summarise_runs({kind: r.history for kind, r in runs.items()})
for kind, r in runs.items():
    s = r.summary
    print(f"{kind:>6}: {s['n_params']:,} parameters | val loss {s['val_loss']:.4f} | train loss "
          f"{s['train_loss']:.4f} | {s['tokens_per_s']:,.0f} tokens/s | {wall[kind]:.0f} s")
gap = summary["gpt"]["final_val"] - summary["mosaic"]["final_val"]
print(f"validation loss, GPT minus mosaic: {gap:+.3f} nats per character")

fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
draw_loss_curves({kind: r.history for kind, r in runs.items()}, ax=axes[0],
                 title="one block each, equal size: loss")
steps_eval = summary["mosaic"]["steps"]
axes[1].plot(steps_eval, np.array(summary["gpt"]["val"]) - np.array(summary["mosaic"]["val"]), "o-",
             color="k")
axes[1].axhline(0, color="0.6", lw=1)
axes[1].set_xlabel("step")
axes[1].set_ylabel("GPT − mosaic validation loss")
axes[1].set_title("positive: the mosaic is ahead")
plt.tight_layout()
plt.show()
assert summary["mosaic"]["final_val"] < summary["gpt"]["final_val"], "paper: mosaic ahead at depth 1"
assert gap > 1.0, "the mosaic ends more than a nat per character ahead"
for kind, r in runs.items():  # no over-fitting: training and validation losses agree
    assert abs(r.summary["train_loss"] - r.summary["val_loss"]) < 0.1, (kind, r.summary)
gaps = np.array(summary["gpt"]["val"]) - np.array(summary["mosaic"]["val"])  # one per evaluation
print("GPT - mosaic validation loss at steps", steps_eval, ":", np.round(gaps, 3).tolist())
ahead_from = next(st for i, st in enumerate(steps_eval) if (gaps[i:] > 0).all())
print(f"the mosaic is ahead at every evaluation from step {ahead_from} on")
assert ahead_from <= 100, "the mosaic is ahead from the first evaluation after the start"

# %% [markdown]
# One run per model is one seed. The sweep ran each chosen setting with three seeds; here is this
# notebook's run scored as the sweep scored its runs (the loss over every window of the validation
# stories), next to the sweep's seed 0 of the same setting (the same run: same recipe and seed) and
# the mean ± spread over the seeds. And the comparison before tuning: both models at the rate the
# package's `cpu-tiny` preset uses (3·10⁻³, no dropout), seed 0, from the same grid.

# %%
def sweep_val(kind: str, lr: float, dropout: float, seed: int = 0) -> float:
    """The sweep's validation loss of one run."""
    return next(r["val"] for r in fight["runs"] if (r["model"], r["lr"], r["dropout"], r["seed"])
                == (kind, lr, dropout, seed))


own = {kind: stream_loss(r.model.eval(), data.valid, CONTEXT) for kind, r in runs.items()}
shared = {kind: sweep_val(kind, 3e-3, 0.0) for kind in runs}
for kind in runs:
    t = tuned[kind]
    seed0 = sweep_val(kind, t["setting"]["lr"], t["setting"]["dropout"])
    print(f"{kind:>6}: this run {own[kind]:.3f} (the sweep's seed 0: {seed0:.3f}); seeds "
          f"{[round(v, 3) for v in t['values']]}: {t['mean']:.3f} ± {t['std']:.3f}; untuned "
          f"(3e-3, no dropout): {shared[kind]:.3f}")
    assert abs(own[kind] - seed0) < 0.03, "same recipe and seed as the sweep's run, up to float rounding"
mosaic_vals, gpt_vals = tuned["mosaic"]["values"], tuned["gpt"]["values"]
tuned_gap = tuned["gpt"]["mean"] - tuned["mosaic"]["mean"]
print(f"GPT minus mosaic, validation loss: untuned {shared['gpt'] - shared['mosaic']:+.3f} (seed 0), "
      f"tuned {tuned_gap:+.3f} (mean over seeds); the worst mosaic seed {max(mosaic_vals):.3f} vs "
      f"the best GPT seed {min(gpt_vals):.3f}")
assert max(mosaic_vals) < min(gpt_vals), "tuned, the mosaic is ahead at every seed"
assert all(tuned[k]["setting"]["lr"] > 3e-3 for k in runs), "both prefer a larger rate than 3e-3"
assert tuned["mosaic"]["setting"]["lr"] > tuned["gpt"]["setting"]["lr"]
assert tuned_gap > shared["gpt"] - shared["mosaic"] > 0, "tuning widened the gap"
assert tuned["gpt"]["std"] > 5 * tuned["mosaic"]["std"], "the GPT's seeds spread far more"

# %% [markdown]
# At one block the mosaic ends clearly ahead, as the papers report for depth 1, and not by luck
# of a seed: the worst of its three seeds is far below the best of the GPT's (printed and asserted
# above). The right panel of the figure says when, in this run: the gap at each evaluation, and the
# step from which the mosaic stays ahead. (The dashed training curves are hidden behind the
# validation curves: the two losses agree, as asserted, so there is no over-fitting in 600 steps.)
#
# What tuning changed: both models prefer a larger peak rate than the shared 3·10⁻³, the mosaic a
# much larger one, and the gap *widened* (untuned and tuned gaps printed above): the shared rate had
# held the mosaic back more than the GPT. The GPT's three seeds also spread far more than the
# mosaic's (the ± above): a one-block GPT at its best rate is on the edge of stability, where the
# draw of the batches decides a lot. How large the gap is depends on the data: these stories reward
# copying from the context heavily, as the next measurement shows. (The second half of the papers'
# claim — equal from eight blocks on — needs deeper models and far more training than a laptop
# gives: see the GPU section.)
#
# ## 5. Why: copying names from the context
#
# Predicting the rest of a name that already appeared needs an *induction head*: find the
# earlier place where the same letters occurred and read what came next. A contextual memory
# does this in one layer: its key at $s$ summarises the recent letters, its value holds the next
# one. A transformer needs two layers for it (one to attach "the previous token" to each
# position, one to look it up), so a one-block GPT can only guess names from letter statistics.
# We measure the loss on the letters of names (after their first letter), separately for a
# name's first occurrence in the window (nothing to copy) and its repeats (copyable):
#
# > **Predict before you run.** On the letters of a name the story has already used, how much less
# > will each model pay than on the same name's first occurrence?
#
# <details><summary>What the run showed</summary>
#
# The mosaic pays far less on a repeat: more than half a nat per letter less than on a first
# occurrence (asserted; the printout gives each model's saving). The one-block GPT saves under
# 0.3 times what the mosaic saves (asserted): with one layer it has no way to copy. The mosaic is
# also ahead on the characters that are not names (asserted).
# </details>

# %%
valid_stories = generate_stories(200, seed=0, split="valid")
copy = {kind: name_copy_losses(r.model, data.tokenizer, valid_stories, CONTEXT) for kind, r in runs.items()}
fig, ax = plt.subplots(figsize=(6, 3))
width = 0.38
for i, kind in enumerate(copy):
    vals = [copy[kind]["other"], copy[kind]["first"], copy[kind]["repeated"]]
    ax.bar(np.arange(3) + (i - 0.5) * width, vals, width, label=kind)
ax.set_xticks(range(3))
ax.set_xticklabels(["other characters", "name letters,\nfirst occurrence",
                    "name letters,\nrepeated (copyable)"])
ax.set_ylabel("loss (nats per character)")
ax.legend()
plt.tight_layout()
plt.show()
for kind, c in copy.items():
    print(f"{kind:>6}: other {c['other']:.3f} | name, first {c['first']:.3f} | "
          f"name, repeated {c['repeated']:.3f} "
          f"({c['n_repeated']} letters)")
gain = {kind: c["first"] - c["repeated"] for kind, c in copy.items()}  # what copying saves
print("loss saved on a repeated name vs a new one:", {k: round(v, 3) for k, v in gain.items()})
assert gain["mosaic"] > 0.5, "the mosaic copies names from its context"
assert gain["gpt"] < 0.3 * gain["mosaic"], "the one-block GPT copies far less"
assert copy["mosaic"]["repeated"] < copy["gpt"]["repeated"]
assert copy["mosaic"]["other"] < copy["gpt"]["other"], "the mosaic is ahead off names too"

# %% [markdown]
# On a name's first occurrence both models are lost — it is new (the printout compares their
# losses there). On its repeats the mosaic's loss falls by more than half a nat per letter, while
# the one-block GPT's barely moves: it has no way to copy. The gap is not only on names, though:
# the mosaic is ahead on the other characters too (asserted above).
#
# **How much of the gap is copying names?** The validation-loss gap is an average over every
# character. We split it: on the same windows, the loss difference GPT − mosaic summed over the
# letters of repeated names (after their first letter), over the other letters of names, and over
# every other character, each as a share of the total difference.
#
# > **Predict before you run.** The one-block GPT barely copies names. Will the letters of repeated
# > names account for most of the gap between the two models, or only part of it?
#
# <details><summary>What the run showed</summary>
#
# Only part. Per character, the gap is largest on the letters of repeated names (the mean
# differences printed; asserted), but more than half of the total gap comes from all the other
# characters, which are not names at all (printed and asserted).
# </details>

# %%
def char_losses(model: torch.nn.Module, texts: list[str]) -> torch.Tensor:
    """Cross-entropy of every character given all before it. texts: N strings of CONTEXT + 1."""
    ids = torch.tensor([data.tokenizer.encode(t) for t in texts])  # (N, T+1)
    model.eval()
    with torch.no_grad():
        logits, _ = model(ids[:, :-1])  # (N, T, V)
    return torch.nn.functional.cross_entropy(logits.transpose(1, 2), ids[:, 1:],
                                             reduction="none")  # (N, T)


windows = [(st, st.text[: CONTEXT + 1]) for st in valid_stories if len(st.text) > CONTEXT]
texts = [t for _, t in windows]
diff = char_losses(runs["gpt"].model, texts) - char_losses(runs["mosaic"].model, texts)  # (N, T)
repeated_letters = torch.zeros_like(diff, dtype=torch.bool)
name_letters = torch.zeros_like(diff, dtype=torch.bool)
for i, (st, text) in enumerate(windows):
    for span in name_spans(text, st.names):  # the letter at text position p is predicted at p - 1
        name_letters[i, span.start - 1 : span.end - 1] = True
        if span.repeated:
            repeated_letters[i, span.start : span.end - 1] = True  # letters 2..n of a repeat
split = {"letters 2..n of repeated names": repeated_letters,
         "other letters of names": name_letters & ~repeated_letters,
         "all other characters": ~name_letters}
total = float(diff.sum())
shares = {k: float(diff[m].sum()) / total for k, m in split.items()}
for k, m in split.items():
    print(f"{k:32s}: {m.float().mean():6.1%} of the characters, {shares[k]:6.1%} of the gap "
          f"(mean difference {float(diff[m].mean()):+.3f} nats)")
print(f"mean gap over these windows: {float(diff.mean()):+.3f} nats per character")
assert abs(sum(shares.values()) - 1) < 1e-6 and total > 0
assert shares["all other characters"] > shares["letters 2..n of repeated names"]
assert shares["all other characters"] > 0.5, "most of the gap is off the names"
per_char = {k: float(diff[m].mean()) for k, m in split.items()}
assert max(per_char, key=per_char.get) == "letters 2..n of repeated names", "largest gap per character"

# %% [markdown]
# So copying names is where the mosaic's advantage is largest *per character* (the mean
# differences above), but those letters are few: most of the gap comes from all the other
# characters (the shares above). The depth-1 advantage on this corpus is therefore not just the
# one-layer induction head on names. Part of the rest may be copying of other words and phrases
# that recur within a story — the same mechanism on text that is not a name — but we have not
# separated that here. (Chapter 06 measures in-context learning properly, position by position.)
#
# **Widget: character by character.** Pick a validation story and a stretch of it: the bars show
# what each trained model pays for every character (its loss predicting that character from all
# the story before it); shaded letters belong to a name that occurred earlier. Move along a story
# and watch where the two models part.

# %%
controls = {
    "models": {kind: r.model for kind, r in runs.items()},
    "tokenizer": data.tokenizer,
    "stories": valid_stories,
    "story": widgets.IntSlider(value=0, min=0, max=49, description="story"),
    "start": widgets.IntSlider(value=40, min=0, max=CONTEXT - 64, step=8, description="start"),
    "width": 64,
}
interactive_figure(char_loss_view, draw_char_loss_view, controls, figsize=(12, 3.5));

# %% [markdown]
# At the widget's defaults (story 0: the hero's name appears, then reappears at once) the same
# function must show the mosaic paying less than the GPT on the letters of the repeated name:

# %%
view = char_loss_view(**defaults(controls))
rep = view["repeated"]
shown = {kind: float(view["losses"][kind][rep].mean()) for kind in view["losses"]}
print("characters shown:", "".join(view["labels"]))
print(f"{int(rep.sum())} letters of a repeated name; their mean loss:",
      {k: round(v, 3) for k, v in shown.items()})
assert rep.sum() >= 5 and shown["mosaic"] < shown["gpt"]

# %% [markdown]
# ## 6. Samples
#
# Both models continue the same prompt (temperature 0.8, top-k 20, same seed):

# %%
prompt = "Once upon a time, there was a little girl named Mira. Mira lived in"
prompt_ids = torch.tensor([data.tokenizer.encode(prompt)])  # (1, prompt length)


def continue_prompt(model: torch.nn.Module, n_new: int = 200) -> str:
    """n_new sampled characters after the prompt (the model's padded vocabulary rows, which no
    character stands for, are never drawn)."""
    out = model.generate(prompt_ids, n_new, temperature=0.8, top_k=20,
                         generator=torch.Generator().manual_seed(0),
                         vocab_limit=data.tokenizer.vocab_size)  # (1, prompt length + n_new)
    return data.tokenizer.decode(out[0, prompt_ids.shape[1]:].tolist())


samples = {kind: continue_prompt(r.model) for kind, r in runs.items()}
for kind, text in samples.items():
    print(f"--- {kind} ---\n{prompt}{text}\n")
assert all(len(t) == 200 for t in samples.values())
mira = {kind: t.count("Mira") for kind, t in samples.items()}
print("times each sample reuses the name 'Mira' from the prompt:", mira)

# %% [markdown]
# Neither writes good stories after a minute of training on a CPU: both have picked up spaces,
# punctuation, quotes and short common words, the mosaic somewhat more. Whether a sample reuses
# the name from the prompt (copying, in free generation) is printed above; at this stage it is a
# matter of luck for both — the teacher-forced measurement of §5 is the reliable one.
#
# ## 7. On a GPU: the presets and the papers' recipe
#
# The same code runs on a GPU: bf16 autocast (fp16 with a gradient scaler on older cards),
# fused attention, optional `torch.compile`, gradient accumulation, and data parallelism with
# `torchrun`. Three presets name the sizes:

# %%
print(f"{'preset':>17} | {'model (d, layers, heads, context)':>34} | {'data':>24} | steps x tokens/step")
for name, p in train.PRESETS.items():
    mc = models.MosaicConfig.preset(name)
    tokens_per_step = p["batch_size"] * p["grad_accum"] * mc.block_size
    data_desc = f"{p['data']}/{p['tokenizer']}"
    shape = f"{mc.n_embd}, {mc.n_layer}, {mc.n_head}, {mc.block_size}"
    print(f"{name:>17} | {shape:>34} | {data_desc:>24} | "
          f"{p['max_steps']:,} x {tokens_per_step:,}")
paper_preset = train.PRESETS["paper-gpt2-small"]
assert paper_preset["lr"] == 5e-3 and paper_preset["max_steps"] == 80_000

# %% [markdown]
# The commands (each trains the mosaic; `--model gpt` trains its twin; `--n-layer 1` gives the
# depth-1 pair of this chapter at GPU scale):
#
# ```bash
# python -m mosaics_edu.train --model mosaic --preset cpu-tiny          # a few minutes, any CPU
# python -m mosaics_edu.train --model mosaic --preset gpu-small         # one GPU
# python -m mosaics_edu.train --model gpt    --preset gpu-small
# torchrun --nproc_per_node=8 -m mosaics_edu.train --model mosaic --preset paper-gpt2-small
# ```
#
# Each prints the parameter count, tokens/s and the model-FLOPs utilisation (MFU), and writes
# `metrics.csv` and a checkpoint to `runs/<model>-<preset>/`; `--resume` continues an interrupted
# run exactly. How long will a run take? Training costs about $6N + 12LdT$ FLOPs per token
# ($N$ parameters, $L$ layers, width $d$, context $T$); divide by what the GPU sustains. The cell
# below computes it for the presets, assuming 35 % MFU (a typical bf16 figure for models this
# size; the CLI prints yours). These are **estimates from FLOPs, not measurements**: no GPU
# timing was recorded for this chapter.

# %%
gpus = {"T4 (Colab)": 65e12, "A100": 312e12, "H100": 989e12}
MFU = 0.35
print(f"{'preset':>17} {'model':>7} {'params':>9} {'tokens':>8} " + " ".join(f"{g:>12}" for g in gpus))
for name in ("gpu-small", "paper-gpt2-small"):
    p = train.PRESETS[name]
    for kind in ("mosaic", "gpt"):
        vocab_p = 4096 if p["tokenizer"] == "bpe" else 50304
        cfg_cls = models.MosaicConfig if kind == "mosaic" else models.GPTConfig
        mc = cfg_cls.preset(name, vocab_size=vocab_p)
        with torch.device("meta"):
            n = models.count_parameters((models.MemoryMosaicLM if kind == "mosaic" else models.GPT)(mc))
        tokens = p["max_steps"] * p["batch_size"] * p["grad_accum"] * mc.block_size
        flops = tokens * training_flops_per_token(n, mc.n_layer, mc.n_embd, mc.block_size)
        hours = [flops / (MFU * peak) / 3600 for peak in gpus.values()]
        when = [f"{h * 60:.0f} min" if h < 1 else f"{h:.1f} h" for h in hours]
        print(f"{name:>17} {kind:>7} {n / 1e6:8.2f}M {tokens / 1e9:7.2f}B "
              + " ".join(f"{w:>12}" for w in when))
        if name == "paper-gpt2-small":
            assert round(n / 1e6, 2) == (123.59 if kind == "mosaic" else 123.98)

# %% [markdown]
# The v1 paper's recipe is 80,000 steps of 512 sequences × 512 GPT-2 tokens (21 billion tokens)
# per model, on 64 V100s (v2 trains far larger models on H100s, 1,024 sequences of 4,096 tokens a
# step: chapter 10). The table gives the order of magnitude on one GPU (divide by
# the number of GPUs under `torchrun`; the mosaic's extra small operations may lower its MFU
# below GPT's). What to
# expect at the end, from the papers' code release for **12 blocks**: validation loss ≈ **1.50**
# and training loss ≈ **1.33** nats per GPT-2 token (1.4981 / 1.3337 with the plain PyTorch
# memory, 1.5008 / 1.3294 with the CUDA one), the mosaic and GPT-2 equal within noise from 8
# blocks on, the mosaic ahead at 1 block. Per-GPT-2-token losses are not comparable with our
# per-character ones (a GPT-2 token is about four characters).
#
# `gpu-small` (6 blocks of width 384, a 4,096-token byte-pair vocabulary trained on the generated
# stories, 164 M tokens) is the one-GPU middle ground: minutes on a data-centre GPU and ten
# minutes or more on a Colab T4 by the estimate above (plus preparing the data: generating
# 100,000 stories and training the byte-pair tokenizer run on the CPU first). Its losses have
# not been measured on a GPU for this course yet; run both models and compare their
# `summary.json`.
#
# ## Summary
#
# - The generated stories have thousands of names; after its first occurrence a name can be
#   copied from the context.
# - The papers' recipe: AdamW (0.9, 0.95), weight decay 0.1 on ≥ 2-D tensors only, warm-up then
#   cosine to a floor, gradient clipping at 1 — three small functions.
# - At equal parameter count, one block each, same data and steps, each model at the learning
#   rate and dropout a sweep of equal budget chose for it on validation, the mosaic reached a lower
#   validation loss than the GPT at every one of three seeds, as the papers report for depth 1. A
#   contextual memory is an induction head in one layer: on the letters of repeated names the
#   mosaic's advantage per character is largest, but most of the total gap is measured on the
#   other characters.
# - The same code runs the GPU presets; the papers' 12-block runs end near 1.50 validation loss.
#
# ## Recap questions
#
# 1. Why must `train_step` guard the clipping with `if grad_clip > 0`?
#
# <details><summary>Answer</summary>
#
# `grad_clip = 0` means "no clipping", but `clip_grad_norm_(params, 0)` scales every gradient to
# zero: the step would learn nothing (with AdamW only the weight decay would still act).
# </details>
#
# 2. Which tensors get weight decay, and why not the others?
#
# <details><summary>Answer</summary>
#
# Exactly those with `p.dim() >= 2`: embeddings, projections, the persistent memory's 3-D tables.
# Shrinking a LayerNorm gain or a per-head decay/bandwidth scalar toward 0 would change what the
# layer computes, not just limit its capacity.
# </details>
#
# 3. Why does the learning rate start at `max_lr / warmup_steps` rather than at 0?
#
# <details><summary>Answer</summary>
#
# Step 0 is a real update; at 0 it would be wasted. With `(step + 1) / warmup_steps` the rate
# reaches `max_lr` on the last warm-up step, and step `warmup_steps` starts the cosine at
# `max_lr`.
# </details>
#
# 4. Where does the one-block mosaic beat the one-block GPT, by this chapter's measurements?
#
# <details><summary>Answer</summary>
#
# Per character, most on the letters of names that already occurred (the GPT cannot copy in one
# layer); in total, most of the gap is on all the other characters, which are far more numerous
# (§5 prints the split).
# </details>
#
# ## Further reading
#
# - Zhang, Nolte, Sadhukhan, Chen, Bottou, *Memory Mosaics*, ICLR 2025 (arXiv:2405.06394),
#   Section 7 and its BabiStories appendix.
# - Eldan, Li, *TinyStories: How Small Can Language Models Be and Still Speak Coherent English?* (2023).
# - Loshchilov, Hutter, *Decoupled Weight Decay Regularization* (AdamW, 2019); Loshchilov, Hutter,
#   *SGDR* (cosine schedules, 2017).
# - Olsson et al., *In-context Learning and Induction Heads* (2022): why a transformer needs two
#   layers to copy.
# - Chowdhery et al., *PaLM* (2022), Appendix B: the FLOPs-per-token and MFU accounting.
#
# Next: **06 · In-context learning on stories** — loss position by position, in and out of
# distribution, and names recalled.

# %%
print(f"this notebook ran in {time.perf_counter() - _notebook_start:.0f} s")
