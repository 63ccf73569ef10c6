"""Checks for chapter 05 (Training a language model).

Three exercises, each compared with the package's training loop (:mod:`mosaics_edu.train`):

- ``lr_at(step, max_lr, min_lr, warmup_steps, max_steps)`` — linear warm-up, then cosine decay
  to a floor (reference :func:`mosaics_edu.train.lr_at`);
- ``param_groups(model, weight_decay)`` — AdamW groups, decay on tensors with ≥ 2 dimensions
  only (reference :func:`mosaics_edu.train.param_groups`);
- ``train_step(model, optimizer, x, y, grad_clip)`` — one optimizer step: zero the gradients,
  forward, backward, clip, step; returns the loss as a float (reference
  :func:`mosaics_edu.train.basic_train_step`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from ... import models
from ...training import trainer as train
from . import Case, call_learner, compare, fail, notebook_check, passed

CHAPTER = "05_training"
H1, H2, H3 = "(see hint 1 above)", "(see hint 2 above)", "(see hint 3 above)"

__all__ = [
    "check_lr_at",
    "check_param_groups",
    "check_train_step",
    "reference_train_step",
    "LR_CASES",
    "LR_MISTAKES",
    "LR_REGIMES",
    "GROUP_CASES",
    "STEP_CASES",
]


# --------------------------------------------------------------------------------------------
# exercise 5.1: the learning-rate schedule
# --------------------------------------------------------------------------------------------


def _cosine(p: float) -> float:
    return 0.5 * (1.0 + math.cos(math.pi * p))


def _lr_variant(step, max_lr, min_lr, warmup, max_steps, *, warm="from_step_plus_one",
                floor=True, span="after_warmup", shape="cosine", clamp=True, swap=False,
                warm_inclusive=False, offset=0):
    step += offset
    if swap:
        max_lr, min_lr = min_lr, max_lr
    lo = min_lr if floor else 0.0
    in_warmup = step <= warmup if warm_inclusive else step < warmup
    if in_warmup:
        if warm == "from_step_plus_one":
            return max_lr * (step + 1) / warmup
        if warm == "from_zero":
            return max_lr * step / warmup
        if warm == "from_min":
            return min_lr + (max_lr - min_lr) * (step + 1) / warmup
        if warm == "flat":
            return max_lr
        # warm == "none": fall through, no warm-up at all
    if clamp and step >= max_steps:
        return lo
    start = 0 if warm == "none" else warmup
    p = (step - start) / (max_steps - start) if span == "after_warmup" else step / max_steps
    if shape == "cosine":
        f = _cosine(p)
    elif shape == "full_cosine":
        f = _cosine(2 * p)
    else:
        f = max(0.0, 1.0 - p)
    return lo + f * (max_lr - lo)


LR_MISTAKES: dict[str, dict[str, Any]] = {
    f"started the warm-up at 0: step 0 must already train, lr = max_lr·(step+1)/warmup_steps, "
    f"reaching max_lr on the last warm-up step {H2}": {"warm": "from_zero"},
    f"left out the warm-up: for step < warmup_steps the rate rises linearly, "
    f"max_lr·(step+1)/warmup_steps {H1}": {"warm": "none"},
    f"warmed up from min_lr; the warm-up starts near 0 (max_lr·(step+1)/warmup_steps) {H2}":
        {"warm": "from_min"},
    f"held max_lr during the warm-up; it rises linearly, max_lr·(step+1)/warmup_steps {H2}":
        {"warm": "flat"},
    f"counted the steps from 1: `step` is 0-based, so the first step (step = 0) already gets "
    f"max_lr/warmup_steps {H1}": {"offset": 1},
    f"decayed to 0 instead of to min_lr: the cosine goes from max_lr down to the floor min_lr {H2}":
        {"floor": False},
    f"measured the cosine's progress from step 0 (step/max_steps); it starts after the warm-up: "
    f"p = (step - warmup_steps)/(max_steps - warmup_steps) {H3}": {"span": "from_zero"},
    f"decayed linearly; the schedule is a half cosine, min_lr + (max_lr-min_lr)(1+cos(πp))/2 {H2}":
        {"shape": "linear"},
    f"let the cosine go on after max_steps (it climbs back up); after max_steps the rate stays "
    f"at min_lr {H1}": {"clamp": False},
    f"swapped max_lr and min_lr: the schedule rises to max_lr and decays to the floor min_lr {H1}":
        {"swap": True},
    f"kept warming up at step == warmup_steps (step <= warmup_steps): the warm-up is the steps "
    f"0 … warmup_steps-1, so step warmup_steps already gets the cosine's start, max_lr {H1}":
        {"warm_inclusive": True},
    f"ran a whole cosine period, cos(2πp); the decay is half a period, (1 + cos(πp))/2, which "
    f"goes once from max_lr down to min_lr {H3}": {"shape": "full_cosine"},
}

LR_REGIMES = {
    "no-warmup": f"warmup_steps = 0: the cosine starts at step 0, and nothing may divide by "
                 f"warmup_steps {H1}",
    "no-decay": f"warmup_steps = max_steps: right after the warm-up the rate is min_lr, and nothing "
                f"may divide by max_steps - warmup_steps {H1}",
    "short-warmup": f"warmup_steps = 1: step 0 alone warms up, at max_lr already {H2}",
}

LR_ARGS = ("max_lr", "min_lr", "warmup_steps", "max_steps")
LR_CASES = [Case(3e-3, 1e-4, 10, 100, why="the usual shape"),
            Case(5e-3, 1e-4, 2000, 80_000, why="the papers' settings"),
            Case(1.0, 0.1, 3, 12, why="a short schedule"),
            Case(2e-3, 2e-4, 0, 50, regime="no-warmup", why="no warm-up at all"),
            Case(1e-3, 5e-5, 8, 8, regime="no-decay", why="the warm-up takes every step"),
            Case(4e-3, 0.0, 1, 30, regime="short-warmup", why="one warm-up step, floor 0")]


def _lr_steps(case: tuple) -> list[int]:
    _, _, warmup, max_steps = case
    picks = {0, 1, warmup - 1, warmup, warmup + 1, (warmup + max_steps) // 2, max_steps - 1,
             max_steps, max_steps + 1, max_steps + max_steps // 3}
    picks |= set(np.linspace(0, max_steps + 5, 40).astype(int).tolist())
    return sorted(s for s in picks if s >= 0)


def _schedule(fn: Callable) -> Callable:
    """The rates of ``fn`` at the tested steps of a case, keyed "step 12"."""

    def rates(max_lr, min_lr, warmup_steps, max_steps):
        return {f"step {s}": float(fn(s, max_lr, min_lr, warmup_steps, max_steps))
                for s in _lr_steps((max_lr, min_lr, warmup_steps, max_steps))}

    return rates


@notebook_check
def check_lr_at(lr_at: Callable[[int, float, float, int, int], float]) -> None:
    """Exercise 5.1: the schedule at many steps of six settings, against ``train.lr_at``: every
    argument differs between the settings, and the edges (no warm-up, no decay, one warm-up step)
    are among them."""
    learner = _schedule(lambda *a: call_learner(CHAPTER, "lr_at", lr_at, *a))
    compare(CHAPTER, "lr_at", learner, _schedule(train.lr_at), LR_CASES, arg_names=LR_ARGS,
            mistakes={d: _schedule(lambda *a, f=f: _lr_variant(*a, **f)) for d, f in LR_MISTAKES.items()},
            regimes=LR_REGIMES, rebuild="ch05.LR_CASES[{k}]", float32_probe=False,
            hint=f"Steps are counted from 0: warm-up for step < warmup_steps, the cosine from "
                 f"warmup_steps to max_steps, min_lr from max_steps on {H2}.")


# --------------------------------------------------------------------------------------------
# exercise 5.2: the parameter groups
# --------------------------------------------------------------------------------------------


def _tiny_models() -> list[nn.Module]:
    torch.manual_seed(0)
    mm = models.MemoryMosaicLM(models.MosaicConfig(vocab_size=32, block_size=16, n_layer=2,
                                                   n_head=2, n_embd=16))
    gpt = models.GPT(models.GPTConfig(vocab_size=32, block_size=16, n_layer=1, n_head=2,
                                      n_embd=16))
    frozen = models.GPT(models.GPTConfig(vocab_size=20, block_size=8, n_layer=1, n_head=2, n_embd=8))
    frozen.wpe.weight.requires_grad_(False)  # a frozen position table: in a group or left out
    return [mm, gpt, frozen]


def _names(model: nn.Module, params: set[int]) -> list[str]:
    return [n for n, p in model.named_parameters() if id(p) in params]


def _as_groups(groups: Any) -> list[dict] | None:
    """The learner's groups as a list of dicts with ``params`` as a list (iterators read once)."""
    if isinstance(groups, dict) or isinstance(groups, str) or not hasattr(groups, "__iter__"):
        return None
    groups = list(groups)
    if not all(isinstance(g, dict) for g in groups):
        return None
    out = []
    for g in groups:
        g = dict(g)
        if "params" in g:
            ps = g["params"]
            g["params"] = [ps] if isinstance(ps, torch.Tensor) else list(ps)
        out.append(g)
    return out


# (model index, weight decay): every model is tried with two different rates, so an answer that
# ignores its argument (or hard-codes the papers' 0.1) fails
GROUP_CASES = [Case(0, 0.1, regime=("tied", "3d-tables"), why="a mosaic: 3-D memory tables, a tied head"),
               Case(1, 0.03, regime="tied", why="a GPT: a tied head"),
               Case(0, 0.25, regime=("tied", "3d-tables"), why="the mosaic, another rate"),
               Case(1, 0.1, regime="tied", why="the GPT at the papers' rate"),
               Case(2, 0.05, regime=("tied", "frozen"), why="a GPT with a frozen position table")]


@notebook_check
def check_param_groups(param_groups: Callable[[nn.Module, float], list[dict]]) -> None:
    """Exercise 5.2: decay exactly the tensors with ≥ 2 dims, each parameter in one group."""
    ex = "param_groups"
    tiny = _tiny_models()
    for index, wd in GROUP_CASES:
        model = tiny[index]
        kind = type(model).__name__
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        flags = {n: p.requires_grad for n, p in model.named_parameters()}
        groups = _as_groups(call_learner(CHAPTER, ex, param_groups, model, wd))
        if any(not torch.equal(p, before[n]) or p.requires_grad != flags[n]
               for n, p in model.named_parameters()):
            fail(CHAPTER, ex, f"{kind}: your function changed the model's parameters (their values "
                 f"or requires_grad); it must only sort them into groups {H1}.", "in-place")
        if groups is None:
            fail(CHAPTER, ex, "must return a list of dicts like {'params': [...], "
                 f"'weight_decay': ...}}, the format torch.optim.AdamW accepts {H2}", "type")
        if any("params" not in g or "weight_decay" not in g for g in groups):
            fail(CHAPTER, ex, "every group needs the keys 'params' and 'weight_decay' (set 0.0 "
                 f"explicitly in the group without decay, or AdamW applies its default 0.01) {H2}", "type")
        listed = [p for g in groups for p in g["params"]]
        if any(not isinstance(p, torch.Tensor) for p in listed):
            fail(CHAPTER, ex, "a group's 'params' must hold the parameter tensors themselves; "
                 "yours holds something else (names? (name, tensor) pairs from "
                 f"named_parameters()?) {H2}", "type")
        ids = [id(p) for p in listed]
        if len(ids) != len(set(ids)):
            twice = _names(model, {i for i in ids if ids.count(i) > 1})
            fail(CHAPTER, ex, f"{kind}: some parameters are listed twice ({twice}); the output "
                 "head shares its matrix with the embedding (weight tying). Iterate over "
                 f"model.parameters(), which yields a shared tensor once {H3}.", "mistake")
        every = {id(p) for p in model.parameters() if p.requires_grad}
        frozen = {id(p) for p in model.parameters() if not p.requires_grad}
        if not every <= set(ids):
            missing = _names(model, every - set(ids))
            fail(CHAPTER, ex, f"{kind}: parameters missing from the groups: {missing[:5]}; "
                 f"every trainable parameter must be in exactly one group {H2}.", "mistake")
        if set(ids) - every - frozen:
            fail(CHAPTER, ex, f"{kind}: the groups hold tensors that are not parameters of the model "
                 f"{H2}.", "mistake")
        rates = {float(g["weight_decay"]) for g in groups if float(g["weight_decay"]) > 0}
        if rates and rates != {wd}:
            hint = (" You seem to have typed the papers' 0.1 instead of using the argument."
                    if rates == {0.1} else "")
            fail(CHAPTER, ex, f"{kind}, called with weight_decay={wd:g}: the decaying group must "
                 f"use that argument, got weight_decay={', '.join(f'{r:g}' for r in sorted(rates))}."
                 + hint, "ignored")
        decayed = {id(p) for g in groups if float(g["weight_decay"]) > 0 for p in g["params"]} - frozen
        want = {id(p) for p in model.parameters() if p.dim() >= 2 and p.requires_grad}
        if decayed == want:
            continue
        by_dim = {id(p): p.dim() for p in model.parameters() if p.requires_grad}
        vectors = {i for i, d in by_dim.items() if d < 2}
        if decayed == every:
            fail(CHAPTER, ex, f"{kind}: you decay every parameter. LayerNorm gains and the "
                 "per-head decay/beta/mix/scale scalars (< 2 dims) must not decay: "
                 f"shrinking them toward 0 changes what the layer computes {H1}.", "mistake")
        if not decayed:
            fail(CHAPTER, ex, f"{kind}: nothing decays; matrices, embeddings and memory tables "
                 f"(p.dim() >= 2) get weight_decay {H2}.", "mistake")
        if decayed == vectors:
            fail(CHAPTER, ex, f"{kind}: the groups are swapped: tensors with >= 2 dims decay, "
                 f"vectors and scalars do not {H3}.", "mistake")
        if decayed == {i for i, d in by_dim.items() if d == 2}:
            fail(CHAPTER, ex, f"{kind}: you selected p.dim() == 2; the persistent memory's "
                 f"tables are 3-D (n_head, pmem_size, head_size) and decay too: use p.dim() >= 2 {H3}.",
                 "mistake")
        named_weight = {id(p) for n, p in model.named_parameters() if n.endswith("weight")}
        if decayed == named_weight:
            fail(CHAPTER, ex, f"{kind}: you chose by name ('weight' in the name): LayerNorm gains "
                 "are called 'weight' too but are vectors, and the persistent memory's tables "
                 f"are not called 'weight' but are matrices. Choose by shape: p.dim() >= 2 {H3}.", "mistake")
        embedding = {id(p) for n, p in model.named_parameters() if "wte" in n or "wpe" in n}
        if decayed == want - embedding:
            fail(CHAPTER, ex, f"{kind}: the embeddings do not decay in yours; in the papers' "
                 f"recipe every tensor with >= 2 dims decays, the (tied) embedding included {H2}.", "mistake")
        extra, lacking = _names(model, decayed - want), _names(model, want - decayed)
        fail(CHAPTER, ex, f"{kind}: decayed but should not: {extra[:4]}; should decay but "
             f"does not: {lacking[:4]}. The rule: weight decay iff p.dim() >= 2 {H2}.")
    passed(CHAPTER, ex)


# --------------------------------------------------------------------------------------------
# exercise 5.3: one training step
# --------------------------------------------------------------------------------------------


# the reference is the package's plain step (zero_grad, forward, backward, clip, step)
reference_train_step = train.basic_train_step


def _step_variant(model, optimizer, x, y, grad_clip, *, zero=True, clip=True, step=True,
                  clip_each=False, guard=True, fixed_clip=None, clip_value=False):
    model.train()
    if zero:
        optimizer.zero_grad(set_to_none=True)
    _, loss = model(x, y)
    loss.backward()
    threshold = grad_clip if fixed_clip is None else fixed_clip
    if clip and (threshold > 0 or not guard):
        if clip_value:
            torch.nn.utils.clip_grad_value_(model.parameters(), threshold)
        elif clip_each:
            for p in model.parameters():
                if p.grad is not None:
                    torch.nn.utils.clip_grad_norm_([p], threshold)
        else:
            torch.nn.utils.clip_grad_norm_(model.parameters(), threshold)
    if step:
        optimizer.step()
    return float(loss.detach())


STEP_MISTAKES: dict[str, dict[str, Any]] = {
    f"did not zero the gradients before backward(): .grad accumulates, so last step's gradients "
    f"were added to this one (optimizer.zero_grad() first) {H1}": {"zero": False},
    f"did not clip the gradients, or clipped after optimizer.step() (too late to matter): call "
    f"torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip) between backward() and step() {H2}":
        {"clip": False},
    f"clipped each parameter's gradient separately; clip_grad_norm_ over model.parameters() "
    f"clips the norm of all gradients together {H3}": {"clip_each": True},
    f"clipped each gradient entry to ±grad_clip (clip_grad_value_); the recipe clips the norm of "
    f"all gradients together, clip_grad_norm_ {H3}": {"clip_value": True},
    f"never changed the weights: call optimizer.step() after backward() and clipping (and do not "
    f"zero the gradients between backward() and step()) {H2}": {"step": False},
}
GUARD_MISTAKE = (
    "clipped even with grad_clip=0: 0 means 'no clipping', but clip_grad_norm_(..., 0) scales "
    f"every gradient to 0, so the step learns nothing. Clip only `if grad_clip > 0` {H3}")
FIXED_CLIPS = (1.0, 0.5, 0.25, 0.1, 2.0)

# (optimizer, grad_clip). The gradient norm of the check's model is about 2.7: 0.05 and 0.2 clip
# (and so would every threshold of FIXED_CLIPS), 10 does not, 0.0 means "no clipping".
STEP_CASES = [Case("sgd", 0.05, regime="clip-binds", why="SGD, the clip binds"),
              Case("adamw", 0.05, regime="clip-binds", why="AdamW, the clip binds"),
              Case("sgd", 0.2, regime="clip-binds", why="SGD, another binding threshold"),
              Case("sgd", 10.0, regime="clip-free", why="a threshold above the gradient norm"),
              Case("sgd", 0.0, regime="no-clip", why="grad_clip = 0: no clipping"),
              Case("adamw", 0.0, regime="no-clip", why="AdamW without clipping")]
STEP_REGIMES = {"clip-binds": f"grad_clip is below the gradient norm (about 2.7), so clipping "
                              f"changes the step {H3}",
                "clip-free": f"grad_clip is above the gradient norm: clipping changes nothing {H3}",
                "no-clip": f"grad_clip = 0, which means: do not clip at all {H3}"}


def step_setup(opt: str, seed: int = 0):
    """(model, optimizer, x, y) of a test case: the model holds stale gradients from an "earlier
    step" and has large logits (gradient norm about 2.7). ``opt``: "sgd" or "adamw"."""
    return _setup(seed, opt)


def _setup(seed: int, opt: str):
    torch.manual_seed(seed)
    model = models.MemoryMosaicLM(models.MosaicConfig(vocab_size=24, block_size=12, n_layer=1,
                                                      n_head=2, n_embd=16))
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 24, (3, 12), generator=gen)
    y = torch.randint(0, 24, (3, 12), generator=gen)
    with torch.no_grad():  # large logits: gradient norm ≈ 2.7, above every common fixed threshold
        model.wte.weight.mul_(10.0)
    for p in model.parameters():  # stale gradients from an "earlier step"
        p.grad = torch.randn(p.shape, generator=gen) * 5.0
    if opt == "sgd":
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    else:
        optimizer = torch.optim.AdamW(train.param_groups(model, 0.1), lr=1e-2)
    return model, optimizer, x, y


def _run(fn: Callable, seed: int, opt: str, clip: float) -> tuple[Any, list[torch.Tensor]]:
    model, optimizer, x, y = _setup(seed, opt)
    x0, y0 = x.clone(), y.clone()
    out = fn(model, optimizer, x, y, clip)
    if not (torch.equal(x, x0) and torch.equal(y, y0)):
        fail(CHAPTER, "train_step", "your function changed its argument `x` or `y` in place; "
             "the batch must be left as it was given.", "in-place")
    return out, [p.detach().clone() for p in model.parameters()]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.allclose(u, v, rtol=1e-5, atol=1e-7) for u, v in zip(a, b, strict=True))


def _diagnose_step(learner: Callable, w_got: list[torch.Tensor], opt: str, clip: float) -> str | None:
    """The likely mistake behind weights ``w_got`` after one step with (opt, clip), or None.

    A threshold mistake is claimed only when it explains the learner's step at two different
    values of grad_clip (a step taken twice with SGD looks like one step clipped at 2·grad_clip).
    """

    def variant(at: float = clip, **flags):
        return _run(lambda *a: _step_variant(*a, **flags), 0, opt, at)[1]

    if clip == 0 and _same(w_got, variant(guard=False)):
        return GUARD_MISTAKE
    other = clip * 4 if clip > 0 else None
    w_other = _run(learner, 0, opt, other)[1] if other else None
    if other:
        for threshold in FIXED_CLIPS:
            if (threshold != clip and _same(w_got, variant(fixed_clip=threshold))
                    and _same(w_other, variant(other, fixed_clip=threshold))):
                return (f"clipped at a fixed {threshold:g} instead of the argument grad_clip "
                        f"(= {clip:g} here): use clip_grad_norm_(model.parameters(), grad_clip)")
    for diagnosis, flags in STEP_MISTAKES.items():
        if _same(w_got, variant(**flags)):
            return diagnosis
    if other:  # an answer that ignores grad_clip does the same step for another threshold
        if not _same(variant(other), variant()) and _same(w_other, w_got):
            return (f"ignored the argument grad_clip: your step is the same with grad_clip="
                    f"{clip:g} and {other:g}, the right one is not")
        alt = "adamw" if opt == "sgd" else "sgd"  # two SGD steps look like one with 2·grad_clip
        for factor in (0.5, 2.0, 0.1, 10.0):
            if (_same(w_got, variant(clip * factor))
                    and _same(w_other, variant(other * factor))
                    and _same(_run(learner, 0, alt, clip)[1],
                              _run(lambda *a: _step_variant(*a), 0, alt, clip * factor)[1])):
                return (f"clipped at grad_clip × {factor:g}: your step is the right step for "
                        f"grad_clip={clip * factor:g}; pass grad_clip itself as max_norm")
    return None


@notebook_check
def check_train_step(train_step: Callable[..., float]) -> None:
    """Exercise 5.3: same loss and same weights after one step as the reference, with SGD (where
    clipping shows directly) and AdamW, clipping thresholds that bind, one that does not, and 0
    (no clipping), on a model that holds stale gradients."""
    ex = "train_step"

    def learner(*a):
        return call_learner(CHAPTER, ex, train_step, *a)

    def wrong(opt: str, clip: float) -> tuple[Any, bool]:
        loss_ref, w_ref = _run(reference_train_step, 0, opt, clip)
        got, w_got = _run(learner, 0, opt, clip)
        if isinstance(got, torch.Tensor):
            fail(CHAPTER, ex, f"returned a tensor; return the loss as a Python float "
                 f"(float(loss) or loss.item()), so the graph is not kept alive {H2}", "type")
        if not isinstance(got, float | int):
            fail(CHAPTER, ex, f"must return the loss as a float, got {type(got).__name__} {H2}", "type")
        if _same(w_got, w_ref) and not math.isclose(float(got), loss_ref, rel_tol=1e-5):
            fail(CHAPTER, ex, f"the weights are right but the returned loss {float(got):.5f} is not "
                 f"this step's loss {loss_ref:.5f} (the loss of the forward pass, before the update) "
                 f"{H2}", "mistake")
        return w_got, not _same(w_got, w_ref)

    for k, (opt, clip) in enumerate(STEP_CASES):
        w_got, bad = wrong(opt, clip)
        if not bad:
            continue
        where = (f"on test case {k} of {len(STEP_CASES)} ({STEP_CASES[k].why}; with {opt}, "
                 f"grad_clip={clip:g})")
        rebuild = (f"\n  To rebuild it: from mosaics_edu.course.checks import ch05; model, optimizer, x, y = "
                   f"ch05.step_setup({opt!r}); grad_clip = {clip!r}")
        diagnosis = _diagnose_step(learner, w_got, opt, clip)
        if diagnosis is not None:
            fail(CHAPTER, ex, f"wrong {where}: it looks like you {diagnosis}.{rebuild}", "mistake")
        failing = [j for j, (o, c) in enumerate(STEP_CASES) if j == k or (j > k and wrong(o, c)[1])]
        shared = set.intersection(*(set(STEP_CASES[j].regime) for j in failing))
        if shared and len(failing) < len(STEP_CASES):
            r = shared.pop()
            fail(CHAPTER, ex, f"wrong {where}: the weights after your step differ; it fails on test "
                 f"cases {', '.join(map(str, failing))} only, and every one of them is a case where "
                 f"{STEP_REGIMES[r]}.{rebuild}", "regime")
        names = [n for n, _ in _setup(0, opt)[0].named_parameters()]
        w_ref = _run(reference_train_step, 0, opt, clip)[1]
        diffs = [float((u - v).abs().max()) for u, v in zip(w_got, w_ref, strict=True)]
        worst = int(np.argmax(diffs))
        n_bad = sum(d > 1e-6 for d in diffs)
        fail(CHAPTER, ex, f"wrong {where}: after your step {n_bad} of {len(diffs)} parameter tensors "
             f"differ from the reference, most {names[worst]} (by {diffs[worst]:.3g}). Order: "
             f"zero_grad, forward (model(x, y) returns (logits, loss)), backward, clip if "
             f"grad_clip > 0, step {H2}.{rebuild}")
    passed(CHAPTER, ex)
