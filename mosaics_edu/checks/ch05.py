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

from .. import models, train
from . import call_learner, fail, passed

CHAPTER = "05_training"

__all__ = [
    "check_lr_at",
    "check_param_groups",
    "check_train_step",
    "reference_train_step",
    "LR_MISTAKES",
]


# --------------------------------------------------------------------------------------------
# exercise 5.1: the learning-rate schedule
# --------------------------------------------------------------------------------------------


def _cosine(p: float) -> float:
    return 0.5 * (1.0 + math.cos(math.pi * p))


def _lr_variant(step, max_lr, min_lr, warmup, max_steps, *, warm="from_step_plus_one",
                floor=True, span="after_warmup", shape="cosine", clamp=True):
    lo = min_lr if floor else 0.0
    if step < warmup:
        if warm == "from_step_plus_one":
            return max_lr * (step + 1) / warmup
        if warm == "from_zero":
            return max_lr * step / warmup
        if warm == "from_min":
            return min_lr + (max_lr - min_lr) * (step + 1) / warmup
        if warm == "none":
            pass  # fall through: no warm-up at all
    if clamp and step >= max_steps:
        return lo
    if span == "after_warmup":
        p = (step - (0 if warm == "none" else warmup)) / max(1, max_steps - (0 if warm == "none" else warmup))
    else:  # the cosine measured from step 0
        p = step / max_steps
    f = _cosine(p) if shape == "cosine" else max(0.0, 1.0 - p)
    return lo + f * (max_lr - lo)


LR_MISTAKES: dict[str, dict[str, Any]] = {
    "started the warm-up at 0: step 0 must already train, lr = max_lr·(step+1)/warmup_steps, "
    "reaching max_lr on the last warm-up step": {"warm": "from_zero"},
    "left out the warm-up: for step < warmup_steps the rate rises linearly, "
    "max_lr·(step+1)/warmup_steps": {"warm": "none"},
    "warmed up from min_lr; the warm-up starts near 0 (max_lr·(step+1)/warmup_steps)":
        {"warm": "from_min"},
    "decayed to 0 instead of to min_lr: the cosine goes from max_lr down to the floor min_lr":
        {"floor": False},
    "measured the cosine's progress from step 0 (step/max_steps); it starts after the warm-up: "
    "p = (step - warmup_steps)/(max_steps - warmup_steps)": {"span": "from_zero"},
    "decayed linearly; the schedule is a half cosine, min_lr + (max_lr-min_lr)(1+cos(πp))/2":
        {"shape": "linear"},
    "let the cosine go on after max_steps (it climbs back up); after max_steps the rate stays "
    "at min_lr": {"clamp": False},
}

LR_CASES = [  # (max_lr, min_lr, warmup_steps, max_steps)
    (3e-3, 1e-4, 10, 100),
    (5e-3, 1e-4, 2000, 80_000),
    (1.0, 0.1, 3, 12),
]


def _lr_curve(fn: Callable, case: tuple, steps: np.ndarray) -> np.ndarray:
    max_lr, min_lr, warmup, max_steps = case
    return np.array([float(fn(int(s), max_lr, min_lr, warmup, max_steps)) for s in steps])


def _lr_steps(case: tuple) -> np.ndarray:
    _, _, warmup, max_steps = case
    picks = {0, 1, warmup - 1, warmup, warmup + 1, (warmup + max_steps) // 2, max_steps - 1,
             max_steps, max_steps + 1, max_steps + max_steps // 3}
    picks |= set(np.linspace(0, max_steps + 5, 40).astype(int).tolist())
    return np.array(sorted(s for s in picks if s >= 0))


def check_lr_at(lr_at: Callable[[int, float, float, int, int], float]) -> None:
    """Exercise 5.1: the schedule at many steps of three settings, against ``train.lr_at``."""
    ex = "lr_at"
    for case in LR_CASES:
        steps = _lr_steps(case)
        want = _lr_curve(train.lr_at, case, steps)
        got = _lr_curve(lambda *a: call_learner(CHAPTER, ex, lr_at, *a), case, steps)
        if np.allclose(got, want, rtol=1e-6, atol=1e-12):
            continue
        for diagnosis, flags in LR_MISTAKES.items():
            wrong = _lr_curve(lambda *a, f=flags: _lr_variant(*a, **f), case, steps)
            if np.allclose(got, wrong, rtol=1e-6, atol=1e-12):
                fail(CHAPTER, ex, f"wrong with max_lr, min_lr, warmup_steps, max_steps = {case}: "
                     f"it looks like you {diagnosis}.")
        i = int(np.argmax(np.abs(got - want)))
        fail(CHAPTER, ex, f"wrong with max_lr, min_lr, warmup_steps, max_steps = {case}: at step "
             f"{int(steps[i])} you return {got[i]:.6g}, expected {want[i]:.6g}.")
    passed(CHAPTER, ex)


# --------------------------------------------------------------------------------------------
# exercise 5.2: the parameter groups
# --------------------------------------------------------------------------------------------


def _tiny_models() -> list[nn.Module]:
    torch.manual_seed(0)
    mm = models.MemoryMosaicLM(models.MosaicConfig(vocab_size=32, block_size=16, n_layer=2,
                                                   n_head=2, n_embd=16))
    gpt = models.GPT(models.GPTConfig(vocab_size=32, block_size=16, n_layer=1, n_head=2,
                                      n_embd=16))
    return [mm, gpt]


def _names(model: nn.Module, params: set[int]) -> list[str]:
    return [n for n, p in model.named_parameters() if id(p) in params]


def check_param_groups(param_groups: Callable[[nn.Module, float], list[dict]]) -> None:
    """Exercise 5.2: decay exactly the tensors with ≥ 2 dims, each parameter in one group."""
    ex = "param_groups"
    for model in _tiny_models():
        kind = type(model).__name__
        groups = call_learner(CHAPTER, ex, param_groups, model, 0.1)
        if not isinstance(groups, list | tuple) or not all(isinstance(g, dict) for g in groups):
            fail(CHAPTER, ex, "must return a list of dicts like {'params': [...], "
                 "'weight_decay': ...}, the format torch.optim.AdamW accepts")
        if any("params" not in g or "weight_decay" not in g for g in groups):
            fail(CHAPTER, ex, "every group needs the keys 'params' and 'weight_decay' (set 0.0 "
                 "explicitly in the group without decay, or AdamW applies its default 0.01)")
        listed = [p for g in groups for p in g["params"]]
        ids = [id(p) for p in listed]
        if len(ids) != len(set(ids)):
            twice = _names(model, {i for i in ids if ids.count(i) > 1})
            fail(CHAPTER, ex, f"{kind}: some parameters are listed twice ({twice}); the output "
                 "head shares its matrix with the embedding (weight tying). Iterate over "
                 "model.parameters(), which yields a shared tensor once.")
        every = {id(p) for p in model.parameters() if p.requires_grad}
        if set(ids) != every:
            missing = _names(model, every - set(ids))
            fail(CHAPTER, ex, f"{kind}: parameters missing from the groups: {missing[:5]}; "
                 "every trainable parameter must be in exactly one group.")
        decayed = {id(p) for g in groups if float(g["weight_decay"]) > 0 for p in g["params"]}
        rates = {float(g["weight_decay"]) for g in groups if float(g["weight_decay"]) > 0}
        if rates - {0.1}:
            fail(CHAPTER, ex, f"{kind}: the decaying group must use weight_decay={0.1} (the "
                 f"argument), got {sorted(rates)}")
        want = {id(p) for p in model.parameters() if p.dim() >= 2}
        if decayed == want:
            continue
        by_dim = {id(p): p.dim() for p in model.parameters()}
        vectors = {i for i, d in by_dim.items() if d < 2}
        if decayed == every:
            fail(CHAPTER, ex, f"{kind}: you decay every parameter. LayerNorm gains and the "
                 "per-head leak/bandwidth/mix/scale scalars (< 2 dims) must not decay: "
                 "shrinking them toward 0 changes what the layer computes.")
        if not decayed:
            fail(CHAPTER, ex, f"{kind}: nothing decays; matrices, embeddings and memory tables "
                 "(p.dim() >= 2) get weight_decay.")
        if decayed == vectors:
            fail(CHAPTER, ex, f"{kind}: the groups are swapped: tensors with >= 2 dims decay, "
                 "vectors and scalars do not.")
        if decayed == {i for i, d in by_dim.items() if d == 2}:
            fail(CHAPTER, ex, f"{kind}: you selected p.dim() == 2; the persistent memory's "
                 "tables are 3-D (n_head, pmem_size, head_size) and decay too: use p.dim() >= 2.")
        embedding = {id(p) for n, p in model.named_parameters() if "wte" in n or "wpe" in n}
        if decayed == want - embedding:
            fail(CHAPTER, ex, f"{kind}: the embeddings do not decay in yours; in the papers' "
                 "recipe every tensor with >= 2 dims decays, the (tied) embedding included.")
        extra, lacking = _names(model, decayed - want), _names(model, want - decayed)
        fail(CHAPTER, ex, f"{kind}: decayed but should not: {extra[:4]}; should decay but "
             f"does not: {lacking[:4]}. The rule: weight decay iff p.dim() >= 2.")
    passed(CHAPTER, ex)


# --------------------------------------------------------------------------------------------
# exercise 5.3: one training step
# --------------------------------------------------------------------------------------------


# the reference is the package's plain step (zero_grad, forward, backward, clip, step)
reference_train_step = train.basic_train_step


def _step_variant(model, optimizer, x, y, grad_clip, *, zero=True, clip=True, step=True,
                  clip_each=False):
    model.train()
    if zero:
        optimizer.zero_grad(set_to_none=True)
    _, loss = model(x, y)
    loss.backward()
    if clip and grad_clip > 0:
        if clip_each:
            for p in model.parameters():
                if p.grad is not None:
                    torch.nn.utils.clip_grad_norm_([p], grad_clip)
        else:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    if step:
        optimizer.step()
    return float(loss.detach())


STEP_MISTAKES: dict[str, dict[str, Any]] = {
    "did not zero the gradients before backward(): .grad accumulates, so last step's gradients "
    "were added to this one (optimizer.zero_grad() first)": {"zero": False},
    "did not clip the gradients, or clipped after optimizer.step() (too late to matter): call "
    "torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip) between backward() and step()":
        {"clip": False},
    "clipped each parameter's gradient separately; clip_grad_norm_ over model.parameters() "
    "clips the norm of all gradients together": {"clip_each": True},
    "never changed the weights: call optimizer.step() after backward() and clipping (and do not "
    "zero the gradients between backward() and step())": {"step": False},
}


def _setup(seed: int, opt: str):
    torch.manual_seed(seed)
    model = models.MemoryMosaicLM(models.MosaicConfig(vocab_size=24, block_size=12, n_layer=1,
                                                      n_head=2, n_embd=16))
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 24, (3, 12), generator=gen)
    y = torch.randint(0, 24, (3, 12), generator=gen)
    for p in model.parameters():  # stale gradients from an "earlier step"
        p.grad = torch.randn(p.shape, generator=gen) * 5.0
    if opt == "sgd":
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    else:
        optimizer = torch.optim.AdamW(train.param_groups(model, 0.1), lr=1e-2)
    return model, optimizer, x, y


def _run(fn: Callable, seed: int, opt: str, clip: float) -> tuple[Any, list[torch.Tensor]]:
    model, optimizer, x, y = _setup(seed, opt)
    out = fn(model, optimizer, x, y, clip)
    return out, [p.detach().clone() for p in model.parameters()]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.allclose(u, v, rtol=1e-5, atol=1e-7) for u, v in zip(a, b, strict=True))


def check_train_step(train_step: Callable[..., float]) -> None:
    """Exercise 5.3: same loss and same weights after one step as the reference, with SGD (where
    clipping shows directly) and AdamW, on a model that holds stale gradients."""
    ex = "train_step"
    for opt, clip in (("sgd", 0.05), ("adamw", 0.05), ("sgd", 0.0)):
        loss_ref, w_ref = _run(reference_train_step, 0, opt, clip)
        got, w_got = _run(lambda *a: call_learner(CHAPTER, ex, train_step, *a), 0, opt, clip)
        if isinstance(got, torch.Tensor):
            fail(CHAPTER, ex, "returned a tensor; return the loss as a Python float "
                 "(float(loss) or loss.item()), so the graph is not kept alive")
        if not isinstance(got, float | int):
            fail(CHAPTER, ex, f"must return the loss as a float, got {type(got).__name__}")
        if _same(w_got, w_ref):
            if not math.isclose(float(got), loss_ref, rel_tol=1e-5):
                fail(CHAPTER, ex, f"the weights are right but the returned loss {float(got):.5f} "
                     f"is not this step's loss {loss_ref:.5f} (the loss of the forward pass, "
                     "before the update)")
            continue
        for diagnosis, flags in STEP_MISTAKES.items():
            _, w_wrong = _run(lambda *a, f=flags: _step_variant(*a, **f), 0, opt, clip)
            if _same(w_got, w_wrong):
                fail(CHAPTER, ex, f"with {opt}, grad_clip={clip}: it looks like you {diagnosis}.")
        worst = max(float((u - v).abs().max()) for u, v in zip(w_got, w_ref, strict=True))
        fail(CHAPTER, ex, f"with {opt}, grad_clip={clip}: the weights after your step differ from "
             f"the reference by up to {worst:.3g}. Order: zero_grad, forward (model(x, y) returns "
             "(logits, loss)), backward, clip, step.")
    passed(CHAPTER, ex)
