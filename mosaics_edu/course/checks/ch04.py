"""Checks for chapter 04 (A memory mosaic layer).

The learner rebuilds a Memory Mosaic language model piece by piece, as plain functions:

- ``effective_scalars(theta)``          — the papers' parameterisation of the per-head scalars
  (θ, the ×10, the clamp, s_h, β_h = s_h²),
- ``context_memory(x, p, n_head)``     — the contextual memory (strictly causal retrieval),
- ``persistent_memory(x, p, n_head)``  — the persistent memory (learned key/value tables),
- ``mosaic_lm(idx, model)``            — the whole model from a package model's parts
  (embedding without positions, pre-LN blocks, final LayerNorm, tied head, logits × 1/√d),
- ``model_sizes(vocab_size, block_size, n_layer, n_embd, n_head, pmem_size)`` — parameter
  counts of a whole mosaic and a whole GPT.

The truth is always the package: :class:`mosaics_edu.core.layers.ContextMemory`,
:class:`~mosaics_edu.core.layers.PersistentMemory` and :class:`~mosaics_edu.core.layers.MosaicBlock` run on
the *same weights* (``context_memory_weights(layer)`` hands them to the learner as plain tensors).
Every check runs on :func:`mosaics_edu.course.checks.compare`: the truth is the functional reference
(:mod:`mosaics_edu.course.checks.ch04_layers`, float64), itself tested against the package layers; each
known mistake (a mask off by one, keys not normalised, the bandwidth β forgotten, the peek
forgotten, LayerNorm misplaced, ...) is the same reference with one switch flipped or one weight
replaced, and each case sits in a regime where some mistake shows (its ``why`` says which).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ... import models
from ...core import layers
from . import Case, Floor, call_learner, compare, fail, mistakes_from, notebook_check
from .ch04_layers import (
    Weights,
    context_memory_weights,
    persistent_memory_weights,
    random_context_memory,
    random_lm,
    random_persistent_memory,
)
from .ch04_layers import context_memory as _cmem
from .ch04_layers import mosaic_lm as _lm
from .ch04_layers import persistent_memory as _pmem
from .ch04_layers import random_inputs as _inputs

CHAPTER = "04_mosaic_layer"
H1, H2, H3 = "(see hint 1 above)", "(see hint 2 above)", "(see hint 3 above)"
#: The learner's layers and model are float32 work in their own order; the references are not.
FLOAT32_LAYERS = Floor(rel=1e-4, abs=1e-5)

__all__ = [
    "check_effective_scalars", "check_context_memory", "check_persistent_memory", "check_mosaic_lm",
    "check_model_sizes", "scalar_cases", "cmem_cases", "pmem_cases", "lm_cases", "SIZE_CASES",
    "reference_effective_scalars", "reference_context_memory", "reference_persistent_memory",
    "reference_mosaic_lm", "reference_model_sizes",
    # the layers' weights and random layers (from ch04_layers)
    "context_memory_weights", "persistent_memory_weights", "random_context_memory",
    "random_persistent_memory", "random_lm",
]


def reference_context_memory(x: torch.Tensor, p: Weights, n_head: int) -> torch.Tensor:
    """The contextual memory computed from its weights (float64). x: (B, T, d) -> (B, T, d)."""
    return _cmem(x, p, n_head)


def reference_persistent_memory(x: torch.Tensor, p: Weights, n_head: int) -> torch.Tensor:
    """The persistent memory computed from its weights (float64). x: (B, T, d) -> (B, T, d)."""
    return _pmem(x, p, n_head)


def _ones(name: str) -> Callable[[Weights], torch.Tensor]:
    return lambda p: torch.ones_like(p[name])


def _zeros(name: str) -> Callable[[Weights], torch.Tensor]:
    return lambda p: torch.zeros_like(p[name])


def _transposed(*names: str) -> dict[str, Callable[[Weights], torch.Tensor]]:
    return {k: (lambda p, k=k: p[k].T) for k in names}


def _no_projection(p: Weights) -> torch.Tensor:
    return torch.eye(p["W_o"].shape[0], dtype=p["W_o"].dtype)


# --------------------------------------------------------------------------------------------
# exercise 4.1: the per-head scalars, from the raw parameters the optimizer sees
# --------------------------------------------------------------------------------------------

RAW_NAMES = ("decay_logit", "beta_logit", "alpha_logit")
SCALAR_NAMES = ("decay", "scale", "beta", "alpha")


def reference_effective_scalars(theta: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The package's extractors loaded with ``theta``: decay λ_h, scale s_h, beta β_h, alpha α_h."""
    H = int(torch.as_tensor(theta["decay_logit"]).shape[0])
    keys, values = layers.KeyExtractor(H, H), layers.ValueExtractor(H, H)
    with torch.no_grad():
        keys.decay_logit.copy_(torch.as_tensor(theta["decay_logit"]))
        keys.beta_logit.copy_(torch.as_tensor(theta["beta_logit"]))
        values.alpha_logit.copy_(torch.as_tensor(theta["alpha_logit"]))
        return {"decay": keys.decay.double(), "scale": keys.scale.double(),
                "beta": keys.beta.double(), "alpha": values.alpha.double()}


def _scalars(theta: dict[str, torch.Tensor], *, times: float = 10.0, decay: str = "abs",
             sign: float = -1.0, clamp: str = "log", square: bool = True,
             alpha_sign: float = 1.0) -> dict[str, torch.Tensor]:
    """The parameterisation with switches that make the known mistakes."""
    t = {k: torch.as_tensor(theta[k], dtype=torch.float64) for k in RAW_NAMES}
    r = times * (t["decay_logit"].abs() if decay == "abs" else t["decay_logit"])
    decay_rate = torch.exp(sign * r)
    if decay == "cap":  # λ = min(exp(-10θ), 1) instead of exp(-10|θ|)
        decay_rate = decay_rate.clamp(max=1.0)
    log_s = times * t["beta_logit"]
    scale = {"log": lambda: torch.exp(log_s.clamp(max=5.0)),
             "both": lambda: torch.exp(log_s.clamp(-5.0, 5.0)),
             "scale": lambda: torch.exp(log_s).clamp(max=5.0), "none": lambda: torch.exp(log_s)}[clamp]()
    return {"decay": decay_rate, "scale": scale, "beta": scale**2 if square else scale,
            "alpha": torch.exp(alpha_sign * times * t["alpha_logit"])}


SCALAR_MISTAKES: dict[str, dict[str, Any]] = {
    f"forgot the ×10: every effective quantity uses 10·θ (λ = exp(-10|θ|), s = exp(min(10θ^β, 5)), "
    f"α = exp(10θ^v)) {H1}": {"times": 1.0},
    f"forgot the absolute value: λ_h = exp(-10|θ_h|); without it a negative θ gives λ > 1, a "
    f"leaky average that grows without bound {H2}": {"decay": "plain"},
    f"capped λ at 1 instead of taking |θ|: a negative θ must give exp(-10|θ|) < 1, the same λ as "
    f"the positive θ {H2}": {"decay": "cap"},
    f"flipped the sign in the decay: λ_h = exp(-r_h) with r_h = 10|θ_h| ≥ 0, so 0 < λ ≤ 1 {H2}":
        {"sign": 1.0},
    f"forgot the clamp: s_h = exp(min(10θ^β_h, 5)), so that β = s² never exceeds e^10 (fp16 "
    f"logits) {H3}": {"clamp": "none"},
    f"clamped s_h itself at 5; the clamp is on the log-scale, s_h = exp(min(10θ^β_h, 5)) ≤ e^5 {H3}":
        {"clamp": "scale"},
    f"clamped the log-scale from below too; only the upper bound 5 exists (a small β is harmless) {H3}":
        {"clamp": "both"},
    f"used β_h = s_h; the bandwidth is β_h = s_h² (both keys of a pair carry s_h) {H2}": {"square": False},
    f"flipped the sign of α: α_h = exp(+10θ^v_h) {H2}": {"alpha_sign": -1.0},
}

SCALAR_REGIMES = {
    "clamp-binds": f"some 10·θ^β exceeds 5, so the clamp binds: s = e^5, β = e^10 {H3}",
    "clamp-below": f"some 10·θ^β is below -5, where only a (wrong) lower clamp would bind {H3}",
    "negative-decay": f"some θ of the decay is negative: λ = exp(-10|θ|) stays below 1 {H2}",
    "one-head": f"there is a single head: every output has shape (1,) {H1}",
}


def scalar_cases() -> list[Case]:
    gen = torch.Generator().manual_seed(41)
    init = {"decay_logit": torch.linspace(0.5, 5.0, 4) / 10, "beta_logit": torch.full((4,), 0.1),
            "alpha_logit": torch.full((4,), -0.05)}
    varied = {"decay_logit": torch.tensor([-0.3, -0.02, 0.0, 0.05, 0.4], dtype=torch.float64),
              "beta_logit": torch.tensor([-0.8, -0.1, 0.3, 0.55, 0.9], dtype=torch.float64),
              "alpha_logit": torch.tensor([-0.2, 0.0, 0.07, 0.15, -0.6], dtype=torch.float64)}
    rand = {k: (torch.rand(7, generator=gen) - 0.5) * 1.6 for k in RAW_NAMES}
    one = {"decay_logit": torch.tensor([-0.12]), "beta_logit": torch.tensor([0.7]),
           "alpha_logit": torch.tensor([0.03])}
    return [Case(init, why="the papers' initialisation"),
            Case(varied, regime=("clamp-binds", "clamp-below", "negative-decay"),
                 why="θ's of both signs, the clamp binding above and a θ^β below -0.5"),
            Case(rand, regime=("clamp-binds", "negative-decay"), why="random θ's in [-0.8, 0.8]"),
            Case(one, regime=("one-head", "clamp-binds", "negative-decay"), why="a single head")]


@notebook_check
def check_effective_scalars(effective_scalars: Callable[[dict], dict]) -> None:
    """Exercise 4.1: raw θ's -> effective decay, scale, beta, alpha, as the package computes them."""
    compare(CHAPTER, "effective_scalars", effective_scalars, reference_effective_scalars, scalar_cases(),
            mistakes=mistakes_from(_scalars, SCALAR_MISTAKES), regimes=SCALAR_REGIMES, arg_names=["theta"],
            rebuild="ch04.scalar_cases()[{k}]",
            hint=f"Compute one head by hand from its three θ's and compare the four numbers {H2}.")


# --------------------------------------------------------------------------------------------
# exercise 4.2: the contextual memory
# --------------------------------------------------------------------------------------------

CMEM_MISTAKES: dict[str, dict[str, Any]] = {
    f"let position t read its own pair (s ≤ t instead of s < t): v_t holds x_{{t+1}}, the very token "
    f"position t must predict, so the mask must exclude the diagonal (tril(..., diagonal=-1)) {H3}":
        {"lag": 0},
    f"masked one step too many (s ≤ t-2): position t may read every pair s < t, including s = t-1 {H3}":
        {"lag": 2},
    f"forgot to L2-normalise the keys: k_t = k̄_t/‖k̄_t‖ before the bandwidth, so that "
    f"β alone sets the kernel width {H2}": {"key_norm_dim": None},
    f"forgot the bandwidth β: the logits are β_h k̂_t·k̂_s (p['beta'] per head) {H2}": {"beta": _ones("beta")},
    f"scaled the logits by √β instead of β (if you scale both keys, scale each by √β) {H2}":
        {"beta": lambda p: p["beta"].sqrt()},
    f"used the transformer's 1/√head_size instead of the learned bandwidth β {H2}":
        {"beta": lambda p: torch.full_like(p["beta"], 1 / math.sqrt(p["W_phi"].shape[1] // len(p["beta"])))},
    f"forgot the leaky average of the keys: k̄_t = W_φ x_t + λ_h k̄_{{t-1}} (p['decay'] per head) {H2}":
        {"decay": _zeros("decay")},
    f"forgot the peek: the value mixes now and next, v̄_t = γ ṽ_t + (1-γ) ṽ_{{t+1}}; you used ṽ_t only {H2}":
        {"gamma": _ones("gamma")},
    f"used only the next step ṽ_{{t+1}} for the value; it is γ ṽ_t + (1-γ) ṽ_{{t+1}} {H2}":
        {"gamma": _zeros("gamma")},
    f"swapped γ and 1-γ: γ_h weighs ṽ_t (now), 1-γ_h weighs ṽ_{{t+1}} (next) {H2}":
        {"gamma": lambda p: 1 - p["gamma"]},
    f"forgot to L2-normalise the values before multiplying by α {H2}": {"normalise_values": False},
    f"forgot the value scale α_h (p['alpha']) {H2}": {"alpha": _ones("alpha")},
    f"took the softmax over the queries (dim=-2) instead of over the stored pairs (dim=-1) {H2}":
        {"softmax_dim": -2},
    f"forgot the output projection W_o (y @ p['W_o'].T after concatenating the heads) {H2}":
        {"W_o": _no_projection},
    f"let position t read the future pairs s > t (an upper-triangular mask, triu): the memory of "
    f"position t holds the pairs s < t only, tril(..., diagonal=-1) {H3}": {"future": True},
    f"multiplied by the transposed weights (x @ W); nn.Linear stores W as (out, in), so a "
    f"projection is x @ W.T {H1}": _transposed("W_phi", "W_psi", "W_o"),
    f"normalised the keys over the time axis; each key is normalised over its own head_size "
    f"entries (dim=-1) {H2}": {"key_norm_dim": -2},
    f"split the heads with a plain view/reshape to (B, H, T, hs): that mixes time and heads; "
    f"view as (B, T, H, hs), then transpose(1, 2) {H1}": {"split": "view"},
    f"returned NaN at position 0: its memory is empty, so every logit of row 0 is masked and the "
    f"softmax divides 0 by 0; set the weights of row 0 to 0 (nan_to_num) {H2}":
        {"first_row": "nan"},
    f"masked with -1e9 and let row 0 through: its memory is empty, but a softmax over a row of "
    f"-1e9 is uniform, so position 0 averages every value of the window, the future included; "
    f"mask with -inf and set row 0 to 0 {H2}": {"first_row": "uniform"},
    f"masked with a finite number (-1e4): with β up to e^10 the real logits go below it, and the "
    f"future pairs win the softmax; mask with float('-inf') {H3}": {"mask_value": -1e4},
}

CMEM_REGIMES = {
    "multi-head": f"there are several heads, so the way the projections are split into heads "
                  f"matters {H1}",
    "sharp": f"some β_h is e^10, so the logits β k̂_t·k̂_s reach ±22,026: exp overflows without the "
             f"softmax's max shift, and a finite mask value (-1e4) no longer hides the future {H3}",
    "single-position": f"T = 1: the only position has an empty memory and outputs exactly 0 {H2}",
}


def _sharp(p: Weights) -> Weights:
    p = dict(p)
    p["beta"] = p["beta"].clone()
    p["beta"][0] = math.exp(10.0)  # the largest β the clamp allows
    return p


def cmem_cases() -> list[Case]:
    cases = []
    for seed, (B, T, d, H) in enumerate([(1, 6, 8, 2), (2, 9, 16, 4), (2, 12, 12, 3)]):
        layer = random_context_memory(d, H, seed=10 + seed)
        cases.append(Case(_inputs(B, T, d, seed), context_memory_weights(layer), H, regime="multi-head",
                          why=f"{H} heads of size {d // H}"))
    layer = random_context_memory(8, 1, seed=13)
    cases.append(Case(_inputs(1, 7, 8, 3), context_memory_weights(layer), 1, why="a single head"))
    layer = random_context_memory(12, 2, seed=23)  # a seed where some row's past logits are all < -1e4
    cases.append(Case(_inputs(2, 10, 12, 4, scale=2.0), _sharp(context_memory_weights(layer)), 2,
                      regime=("sharp", "multi-head"), why="head 0 has β = e^10"))
    layer = random_context_memory(8, 2, seed=15)
    cases.append(Case(_inputs(3, 1, 8, 5), context_memory_weights(layer), 2,
                      regime=("single-position", "multi-head"), why="T = 1: the output is all 0"))
    return cases


@notebook_check
def check_context_memory(context_memory: Callable[..., torch.Tensor]) -> None:
    """Exercise 4.2: the learner's C-mem must equal the package's ContextMemory on its weights."""
    compare(CHAPTER, "context_memory", context_memory, reference_context_memory, cmem_cases(),
            mistakes=mistakes_from(_cmem, CMEM_MISTAKES), regimes=CMEM_REGIMES,
            arg_names=["x", "p", "n_head"], rebuild="ch04.cmem_cases()[{k}]", floor=FLOAT32_LAYERS,
            hint=f"Go through the steps in order: keys (project, leaky average, normalise), values "
                 f"(project, peek, normalise, α), logits β k̂·k̂, mask s < t, softmax over s, zero "
                 f"row 0, merge heads, W_o {H2}.")


# --------------------------------------------------------------------------------------------
# exercise 4.3: the persistent memory
# --------------------------------------------------------------------------------------------

PMEM_MISTAKES: dict[str, dict[str, Any]] = {
    f"scaled the query by s_h = √β_h instead of β_h: the table keys carry no scale, so the whole "
    f"bandwidth goes on the query {H2}": {"beta": lambda p: p["beta"].sqrt()},
    f"forgot the bandwidth β on the query (q = β_h k̂_t) {H2}": {"beta": _ones("beta")},
    f"forgot to L2-normalise the query key before scaling it by β {H2}": {"normalise": False},
    f"forgot the leaky average of the query key: a persistent memory's query also mixes the recent "
    f"past, k̄_t = W_φ x_t + λ_h k̄_{{t-1}} {H1}": {"decay": _zeros("decay")},
    f"forgot the output scale α_h (p['alpha']) {H2}": {"alpha": _ones("alpha")},
    f"took the softmax over the wrong axis: it runs over the pmem_size table entries (dim=-1) {H3}":
        {"softmax_dim": -2},
    f"took the softmax over the heads (dim=1): it runs over the pmem_size table entries (dim=-1) {H3}":
        {"softmax_dim": 1},
    f"swapped the tables: compare the query with M_k, then average the rows of M_v {H2}":
        {"M_k": lambda p: p["M_v"], "M_v": lambda p: p["M_k"]},
    f"averaged the rows of M_k, the table keys; the answer averages the table *values* M_v {H2}":
        {"M_v": lambda p: p["M_k"]},
    f"forgot the output projection W_o {H2}": {"W_o": _no_projection},
    f"multiplied by the transposed weights (x @ W); nn.Linear stores W as (out, in), so a "
    f"projection is x @ W.T {H1}": _transposed("W_phi", "W_o"),
}

PMEM_REGIMES = {
    "sharp": f"some β_h is e^10, so the logits q·M_k reach the thousands: the softmax needs its max "
             f"shift (torch.softmax does it) {H3}",
    "one-entry": f"the table holds a single entry (pmem_size = 1), whose weight is always 1 {H2}",
}


def pmem_cases() -> list[Case]:
    cases = []
    for seed, (B, T, d, H, P) in enumerate([(1, 5, 8, 2, 12), (2, 7, 16, 4, 56), (1, 6, 12, 3, 9)]):
        layer = random_persistent_memory(d, H, P, seed=20 + seed)
        cases.append(Case(_inputs(B, T, d, 100 + seed), persistent_memory_weights(layer), H,
                          why=f"{H} heads, a table of {P}"))
    layer = random_persistent_memory(8, 2, 10, seed=23)
    cases.append(Case(_inputs(2, 6, 8, 103), _sharp(persistent_memory_weights(layer)), 2, regime="sharp",
                      why="head 0 has β = e^10"))
    layer = random_persistent_memory(8, 2, 1, seed=24)
    cases.append(Case(_inputs(1, 4, 8, 104), persistent_memory_weights(layer), 2, regime="one-entry",
                      why="a table of one entry"))
    return cases


@notebook_check
def check_persistent_memory(persistent_memory: Callable[..., torch.Tensor]) -> None:
    """Exercise 4.3: the learner's P-mem must equal the package's PersistentMemory."""
    compare(CHAPTER, "persistent_memory", persistent_memory, reference_persistent_memory, pmem_cases(),
            mistakes=mistakes_from(_pmem, PMEM_MISTAKES), regimes=PMEM_REGIMES,
            arg_names=["x", "p", "n_head"], rebuild="ch04.pmem_cases()[{k}]", floor=FLOAT32_LAYERS,
            hint=f"Steps: W_φ, leaky average, normalise, × β, softmax against M_k over the table, × M_v, "
                 f"× α, merge heads, W_o {H2}.")


# --------------------------------------------------------------------------------------------
# exercise 4.4: the whole language model, from the parts of a package MemoryMosaicLM
# --------------------------------------------------------------------------------------------


def reference_mosaic_lm(idx: torch.Tensor, model: models.MemoryMosaicLM) -> torch.Tensor:
    """Logits of ``model`` on ``idx`` (B, T) -> (B, T, V): the package's forward itself."""
    with torch.no_grad():
        return model(idx)[0]


LM_MISTAKES: dict[str, dict[str, Any]] = {
    f"normalised after the residual sum (post-LN, the original transformer): here LayerNorm is "
    f"applied to each branch's input only, x = x + Cmem(LN₁(x)) {H2}": {"block": "post_ln"},
    f"normalised the residual stream itself (x = LN(x), then x = x + Cmem(x)): the stream must "
    f"go through the blocks unnormalised; only each branch's input is normalised {H2}":
        {"block": "ln_on_stream"},
    f"ran the two memories in parallel on the same x: the persistent memory reads the stream "
    f"*after* the contextual memory has been added {H2}": {"block": "parallel"},
    f"used ln_1 for both branches: the persistent memory has its own LayerNorm, ln_2 {H2}":
        {"block": "one_ln"},
    f"applied the persistent memory first: the order is Cmem (ln_1) then Pmem (ln_2) {H2}":
        {"block": "swapped"},
    f"forgot the residual connections (x = x + ...) {H3}": {"block": "no_residual"},
    f"forgot the blocks' LayerNorms (ln_1 before Cmem, ln_2 before Pmem) {H3}": {"block": "no_ln"},
    f"forgot the final LayerNorm model.ln_f before the head {H2}": {"final_ln": "none"},
    f"applied ln_f after every block; it is applied once, after the last block, and the stream "
    f"between blocks stays unnormalised {H2}": {"final_ln": "every"},
    f"forgot the 1/√d on the logits: the head computes LN(x) @ W_eᵀ / √n_embd {H1}":
        {"logit_scale": "none"},
    f"multiplied the logits by √d; the papers divide them by √n_embd {H1}": {"logit_scale": "sqrt"},
    f"divided the logits by d; the factor is 1/√n_embd {H1}": {"logit_scale": "inv_d"},
    f"scaled the embedding by √d (as some transformers do); a mosaic reads the plain embedding "
    f"rows {H1}": {"embed_scale": True},
    f"multiplied by the embedding matrix untransposed: wte.weight is (vocab, d), the logits are "
    f"h @ wte.weight.T {H2}": {"transpose_head": True},
    f"ran only the first block: loop over every block of model.blocks {H2}": {"first_block_only": True},
}

LM_REGIMES = {
    "several-blocks": f"the model has several blocks: the stream must go through every one, each "
                      f"adding its two branches {H2}",
    "vocab-is-d": f"vocab_size = n_embd, so an untransposed head does not even change the shape {H2}",
    "single-token": f"T = 1: one token, whose contextual memory is empty {H2}",
}


def lm_cases() -> list[Case]:
    cases = []
    settings = [((2, 7, 12, 2, 12, 2), ("several-blocks", "vocab-is-d"), "V = d = 12, 2 blocks"),
                ((2, 9, 29, 1, 16, 4), (), "one block"),
                ((1, 12, 24, 3, 24, 3), ("several-blocks", "vocab-is-d"), "V = d = 24, 3 blocks"),
                ((3, 1, 20, 2, 16, 2), ("several-blocks", "single-token"), "a single token")]
    for seed, ((B, T, V, L, d, H), regime, why) in enumerate(settings):
        gen = torch.Generator().manual_seed(300 + seed)
        cases.append(Case(torch.randint(0, V, (B, T), generator=gen), random_lm(V, L, d, H, 50 + seed),
                          regime=regime, why=why))
    return cases


@notebook_check
def check_mosaic_lm(mosaic_lm: Callable[[torch.Tensor, models.MemoryMosaicLM], torch.Tensor]) -> None:
    """Exercise 4.4: the learner's forward must give the package model's logits."""
    with torch.no_grad():
        compare(CHAPTER, "mosaic_lm", mosaic_lm, reference_mosaic_lm, lm_cases(),
                mistakes=mistakes_from(_lm, LM_MISTAKES), regimes=LM_REGIMES, arg_names=["idx", "model"],
                rebuild="ch04.lm_cases()[{k}]", floor=FLOAT32_LAYERS, float32_probe=False,
                hint=f"Steps: wte(idx) (no positions), for each block x += cmem(ln_1(x)), "
                     f"x += pmem(ln_2(x)); ln_f; @ wte.weight.T; × 1/√n_embd {H2}.")


# --------------------------------------------------------------------------------------------
# exercise 4.5: parameter counts of whole models
# --------------------------------------------------------------------------------------------


def reference_model_sizes(vocab_size: int, block_size: int, n_layer: int, n_embd: int, n_head: int,
                          pmem_size: int) -> tuple[int, int]:
    """(mosaic, GPT) parameter counts, measured on the package's models (tied head counted once)."""
    kw = dict(vocab_size=vocab_size, block_size=block_size, n_layer=n_layer, n_embd=n_embd,
              n_head=n_head)
    with torch.device("meta"):
        mosaic = models.MemoryMosaicLM(models.MosaicConfig(pmem_size=pmem_size, **kw))
        gpt = models.GPT(models.GPTConfig(**kw))
    return int(models.count_parameters(mosaic)), int(models.count_parameters(gpt))


def _model_sizes(V, T, L, d, H, P, **wrong: int) -> tuple[int, int]:
    parts = {"ln": 2 * d, "cmem": 3 * d * d, "cmem_scalars": 4 * H, "pmem": 2 * d * d,
             "tables": 2 * P * d, "pmem_scalars": 3 * H}
    gparts = {"ln": 2 * d, "attn": 4 * d * d, "mlp": 8 * d * d}
    whole = {"wte": V * d, "head": 0, "ln_f": d, "wpe": 0}
    gwhole = {"wte": V * d, "head": 0, "ln_f": d, "wpe": T * d}
    for k, v in wrong.items():
        target = {"g_": gparts, "w_": whole, "gw": gwhole}.get(k[:2], parts)
        target[k.removeprefix("g_").removeprefix("w_").removeprefix("gw_")] = v
    return (L * sum(parts.values()) + sum(whole.values()),
            L * sum(gparts.values()) + sum(gwhole.values()))


SIZE_MISTAKES: dict[str, Callable] = {
    f"counted the tied output head as a second matrix: lm_head.weight *is* wte.weight (counted "
    f"once) {H2}": lambda V, T, L, d, H, P: _model_sizes(V, T, L, d, H, P, w_head=V * d, gw_head=V * d),
    f"forgot GPT's position table wpe (block_size × n_embd) {H2}":
        lambda V, T, L, d, H, P: _model_sizes(V, T, L, d, H, P, gw_wpe=0),
    f"gave the mosaic a position table: it has none, order comes from the leaky keys and the peek {H2}":
        lambda V, T, L, d, H, P: _model_sizes(V, T, L, d, H, P, w_wpe=T * d),
    f"forgot the final LayerNorm ln_f (n_embd gains in each model) {H2}":
        lambda V, T, L, d, H, P: _model_sizes(V, T, L, d, H, P, w_ln_f=0, gw_ln_f=0),
    f"forgot the persistent memory's tables M_k and M_v (2 · pmem_size · n_embd per block) {H1}":
        lambda V, T, L, d, H, P: _model_sizes(V, T, L, d, H, P, tables=0),
    f"counted only one table per block; there are two, M_k and M_v {H1}":
        lambda V, T, L, d, H, P: _model_sizes(V, T, L, d, H, P, tables=P * d),
    f"gave the contextual memory a query map W_q: its query is its own key, so it has W_φ, W_ψ, "
    f"W_o only (3d²) {H1}": lambda V, T, L, d, H, P: _model_sizes(V, T, L, d, H, P, cmem=4 * d * d),
    f"forgot the per-head scalars (4 per head in the C-mem: decay λ, β, γ, α; 3 in the P-mem) {H1}":
        lambda V, T, L, d, H, P: _model_sizes(V, T, L, d, H, P, cmem_scalars=0, pmem_scalars=0),
    f"forgot the blocks' LayerNorm gains (2 · n_embd per block, no bias) {H1}":
        lambda V, T, L, d, H, P: _model_sizes(V, T, L, d, H, P, ln=0, g_ln=0),
    f"counted LayerNorm biases: every LayerNorm here is bias-free (n_embd parameters each) {H1}":
        lambda V, T, L, d, H, P: _model_sizes(V, T, L, d, H, P, ln=4 * d, g_ln=4 * d,
                                              w_ln_f=2 * d, gw_ln_f=2 * d),
    f"forgot the persistent memory's key map W_φ or its W_o (2d² in all) {H1}":
        lambda V, T, L, d, H, P: _model_sizes(V, T, L, d, H, P, pmem=d * d),
    f"counted the GPT-2 MLP as d→d→d; it is d→4d→d, 8d² {H1}":
        lambda V, T, L, d, H, P: _model_sizes(V, T, L, d, H, P, g_mlp=2 * d * d),
    f"counted the GPT-2 MLP as 4d² (one matrix); it has two, d→4d and 4d→d, 8d² {H1}":
        lambda V, T, L, d, H, P: _model_sizes(V, T, L, d, H, P, g_mlp=4 * d * d),
    f"counted one block only: multiply the per-block count by n_layer {H2}":
        lambda V, T, L, d, H, P: _model_sizes(V, T, 1, d, H, P),
    f"counted the per-head scalars once per model, not once per block {H1}":
        lambda V, T, L, d, H, P: _model_sizes(V, T, L, d, H, P, cmem_scalars=0, pmem_scalars=0,
                                              w_wpe=7 * H),
}

SIZE_ARGS = ("vocab_size", "block_size", "n_layer", "n_embd", "n_head", "pmem_size")
SIZE_CASES = [Case(64, 40, 2, 16, 4, 56, regime="several-layers", why="pmem_size = 3.5 n_embd"),
              Case(100, 48, 3, 24, 6, 40, regime="several-layers", why="three blocks"),
              Case(50_304, 512, 12, 768, 12, 2688, regime="several-layers",
                   why="the papers' 124M-parameter setting"),
              Case(37, 20, 1, 8, 2, 9, regime="one-layer", why="one block: per-block mistakes hide"),
              Case(50_257, 1001, 13, 777, 7, 2719, regime=("large", "several-layers"),
                   why="counts above 2^24 with odd factors: float32 cannot hold them exactly")]
SIZE_REGIMES = {"one-layer": f"the model has a single block {H2}",
                "several-layers": f"the model has several blocks: everything inside a block counts "
                                  f"n_layer times {H2}",
                "large": f"the counts exceed 2^24 ≈ 16.8 million and are odd, beyond what float32 "
                         f"holds exactly: count with Python ints {H2}"}


@notebook_check
def check_model_sizes(model_sizes: Callable[..., tuple[int, int]]) -> None:
    """Exercise 4.5: count both whole models' parameters by formula, against the package's."""
    ex = "model_sizes"

    def counts(*case):
        out = call_learner(CHAPTER, ex, model_sizes, *case)
        if not isinstance(out, tuple | list) or len(out) != 2:
            fail(CHAPTER, ex, f"must return a pair (mosaic, gpt), got {out!r:.80} {H2}", "type")
        if any(not isinstance(v, int | np.integer) for v in out):
            fail(CHAPTER, ex, f"parameter counts are integers; return ints, not {type(out[0]).__name__} "
                 f"(use // instead of /, or int(...)) {H2}", "dtype")
        return tuple(int(v) for v in out)

    compare(CHAPTER, ex, counts, reference_model_sizes, SIZE_CASES, mistakes=SIZE_MISTAKES,
            regimes=SIZE_REGIMES, arg_names=SIZE_ARGS, items=("the mosaic's count", "the GPT's count"),
            float32_probe=False,
            hint=f"Per block: C-mem 3d² + 4H, P-mem 2d² + 2Pd + 3H, LayerNorms 2d (GPT: 12d² + 2d); "
                 f"once: embedding V·d (tied head), ln_f d, GPT's wpe T·d {H1}.")
