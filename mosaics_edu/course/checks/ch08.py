"""Checks for chapter 08 (Looking inside a trained mosaic).

Three exercises, each compared with :mod:`mosaics_edu.course.inspection`:

- ``induction_score(weights, ids)`` — per head, the retrieval mass on the stored pairs whose
  token equals the current one, averaged over the queries whose token occurred before
  (reference: ``inspection.head_scores(weights, ids, offset=1)["induction"]``);
- ``direct_logit_attribution(component, residual, gain, unembed, scale, eps)`` — one residual
  component's direct share of the target logits, through the final LayerNorm with its σ held at
  the full residual's value (reference: the formula of ``inspection.logit_attribution``);
- ``ablate_head(memory, head)`` — register a forward pre-hook on ``memory.c_proj`` (W_o) that
  zeroes one head's output and return its handle; run on the shipped story models, the model's
  per-token loss must equal the package's ablation (``inspection.per_token_loss(..., ablate=...)``)
  and be intact again after ``handle.remove()``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ... import models
from ...data import generate_stories
from .. import icl, inspection
from . import Case, Floor, call_learner, compare, fail, learner_line, notebook_check

CHAPTER = "08_looking_inside"
H1, H2, H3 = "(see hint 1 above)", "(see hint 2 above)", "(see hint 3 above)"

__all__ = [
    "check_induction_score",
    "check_direct_logit_attribution",
    "check_ablate_head",
    "reference_induction_score",
    "reference_direct_logit_attribution",
    "reference_ablation",
    "INDUCTION_MISTAKES",
    "DLA_MISTAKES",
    "ABLATE_MISTAKES",
    "induction_cases",
    "dla_cases",
    "ablation_cases",
    "INDUCTION_REGIMES",
    "DLA_REGIMES",
    "ABLATE_REGIMES",
]


# --------------------------------------------------------------------------------------------
# exercise 8.1: the induction score from a retrieval map
# --------------------------------------------------------------------------------------------


def reference_induction_score(weights: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """weights (H, T, T) of a mosaic block, ids (T,) -> (H,)."""
    return inspection.head_scores(weights, ids, offset=1)["induction"]


def _induction_variant(weights, ids, *, rows="eligible", match="current", transpose=False, reduce="mean",
                       empty="nan"):
    w = np.asarray(weights, dtype=np.float64)
    if transpose:
        w = np.swapaxes(w, -1, -2)
    x = np.asarray(ids)
    T = len(x)
    s_idx, t_idx = np.arange(T)[None, :], np.arange(T)[:, None]
    past = s_idx < t_idx
    if match == "current":
        cond = (x[None, :] == x[:, None]) & past
    elif match == "gpt":  # the token *before* s equals the current one
        prev = np.concatenate([[-1], x[:-1]])
        cond = (prev[None, :] == x[:, None]) & (s_idx <= t_idx) & (s_idx >= 1)
    else:  # "target": the token at s equals the one to predict, x_{t+1}
        nxt = np.concatenate([x[1:], [-1]])
        cond = (x[None, :] == nxt[:, None]) & past
    mass = (w * cond[None]).sum(-1)  # (H, T)
    eligible = cond.any(-1) if rows == "eligible" else np.arange(T) >= (1 if rows == "from1" else 0)
    if not eligible.any():
        return np.full(len(w), np.nan if empty == "nan" else 0.0)
    if reduce == "sum":
        return mass[:, eligible].sum(-1)
    return mass[:, eligible].mean(-1)


INDUCTION_MISTAKES: dict[str, dict] = {
    f"averaged over every query position, also those whose token never occurred before (their "
    f"mass is 0 by definition); average over the queries that have an earlier copy only {H2}":
        {"rows": "all"},
    f"averaged over every position t ≥ 1 instead of only those whose token occurred before {H2}":
        {"rows": "from1"},
    f"matched the token before s (x_{{s-1}} = x_t): that is a GPT's induction rule, whose value at s "
    f"is position s itself; a mosaic's value at s already peeks at s + 1, so match x_s = x_t {H1}": {
        "match": "gpt"
    },
    f"matched the token to predict (x_s = x_{{t+1}}) instead of the current token x_t {H1}":
        {"match": "target"},
    f"read the map transposed: weights[h, t, s] is query t's weight on stored pair s (rows are "
    f"queries) {H2}": {"transpose": True},
    f"summed the mass over the queries instead of averaging it {H2}": {"reduce": "sum"},
    f"returned 0 where no query's token occurred before; that mean over no query is nan "
    f"(np.full(H, np.nan)) {H3}": {"empty": "zero"},
}

INDUCTION_REGIMES = {
    "no-copy": f"no token occurs twice, so no query qualifies: the score is nan for every head {H3}",
    "few-queries": f"only some queries have an earlier copy of their token: average over those "
                   f"alone {H2}",
    "one-head": f"the map has a single head {H2}",
}


def induction_cases() -> list[Case]:
    rng = np.random.default_rng(7)
    cases = []
    for H, T, vocab in ((3, 20, 5), (2, 12, 4)):
        logits = rng.normal(size=(H, T, T)) * 2
        mask = np.tril(np.ones((T, T), dtype=bool), k=-1)
        w = np.where(mask, np.exp(logits), 0.0)
        w[:, 1:] /= w[:, 1:].sum(-1, keepdims=True)
        cases.append(Case(w, rng.integers(0, vocab, size=T), regime="few-queries",
                          why=f"{H} heads, random weights, {vocab} token ids"))
    ids = np.array([3, 1, 2, 0, 3, 1, 2, 0, 3, 1])  # a perfect induction head, then a uniform one
    w = np.zeros((2, 10, 10))
    for t in range(1, 10):
        w[1, t, :t] = 1.0 / t
        if t >= 4:
            w[0, t, t - 4] = 1.0
        else:
            w[0, t, :t] = 1.0 / t
    cases.append(Case(w, ids, regime="few-queries", why="a perfect induction head (1.0) and a uniform one"))
    u = np.zeros((1, 5, 5))
    for t in range(1, 5):
        u[0, t, :t] = 1.0 / t
    cases.append(Case(u, np.array([4, 0, 3, 1, 2]), regime=("no-copy", "one-head"),
                      why="no token occurs twice: no query qualifies"))
    cases.append(Case(u, np.array([2, 2, 2, 2, 2]), regime="one-head",
                      why="one token repeated: every t ≥ 1 qualifies"))
    return cases


@notebook_check
def check_induction_score(induction_score: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
    """Exercise 8.1: per-head induction score of a mosaic's (H, T, T) retrieval map."""
    compare(
        CHAPTER,
        "induction_score",
        induction_score,
        reference_induction_score,
        induction_cases(),
        mistakes={
            d: (lambda w, x, f=f: _induction_variant(w, x, **f)) for d, f in INDUCTION_MISTAKES.items()
        },
        arg_names=("weights", "ids"),
        regimes=INDUCTION_REGIMES,
        rebuild="ch08.induction_cases()[{k}]",
        hint=f"For each head: mass[t] = Σ_{{s<t, ids[s] == ids[t]}} weights[h, t, s]; average it over the "
        f"t that have such an s {H2}.",
    )


# --------------------------------------------------------------------------------------------
# exercise 8.2: direct logit attribution of one component
# --------------------------------------------------------------------------------------------


def reference_direct_logit_attribution(
    component: torch.Tensor,
    residual: torch.Tensor,
    gain: torch.Tensor,
    unembed: torch.Tensor,
    scale: float,
    eps: float,
) -> torch.Tensor:
    """component, residual, unembed: (N, d); gain: (d,) -> (N,)."""
    sigma = torch.sqrt(residual.var(-1, unbiased=False) + eps)  # (N,)
    centred = component - component.mean(-1, keepdim=True)  # (N, d)
    return (centred * gain * unembed).sum(-1) * scale / sigma


def _dla_variant(
    component,
    residual,
    gain,
    unembed,
    scale,
    eps,
    *,
    centre=True,
    sigma_of="residual",
    unbiased=False,
    use_gain=True,
    use_scale="multiply",
    eps_where="inside",
):
    source = residual if sigma_of == "residual" else component
    var = source.var(-1, unbiased=unbiased)
    sigma = {"inside": torch.sqrt(var + eps), "outside": torch.sqrt(var) + eps,
             "none": torch.sqrt(var)}[eps_where]
    c = component - component.mean(-1, keepdim=True) if centre else component
    g = gain if use_gain else torch.ones_like(gain)
    factor = {"multiply": scale, "none": 1.0, "divide": 1.0 / scale}[use_scale]
    return (c * g * unembed).sum(-1) * factor / sigma


DLA_MISTAKES: dict[str, dict] = {
    f"did not centre the component: the LayerNorm subtracts the mean over features, and the "
    f"residual's mean is the sum of the components' means, so subtract component.mean(-1) {H2}":
        {"centre": False},
    f"divided by the component's own standard deviation; σ is the residual's (the LayerNorm sees "
    f"the sum of all components), held fixed {H2}": {"sigma_of": "component"},
    f"used the unbiased variance (n - 1); LayerNorm divides by n (unbiased=False) {H3}": {"unbiased": True},
    f"left out the LayerNorm's gain g {H2}": {"use_gain": False},
    f"left out the head's scale (the mosaic multiplies by 1/√d before the tied head) {H2}":
        {"use_scale": "none"},
    f"divided by the head's scale; it multiplies (scale is 1/√d already) {H2}": {"use_scale": "divide"},
    f"left out ε: σ = sqrt(var + ε), which matters when the residual's variance is as small as ε {H3}":
        {"eps_where": "none"},
    f"added ε outside the square root; LayerNorm uses σ = sqrt(var + ε) {H3}": {"eps_where": "outside"},
}

DLA_REGIMES = {
    "tiny-variance": f"some residual has a variance no larger than ε, so where ε goes decides σ {H3}",
    "large-eps": f"ε is large (0.5), so leaving it out or moving it outside the square root shows {H3}",
    "scale-not-one": f"the scale is not 1, so multiplying and dividing by it differ {H2}",
}


def dla_cases() -> list[Case]:
    g = torch.Generator().manual_seed(11)
    cases = []
    for N, d, scale, eps, noise, regime, why in (
            (6, 16, 0.25, 1e-5, 2.0, ("scale-not-one",), "a mosaic's scale 1/√16"),
            (4, 8, 1.0, 1e-5, 2.0, (), "scale 1"),
            (5, 12, 12**-0.5, 1e-5, 1e-3, ("tiny-variance", "scale-not-one"),
             "residuals of variance about 1e-6, below ε = 1e-5"),
            (3, 8, 0.5, 0.5, 0.3, ("large-eps", "tiny-variance", "scale-not-one"), "ε = 0.5")):
        comp = torch.randn(N, d, generator=g) * min(1.0, 10 * noise) + 0.7  # a clear mean: centring matters
        resid = comp * min(1.0, noise) + noise * torch.randn(N, d, generator=g)
        gain = 1.0 + 0.5 * torch.randn(d, generator=g)
        unembed = torch.randn(N, d, generator=g)
        cases.append(Case(comp, resid, gain, unembed, scale, eps, regime=regime, why=why))
    return cases


@notebook_check
def check_direct_logit_attribution(direct_logit_attribution: Callable[..., torch.Tensor]) -> None:
    """Exercise 8.2: one component's direct share of the target logit, per position."""
    compare(
        CHAPTER,
        "direct_logit_attribution",
        direct_logit_attribution,
        reference_direct_logit_attribution,
        dla_cases(),
        mistakes={d: (lambda *a, f=f: _dla_variant(*a, **f)) for d, f in DLA_MISTAKES.items()},
        arg_names=("component", "residual", "gain", "unembed", "scale", "eps"),
        regimes=DLA_REGIMES,
        rebuild="ch08.dla_cases()[{k}]",
        hint=f"share = Σ_features (component - its mean) · gain · unembed · scale / "
        f"sqrt(var(residual) + eps), with the biased variance {H2}.",
    )


# --------------------------------------------------------------------------------------------
# exercise 8.3: ablate a head with a hook before W_o
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _story_models() -> dict[str, tuple[torch.nn.Module, torch.Tensor, torch.Tensor]]:
    """The shipped story models, each with test-story windows: {kind: (model, idx, targets)}."""
    out = {}
    for kind in icl.STORY_MODEL_KINDS:
        model, tok = icl.load_story_model(kind)
        windows = icl.story_windows(tok, generate_stories(4, seed=0, split="test"), 48, n_windows=2)
        out[kind] = (model, windows[:, :-1], windows[:, 1:])  # idx, targets: (2, 48)
    return out


def _memory(model: torch.nn.Module, layer: int) -> torch.nn.Module:
    """The module whose W_o (``c_proj``) mixes the heads: a block's cmem (mosaic) or attn (GPT)."""
    block = model.blocks[layer]
    return block.cmem if isinstance(model, models.MemoryMosaicLM) else block.attn


def _hooks(model: torch.nn.Module) -> list[str]:
    """The modules of ``model`` that carry a forward hook or pre-hook (by name)."""
    return [name or "the model" for name, m in model.named_modules()
            if m._forward_pre_hooks or m._forward_hooks]


def _per_token_loss(model: torch.nn.Module, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        logits, _ = model(idx)  # (B, T, V)
    return torch.nn.functional.cross_entropy(logits.float().transpose(1, 2), targets, reduction="none")


def hooked_losses(ablate_head: Callable, model: torch.nn.Module, idx: torch.Tensor, targets: torch.Tensor,
                  layer: int, head: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``ablate_head(memory, head)`` on block ``layer`` of ``model``, then the model itself:
    the per-token loss (B, T) with the hook in place, and again after ``handle.remove()``."""
    memory = _memory(model, layer)
    weights = {k: v.clone() for k, v in memory.state_dict().items()}
    handle = call_learner(CHAPTER, "ablate_head", ablate_head, memory, head)
    changed = [k for k, v in memory.state_dict().items() if not torch.equal(v, weights[k])]
    if changed:
        if callable(getattr(handle, "remove", None)):
            handle.remove()
        fail(CHAPTER, "ablate_head", f"your function changed the weights `{changed[0]}` of `memory` in "
             f"place: a hook leaves the weights alone and zeroes the head's features in the tensor it "
             f"receives {H1}", "in-place")
    if not callable(getattr(handle, "remove", None)):
        fail(CHAPTER, "ablate_head", f"it returned {type(handle).__name__}, not the handle that "
             f"`register_forward_pre_hook` gives: return it, so that `handle.remove()` puts the head "
             f"back {H3}", "return")
    try:
        ablated = _per_token_loss(model, idx, targets)
    except Exception as err:  # noqa: BLE001 — a crash inside the learner's hook
        handle.remove()
        fail(CHAPTER, "ablate_head", f"the model's forward pass raised {type(err).__name__} with your "
             f"hook in place: {err}{learner_line(err, ablate_head)}", "crash")
    handle.remove()
    left = _hooks(model)
    if left:
        fail(CHAPTER, "ablate_head", f"after `handle.remove()` a hook is still registered on {left[0]}: "
             f"register one hook and return its handle {H3}", "mistake")
    return ablated, _per_token_loss(model, idx, targets)


def reference_ablation(model: torch.nn.Module, idx: torch.Tensor, targets: torch.Tensor, layer: int,
                       head: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The package's ablation (``inspection.trace``, the head zeroed before W_o), then the intact model."""
    kind = "cmem" if isinstance(model, models.MemoryMosaicLM) else "attn"
    return (inspection.per_token_loss(model, idx, targets, ablate=[(layer, kind, head)]),
            inspection.per_token_loss(model, idx, targets))


def _zero(y: torch.Tensor, cols) -> torch.Tensor:
    y = y.clone()
    y[..., cols] = 0
    return y


def _ablate_variant(memory, head, *, where="input", cols="block", target="c_proj",
                    keep_only=False):  # fmt: skip
    H = memory.n_head
    hs = memory.c_proj.in_features // H
    sl = {"block": slice(head * hs, (head + 1) * hs), "from-one": slice((head - 1) * hs, head * hs),
          "strided": slice(head, None, H), "width-h": slice(head * H, (head + 1) * H),
          "all": slice(None)}[cols]

    def pre(module, inputs):
        y = inputs[0]
        if keep_only:
            return (y - _zero(y, sl),)
        return (_zero(y, sl),)

    def post(module, inputs, output):
        return _zero(output, sl)

    module = memory if target == "memory" else memory.c_proj
    return module.register_forward_hook(post) if where == "output" else module.register_forward_pre_hook(pre)


ABLATE_MISTAKES: dict[str, dict] = {
    f"zeroed features of W_o's *output* (the residual stream) with a forward hook; the head's output "
    f"is W_o's *input*: use `register_forward_pre_hook` on `memory.c_proj` {H2}": {"where": "output"},
    f"zeroed a slice of the memory's input x, before the keys and values; the head's output is what "
    f"enters W_o (`memory.c_proj`) {H1}": {"target": "memory"},
    f"counted the heads from 1: head h (0-based) holds the features h·hs to (h+1)·hs {H2}":
        {"cols": "from-one"},
    f"zeroed every H-th feature (head, head + H, ...): W_o's input holds the heads side by side, "
    f"each a block of hs = d / H features {H2}": {"cols": "strided"},
    f"used n_head as the head's width: a head holds hs = d / n_head features "
    f"(`memory.c_proj.in_features // memory.n_head`) {H2}": {"cols": "width-h"},
    f"zeroed every head, not head `head` alone {H2}": {"cols": "all"},
    f"kept head `head` and zeroed the others: the ablation zeroes that one head {H2}": {"keep_only": True},
}

ABLATE_REGIMES = {
    "mosaic": f"the memory is the mosaic's contextual memory (`blocks[i].cmem`) {H1}",
    "gpt": f"the memory is the GPT's attention (`blocks[i].attn`), which has `n_head` and `c_proj` "
           f"but no `head_size` {H2}",
    "first-head": f"the head is head 0, whose features are the first hs of W_o's input {H2}",
    "last-head": f"the head is the last one, whose features are the last hs of W_o's input {H2}",
    "batch": f"idx holds two sequences: the hook must zero the head in every sequence and position {H3}",
}


def ablation_cases() -> list[Case]:
    """Five ablations on the shipped story models, on windows of the test stories."""
    cases = []
    for kind, layer, head, batch, regime in [
        ("mosaic", 1, 2, 2, ("mosaic", "batch")), ("mosaic", 0, 0, 1, ("mosaic", "first-head")),
        ("mosaic", 1, 3, 1, ("mosaic", "last-head")), ("gpt", 0, 3, 2, ("gpt", "last-head", "batch")),
        ("gpt", 1, 0, 1, ("gpt", "first-head")),
    ]:
        model, idx, targets = _story_models()[kind]
        memory = f"blocks[{layer}].{'cmem' if kind == 'mosaic' else 'attn'}"
        cases.append(Case(model, idx[:batch], targets[:batch], layer, head, regime=regime,
                          why=f"the shipped {kind}, {memory}, head {head}",
                          show=f"memory = the shipped {kind}'s {memory}, head = {head}; the model then "
                               f"reads {batch} test window(s) of 48 tokens"))
    return cases


@notebook_check
def check_ablate_head(ablate_head: Callable[[torch.nn.Module, int], Any]) -> None:
    """Exercise 8.3: a forward pre-hook on W_o that zeroes one head, checked against the package's
    ablation on the shipped story models (and the model intact again after ``handle.remove()``)."""
    compare(
        CHAPTER,
        "ablate_head",
        functools.partial(hooked_losses, ablate_head),
        reference_ablation,
        ablation_cases(),
        mistakes={d: functools.partial(hooked_losses, lambda m, h, f=f: _ablate_variant(m, h, **f))
                  for d, f in ABLATE_MISTAKES.items()},
        arg_names=("model", "idx", "targets", "layer", "head"),
        regimes=ABLATE_REGIMES,
        rebuild="ch08.ablation_cases()[{k}]",
        items=("the per-token loss with your hook in place", "the per-token loss after handle.remove()"),
        float32_probe=False,
        # the same sums in another order (the package sums per-head products): ~1e-6 nats
        floor=Floor(abs=1e-4),
        hint=f"W_o's input (B, T, d) holds head h at the features h·hs to (h+1)·hs, hs = d / n_head; "
             f"zero those in a forward pre-hook on memory.c_proj and return its handle {H2}",
    )
