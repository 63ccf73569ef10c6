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
# # 11 · Capstone: a mosaic that learns a language from its context
#
# This chapter is a project. You build two language models of the same size from the package — a
# mosaic and a GPT — train them from scratch on sequences in which **every sequence is written in a
# new language**, measure which of them learns each language from its own context, find the part
# of the mosaic that does the learning, explain one of its predictions with chapter 08's tools, and
# write a conclusion. Each deliverable is a function, checked automatically by the cell below it;
# the rubric says what the checks verify and what a reader judges.
#
# **Prerequisites.** Chapter 02 (the memory unit: keys from the past, values that peek ahead),
# chapter 04 (the mosaic language model and its configuration), chapter 05 (a training loop: AdamW,
# warm-up, clipping), chapter 07 (in-context learning on RegBench, accuracy and TVD, the in-context n-grams),
# chapter 08 (retrieval maps, head ablations). From PyTorch: writing a training loop.
#
# **By the end of this chapter you will have**
#
# - built a fair pair of models (the same size, the same data, the same steps);
# - trained them and measured, position by position, how well each learns a language it has never
#   seen from the sequence itself;
# - found, by ablation, the head of your mosaic that carries that learning, and read what it
#   retrieves for one prediction;
# - written a conclusion whose every number comes from your run.

# %%
import ipywidgets as widgets
import numpy as np
import torch

from mosaics_edu.course import capstone, inspection
from mosaics_edu.course.checks import ch11
from mosaics_edu.course.widgets import defaults, interactive_figure
from mosaics_edu.models import GPT, GPTConfig, MemoryMosaicLM, MosaicConfig

torch.manual_seed(0)
torch.set_num_threads(1)  # tiny models: one thread is fastest and gives the same numbers on any machine

# %% [markdown]
# ## The project and its rubric
#
# **The task.** A *Markov language* over 16 symbols lets each symbol be followed by 3 others, with
# random probabilities: the simplest probabilistic automaton, one whose state is the last symbol
# (chapter 07's RegBench languages have hidden states; here the state is in plain sight). Every
# training sequence — 128 symbols — comes from a fresh random language, and the test languages
# are never seen in training. Nothing about a language can be memorised in the weights: a model
# predicts well only if it learns, within the sequence, which symbols follow which.
#
# **The deliverables**, each an exercise below with its check, and the rubric (100 points):
#
# | # | deliverable | points | the check verifies | a reader judges |
# |---|---|---|---|---|
# | 11.1 | `build_models()` | 10 | sizes, vocabulary, context, causality | the choice of sizes |
# | 11.2 | `train_model(...)` | 25 | losses fall; the mosaic learns in context | the training choices |
# | 11.3 | `bigram_head(model)` | 20 | the head whose removal hurts most | how it was found; its λ, β |
# | 11.4 | `top_pairs(...)` | 15 | the pairs the head weighs most | the explanation of a prediction |
# | 11.5 | `conclusion()` | 30 | length, the run's numbers, the head, a limitation | clarity and honesty |
#
# In detail: 11.1 — vocabulary 16, a context of at least 128, at most 40,000 parameters each and
# within 10 % of each other, both reading only the past, without dropout. 11.2 — both losses
# fall; the mosaic's late accuracy is at least 0.9 and its late TVD below halfway between the
# in-context unigram's and bigram's. 11.3 — the named head is the one whose removal raises the
# late loss most. 11.4 — the three stored pairs are those that head weighs most. 11.5 — at least
# 120 words, both models' late accuracies as measured, the head named, a limitation stated.
#
# The checks give up to 100 points only together with a reader: a check passing means the
# deliverable does what it must, not that the reasoning is good. Compare your run with the
# solutions notebook after you have written your own conclusion.
#
# ## 1. The languages, and what the context alone can teach
#
# `mosaics_edu.course.capstone` draws the languages and the sequences (seeded), and scores predictions
# position by position: **accuracy** (the most likely symbol may follow the current one) and
# **TVD** (total-variation distance to the true next-symbol distribution, chapter 07). Two
# in-context baselines, computed from each sequence alone: the *unigram* (how often each symbol
# appeared so far) and the *bigram* (which symbols followed the current one so far).

# %%
languages, sequences = capstone.test_set()  # (256, 16, 16) transition matrices, (256, 129) symbols
print("one language, the successors of symbol 0 and their probabilities:",
      {int(s): round(float(p), 2) for s, p in enumerate(languages[0, 0]) if p > 0})
print("the start of its sequence:", sequences[0, :24].tolist())
assert (np.count_nonzero(languages, axis=-1) == capstone.SUCCESSORS).all()
assert np.allclose(languages.sum(-1), 1)

# %% [markdown]
# > **Predict before you run.** From the context alone, how close can a predictor come to the true
# > distribution once the sequence is half over? Will the in-context bigram's late TVD be near 0,
# > or will it still be far from it?
#
# <details><summary>What the run showed</summary>
#
# Its late accuracy is near perfect (printed below, asserted above 0.95): after 64 symbols each of
# the 16 symbols has been seen a few times, enough to know which 3 may follow. But its TVD stays
# well above 0 (asserted above 0.1): a few visits give the successors, not their probabilities.
# The unigram learns neither (asserted: its late accuracy under 0.5). This is the bar a model
# that learns in context can reach.
# </details>

# %%
baseline = {name: capstone.scores(capstone.ngram_probs(sequences, order), languages, sequences)
            for name, order in (("unigram", 1), ("bigram", 2))}
for name, s in baseline.items():
    print(f"in-context {name}: late accuracy {capstone.late(s['accuracy']):.3f}, "
          f"late TVD {capstone.late(s['tvd']):.3f} (positions t >= {capstone.LATE})")
bigram_late = {k: capstone.late(v) for k, v in baseline["bigram"].items()}
assert bigram_late["accuracy"] > 0.95 and bigram_late["tvd"] > 0.1
assert capstone.late(baseline["unigram"]["accuracy"]) < 0.5

# %% [markdown]
# The widget shows a language as its transition matrix and the baselines' TVD position by
# position; move `successors` to see how the number of possible next symbols changes what the
# context can teach (the project keeps 3).

# %%
controls = {
    "successors": widgets.IntSlider(value=capstone.SUCCESSORS, min=1, max=8, description="successors"),
    "seed": widgets.IntSlider(value=0, min=0, max=20, description="seed"),
}
interactive_figure(capstone.language_view, capstone.draw_language_view, controls, figsize=(10, 3.8));

# %% [markdown]
# At the defaults (3 successors) the figure shows the bigram's TVD falling as the context grows
# while the unigram's stays high:

# %%
view = capstone.language_view(**defaults(controls))
print({name: {k: round(v, 3) for k, v in s.items()} for name, s in view["late"].items()})
assert view["late"]["bigram"]["tvd"] < view["late"]["unigram"]["tvd"] - 0.3

# %% [markdown]
# ## 2. Deliverable 11.1: a fair pair
#
# **Exercise 11.1 — `build_models`** (★, 10 minutes). Return `(mosaic, gpt)`: a
# `MemoryMosaicLM` and a `GPT` (chapter 04's models) with vocabulary 16 and a context of at least
# 128 tokens, at most 40,000 parameters each, the two within 10 % of each other. The GPT has a
# learned table of position embeddings that the mosaic does not; the mosaic's `pmem_size` is one
# way to make up for it. Keep `dropout=0.0`.

# %% [markdown] tags=["hints"]
# <details><summary><b>Hint 1</b> (a nudge)</summary>
#
# Return `(mosaic, gpt)`, the `MemoryMosaicLM` first, built from one shape shared by both: the
# same `vocab_size` (`capstone.VOCAB`), `block_size` (`capstone.LENGTH`), blocks, heads and width,
# and `dropout=0.0` (the presets bring dropout along). Then count each model's parameters with
# `mosaics_edu.models.count_parameters`: the GPT comes out larger, by its table of position
# embeddings.
# </details>
#
# <details><summary><b>Hint 2</b> (the approach)</summary>
#
# Two blocks of width 32 with two heads keep both models well under 40,000 parameters. The GPT's
# position table holds `block_size × n_embd` = 128 × 32 = 4,096 parameters the mosaic lacks; make
# them up in the mosaic's persistent memory. `pmem_size` defaults to 3.5 × `n_embd` = 112, and
# each extra row adds `n_embd` numbers to each of a block's two tables. Leave the GPT's position
# table whole: both models read 128 tokens.
# </details>
#
# <details><summary><b>Hint 3</b> (the key line)</summary>
#
# ```python
# mosaic = MemoryMosaicLM(MosaicConfig(**shape, pmem_size=112 + 32))  # 2 blocks x 2 tables x 32 x 32
# ```
# </details>

# %% tags=["exercise"]
def build_models() -> tuple[MemoryMosaicLM, GPT]:
    """A mosaic and a GPT for 16-symbol languages, context 128, equal in size within 10 %."""
    ### BEGIN SOLUTION
    shape = dict(vocab_size=capstone.VOCAB, block_size=capstone.LENGTH, n_layer=2, n_head=2, n_embd=32,
                 dropout=0.0)
    # 2 blocks x 2 tables x 32 more rows x 32 = 4,096: the GPT's 128 x 32 position table
    mosaic = MemoryMosaicLM(MosaicConfig(**shape, pmem_size=112 + 32))
    gpt = GPT(GPTConfig(**shape))
    return mosaic, gpt
    ### END SOLUTION


# %% tags=["check"]
ch11.check_build_models(build_models)

# %% [markdown]
# ## 3. Deliverable 11.2: training from scratch
#
# **Exercise 11.2 — `train_model`** (★★, 15 minutes). Train `model` in place for `steps` steps
# on `capstone.training_batch(step, batch_size, seed)` (fresh languages at every step; 32
# sequences is a good batch) and return the list of the `steps` training losses as floats.
# Chapter 05's loop is what you need: AdamW, a short linear warm-up, gradient clipping. The
# check trains *your* pair with *your* function for `capstone.TRAIN_STEPS` steps each (about a
# minute of CPU for both at the sizes above), scores both on the held-out languages, and
# keeps the result for the later checks.

# %% [markdown] tags=["hints"]
# <details><summary><b>Hint 1</b> (a nudge)</summary>
#
# Chapter 05's loop, fed by `capstone.training_batch(step, 32, seed)`: at every step a forward
# pass with targets gives the loss, then backward, clipping and an optimizer step, and the loss
# goes into the list the function returns.
# </details>
#
# <details><summary><b>Hint 2</b> (the approach)</summary>
#
# Seed with `torch.manual_seed(seed)`, make one `torch.optim.AdamW` over `model.parameters()` (a
# peak learning rate of a few 10⁻³), and call `model.train()`. In every step: set each param
# group's `"lr"` for a linear warm-up over the first 30 or so steps, zero the gradients, call
# `loss.backward()`, `torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)` and
# `optimizer.step()`, and append `float(loss.detach())`. Return exactly `steps` numbers.
# </details>
#
# <details><summary><b>Hint 3</b> (the key line)</summary>
#
# ```python
# x, y = capstone.training_batch(step, 32, seed)  # (32, 128) each: fresh languages at every step
# _, loss = model(x, y)  # given targets, the model returns (logits, loss)
# ```
# </details>

# %% tags=["exercise"]
def train_model(model: torch.nn.Module, steps: int, seed: int) -> list[float]:
    """Train ``model`` in place on capstone.training_batch; one loss per step."""
    ### BEGIN SOLUTION
    torch.manual_seed(seed)
    peak, warmup = 3e-3, 30
    optimizer = torch.optim.AdamW(model.parameters(), lr=peak, betas=(0.9, 0.95), weight_decay=0.0)
    model.train()
    losses = []
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = peak * min(1.0, (step + 1) / warmup)
        x, y = capstone.training_batch(step, 32, seed)  # (32, 128) each
        _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses
    ### END SOLUTION


# %% [markdown]
# > **Predict before you run.** Same size, same data, same 200 steps: which of the two models will
# > have learned the languages from their context — both, the mosaic only, the GPT only, neither?
# > Think of what each needs to find the symbols that followed the current one (chapter 02's
# > one-layer induction head; chapter 08's two-block circuit in a GPT).
#
# <details><summary>What the reference run showed</summary>
#
# In the solutions notebook (seed 0, the models and loop of the solutions), the check printed a
# mosaic at the in-context bigram's late accuracy and close to its TVD, and a GPT still near the
# unigram's level after 200 steps: a GPT must first grow a two-block circuit (a previous-symbol head
# feeding a matching head), where one memory unit with a small decay does the job alone. Your run
# prints its own numbers; they are the ones your conclusion quotes.
# </details>

# %% tags=["check"]
ch11.check_train_model(train_model, build_models)

# %% [markdown]
# ## 4. Deliverable 11.3: the head that learns in context
#
# **Exercise 11.3 — `bigram_head`** (★★★, 15 minutes). Return `(block, head)`: the head of the
# trained mosaic's contextual memories whose removal raises the loss at the late positions
# (t ≥ `capstone.LATE`) of the held-out sequences (`capstone.test_set()`) the most. Chapter 08's
# `inspection.per_token_loss(model, idx, targets, ablate=[(block, "cmem", head)])` zeroes one
# head. Then look at that head's decay λ and bandwidth β (`inspection.head_parameters(model)`):
# what do they say about its keys?

# %% [markdown] tags=["hints"]
# <details><summary><b>Hint 1</b> (a nudge)</summary>
#
# An ablation, as in chapter 08: the late loss of the held-out sequences with every head, then
# with one head of the contextual memories zeroed at a time. The answer is the head whose removal
# raises that loss the most.
# </details>
#
# <details><summary><b>Hint 2</b> (the approach)</summary>
#
# Take `seqs = capstone.test_set()[1]`, inputs `seqs[:, :-1]` and targets `seqs[:, 1:]`.
# `inspection.per_token_loss(model, x, y)` gives one loss per sequence and position: keep the
# late columns, `[:, capstone.LATE:]`, and average them. Do it once as it is, then for every
# `block` in `range(model.config.n_layer)` and `head` in `range(model.config.n_head)` with
# `ablate=[(block, "cmem", head)]`, and return the (block, head) of the largest rise as two ints.
# </details>
#
# <details><summary><b>Hint 3</b> (the key line)</summary>
#
# ```python
# ablated = inspection.per_token_loss(model, x, y, ablate=[(block, "cmem", head)])  # one head zeroed
# ```
# </details>

# %% tags=["exercise"]
def bigram_head(model: MemoryMosaicLM) -> tuple[int, int]:
    """(block, head) whose ablation raises the late loss on the held-out languages most."""
    ### BEGIN SOLUTION
    seqs = capstone.test_set()[1]
    x, y = seqs[:, :-1], seqs[:, 1:]
    base = inspection.per_token_loss(model, x, y)[:, capstone.LATE:].mean()
    rise = {}
    for block in range(model.config.n_layer):
        for head in range(model.config.n_head):
            ablated = inspection.per_token_loss(model, x, y, ablate=[(block, "cmem", head)])
            rise[block, head] = float(ablated[:, capstone.LATE:].mean() - base)
    return max(rise, key=rise.get)
    ### END SOLUTION


# %% tags=["check"]
ch11.check_bigram_head(bigram_head, build_models, train_model)

# %% [markdown]
# ## 5. Deliverable 11.4: one prediction, explained
#
# **Exercise 11.4 — `top_pairs`** (★★, 10 minutes). For the symbol sequence `tokens` (T,) and a
# query position `t`, return the three stored positions s < t that head (`block`, `head`) weighs
# most when it predicts token t + 1, heaviest first. Chapter 08's `inspection.trace` records every
# head's retrieval map. Then read them: what symbol sits at each s, and which symbol did each
# pair's value peek at?

# %% [markdown] tags=["hints"]
# <details><summary><b>Hint 1</b> (a nudge)</summary>
#
# `inspection.trace(model, tokens[None])` records every head's retrieval weights (chapter 08).
# You need one row of one of its maps: the weights that query t gives the stored positions s.
# </details>
#
# <details><summary><b>Hint 2</b> (the approach)</summary>
#
# `trace(...).maps[block]` has shape (batch, n_head, T, T), indexed [batch, head, query t, pair s]:
# take batch 0, your head and row t — not column t, which holds what later queries give pair t.
# Its weights are 0 for s ≥ t. Sort the positions from the heaviest weight down, keep three and
# return them as a list of ints: the stored positions s themselves, not the s + 1 their values
# peeked at.
# </details>
#
# <details><summary><b>Hint 3</b> (the key line)</summary>
#
# ```python
# weights = inspection.trace(model, tokens[None]).maps[block][0, head, t]  # (T,): query t's weights
# ```
# </details>

# %% tags=["exercise"]
def top_pairs(model: MemoryMosaicLM, tokens: torch.Tensor, t: int, block: int, head: int) -> list[int]:
    """The three positions s < t that (block, head) weighs most at query t, heaviest first."""
    ### BEGIN SOLUTION
    weights = inspection.trace(model, tokens[None]).maps[block][0, head, t]  # (T,): query t's weights
    return weights.argsort(descending=True)[:3].tolist()
    ### END SOLUTION


# %% tags=["check"]
ch11.check_top_pairs(top_pairs, build_models, train_model)

# %% [markdown]
# ## 6. Deliverable 11.5: the conclusion
#
# **Exercise 11.5 — `conclusion`** (★★, 10 minutes). Return your conclusion as a string of at
# least 120 words: what you built, what it measured (both models' late accuracies, as your run
# measured them, with two decimals), which head carries the in-context learning (as "block B,
# head H") and what it retrieves, and one limitation of the experiment (a sentence with the word
# "limitation"). Build the numbers into the text from the run (`capstone.experiment(build_models,
# train_model)` returns the trained models and their scores, from the cache the checks filled),
# never by typing them.

# %% [markdown] tags=["hints"]
# <details><summary><b>Hint 1</b> (a nudge)</summary>
#
# Write the text as an f-string filled from the run: `capstone.experiment(build_models,
# train_model)` returns the trained models and, under `"late"`, each model's late accuracy and
# TVD (the checks above already trained them, so the call returns at once); your `bigram_head`
# names the head.
# </details>
#
# <details><summary><b>Hint 2</b> (the approach)</summary>
#
# Quote both models' late accuracies with two decimals, name the head as `block B, head H`, say
# what it retrieves (your `top_pairs` at one position of a test sequence), set the numbers beside
# the in-context baselines (`run["late"]["bigram"]`, `run["late"]["unigram"]`), and give one
# sentence with the word "limitation". Count the words with `len(text.split())`: at least 120.
# </details>
#
# <details><summary><b>Hint 3</b> (the key line)</summary>
#
# ```python
# acc = {name: f"{run['late'][name]['accuracy']:.2f}" for name in ("mosaic", "gpt")}  # as the check reads
# ```
# </details>

# %% tags=["exercise"]
def conclusion() -> str:
    """The project's conclusion, its numbers read from the run."""
    ### BEGIN SOLUTION
    run = capstone.experiment(build_models, train_model)
    late, mosaic = run["late"], run["models"]["mosaic"]
    block, head = bigram_head(mosaic)
    params = inspection.head_parameters(mosaic)[block]
    seq = capstone.test_set()[1][0, :-1]
    pairs = top_pairs(mosaic, seq, 100, block, head)
    same = sum(int(seq[s]) == int(seq[100]) for s in pairs)
    acc = {name: scores["accuracy"] for name, scores in late.items()}
    learned = "learned" if acc["mosaic"] >= acc["bigram"] - 0.05 else "did not learn"
    gpt_at = "stayed near the unigram's level" if acc["gpt"] < acc["unigram"] + 0.05 else "beat the unigram"
    return (
        f"I trained a two-block mosaic and a two-block GPT of the same size for {capstone.TRAIN_STEPS} "
        f"steps on sequences that each come from a new random Markov language. On held-out languages, "
        f"from position {capstone.LATE} on, the mosaic's accuracy was {late['mosaic']['accuracy']:.2f} "
        f"(TVD {late['mosaic']['tvd']:.2f}) and the GPT's {late['gpt']['accuracy']:.2f} (TVD "
        f"{late['gpt']['tvd']:.2f}), against {late['bigram']['accuracy']:.2f} for the in-context bigram "
        f"and {late['unigram']['accuracy']:.2f} for the unigram: the mosaic {learned} each language from "
        f"its context, and the GPT {gpt_at}. Removing block {block}, head {head} raised the late loss "
        f"most. Its decay is {float(params['decay'][head]):.3f} and its bandwidth "
        f"{float(params['beta'][head]):.0f}: at position 100 of a test sequence, {same} of its three "
        f"heaviest stored pairs hold the current symbol, and their values peek at the symbols that "
        f"followed it, which is the in-context bigram written as a memory. Limitation: one seed, one "
        f"learning rate tuned for neither model and {capstone.TRAIN_STEPS} steps; a GPT trained longer "
        f"may grow the two-block circuit it needs, so this shows which model learns the task faster, "
        f"not which one can learn it."
    )
    ### END SOLUTION


# %% tags=["check"]
ch11.check_conclusion(conclusion, build_models, train_model)

# %% [markdown]
# ## Summary
#
# - A language per sequence leaves a model one way to predict well: learn the language from the
#   sequence. The in-context bigram (count what followed the current symbol) sets the bar: near
#   perfect accuracy once each symbol has been seen a few times, a TVD that falls more slowly.
# - A memory unit whose key is the current symbol (a small decay λ) and whose value peeks at the
#   next one *is* that bigram, written as a memory; a large β makes it retrieve only the pairs
#   of the same symbol.
# - A fair comparison fixes the size, the data and the steps; a head ablation (chapter 08) names
#   the part of a model that carries a behaviour, and its retrieval map explains one prediction.
# - A conclusion quotes the run's own numbers and says what they do not show.
#
# ## Recap questions
#
# 1. Why can no model here memorise a language in its weights, and what does that leave it?
# 2. Why does the in-context bigram's accuracy reach its ceiling long before its TVD does?
# 3. What decay λ and what bandwidth β make a memory unit behave like the in-context bigram, and
#    why?
# 4. Your GPT may stay near the unigram after 200 steps. Name two experiments that would tell
#    "slower to learn the task" from "cannot learn it".
#
# <details><summary>Answers</summary>
#
# 1. Every sequence has its own random language and the test languages are never trained on:
#    whatever the weights store about one language is wrong for the next. What is left is learning
#    from the context: which symbols followed which in this sequence.
# 2. Accuracy only needs the most likely successor to be a valid one: one visit to a symbol
#    already shows a valid successor. TVD needs the probabilities, which counts estimate slowly
#    (their error shrinks like one over the square root of the visits).
# 3. λ ≈ 0, so the key is the current symbol alone; a large β, so only stored pairs with the same
#    symbol get weight. Their values peek at the next symbol, so the answer averages the symbols
#    that followed the current one: the in-context bigram's counts.
# 4. Train both for many more steps (and several seeds) and watch the GPT's late accuracy; tune
#    each model's learning rate on held-out languages (chapter 05's fair fights); or give the GPT
#    one more block. If its curve rises later to the bigram's level, it was slower, not unable.
#
# </details>
#
# ## Further reading
#
# - Akyürek, Wang, Kim, Andreas, *In-Context Language Learning: Architectures and Algorithms*
#   (ICML 2024): RegBench, and which architectures learn regular languages in context.
# - Olsson et al., *In-context Learning and Induction Heads* (Transformer Circuits, 2022): the
#   two-layer circuit a transformer grows to copy from its context.
# - Zhang, Nolte, Sadhukhan, Chen, Bottou, *Memory Mosaics*, ICLR 2025: in-context learning with
#   associative memories, and the RegBench comparison this project echoes.
# - The course's glossary, exercise index and paper ↔ course map (README) for what to revisit.
