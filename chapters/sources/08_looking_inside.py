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
# # 08 · Looking inside a trained mosaic
#
# The papers' promise is transparency. Every head of a Memory Mosaic is an associative memory:
# its key at position $s$ summarises the recent past, its value peeks one token ahead, and its
# answer at position $t$ is a weighted average of the values of the pairs $s < t$ it stored. So a
# prediction can be traced back to the exact places in the context it read. In this chapter we
# trace predictions of the trained two-block story models shipped for chapter 06, and measure what
# every head has become, next to the GPT of the same size.
#
# **Prerequisites.** Chapter 02 (a memory unit's keys, values and retrieval weights), chapter 04
# (heads, blocks, the residual stream) and chapter 06 (the two story models, names and their
# later mentions).
#
# **By the end of this chapter you will be able to**
#
# - read a head's retrieval map and say which stored pairs answered a prediction, and what they
#   brought;
# - score heads on held-out text (induction, same-token, previous-token, recency) and compute the
#   induction score of a map yourself;
# - relate a head's learned decay λ to how far back it actually reads;
# - split the logit of the correct next token into the direct contributions of each block's
#   contextual and persistent memory, and say where names come from;
# - ablate a head or a memory and measure what it was for.
#
# Time: a few seconds of computing (the README's course map gives the measured time); the models
# are loaded, not trained.

# %%
import json
import time

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch

from mosaics_edu.course import icl, inspection, tuning
from mosaics_edu.course.checks import ch08
from mosaics_edu.course.inspection_views import (
    distance_profile,
    draw_explorer,
    draw_head_card,
    head_card,
    visible,
)
from mosaics_edu.course.widgets import defaults, interactive_figure
from mosaics_edu.data import STORY_SEPARATOR, generate_stories, name_spans
from mosaics_edu.data.stories import generate_ood_stories

torch.set_num_threads(1)
_ = torch.manual_seed(0)
_notebook_start = time.perf_counter()

# %% [markdown]
# ## 1. The two models
#
# The package ships the two story models of chapter 06: a Memory Mosaic and a GPT of the same size
# (two blocks, four heads per block, width 64, a context of 256 byte-pair tokens), trained on the
# course's generated stories with the same data, steps, batch and schedule, each at the learning
# rate and dropout its own tuning chose (chapter 06 prints the sweep). Loading them takes a second.

# %%
loaded = {kind: icl.load_story_model(kind) for kind in icl.STORY_MODEL_KINDS}
mosaic, tok = loaded["mosaic"]
gpt, _ = loaded["gpt"]
MODELS = {"mosaic": mosaic, "gpt": gpt}
for kind, model in MODELS.items():
    info = icl.story_model_info(kind)
    n = sum(p.numel() for p in model.parameters())
    print(f"{kind:>6}: {n:,} parameters, {model.config.n_layer} blocks × {model.config.n_head} heads, "
          f"validation loss {info['val_loss_shipped']:.3f} nats per token")
BLOCK = mosaic.config.block_size
L, H = mosaic.config.n_layer, mosaic.config.n_head  # blocks, heads per block (the same for both)
assert L >= 2 and (gpt.config.n_layer, gpt.config.n_head) == (L, H)

# %% [markdown]
# Held-out text: test stories (a stream of generated stories no training run reads), cut into
# windows of 256 tokens that each start at the start of a story. We mark the **targets the context
# can supply**: the tokens of a name that already occurred earlier in the same story. Nothing in
# the training data can tell a model *which* name a story uses; only the context can.

# %%
valid_stories = generate_stories(40, seed=0, split="test")
N_WINDOWS = 16
windows = icl.story_windows(tok, valid_stories, BLOCK, n_windows=N_WINDOWS)  # (N, T + 1)
idx, targets = windows[:, :-1], windows[:, 1:]  # (N, T) each


def name_targets(window: torch.Tensor, story) -> np.ndarray:
    """(T,) True where the target (the token at t + 1) belongs to a name already seen in the story;
    the positions after the story's end (the window runs into the next story) are left out."""
    text = tok.decode(window.tolist())
    end = text.find(STORY_SEPARATOR)
    spans = [sp for sp in name_spans(text, story.names) if end < 0 or sp.end <= end]
    return inspection.repeated_name_mask(tok, window.tolist(), spans)[:-1]


is_name = torch.tensor(np.stack([name_targets(w, st) for w, st in zip(windows, valid_stories, strict=False)]))
print(f"{N_WINDOWS} windows × {BLOCK} tokens; {int(is_name.sum())} targets are tokens of a repeated name "
      f"({is_name.float().mean():.1%})")
assert is_name.sum() > 100

# %% [markdown]
# ## 2. One prediction, traced
#
# The first test story names its hero in the first sentence and repeats the name many
# times. Take a later mention: when the model reaches the name's first token, the next token is a
# part of the name only the context knows. Which stored pairs did each head read there?
#
# `inspection.trace` runs the model once and keeps what its forward pass throws away: every
# head's **retrieval map** (the weights $w_{ts}$ of query $t$ over stored pairs $s < t$, written out
# by the same `causal_retrieval` the model uses), every head's output and every block's
# contributions. `inspection.top_pairs` lists the pairs with the largest weights; since the value
# of pair $s$ peeks at the token at $s + 1$, each pair brings a token: the one that followed $s$.

# %%
story0 = valid_stories[0]
text0 = story0.text
ids0 = tok.encode(text0)[:BLOCK]
text0 = tok.decode(ids0)
hero = story0.names[0]
offsets = np.cumsum([0] + [len(t) for t in inspection.token_strings(tok, ids0)])
mention = [sp for sp in name_spans(text0, [hero]) if sp.repeated][2]  # the hero's 4th mention
first_tok = int(np.searchsorted(offsets, mention.start, side="right") - 1)
name_tokens = [t for t in range(len(ids0)) if offsets[t] < mention.end and offsets[t + 1] > mention.start]
POSITION = first_tok if len(name_tokens) > 1 else first_tok - 1  # its target is a piece of the name
tr0 = inspection.trace(mosaic, torch.tensor([ids0]))
same = np.array(ids0[:POSITION]) == ids0[POSITION]  # earlier copies of the query's token
copy_mass = np.array([[float(m[0, h, POSITION, :POSITION][same].sum()) for h in range(m.shape[1])]
                      for m in tr0.maps])  # (L, H)
# γ < ½: the head's value is mostly the *next* token (section 3 says more); among those heads,
# several put all their weight on the copies: the first of them, reading the masses to three
# decimals (a tie decided by float rounding could go either way)
gamma = np.array([p["gamma"] for p in inspection.head_parameters(mosaic)])  # (L, H)
candidates = np.where(gamma < 0.5, copy_mass.round(3), -1.0)
LAYER, HEAD = (int(i) for i in np.unravel_index(candidates.argmax(), copy_mass.shape))
print(f"hero '{hero}' is {len(name_tokens)} tokens: {[visible(tok.decode([ids0[t]])) for t in name_tokens]}")
print(f"query position {POSITION} ('{visible(tok.decode([ids0[POSITION]]))}'), "
      f"target '{visible(tok.decode([ids0[POSITION + 1]]))}'")
print("weight on earlier copies of the query token, per block (rows) and head (columns):")
print(np.round(copy_mass, 3))
print(f"-> we look at block {LAYER}, head {HEAD}")
pairs0 = inspection.top_pairs(tr0.maps[LAYER][0, HEAD, POSITION], ids0, offset=1, k=5)
for p in pairs0:
    print(f"  s={p['s']:3d}  weight {p['weight']:.3f}  token at s '{visible(tok.decode([p['token']]))}'"
          f"  -> its value brings '{visible(tok.decode([p['peeked']]))}'")
assert copy_mass[LAYER, HEAD] > 0.9 and pairs0[0]["peeked"] == ids0[POSITION + 1]

# %% [markdown]
# The printout says it all: at the hero's fourth mention, the chosen head reads almost only the
# earlier places where the same token stood, and each of those pairs' values brings the piece of
# the name that followed. A single head here does what a transformer needs two layers for (chapter
# 05): find the earlier copy, and bring what came after it.
#
# **The retrieval explorer.** Type or paste any text (press Enter), pick a position, a block and a
# head. The text is shaded by the head's weight on each stored pair (the query is boxed); the bars
# list the top pairs with the text around them and the token each value peeked at; the title says
# what this head alone would vote for (its weights summed per peeked token) and what the whole
# model predicts. On the right, the head's entire retrieval map: row $t$ is what position $t$ read.

# %%
text_box = widgets.Text(value=text0, description="text", continuous_update=False,
                        layout=widgets.Layout(width="420px"))
position_slider = widgets.IntSlider(value=POSITION, min=1, max=len(ids0) - 1, description="position")


def _fit_position(change) -> None:
    """A new text: the position slider spans its tokens."""
    position_slider.max = max(1, min(BLOCK, len(tok.encode(change["new"]))) - 1)


text_box.observe(_fit_position, names="value")
explorer_controls = {
    "model": mosaic, "tokenizer": tok,
    "text": text_box,
    "position": position_slider,
    "layer": widgets.Dropdown(options=list(range(mosaic.config.n_layer)), value=LAYER, description="block"),
    "head": widgets.Dropdown(options=list(range(mosaic.config.n_head)), value=HEAD, description="head"),
}
interactive_figure(inspection.explorer_view, draw_explorer, explorer_controls, figsize=(13, 7))

# %% [markdown]
# At the widget's defaults (the hero's fourth mention) the view must show the head reading earlier
# copies of the query token, and those copies' values bringing the name's next piece:

# %%
view = inspection.explorer_view(**defaults(explorer_controls))
top_peeks = [p["peeked_text"] for p in view["top"]]
print("top pairs bring:", [visible(t) for t in top_peeks], "| true next:", visible(view["next"]))
print("head's vote:", [(visible(k), round(v, 3)) for k, v in view["vote"][:3]])
print("model's prediction:", [(visible(k), round(p, 3)) for k, p in view["prediction"][:3]])
assert view["position"] == POSITION and abs(view["row"].sum() - 1) < 1e-5
assert view["vote"][0][0] == view["next"], "the head's strongest vote is the true next token"

# %% [markdown]
# ## 3. What each head became
#
# One position is an anecdote. We now score every head on all the held-out windows, from its
# retrieval map $w_{ts}$ (for the GPT: its attention map, where position $t$ reads $s \le t$):
#
# - **induction score**: the mass on pairs whose value brings *the token that followed an earlier
#   occurrence of the current token*, averaged over the queries whose token did occur before. For
#   a mosaic these are the pairs with $x_s = x_t$ (the value of $s$ already peeks at $s+1$); for a
#   GPT, whose value at $s$ is position $s$ itself, the pairs with $x_{s-1} = x_t$;
# - **same-token mass**: the mass on $s < t$ with $x_s = x_t$ (for a mosaic, the same number as
#   the induction score, by construction; for a GPT, a head that looks at earlier copies of the
#   current token *itself*);
# - **previous-token mass**: the weight on $s = t - 1$;
# - **recency**: the mean distance $\sum_s w_{ts}\,(t - s)$.
#
# Our induction score is a **prefix-matching** score measured on story text. Olsson et al. (2022)
# define an induction head by its behaviour on sequences of *random* tokens repeated once: from a
# token of the second copy it attends to the token that followed the same token in the first copy
# (prefix matching) *and* raises that token's logit (copying). On stories, where a name's later
# pieces also follow each other for other reasons, a high score is weaker evidence; below, a mosaic
# head must also bring the next token (γ < ½) to count, a stand-in for the copying half.

# %% [markdown]
# **Exercise 8.1 — the induction score** (★, 10 minutes). Write the score of one block of a
# mosaic from its retrieval map: for each head, at every query $t$ whose token occurred before,
# the weight on the pairs $s < t$ with $x_s = x_t$; then the mean over those queries.
# `weights` `(H, T, T)` (rows are queries, each row over $s < t$ sums to 1, row 0 is 0) and
# `ids` `(T,)`, any $H \ge 1$. Return `(H,)` floats; when no token occurs twice, no query
# qualifies and the mean over nothing is `nan` for every head (`np.full(H, np.nan)`).

# %% [markdown] tags=["hints"]
# <details><summary><b>Hint 1</b> (a nudge)</summary>
#
# Two boolean tables decide everything: which pairs $(t, s)$ count ($s < t$ and the same
# token), and which queries $t$ take part in the mean (those with at least one such $s$).
# </details>
#
# <details><summary><b>Hint 2</b> (the approach)</summary>
#
# `same = (ids[None, :] == ids[:, None]) & np.tri(T, k=-1, dtype=bool)` `(T, T)`; the mass of
# head $h$ at query $t$ is the sum of `weights[h, t]` over `same[t]`; `rows = same.any(axis=1)`
# picks the queries; average the mass over those, per head.
# </details>
#
# <details><summary><b>Hint 3</b> (the key line)</summary>
#
# ```python
# mass = (weights * same).sum(axis=-1)  # (H, T): each query's weight on earlier copies
# ```
# </details>

# %% tags=["exercise"]
def induction_score(weights: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """weights: (H, T, T) with weights[h, t, s] the weight of query t on pair s; ids: (T,) -> (H,)."""
    ### BEGIN SOLUTION
    T = len(ids)
    earlier_copy = (ids[None, :] == ids[:, None]) & np.tri(T, k=-1, dtype=bool)  # (T, T): s < t, x_s = x_t
    rows = earlier_copy.any(axis=1)  # (T,): queries whose token occurred before
    mass = (weights * earlier_copy).sum(axis=-1)  # (H, T)
    return mass[:, rows].mean(axis=-1)
    ### END SOLUTION


# %% tags=["check"]
ch08.check_induction_score(induction_score)

# %% [markdown]
# The package's `inspection.head_scores` computes these scores for every head. Next to them, the
# mosaic's learned per-head parameters: the decay λ of its keys' leaky average
# (the fraction of the past kept per step), β (how sharply it matches) and γ (how much of the
# value is the current token rather than the next one), with λ's and β's initial values.
#
# > **Predict before you run.** The next cell also scores the two architectures *before* any
# > training. Will an untrained mosaic head already put more than chance weight on earlier copies
# > of the current token? An untrained GPT head?
#
# <details><summary>What the run showed</summary>
#
# The untrained mosaic heads already do: every one of them scores at least five times the chance
# level of 0.040 (the "(untrained)" column; asserted). The untrained GPT heads read almost uniformly:
# all of them stay below twice the chance level (asserted). Matching comes with the mosaic's
# architecture; the paragraph after the table says why.
# </details>

# %%
traces = {kind: inspection.trace(model, idx) for kind, model in MODELS.items()}
scores = {kind: [inspection.head_scores(m, idx, inspection.value_offset(MODELS[kind])) for m in tr.maps]
          for kind, tr in traces.items()}
params = inspection.head_parameters(mosaic)
# the same architectures before any training (same configurations, seed 0): what training changed
torch.manual_seed(0)
untrained = {kind: type(model)(model.config).eval() for kind, model in MODELS.items()}
scores0 = {kind: [inspection.head_scores(m, idx, inspection.value_offset(model))
                  for m in inspection.trace(model, idx).maps] for kind, model in untrained.items()}
# a head that reads every past pair equally, scored on the same windows: the chance level
T = idx.shape[1]
uniform = torch.ones(T, T).tril(-1)
uniform = (uniform / uniform.sum(-1, keepdim=True).clamp_min(1))[None, None].expand(N_WINDOWS, 1, T, T)
chance = inspection.head_scores(uniform.numpy(), idx, offset=1)

print(f"{'model':>6} {'head':>4} {'induction':>9} {'(untrained)':>11} {'same-tok':>8} {'prev-tok':>8} "
      f"{'recency':>7} {'λ':>6} {'λ init':>6} {'β':>6} {'β init':>6} {'γ':>6}")
for kind in MODELS:
    for layer, sc in enumerate(scores[kind]):
        for h in range(len(sc["induction"])):
            before = scores0[kind][layer]["induction"][h]
            row = (f"{kind:>6} {layer}.{h:<2} {sc['induction'][h]:9.3f} {before:11.3f} "
                   f"{sc['same_token'][h]:8.3f} {sc['previous_token'][h]:8.3f} {sc['recency'][h]:7.1f}")
            if kind == "mosaic":
                p = params[layer]
                row += (f" {p['decay'][h]:6.3f} {p['decay_init'][h]:6.3f} {p['beta'][h]:6.1f} "
                        f"{p['beta_init'][h]:6.1f} {p['gamma'][h]:6.2f}")
            print(row)
print(f"chance (a head reading every past pair equally): induction {chance['induction'][0]:.3f}, "
      f"previous-token {chance['previous_token'][0]:.3f}, recency {chance['recency'][0]:.1f}")
untrained_mosaic = np.concatenate([sc["induction"] for sc in scores0["mosaic"]])
untrained_gpt = np.concatenate([sc["induction"] for sc in scores0["gpt"]])
assert untrained_mosaic.min() > 5 * chance["induction"][0], "untrained mosaic heads already match tokens"
assert untrained_gpt.max() < 2 * chance["induction"][0], "untrained GPT heads read almost uniformly"

# %% [markdown]
# Compare each trained head with its untrained twin (the column in brackets). An untrained GPT head
# reads almost uniformly: its scores sit at the chance level. An untrained mosaic head already puts
# much of its weight on earlier copies of the current token (every one of them at least five times
# the chance level, asserted above): its key is a leaky
# average of *projected tokens*, so two positions holding the same token (with little leak) get
# nearly the same key, and the softmax prefers them. Matching is built into the architecture; it
# is not learned. What training sets is *what the match brings*. A value is
# $\bar v_s = \gamma\,\tilde v_s + (1 - \gamma)\,\tilde v_{s+1}$: with γ near 1 a head matching
# the current token brings the current token back (a same-token head); with γ below ½ its value is
# mostly the **next** token, the one that followed the earlier copy — the induction step.
#
# **Which heads are induction heads?** For the mosaic we call a head an induction head when its
# induction score is at least 0.3 and at least five times the chance level printed above, **and**
# its value is mostly the next token (γ < ½). For the GPT, whose value at $s$ is position $s$
# itself, the induction score already counts only the pairs that bring what followed an earlier
# copy; the same two thresholds apply to it.

# %%
INDUCTION_MIN, CHANCE_FACTOR, GAMMA_MAX = 0.3, 5.0, 0.5
threshold = max(INDUCTION_MIN, CHANCE_FACTOR * chance["induction"][0])
induction_heads = {
    kind: [(layer, h) for layer, sc in enumerate(scores[kind]) for h in range(len(sc["induction"]))
           if sc["induction"][h] >= threshold
           and (kind != "mosaic" or params[layer]["gamma"][h] < GAMMA_MAX)]
    for kind in MODELS}
for kind, heads in induction_heads.items():
    print(f"{kind:>6}: induction heads (block.head): {[f'{a}.{b}' for a, b in heads] or 'none'}")
gpt_by_score = sorted(((i, h) for i in range(L) for h in range(H)),
                      key=lambda ih: -scores["gpt"][ih[0]]["induction"][ih[1]])
gpt_best = gpt_by_score[0]
print(f"the GPT's highest induction score: head {gpt_best[0]}.{gpt_best[1]}, "
      f"{scores['gpt'][gpt_best[0]]['induction'][gpt_best[1]]:.3f} (threshold {threshold:.3f}); its largest "
      f"previous-token mass: {max(sc['previous_token'].max() for sc in scores['gpt']):.3f}")
assert {i for i, _ in induction_heads["mosaic"]} == set(range(L)) and not induction_heads["gpt"]
assert max(sc["previous_token"].max() for sc in scores["gpt"]) < 0.5, "no GPT head reads mostly t - 1"

# %% [markdown]
# The table's score columns as a picture: one row per head, the induction score before and after
# training, the same-token and the previous-token mass (all shares of a head's weight, from 0 to
# 1); a dot marks the heads that pass the induction-head test.

# %%
columns = {"induction": "induction", "induction (untrained)": None, "same-token": "same_token",
           "previous-token": "previous_token"}
fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), sharey=True)
for ax, kind in zip(axes, MODELS, strict=True):
    heads = [(layer, h) for layer in range(L) for h in range(H)]
    grid = np.array([[scores0[kind][layer]["induction"][h] if key is None else scores[kind][layer][key][h]
                      for key in columns.values()] for layer, h in heads])  # (L*H, 4)
    im = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    for (i, j), value in np.ndenumerate(grid):
        ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7,
                color="black" if value > 0.6 else "white")
    for i, head in enumerate(heads):
        if head in induction_heads[kind]:
            ax.plot(-0.75, i, "o", color="tab:red", ms=5, clip_on=False)
    ax.set_xticks(range(len(columns)), list(columns), rotation=20, fontsize=8)
    ax.set_yticks(range(len(heads)), [f"{layer}.{h}" for layer, h in heads], fontsize=8)
    ax.set_title(f"{kind}: head scores on the held-out windows", fontsize=10)
axes[0].set_ylabel("block.head")
fig.colorbar(im, ax=axes, shrink=0.8, label="share of the head's weight")
plt.show()

# %% [markdown]
# The mosaic has several induction heads in both blocks (listed above, dotted in the picture); the
# heads left out either read nearby positions, or match the current token but bring mostly that
# token back (γ ≥ ½).
# The GPT has none by this criterion, after 1,500 steps at its own tuned setting. A two-block
# transformer *can* build one — a first-block head that moves each position's previous token into
# it, and a second-block head that matches on it — but no head of this GPT attends mostly to the
# previous position, and its highest induction score stays below the threshold (both printed
# above). Transformers often form their induction heads suddenly, at a phase change partway
# through training (Olsson et al.); the box below trains it four times longer, and none forms.

# %% [markdown] tags=["going-further"]
# > **Going further (optional): when do induction heads form?** Olsson et al. test a model on
# > sequences of random tokens repeated once. The first copy cannot be predicted; the second can,
# > by a model that copies what followed the earlier occurrence of the current token.
#
# The sweep that tuned the two models (chapter 06) kept their weights every 100 steps for the
# three seeds of each chosen setting, and trained one more GPT four times longer (6,000 steps,
# seed 0). `tools/score_story_runs.py` tested every saved step on 24 sequences of 128 tokens,
# drawn uniformly from the tokens of the training text and repeated once
# (`formation.repeat_scores`), and ships the result. Per step we draw the top-1 accuracy on the
# second copy and the largest prefix-matching score of any head: its weight on the pair that
# brings the token to copy (a head reading all 255 pairs equally scores about 0.004).

# %% tags=["going-further"]
formation = json.loads((tuning.ASSETS / "stories" / "induction.json").read_text())
fig, axes = plt.subplots(1, 2, figsize=(12, 3.6))
colors = {"mosaic": "C0", "gpt": "C3"}
for run in formation["runs"]:
    curve = run["curve"]  # one entry per saved step, step 0 = untrained
    steps = [c["step"] for c in curve]
    long = run["steps"] > 1500
    label = f"{run['model']} seed {run['seed']}" + (f", {run['steps']:,} steps" if long else "")
    style = dict(color=colors[run["model"]], ls="--" if long else "-",
                 alpha=1.0 if run["seed"] == 0 else 0.5)
    axes[0].plot(steps, [c["random"]["acc_second"] for c in curve], label=label, **style)
    axes[1].plot(steps, [np.max(c["random"]["prefix"]) for c in curve], **style)
    end = curve[-1]["random"]
    print(f"{label:>24}: second copy {end['acc_second']:.3f}, first copy {end['acc_first']:.3f} "
          f"at step {steps[-1]:,}; the best head's prefix score {np.max(end['prefix']):.3f}; over all "
          f"steps at most {max(c['random']['acc_second'] for c in curve):.3f} on the second copy")
axes[0].set(xlabel="training step", ylabel="top-1 accuracy", title="random tokens, second copy")
axes[1].set(xlabel="training step", ylabel="largest prefix-matching score", yscale="log",
            title="the best head's weight on the pair to copy")
axes[0].legend(fontsize=7)
plt.tight_layout()
plt.show()
gpt_runs = [r for r in formation["runs"] if r["model"] == "gpt"]
assert max(r["steps"] for r in gpt_runs) == 6000 and len(gpt_runs) == 4
for run in gpt_runs:  # at every saved step: chance on the second copy, no head reading the pair
    for c in run["curve"]:
        chance_level = c["random"]["acc_second"] < 0.01 and np.max(c["random"]["prefix"]) < 0.02
        assert chance_level, (run["seed"], c["step"])
for run in (r for r in formation["runs"] if r["model"] == "mosaic"):
    end = run["curve"][-1]["random"]
    assert end["acc_second"] > 10 * end["acc_first"] and np.max(end["prefix"]) > 0.5

# %% [markdown] tags=["going-further"]
# No phase change: at every saved step of all four GPT runs, the long one included, the GPT
# predicts the second copy of random tokens no better than chance (below 1 %, where the first copy
# sits) and no head puts more than 2 % of its weight on the pair that would bring the token to
# copy (asserted). At this size and on these stories, 6,000 steps do not make it build the
# two-layer circuit. Every mosaic run does copy: its best head puts more than half its weight on
# that pair, and the second copy is predicted more than ten times as often as the first (asserted).
# Still far from every token (the printout): finding the pair is not enough when the tokens look
# like nothing in the training stories.

# %% [markdown]
# **Does a slow leak make a long memory?** A key is a leaky average of the past with decay λ; a
# large λ keeps more of it. If the key summarises a longer past, one might expect the head to read
# further back. The scatter puts each mosaic head's learned λ against its measured recency.

# %%
decays = np.concatenate([p["decay"] for p in params])
rec = np.concatenate([sc["recency"] for sc in scores["mosaic"]])
ind = np.concatenate([sc["induction"] for sc in scores["mosaic"]])


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Rank correlation (no ties expected among learned values)."""
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


rho = spearman(decays, rec)
fig, ax = plt.subplots(figsize=(6, 4))
ax.scatter(decays, rec, c=ind, cmap="viridis", s=60, vmin=0, vmax=1)
for i, (x, y) in enumerate(zip(decays, rec, strict=True)):
    ax.annotate(f"{i // H}.{i % H}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
ax.scatter(params[0]["decay_init"], np.full(H, chance["recency"][0]), marker="x", color="0.5",
           label="λ at init (y: chance recency)")
ax.set_xlabel("learned decay λ")
ax.set_ylabel("measured recency: mean t − s (tokens)")
ax.set_title(f"mosaic heads (colour: induction score); Spearman ρ = {rho:.2f}", fontsize=10)
ax.legend(fontsize=8)
plt.tight_layout()
plt.show()
print(f"rank correlation between λ and recency over the {len(decays)} heads: {rho:+.2f}")
assert rho < -0.5, "measured: the larger λ, the *closer* a head reads"

# %% [markdown]
# The answer is the opposite of the naive guess: the heads with the slowest leak (largest λ) read
# the **closest** positions, the heads whose key is little more than the current token (λ near 0)
# read far back (the rank correlation printed above is strongly negative). A key that averages the
# recent past matches the positions whose recent past looks alike, and those are its neighbours:
# the text changes slowly, so a position's recent past resembles its neighbours' most. A key made
# of the current token alone matches that token wherever it stood, however far back. λ sets *what
# a key describes*, not how far back its head can read: every head reads the whole context.

# %% [markdown]
# **The head selector.** Pick a model, a block and a head: the bars show every head's four scores
# (the chosen one in red), then the chosen head's mean weight by distance $t - s$, and its map on
# the first held-out window.

# %%
profiles = {kind: [distance_profile(m.numpy(), 32) for m in tr.maps] for kind, tr in traces.items()}
first_maps = {kind: [m[0].numpy() for m in tr.maps] for kind, tr in traces.items()}
card_controls = {
    "scores": scores, "profiles": profiles, "maps": first_maps,
    "model": widgets.Dropdown(options=list(MODELS), value="mosaic", description="model"),
    "layer": widgets.IntSlider(value=LAYER, min=0, max=mosaic.config.n_layer - 1, description="block"),
    "head": widgets.IntSlider(value=HEAD, min=0, max=mosaic.config.n_head - 1, description="head"),
}
interactive_figure(head_card, draw_head_card, card_controls, figsize=(14, 3.2))

# %%
card = head_card(**defaults(card_controls))
print(f"default: mosaic head {card['layer']}.{card['head']}, scores",
      {k: round(v, 3) for k, v in card["own"].items()})
assert card["own"]["induction"] == scores["mosaic"][LAYER]["induction"][HEAD]
assert (LAYER, HEAD) in induction_heads["mosaic"], "the explorer's default head is an induction head"

# %% [markdown]
# ## 4. Contextual or persistent memory: where the right token's logit comes from
#
# The final LayerNorm and the tied output head turn the residual stream $h = \sum_i c_i$ (the
# embedding plus each block's contextual and persistent memory outputs) into logits. The
# LayerNorm is $g \odot (h - \bar h)/\sigma(h)$: centring is linear, and if we **hold $\sigma(h)$ at
# its value** the logit of the correct token $y$ splits exactly into one share per component:
#
# $$\text{logit}_y = \sum_i \frac{(W_e[y] \odot g)\cdot(c_i - \bar c_i)}{\sigma(h)}\cdot\frac{1}{\sqrt d}$$
#
# (the mosaic's head divides by $\sqrt d$, the GPT's does not). This is the *direct* logit
# attribution: it leaves out that removing a component would change $\sigma(h)$ and the input of
# every later block. §6 measures the total effect by ablation.

# %% [markdown]
# **Exercise 8.2 — one block's direct logit attribution** (★★, 15 minutes). Given one component
# $c$ (N positions × d), the full residual $h$, the LayerNorm's gain $g$, the rows $W_e[y]$ of the
# tied head for each position's target, the head's scale and the LayerNorm's ε, return the
# component's share of each target's logit:
#
# $$\text{share}_n = \frac{\text{scale}}{\sigma_n} \sum_i \big(c_{n,i} - \bar c_n\big)\, g_i\,
#   W_e[y_n]_i, \qquad \sigma_n = \sqrt{\mathrm{Var}_i(h_{n,i}) + \varepsilon} ,$$
#
# with $\bar c_n$ the mean of $c_n$ over its $d$ features and the *biased* variance (divided by
# $d$), as LayerNorm computes it; `scale` multiplies (for the mosaic it is $1/\sqrt d$); ε goes
# inside the square root and matters when a residual's variance is as small as ε. The model's
# LayerNorms have no bias, so there is none to add. `component`, `residual`, `unembed` `(N, d)`,
# `gain` `(d,)`; return `(N,)`. Do not modify the arguments.

# %% [markdown] tags=["hints"]
# <details><summary><b>Hint 1</b> (a nudge)</summary>
#
# LayerNorm is linear in its input once σ is held fixed: subtract the mean, divide by σ, multiply
# by the gain. Apply that to the component alone, with the σ of the whole residual, and take the
# dot product with the target's row of the head.
# </details>
#
# <details><summary><b>Hint 2</b> (the approach)</summary>
#
# σ per position from `residual.var(dim=-1, unbiased=False)` plus `eps`, under the square root;
# the centred component times `gain` times `unembed`, summed over the features, times `scale`,
# divided by σ.
# </details>
#
# <details><summary><b>Hint 3</b> (the key line)</summary>
#
# ```python
# sigma = torch.sqrt(residual.var(dim=-1, unbiased=False) + eps)  # (N,): the LayerNorm's σ
# ```
# </details>

# %% tags=["exercise"]
def direct_logit_attribution(component: torch.Tensor, residual: torch.Tensor, gain: torch.Tensor,
                             unembed: torch.Tensor, scale: float, eps: float) -> torch.Tensor:
    """component, residual, unembed: (N, d); gain: (d,) -> (N,) shares of the target logits."""
    ### BEGIN SOLUTION
    sigma = torch.sqrt(residual.var(dim=-1, unbiased=False) + eps)  # (N,): the LayerNorm's, held fixed
    centred = component - component.mean(dim=-1, keepdim=True)  # (N, d)
    return (centred * gain * unembed).sum(dim=-1) * scale / sigma
    ### END SOLUTION


# %% tags=["check"]
ch08.check_direct_logit_attribution(direct_logit_attribution)

# %% [markdown]
# > **Predict before you run.** On the tokens of repeated names, which component will write most of
# > the correct token's logit: the embedding, a contextual memory or a persistent memory? And on the
# > other tokens? In the GPT, will attention write most of a name's logit?
#
# <details><summary>What the run showed</summary>
#
# For the mosaic, on repeated names the last block's contextual memory writes the largest share,
# more than half of the logit; on the other tokens the persistent memories together write more
# than half. In the GPT it is not attention but the MLPs that write more than half of a name's
# logit, attention less than half. All printed and asserted below the figure.
# </details>

# %%
attribution = {kind: inspection.logit_attribution(model, idx, targets) for kind, model in MODELS.items()}
for kind, att in attribution.items():
    parts = sum(v for k, v in att.items() if k != "logit")
    err = float((parts - att["logit"]).abs().max())
    print(f"{kind}: the shares sum to the logit within 1e-3: {err < 1e-3}")
    assert err < 1e-3
groups = {"repeated names": is_name, "other tokens": ~is_name}
split = {kind: {g: {c: float(v[m].mean()) for c, v in att.items()} for g, m in groups.items()}
         for kind, att in attribution.items()}
fig, axes = plt.subplots(1, 2, figsize=(12, 3.6), sharey=True)
for ax, kind in zip(axes, MODELS, strict=True):
    names = inspection.component_names(MODELS[kind])
    for j, g in enumerate(groups):
        ax.bar(np.arange(len(names)) + (j - 0.5) * 0.38, [split[kind][g][c] for c in names], 0.38, label=g)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, fontsize=8, rotation=20)
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set_title(f"{kind}: direct share of the correct token's logit", fontsize=10)
axes[0].set_ylabel("mean logit share")
axes[0].legend(fontsize=8)
plt.tight_layout()
plt.show()
for kind in MODELS:
    for g in groups:
        print(f"{kind:>6} {g:>15}: " + "  ".join(f"{c} {v:+.2f}" for c, v in split[kind][g].items()))
names_split, other_split = split["mosaic"]["repeated names"], split["mosaic"]["other tokens"]
top_on_names = max(inspection.component_names(mosaic), key=names_split.get)
pmem_on_others = sum(v for c, v in other_split.items() if c.endswith("pmem"))
print(f"mosaic, repeated names: largest share {top_on_names} ({names_split[top_on_names]:.2f} of "
      f"{names_split['logit']:.2f}); other tokens: the persistent memories together "
      f"{pmem_on_others:.2f} of {other_split['logit']:.2f}")
assert top_on_names == f"block{L - 1}.cmem" and names_split[top_on_names] > 0.5 * names_split["logit"]
assert pmem_on_others > 0.5 * other_split["logit"]
gpt_names = split["gpt"]["repeated names"]
mlp_on_names = sum(v for c, v in gpt_names.items() if c.endswith("mlp"))
attn_on_names = sum(v for c, v in gpt_names.items() if c.endswith("attn"))
print(f"GPT, repeated names: MLPs {mlp_on_names:.2f}, attention {attn_on_names:.2f} "
      f"of {gpt_names['logit']:.2f}")
assert mlp_on_names > 0.5 * gpt_names["logit"] > attn_on_names

# %% [markdown]
# The split is clean for the mosaic. On the tokens of repeated names, most of the correct token's
# logit is written directly by the **last block's contextual memory**: the name comes from the
# context. On all the other tokens, most of it is written by the **persistent memories**: the
# grammar and vocabulary of stories, learned once and stored in the tables. The two kinds of memory
# divide the work the way the papers describe them.
#
# The GPT has no such division to show: on names and on the other tokens alike, most of the
# correct token's logit is written by its MLPs, and attention writes little of it directly (the
# printout above; asserted below for names).

# %% [markdown]
# ## 5. What the persistent memory writes: a logit lens on its table
#
# A persistent memory's table row $p$ of head $h$, retrieved alone, adds
# $W_o[:, h]\,\alpha_h M_v[h, p]$ to the residual stream. Read through the final LayerNorm's
# centring and gain and the tied head (its $1/\sigma$ changes no ranking) it becomes a score for
# every vocabulary item: which tokens that row *writes*. We look at the rows the last block's
# persistent memory uses most on the held-out windows.

# %%
last = mosaic.config.n_layer - 1
pmem_weights = mosaic.retrieval_weights(idx)[last]["pmem"]  # (N, H, T, P)
usage = pmem_weights.mean(dim=(0, 2))  # (H, P)
for h in range(mosaic.config.n_head):
    lens_ids, _ = inspection.pmem_logit_lens(mosaic, last, h, k=6)
    rows = usage[h].argsort(descending=True)[:3].tolist()
    for p in rows:
        words = " ".join(f"'{visible(tok.decode([int(i)]))}'" for i in lens_ids[p] if i < tok.vocab_size)
        print(f"block {last} head {h} row {p:3d} (mean weight {usage[h, p]:.3f}): writes {words}")
# how often does the most-retrieved row at a position write the correct next token among its top 10?
hits, total = 0, 0
lens = [inspection.pmem_logit_lens(mosaic, last, h, k=10)[0] for h in range(mosaic.config.n_head)]
best_row = pmem_weights.argmax(-1)  # (N, H, T)
for h in range(mosaic.config.n_head):
    top10 = torch.as_tensor(lens[h])[best_row[:, h]]  # (N, T, 10)
    hits += int((top10 == targets[..., None]).any(-1).sum())
    total += targets.numel()
# a stronger baseline than random tokens: the 10 most frequent next tokens of these very windows
frequent = torch.bincount(targets.flatten(), minlength=tok.vocab_size).argsort(descending=True)[:10]
frequent_hits = float((targets[..., None] == frequent).any(-1).float().mean())
print(f"the most retrieved row's top-10 tokens hold the correct next token at {hits / total:.1%} of "
      f"(position, head) pairs; 10 tokens drawn at random would at {10 / tok.vocab_size:.1%}, the 10 "
      f"most frequent next tokens of these windows at {frequent_hits:.1%}")
assert hits / total > 10 * (10 / tok.vocab_size)
assert hits / total > frequent_hits + 0.1, "the retrieved row beats the frequent tokens"

# %% [markdown]
# The rows a head uses most write frequent tokens: punctuation, function words, common verbs and
# adjectives of the stories (printed above). But a row is not just a list of frequent words: at a
# given position, the row its head retrieves most holds the correct next token among its ten top
# tokens far more often than ten random tokens would, and more often than the ten most frequent
# next tokens of the same windows (the three rates printed above). A table row reads like an entry
# of a learned dictionary: "in a context like this, these words come next".

# %% [markdown]
# ## 6. Ablations: what is each head for?
#
# Direct attribution says where a logit *comes from*; an ablation says what a part is *needed
# for*. We zero one contextual-memory head (or a whole memory of a block) and measure the change
# of the loss on the repeated-name targets and on the others. For the GPT, the same with its
# attention heads and MLPs. First the intact models: on the tokens of repeated names the mosaic
# pays a small fraction of a nat, the GPT more than five times as much (printed and asserted).
#
# > **Predict before you run.** Zeroing one head of the mosaic's contextual memory: will the
# > induction heads of §3 be the ones whose removal hurts names most? And zeroing a whole memory:
# > which kind do the names need, and which the other tokens?
#
# <details><summary>What the run showed</summary>
#
# As a group, yes, narrowly: zeroing an induction head raises the loss on names more, on average,
# than zeroing another head (the two means are printed in the comparison after the plot, and
# asserted). Head by head, the induction score does not rank the heads by their effect (the rank
# correlation is weak: printed, asserted), and the first block's head that matters most for names
# is not an induction head. The last block's heads matter more than twice as much for names as
# the first block's, on average. Whole memories: zeroing the last block's contextual memory costs
# more than three times as much on repeated names as on the other tokens, while zeroing either
# persistent memory hurts the other tokens more than the names (all printed and asserted).
# </details>

# %% [markdown]
# **Exercise 8.3 — ablate a head with a hook** (★★, 15 minutes). The ablations below zero a
# head's output just before W_o (the projection that mixes the heads) inside the package's forward
# pass. Build that ablation yourself first. A *forward pre-hook* does it in the model's own
# forward pass: a function a module calls on its input before
# running, whose return value replaces that input. Write
# `ablate_head(memory, head)`: register on `memory.c_proj` (W_o) a pre-hook that zeroes head
# `head`'s features of its input, and return the handle `register_forward_pre_hook` gives, so that
# `handle.remove()` puts the head back. `memory` is a mosaic block's `cmem` or a GPT block's `attn`
# (both have `n_head` and `c_proj`). W_o's input is (B, T, d), the heads side by side: head h
# (0-based) holds the features h·hs to (h+1)·hs − 1, hs = d / n_head. Zero them at every sequence
# and position; leave the weights alone. The check compares both shipped models' per-token loss
# under your hook with the package's ablation, and after `handle.remove()` with the intact model.

# %% [markdown] tags=["hints"]
# <details><summary><b>Hint 1</b> (a nudge)</summary>
#
# A forward pre-hook is a function `hook(module, inputs)`: `inputs` is the tuple of the module's
# positional inputs, here one tensor (B, T, d), the heads' outputs before W_o mixes them. Return a
# tuple to replace it. Which of its d features belong to head `head`?
# </details>
#
# <details><summary><b>Hint 2</b> (the approach)</summary>
#
# `hs = memory.c_proj.in_features // memory.n_head` (the GPT's attention has no `head_size`). In
# the hook, copy the input (`.clone()`), set its features `head * hs` up to `(head + 1) * hs` to
# zero in every sequence and position (`y[..., a:b] = 0`), and return `(y,)`.
# </details>
#
# <details><summary><b>Hint 3</b> (the key line)</summary>
#
# ```python
# return memory.c_proj.register_forward_pre_hook(zero_head)  # the handle: handle.remove() undoes it
# ```
# </details>

# %% tags=["exercise"]
def ablate_head(memory: torch.nn.Module, head: int) -> torch.utils.hooks.RemovableHandle:
    """Zero one head's output before W_o with a forward pre-hook on ``memory.c_proj``; returns its handle.

    W_o's input: (B, T, d), head h at the features h·hs … (h+1)·hs − 1, hs = d / memory.n_head.
    """
    ### BEGIN SOLUTION
    hs = memory.c_proj.in_features // memory.n_head  # features per head

    def zero_head(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor]:
        y = inputs[0].clone()  # (B, T, d)
        y[..., head * hs:(head + 1) * hs] = 0.0
        return (y,)

    return memory.c_proj.register_forward_pre_hook(zero_head)
    ### END SOLUTION


# %% tags=["check"]
ch08.check_ablate_head(ablate_head)

# %%
intact = {kind: inspection.per_token_loss(model, idx, targets) for kind, model in MODELS.items()}
for kind, loss in intact.items():
    print(f"{kind:>6}, intact: loss on repeated names {float(loss[is_name].mean()):.3f}, "
          f"on other tokens {float(loss[~is_name].mean()):.3f} nats per token")
assert intact["gpt"][is_name].mean() > 5 * intact["mosaic"][is_name].mean()


def loss_changes(kind: str, ablations: list) -> dict:
    """{ablation: (Δ loss on repeated names, Δ loss on other tokens)}: ablated minus intact."""
    return {ab: inspection.ablation_loss_change(MODELS[kind], idx, targets, ab, is_name, intact[kind])
            for ab in ablations}


changes = {
    "mosaic": loss_changes("mosaic", [(i, "cmem", h) for i in range(L) for h in range(H)]
                           + [(i, k, None) for i in range(L) for k in ("cmem", "pmem")]),
    "gpt": loss_changes("gpt", [(i, "attn", h) for i in range(L) for h in range(H)]
                        + [(i, k, None) for i in range(L) for k in ("attn", "mlp")]),
}
for kind, ch in changes.items():
    print(f"{kind}: loss change when zeroed (nats per token), repeated names | other tokens")
    for (i, k, h), (dn, do) in ch.items():
        what = f"block {i} {k} " + ("(all)" if h is None else f"head {h}")
        print(f"  {what:>22}: {dn:+.3f} | {do:+.3f}")
fig, axes = plt.subplots(1, 2, figsize=(12, 3.4))
for ax, (kind, ch) in zip(axes, changes.items(), strict=True):
    labels = [f"{i}.{h}" if h is not None else f"{i}.{k}" for i, k, h in ch]
    vals = np.array(list(ch.values()))  # (n, 2)
    x = np.arange(len(labels))
    ax.bar(x - 0.2, vals[:, 0], 0.4, label="repeated names")
    ax.bar(x + 0.2, vals[:, 1], 0.4, label="other tokens")
    ax.set_xticks(x)
    ax.set_xticklabels(labels, fontsize=7, rotation=60)
    ax.set_yscale("symlog", linthresh=0.01)
    ax.set_title(f"{kind}: loss change when zeroed (heads, then whole parts)", fontsize=10)
axes[0].set_ylabel("Δ loss (nats per token)")
axes[0].legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# Do the heads the scores single out matter more for names? Per model, we compare the mean loss
# change on repeated names when an induction head is zeroed with the same mean over the other
# heads, look at the two blocks separately, and rank-correlate the induction score with the change
# over all heads.

# %%
effect = {}
for kind in MODELS:
    first = "cmem" if kind == "mosaic" else "attn"
    heads = [(i, h) for i in range(L) for h in range(H)]
    d = np.array([changes[kind][(i, first, h)] for i, h in heads])  # (L·H, 2): names, others
    score = np.array([scores[kind][i]["induction"][h] for i, h in heads])
    chosen = np.array([hd in induction_heads[kind] for hd in heads])
    block = np.array([i for i, _ in heads])
    groups = {"induction heads": chosen, "other heads": ~chosen,
              **{f"block {i} heads": block == i for i in range(L)}}
    effect[kind] = {g: d[m].mean(0) for g, m in groups.items() if m.any()}  # may hold no induction head
    effect[kind]["rho"] = spearman(score, d[:, 0])
    print(f"{kind}: mean loss change when one head is zeroed (repeated names | other tokens)")
    for group, v in effect[kind].items():
        if group != "rho":
            print(f"  {group:>16}: {v[0]:+.3f} | {v[1]:+.3f}")
    print(f"  induction score vs change on names over the {len(heads)} heads: Spearman ρ = "
          f"{effect[kind]['rho']:+.2f}")
mos = effect["mosaic"]
assert mos["induction heads"][0] > mos["other heads"][0], "the mosaic's induction heads matter more for names"
assert mos[f"block {L - 1} heads"][0] > 2 * mos["block 0 heads"][0], "the last block does the copying"
on_names = {(i, h): changes["mosaic"][(i, "cmem", h)][0] for i in range(L) for h in range(H)}
first_top = max((hd for hd in on_names if hd[0] == 0), key=on_names.get)
print(f"mosaic: the first block's head that matters most for names: 0.{first_top[1]} "
      f"({on_names[first_top]:+.3f}; induction head: {first_top in induction_heads['mosaic']})")
assert first_top not in induction_heads["mosaic"]
assert params[0]["gamma"][first_top[1]] >= 0.5 and params[0]["decay"][first_top[1]] > 0.5
assert abs(mos["rho"]) < 0.5, "per head, the score does not rank the heads by their effect"
last_cmem = changes["mosaic"][(L - 1, "cmem", None)]
assert last_cmem[0] > 3 * last_cmem[1], "the last contextual memory matters most on names"
for i in range(L):
    assert changes["mosaic"][(i, "pmem", None)][1] > changes["mosaic"][(i, "pmem", None)][0]

gpt_heads = [(i, h) for i in range(L) for h in range(H)]
gpt_top = max(gpt_heads, key=lambda ih: changes["gpt"][(ih[0], "attn", ih[1])][0])
gpt_top_change = changes["gpt"][(gpt_top[0], "attn", gpt_top[1])]
print(f"GPT head whose ablation hurts names most: {gpt_top[0]}.{gpt_top[1]} ({gpt_top_change[0]:+.3f} on "
      f"names, {gpt_top_change[1]:+.3f} on other tokens), induction score "
      f"{scores['gpt'][gpt_top[0]]['induction'][gpt_top[1]]:.3f}")
assert scores["gpt"][gpt_top[0]]["induction"][gpt_top[1]] > 4 * chance["induction"][0]
assert gpt_top_change[0] > 3 * gpt_top_change[1] and effect["gpt"]["rho"] > 0.5
print(f"its rank by induction score among the GPT's {L * H} heads: {gpt_by_score.index(gpt_top) + 1}")
assert gpt_top in gpt_by_score[:3], "one of the GPT's three highest induction scores"

# %% [markdown]
# For the mosaic the answer is *yes, as a group, but not head by head*. Zeroing one of its
# induction heads raises the loss on repeated names more, on average, than zeroing another head,
# but the induction score does not rank the heads by their effect (the correlation printed is weak).
# The block matters more than the score: the last block's heads matter more for names, while in
# the first block the head that matters most for names is one whose key averages the recent past
# and whose value is mostly the current token (its λ and γ are in the table of §3). A retrieval
# map says what a head *reads*; whether the rest of the network *uses* what it brings is a
# separate question, and only an ablation answers it. Zeroing the last block's whole contextual
# memory raises the loss on repeated names several times more than on the other tokens; zeroing a
# persistent memory hurts the other tokens more.
#
# For the GPT, whose heads all fall short of the induction threshold, the score ranks the heads
# better (the correlation printed for it is positive and strong): the head whose ablation hurts
# names most, by far more than it hurts the other tokens, is among its three highest-scoring heads
# (its rank is printed). Whatever that head does for names, it does it without a previous-token
# head to build on, and the GPT's loss on repeated names stays far above the mosaic's.

# %% [markdown]
# **Names the models never saw.** The test stories draw their names from the same pool as the
# training stories, so a model could have memorised pieces of them. The package also writes
# stories in the same grammar with **held-out names**, none of them in the training pool. On those,
# the two intact models, and the GPT's head singled out above:

# %%
heldout = generate_ood_stories(40, seed=0, mode="names")
w_ood = icl.story_windows(tok, heldout, BLOCK, n_windows=N_WINDOWS)  # (N, T + 1)
idx_ood, targets_ood = w_ood[:, :-1], w_ood[:, 1:]
is_name_ood = torch.tensor(np.stack([name_targets(w, st) for w, st in zip(w_ood, heldout, strict=False)]))
ood_loss = {}
for kind, model in MODELS.items():
    loss = inspection.per_token_loss(model, idx_ood, targets_ood)
    ood_loss[kind] = float(loss[is_name_ood].mean())
    print(f"{kind:>6}, held-out names: loss on repeated names {ood_loss[kind]:.3f} (test stories: "
          f"{float(intact[kind][is_name].mean()):.3f}), on other tokens "
          f"{float(loss[~is_name_ood].mean()):.3f}")
gpt_top_ood = inspection.head_scores(inspection.trace(gpt, idx_ood).maps[gpt_top[0]], idx_ood, 0)
print(f"GPT head {gpt_top[0]}.{gpt_top[1]}: induction score {gpt_top_ood['induction'][gpt_top[1]]:.3f} on "
      f"held-out names ({scores['gpt'][gpt_top[0]]['induction'][gpt_top[1]]:.3f} on the test stories)")
assert ood_loss["gpt"] > 5 * ood_loss["mosaic"]
moved = {kind: ood_loss[kind] - float(intact[kind][is_name].mean()) for kind in MODELS}
assert abs(moved["mosaic"]) < 0.1, "the mosaic: no memorised names"
assert moved["gpt"] > 0.1, "the GPT pays more for names it never saw"
assert abs(gpt_top_ood["induction"][gpt_top[1]] - scores["gpt"][gpt_top[0]]["induction"][gpt_top[1]]) < 0.05

# %% [markdown]
# The mosaic's loss on repeated names moves by less than a tenth of a nat on names it never saw
# (asserted): what it does with names comes from the context, not from memory of the training
# names. The GPT's rises by more than a tenth of a nat (asserted): part of what it does with a
# name rests on having met that name in training. Its head's induction score stays where it was.

# %% [markdown]
# ## Summary
#
# - Every prediction of a mosaic can be traced to the stored pairs each head read and to the token
#   each of their values peeked at (`inspection.trace`, the retrieval explorer). At a repeated name,
#   a head of the last block reads the earlier copies of the current token and brings the name's
#   next piece.
# - Matching the current token is built into a memory unit: untrained mosaic heads already do it.
#   Training decides what a match brings (γ: the current token, or the next one), how sharp it is
#   (β) and what a key describes (λ). The chapter calls a head an induction head when it puts a
#   large share of its weight on earlier copies of the current token *and* its value brings the
#   next token; the list is printed in §3.
# - The GPT of the same size, after the same 1,500 steps at its own tuned setting, has no
#   induction head by the same criterion and no previous-token head (nor after 6,000 steps: the
#   going-further box); its loss on repeated names is many times the mosaic's.
# - A slow leak (large λ) makes a head that reads nearby positions, not a long-memory head.
# - The logit of a repeated name's token is written mostly by the last block's contextual memory;
#   the logit of the other tokens mostly by the persistent memories, whose table rows read like a
#   dictionary of frequent next words.
# - Ablations: as a group, the induction heads matter more for names than the other heads; head by
#   head, the score does not predict the effect, and the last block's heads matter more on
#   average. A map shows what a head reads, only an ablation shows what the network needs.

# ## Recap questions
#
# 1. Why are a mosaic head's induction score and its same-token mass the same number, while a
#    GPT's differ?
#
# <details><summary>Answer</summary>
#
# A mosaic's value at $s$ is built from the token at $s + 1$ (the one-step peek), so reading a pair
# whose token matches the current one already brings what followed it. A GPT's value at $s$ is
# position $s$ itself: to bring what followed an earlier copy it must read the position *after*
# it ($x_{s-1} = x_t$), which needs that position to know its previous token — a second layer.
# </details>
#
# 2. The direct logit attributions sum exactly to the logit. What do they leave out?
#
# <details><summary>Answer</summary>
#
# Indirect effects: a component also changes the LayerNorm's $\sigma(h)$ (held fixed here) and the
# input of every later block. An ablation measures the total effect instead.
# </details>
#
# 3. Why does the logit lens of a persistent-memory row ignore the final LayerNorm's $1/\sigma$?
#
# <details><summary>Answer</summary>
#
# It is one positive number per position: it scales every logit alike and changes no ranking of
# tokens, which is all the lens reports.
# </details>
#
# 4. Why is a high induction score not enough, in this chapter, to call a mosaic head an induction
#    head?
#
# <details><summary>Answer</summary>
#
# Because matching the current token comes with the architecture (untrained heads score high too),
# and a match is only an induction step if the value brings the *next* token: with γ near 1 the
# value is mostly the current token, and the head copies that token back instead. The chapter
# therefore also asks γ < ½.
# </details>
#
# ## Further reading
#
# - Zhang, Nolte, Sadhukhan, Chen, Bottou, *Memory Mosaics*, ICLR 2025 (arXiv:2405.06394): the
#   transparency argument and predictive disentanglement.
# - Elhage et al., *A Mathematical Framework for Transformer Circuits* (2021): the residual stream
#   as a sum of components, direct logit attribution.
# - Olsson et al., *In-context Learning and Induction Heads* (2022): induction heads, and why a
#   transformer needs two layers to form one.
# - nostalgebraist, *interpreting GPT: the logit lens* (2020): reading intermediate states through
#   the output head.
# - Nanda and Bloom, *TransformerLens* (software): hooks and ablations for transformers.
#
# Next: **09 · Memory Mosaics v2**.

# %%
print(f"this notebook ran in {time.perf_counter() - _notebook_start:.0f} s")
