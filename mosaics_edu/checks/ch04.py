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

The truth is always the package: :class:`mosaics_edu.layers.ContextMemory`,
:class:`~mosaics_edu.layers.PersistentMemory` and :class:`~mosaics_edu.layers.MosaicBlock` run on
the *same weights* (``context_memory_weights(layer)`` hands them to the learner as plain tensors).
When an answer differs, the check replays the known mistakes of the exercise (a mask off by one,
keys not normalised, the bandwidth β forgotten, the peek forgotten, LayerNorm misplaced, ...) with
the functional reference below and names the one the answer matches.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import layers, models
from ..features import leaky_average
from . import as_numpy, call_checked, call_learner, fail, fmt, passed

CHAPTER = "04_mosaic_layer"

__all__ = [
    "context_memory_weights",
    "persistent_memory_weights",
    "reference_context_memory",
    "reference_persistent_memory",
    "reference_effective_scalars",
    "reference_mosaic_lm",
    "reference_model_sizes",
    "random_context_memory",
    "random_persistent_memory",
    "random_block",
    "random_lm",
    "check_effective_scalars",
    "check_context_memory",
    "check_persistent_memory",
    "check_mosaic_lm",
    "check_model_sizes",
]

Weights = dict[str, torch.Tensor]


# --------------------------------------------------------------------------------------------
# the weights of the package layers, as plain tensors
# --------------------------------------------------------------------------------------------


def context_memory_weights(layer: layers.ContextMemory) -> Weights:
    """The weights of a :class:`~mosaics_edu.layers.ContextMemory`, detached, with their meaning.

    ``W_phi``, ``W_psi``, ``W_o``: (d, d) matrices applied as ``x @ W.T`` (``nn.Linear``);
    ``decay`` λ_h, ``beta`` β_h, ``gamma`` γ_h, ``alpha`` α_h: (n_head,) effective per-head values.
    """
    if not isinstance(layer, layers.ContextMemory):
        raise TypeError(f"layer must be a mosaics_edu.layers.ContextMemory, got {type(layer).__name__}")
    with torch.no_grad():
        return {
            "W_phi": layer.keys.proj.weight.detach().clone(),
            "W_psi": layer.values.proj.weight.detach().clone(),
            "W_o": layer.c_proj.weight.detach().clone(),
            "decay": layer.decay.detach().clone(),
            "beta": layer.beta.detach().clone(),
            "gamma": layer.gamma.detach().clone(),
            "alpha": layer.alpha.detach().clone(),
        }


def persistent_memory_weights(layer: layers.PersistentMemory) -> Weights:
    """The weights of a :class:`~mosaics_edu.layers.PersistentMemory`, detached.

    ``W_phi``, ``W_o``: (d, d); ``M_k``, ``M_v``: (n_head, pmem_size, head_size) tables;
    ``decay`` λ_h, ``beta`` β_h, ``alpha`` α_h: (n_head,).
    """
    if not isinstance(layer, layers.PersistentMemory):
        raise TypeError(
            f"layer must be a mosaics_edu.layers.PersistentMemory, got {type(layer).__name__}")
    with torch.no_grad():
        return {
            "W_phi": layer.keys.proj.weight.detach().clone(),
            "M_k": layer.table_keys.detach().clone(),
            "M_v": layer.table_values.detach().clone(),
            "W_o": layer.c_proj.weight.detach().clone(),
            "decay": layer.decay.detach().clone(),
            "beta": layer.beta.detach().clone(),
            "alpha": layer.alpha.detach().clone(),
        }


def _jitter_scalars(module: nn.Module, gen: torch.Generator) -> None:
    """Give every per-head scalar a different, non-default value, so that mistakes show."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            n = p.shape[0]
            if name.endswith("decay_logit"):  # rate 10|θ| in [0.1, 2]: λ from 0.9 down to 0.14
                p.copy_(torch.rand(n, generator=gen) * 0.19 + 0.01)
            elif name.endswith("beta_logit"):  # log-scale 10θ in [-0.3, 1.5]: β from 0.55 to 20
                p.copy_(torch.rand(n, generator=gen) * 0.18 - 0.03)
            elif name.endswith("alpha_logit"):  # α from 0.5 to 2
                p.copy_((torch.rand(n, generator=gen) * 1.4 - 0.7) / 10)
            elif name.endswith("gamma"):  # γ in [0.1, 0.9], never 0.5
                p.copy_(torch.rand(n, generator=gen) * 0.8 + 0.1)


def random_context_memory(n_embd: int = 16, n_head: int = 4, seed: int = 0) -> layers.ContextMemory:
    """A package C-mem with random weights and varied per-head decay λ, β, γ, α (eval mode)."""
    torch.manual_seed(seed)
    layer = layers.ContextMemory(n_embd, n_head).eval()
    _jitter_scalars(layer, torch.Generator().manual_seed(seed + 1))
    return layer


def random_persistent_memory(
    n_embd: int = 16, n_head: int = 4, pmem_size: int = 24, seed: int = 0
) -> layers.PersistentMemory:
    """A package P-mem with random weights and varied per-head λ, β, α (eval mode)."""
    torch.manual_seed(seed)
    layer = layers.PersistentMemory(n_embd, n_head, pmem_size).eval()
    _jitter_scalars(layer, torch.Generator().manual_seed(seed + 1))
    return layer


def random_block(
    n_embd: int = 16, n_head: int = 4, pmem_size: int = 24, seed: int = 0
) -> layers.MosaicBlock:
    """A package mosaic block with random weights, non-trivial LayerNorm gains (eval mode)."""
    torch.manual_seed(seed)
    block = layers.MosaicBlock(n_embd, n_head, pmem_size).eval()
    gen = torch.Generator().manual_seed(seed + 1)
    _jitter_scalars(block, gen)
    with torch.no_grad():
        for ln in (block.ln_1, block.ln_2):
            ln.weight.copy_(torch.rand(n_embd, generator=gen) * 1.5 + 0.25)
        # larger output projections, so that every branch moves the residual stream visibly
        block.cmem.c_proj.weight.mul_(3.0)
        block.pmem.c_proj.weight.mul_(3.0)
    return block


def _inputs(B: int, T: int, d: int, seed: int, scale: float = 1.0, shift: float = 0.0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(B, T, d, generator=gen) * scale + shift


# --------------------------------------------------------------------------------------------
# the functional reference, with switches that make the known mistakes
# --------------------------------------------------------------------------------------------


def _heads(x: torch.Tensor, W: torch.Tensor, n_head: int) -> torch.Tensor:
    """x @ W.T split into heads. (B, T, d) -> (B, H, T, hs)."""
    B, T, d = x.shape
    return (x @ W.T).view(B, T, n_head, d // n_head).transpose(1, 2)


def _merge(y: torch.Tensor) -> torch.Tensor:
    """(B, H, T, hs) -> (B, T, H*hs)."""
    B, H, T, hs = y.shape
    return y.transpose(1, 2).reshape(B, T, H * hs)


def _per_head(v: torch.Tensor) -> torch.Tensor:
    return v[:, None, None]  # (H,) -> (H, 1, 1)


def _cmem(
    x: torch.Tensor,
    p: Weights,
    n_head: int,
    *,
    lag: int = 1,  # position t reads s <= t - lag: 1 is right, 0 reads its own pair, 2 misses one
    zero_first: bool = True,
    first_row: str = "zero",  # "zero" | "uniform" (masked with -1e9: row 0 averages every value)
    leaky: bool = True,
    normalise_keys: bool = True,
    bandwidth: str = "beta",  # "beta" | "none" | "sqrt" | "sqrt_d"
    values: str = "mix",  # "mix" | "now" | "next" | "swapped"
    normalise_values: bool = True,
    use_alpha: bool = True,
    softmax_dim: int = -1,
    project: bool = True,
    future: bool = False,  # read the pairs s > t instead of s < t
    transpose: bool = False,  # x @ W instead of x @ W.T
    key_norm_dim: int = -1,
) -> torch.Tensor:
    """C-mem as one function of its weights. x: (B, T, d) -> (B, T, d)."""
    x = torch.as_tensor(x, dtype=torch.float64)
    p = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in p.items()}
    if transpose:
        p = {k: (v.T if k.startswith("W_") else v) for k, v in p.items()}
    B, T, d = x.shape
    k = _heads(x, p["W_phi"], n_head)  # (B, H, T, hs)
    if leaky:
        k = leaky_average(k, p["decay"], method="recurrent")  # (B, H, T, hs)
    if normalise_keys:
        k = F.normalize(k, dim=key_norm_dim, eps=1e-12)
    logits = k @ k.transpose(-1, -2)  # (B, H, T, T)
    scale = {"beta": p["beta"], "none": torch.ones_like(p["beta"]), "sqrt": p["beta"].sqrt(),
             "sqrt_d": torch.full_like(p["beta"], 1 / math.sqrt(d // n_head))}[bandwidth]
    logits = logits * _per_head(scale)
    v_now = _heads(x, p["W_psi"], n_head)  # (B, H, T, hs)
    v_next = F.pad(v_now[:, :, 1:], (0, 0, 0, 1))  # (B, H, T, hs): ṽ_{t+1}, 0 past the window
    g = _per_head(p["gamma"])
    v = {"mix": g * v_now + (1 - g) * v_next, "now": v_now, "next": v_next,
         "swapped": (1 - g) * v_now + g * v_next}[values]
    if normalise_values:
        v = F.normalize(v, dim=-1, eps=1e-12)
    if use_alpha:
        v = v * _per_head(p["alpha"])
    t = torch.arange(T)
    readable = (t[None, :] <= t[:, None] - lag)  # (T, T): s <= t - lag
    if future:
        readable = readable.T  # (T, T): s >= t + lag
    empty = ~readable.any(-1)  # (T,): rows with nothing to read
    if first_row == "uniform":
        logits = logits.masked_fill(~readable, -1e9)
        w = torch.softmax(logits, dim=softmax_dim)
    else:
        logits = logits.masked_fill(~readable, float("-inf"))
        logits = logits.masked_fill(empty[:, None], 0.0)
        w = torch.softmax(logits, dim=softmax_dim)
        w = w.masked_fill(~readable, 0.0) if softmax_dim != -1 else w
        if zero_first:
            w = w.masked_fill(empty[:, None], 0.0)
    w = torch.nan_to_num(w)
    y = _merge(w @ v)  # (B, T, d)
    return y @ p["W_o"].T if project else y


def reference_context_memory(x: torch.Tensor, p: Weights, n_head: int) -> torch.Tensor:
    """The contextual memory computed from its weights (float64). x: (B, T, d) -> (B, T, d)."""
    return _cmem(x, p, n_head)


def _pmem(
    x: torch.Tensor,
    p: Weights,
    n_head: int,
    *,
    leaky: bool = True,
    normalise: bool = True,
    bandwidth: str = "beta",  # "beta" | "sqrt" | "none"
    use_alpha: bool = True,
    softmax_dim: int = -1,
    swap_tables: bool = False,
    project: bool = True,
    transpose: bool = False,
) -> torch.Tensor:
    """P-mem as one function of its weights. x: (B, T, d) -> (B, T, d)."""
    x = torch.as_tensor(x, dtype=torch.float64)
    p = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in p.items()}
    if transpose:
        p = {k: (v.T if k.startswith("W_") else v) for k, v in p.items()}
    q = _heads(x, p["W_phi"], n_head)  # (B, H, T, hs)
    if leaky:
        q = leaky_average(q, p["decay"], method="recurrent")
    if normalise:
        q = F.normalize(q, dim=-1, eps=1e-12)
    scale = {"beta": p["beta"], "sqrt": p["beta"].sqrt(), "none": torch.ones_like(p["beta"])}
    q = q * _per_head(scale[bandwidth])
    mk, mv = (p["M_v"], p["M_k"]) if swap_tables else (p["M_k"], p["M_v"])
    w = torch.softmax(q @ mk.transpose(-1, -2), dim=softmax_dim)  # (B, H, T, P)
    y = w @ mv  # (B, H, T, hs)
    if use_alpha:
        y = y * _per_head(p["alpha"])
    y = _merge(y)  # (B, T, d)
    return y @ p["W_o"].T if project else y


def reference_persistent_memory(x: torch.Tensor, p: Weights, n_head: int) -> torch.Tensor:
    """The persistent memory computed from its weights (float64). x: (B, T, d) -> (B, T, d)."""
    return _pmem(x, p, n_head)


def _precision(ex: str, got: torch.Tensor, want: torch.Tensor) -> None:
    """Fail with a precision message when a half-precision answer is right only to its precision."""
    if got.dtype in (torch.float16, torch.bfloat16):
        close = torch.allclose(got.double(), want, rtol=2e-2, atol=2e-2 * float(want.abs().max()))
        fail(CHAPTER, ex, f"your answer is {str(got.dtype).removeprefix('torch.')}"
             + (" and right only to that precision" if close else "")
             + ": compute and return float32 (or float64); the check's inputs are float32.")
    if not got.is_floating_point():
        fail(CHAPTER, ex, f"your answer has the integer dtype {got.dtype}: the outputs are floats")


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


def _scalars(theta: dict[str, torch.Tensor], *, times: float = 10.0, use_abs: bool = True,
             sign: float = -1.0, clamp: str = "log", square: bool = True,
             alpha_sign: float = 1.0) -> dict[str, torch.Tensor]:
    """The parameterisation with switches that make the known mistakes."""
    t = {k: torch.as_tensor(theta[k], dtype=torch.float64) for k in RAW_NAMES}
    r = times * (t["decay_logit"].abs() if use_abs else t["decay_logit"])
    decay = torch.exp(sign * r)
    log_s = times * t["beta_logit"]
    if clamp == "log":
        scale = torch.exp(log_s.clamp(max=5.0))
    elif clamp == "both":
        scale = torch.exp(log_s.clamp(-5.0, 5.0))
    elif clamp == "scale":
        scale = torch.exp(log_s).clamp(max=5.0)
    else:
        scale = torch.exp(log_s)
    beta = scale**2 if square else scale
    return {"decay": decay, "scale": scale, "beta": beta,
            "alpha": torch.exp(alpha_sign * times * t["alpha_logit"])}


SCALAR_MISTAKES: dict[str, dict[str, Any]] = {
    "forgot the ×10: every effective quantity uses 10·θ (λ = exp(-10|θ|), s = exp(min(10θ^β, 5)), "
    "α = exp(10θ^v))": {"times": 1.0},
    "forgot the absolute value: λ_h = exp(-10|θ_h|); without it a negative θ gives λ > 1, a "
    "leaky average that grows without bound": {"use_abs": False},
    "flipped the sign in the decay: λ_h = exp(-r_h) with r_h = 10|θ_h| ≥ 0, so 0 < λ ≤ 1":
        {"sign": 1.0},
    "forgot the clamp: s_h = exp(min(10θ^β_h, 5)), so that β = s² never exceeds e^10 (fp16 logits)":
        {"clamp": "none"},
    "clamped s_h itself at 5; the clamp is on the log-scale, s_h = exp(min(10θ^β_h, 5)) ≤ e^5":
        {"clamp": "scale"},
    "clamped the log-scale from below too; only the upper bound 5 exists (a small β is harmless)":
        {"clamp": "both"},
    "used β_h = s_h; the bandwidth is β_h = s_h² (both keys of a pair carry s_h)":
        {"square": False},
    "flipped the sign of α: α_h = exp(+10θ^v_h)": {"alpha_sign": -1.0},
}


def _scalar_cases() -> list[tuple[dict[str, torch.Tensor]]]:
    gen = torch.Generator().manual_seed(41)
    init = {"decay_logit": torch.linspace(0.5, 5.0, 4) / 10, "beta_logit": torch.full((4,), 0.1),
            "alpha_logit": torch.full((4,), -0.05)}
    varied = {"decay_logit": torch.tensor([-0.3, -0.02, 0.0, 0.05, 0.4], dtype=torch.float64),
              "beta_logit": torch.tensor([-0.8, -0.1, 0.3, 0.55, 0.9], dtype=torch.float64),
              "alpha_logit": torch.tensor([-0.2, 0.0, 0.07, 0.15, -0.6], dtype=torch.float64)}
    rand = {k: (torch.rand(7, generator=gen) - 0.5) * 1.6 for k in RAW_NAMES}
    return [(init,), (varied,), (rand,)]


def check_effective_scalars(effective_scalars: Callable[[dict], dict]) -> None:
    """Exercise 4.1: raw θ's -> effective decay, scale, beta, alpha, as the package computes them."""
    ex = "effective_scalars"
    for k, (theta,) in enumerate(_scalar_cases()):
        given = {n: t.clone() for n, t in theta.items()}
        got = call_learner(CHAPTER, ex, effective_scalars, given)
        changed = [n for n in RAW_NAMES if not torch.equal(given[n], theta[n])]
        if changed:
            fail(CHAPTER, ex, f"your function changed theta[{changed[0]!r}] in place; compute new "
                 "tensors (torch.exp(...), x.abs(), x.clamp(...)) and leave theta alone.")
        if not isinstance(got, dict) or not set(SCALAR_NAMES) <= set(got):
            keys = sorted(got) if isinstance(got, dict) else type(got).__name__
            fail(CHAPTER, ex, f"must return a dict with the keys {list(SCALAR_NAMES)}, got {keys}")
        want = reference_effective_scalars(theta)
        H = len(theta["decay_logit"])
        for name in SCALAR_NAMES:
            g = torch.as_tensor(as_numpy(got[name])).double()
            if tuple(g.shape) != (H,):
                fail(CHAPTER, ex, f"on test case {k}: '{name}' has shape {tuple(g.shape)}, "
                     f"expected ({H},): one value per head")
        bad = [n for n in SCALAR_NAMES
               if not torch.allclose(torch.as_tensor(as_numpy(got[n])).double(), want[n],
                                     rtol=1e-5, atol=1e-8)]
        if not bad:
            continue
        for diagnosis, flags in SCALAR_MISTAKES.items():
            wrong = _scalars(theta, **flags)
            if all(torch.allclose(torch.as_tensor(as_numpy(got[n])).double(), wrong[n],
                                  rtol=1e-5, atol=1e-8) for n in bad):
                fail(CHAPTER, ex, f"wrong on test case {k} ('{bad[0]}'): it looks like you "
                     f"{diagnosis}.")
        name = bad[0]
        g = torch.as_tensor(as_numpy(got[name])).double()
        h = int((g - want[name]).abs().argmax())
        raw = {"decay": "decay_logit", "scale": "beta_logit", "beta": "beta_logit",
               "alpha": "alpha_logit"}[name]
        fail(CHAPTER, ex, f"wrong on test case {k}: {', '.join(repr(b) for b in bad)} differ; "
             f"'{name}' of head {h} (θ = {float(theta[raw][h]):.4g}) is {float(g[h]):.6g}, "
             f"expected {float(want[name][h]):.6g}.")
    passed(CHAPTER, ex)


# --------------------------------------------------------------------------------------------
# exercise 4.2: the contextual memory
# --------------------------------------------------------------------------------------------


def _layer_ground_truth(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return layer(x.float()).double()


CMEM_MISTAKES: dict[str, dict[str, Any]] = {
    "let position t read its own pair (s ≤ t instead of s < t): v_t holds x_{t+1}, the very token "
    "position t must predict, so the mask must exclude the diagonal (tril(..., diagonal=-1))":
        {"lag": 0},
    "masked one step too many (s ≤ t-2): position t may read every pair s < t, including s = t-1":
        {"lag": 2},
    "forgot to L2-normalise the keys: k_t = k̄_t/‖k̄_t‖ before the bandwidth, so that "
    "β alone sets the kernel width": {"normalise_keys": False},
    "forgot the bandwidth β: the logits are β_h k̂_t·k̂_s (p['beta'] per head)":
        {"bandwidth": "none"},
    "scaled the logits by √β instead of β (if you scale both keys, scale each by √β)":
        {"bandwidth": "sqrt"},
    "used the transformer's 1/√head_size instead of the learned bandwidth β":
        {"bandwidth": "sqrt_d"},
    "forgot the leaky average of the keys: k̄_t = W_φ x_t + λ_h k̄_{t-1} (p['decay'] per head)":
        {"leaky": False},
    "forgot the peek: the value mixes now and next, v̄_t = γ ṽ_t + (1-γ) ṽ_{t+1}; you used ṽ_t only":
        {"values": "now"},
    "used only the next step ṽ_{t+1} for the value; it is γ ṽ_t + (1-γ) ṽ_{t+1}":
        {"values": "next"},
    "swapped γ and 1-γ: γ_h weighs ṽ_t (now), 1-γ_h weighs ṽ_{t+1} (next)":
        {"values": "swapped"},
    "forgot to L2-normalise the values before multiplying by α": {"normalise_values": False},
    "forgot the value scale α_h (p['alpha'])": {"use_alpha": False},
    "took the softmax over the queries (dim=-2) instead of over the stored pairs (dim=-1)":
        {"softmax_dim": -2},
    "forgot the output projection W_o (y @ p['W_o'].T after concatenating the heads)":
        {"project": False},
    "let position t read the future pairs s > t (an upper-triangular mask, triu): the memory of "
    "position t holds the pairs s < t only, tril(..., diagonal=-1)": {"future": True},
    "multiplied by the transposed weights (x @ W); nn.Linear stores W as (out, in), so a "
    "projection is x @ W.T": {"transpose": True},
    "normalised the keys over the time axis; each key is normalised over its own head_size "
    "entries (dim=-1)": {"key_norm_dim": -2},
}


def _cmem_cases() -> list[tuple[torch.Tensor, Weights, int]]:
    cases = []
    for seed, (B, T, d, H) in enumerate([(1, 6, 8, 2), (2, 9, 16, 4), (2, 12, 12, 3)]):
        layer = random_context_memory(d, H, seed=10 + seed)
        cases.append((_inputs(B, T, d, seed), context_memory_weights(layer), H, layer))
    return cases


def check_context_memory(context_memory: Callable[..., torch.Tensor]) -> None:
    """Exercise 4.2: the learner's C-mem must equal the package's ContextMemory on its weights."""
    ex = "context_memory"
    for k, (x, p, H, layer) in enumerate(_cmem_cases()):
        want = _layer_ground_truth(layer, x)
        got = call_checked(CHAPTER, ex, context_memory, (x, p, H), ("x", "p", "n_head"),
                           where=f"on test case {k}")
        if not isinstance(got, torch.Tensor):
            fail(CHAPTER, ex, f"must return a torch tensor of shape {tuple(want.shape)}, "
                 f"got {type(got).__name__}")
        if tuple(got.shape) != tuple(want.shape):
            fail(CHAPTER, ex, f"returned shape {tuple(got.shape)}, expected (B, T, d) = "
                 f"{tuple(want.shape)}: concatenate the heads back before W_o")
        _precision(ex, got.detach(), want)
        g = got.detach().double()
        if not torch.isfinite(g[:, 0]).all() and torch.isfinite(g[:, 1:]).all():
            fail(CHAPTER, ex, "position 0 is NaN: its memory is empty, so every logit of row 0 is "
                 "masked and the softmax divides 0 by 0. Set the output of position 0 to 0.")
        if not torch.isfinite(g).all():
            fail(CHAPTER, ex, "returned NaN or inf values: a row whose logits are all -inf gives "
                 "NaN weights; only row 0 is empty, and its output must be 0.")
        if g[:, 0].abs().max() > 1e-6 and torch.allclose(g[:, 1:], want[:, 1:], rtol=1e-4, atol=1e-5):
            uniform = _cmem(x, p, H, first_row="uniform")
            how = (" Yours averages every value of the window, the future included: a mask filled "
                   "with -1e9 instead of -inf makes row 0 a uniform softmax."
                   if torch.allclose(g[:, 0], uniform[:, 0], rtol=1e-4, atol=1e-5) else "")
            fail(CHAPTER, ex, "every position is right except position 0: its memory is empty, "
                 f"so its output must be exactly 0 (zero row 0 of the weights).{how}")
        if torch.allclose(g, want, rtol=1e-4, atol=1e-5):
            continue
        for diagnosis, flags in CMEM_MISTAKES.items():
            wrong = _cmem(x, p, H, **flags)
            if torch.allclose(g, wrong, rtol=1e-4, atol=1e-5):
                fail(CHAPTER, ex, f"wrong on test case {k}: it looks like you {diagnosis}.")
        err = (g - want).abs()
        t_bad = int(err.amax(dim=(0, 2)).argmax())
        bad_t = (err.amax(dim=(0, 2)) > 1e-4).nonzero().flatten().tolist()
        fail(CHAPTER, ex, f"wrong on test case {k}: positions t = {fmt(bad_t)} differ, most "
             f"t={t_bad} (by {fmt(float(err.max()))}). Go through the steps in order: keys "
             "(project, leaky average, "
             "normalise), values (project, peek, normalise, α), logits β k̂·k̂, mask s < t, "
             "softmax over s, zero row 0, merge heads, W_o.")
    passed(CHAPTER, ex)


# --------------------------------------------------------------------------------------------
# exercise 4.3: the persistent memory
# --------------------------------------------------------------------------------------------

PMEM_MISTAKES: dict[str, dict[str, Any]] = {
    "scaled the query by s_h = √β_h instead of β_h: the table keys carry no scale, so the whole "
    "bandwidth goes on the query": {"bandwidth": "sqrt"},
    "forgot the bandwidth β on the query (q = β_h k̂_t)": {"bandwidth": "none"},
    "forgot to L2-normalise the query key before scaling it by β": {"normalise": False},
    "forgot the leaky average of the query key: a persistent memory's query also mixes the recent "
    "past, k̄_t = W_φ x_t + λ_h k̄_{t-1}": {"leaky": False},
    "forgot the output scale α_h (p['alpha'])": {"use_alpha": False},
    "took the softmax over the wrong axis: it runs over the pmem_size table entries (dim=-1)":
        {"softmax_dim": -2},
    "swapped the tables: compare the query with M_k, then average the rows of M_v":
        {"swap_tables": True},
    "forgot the output projection W_o": {"project": False},
    "multiplied by the transposed weights (x @ W); nn.Linear stores W as (out, in), so a "
    "projection is x @ W.T": {"transpose": True},
}


def _pmem_cases() -> list[tuple[torch.Tensor, Weights, int, nn.Module]]:
    cases = []
    for seed, (B, T, d, H, P) in enumerate([(1, 5, 8, 2, 12), (2, 7, 16, 4, 56), (1, 6, 12, 3, 9)]):
        layer = random_persistent_memory(d, H, P, seed=20 + seed)
        cases.append((_inputs(B, T, d, 100 + seed), persistent_memory_weights(layer), H, layer))
    return cases


def check_persistent_memory(persistent_memory: Callable[..., torch.Tensor]) -> None:
    """Exercise 4.3: the learner's P-mem must equal the package's PersistentMemory."""
    ex = "persistent_memory"
    for k, (x, p, H, layer) in enumerate(_pmem_cases()):
        want = _layer_ground_truth(layer, x)
        got = call_checked(CHAPTER, ex, persistent_memory, (x, p, H), ("x", "p", "n_head"),
                           where=f"on test case {k}")
        if not isinstance(got, torch.Tensor):
            fail(CHAPTER, ex, f"must return a torch tensor, got {type(got).__name__}")
        if tuple(got.shape) != tuple(want.shape):
            fail(CHAPTER, ex, f"returned shape {tuple(got.shape)}, expected (B, T, d) = "
                 f"{tuple(want.shape)}")
        _precision(ex, got.detach(), want)
        g = got.detach().double()
        if torch.allclose(g, want, rtol=1e-4, atol=1e-5):
            continue
        for diagnosis, flags in PMEM_MISTAKES.items():
            if torch.allclose(g, _pmem(x, p, H, **flags), rtol=1e-4, atol=1e-5):
                fail(CHAPTER, ex, f"wrong on test case {k}: it looks like you {diagnosis}.")
        err = (g - want).abs()
        bad_t = (err.amax(dim=(0, 2)) > 1e-4).nonzero().flatten().tolist()
        fail(CHAPTER, ex, f"wrong on test case {k}: positions t = {fmt(bad_t)} differ (largest "
             f"difference {fmt(float(err.max()))}). Steps: W_φ, leaky average, normalise, × β, softmax "
             "against M_k over the table, × M_v, × α, merge heads, W_o.")
    passed(CHAPTER, ex)


# --------------------------------------------------------------------------------------------
# exercise 4.4: the whole language model, from the parts of a package MemoryMosaicLM
# --------------------------------------------------------------------------------------------


def reference_mosaic_lm(idx: torch.Tensor, model: models.MemoryMosaicLM) -> torch.Tensor:
    """Logits of ``model`` on ``idx`` (B, T) -> (B, T, V): the package's forward itself."""
    with torch.no_grad():
        return model(idx)[0]


def _block(x, b, how: str = "pre_ln"):
    if how == "post_ln":
        x = b.ln_1(x + b.cmem(x))
        return b.ln_2(x + b.pmem(x))
    if how == "ln_on_stream":
        x = b.ln_1(x)
        x = x + b.cmem(x)
        x = b.ln_2(x)
        return x + b.pmem(x)
    if how == "parallel":
        return x + b.cmem(b.ln_1(x)) + b.pmem(b.ln_2(x))
    if how == "one_ln":
        x = x + b.cmem(b.ln_1(x))
        return x + b.pmem(b.ln_1(x))
    if how == "swapped":
        x = x + b.pmem(b.ln_2(x))
        return x + b.cmem(b.ln_1(x))
    if how == "no_residual":
        return b.pmem(b.ln_2(b.cmem(b.ln_1(x))))
    if how == "no_ln":
        x = x + b.cmem(x)
        return x + b.pmem(x)
    x = x + b.cmem(b.ln_1(x))
    return x + b.pmem(b.ln_2(x))


def _lm(idx, model, *, block: str = "pre_ln", final_ln: bool = True, logit_scale: str = "inv_sqrt",
        embed_scale: bool = False, transpose_head: bool = False, first_block_only: bool = False):
    """The LM's forward with switches that make the known mistakes. (B, T) -> (B, T, V)."""
    with torch.no_grad():
        d = model.config.n_embd
        x = model.wte(idx)  # (B, T, d)
        if embed_scale:
            x = x * math.sqrt(d)
        for b in (model.blocks[:1] if first_block_only else model.blocks):
            x = _block(x, b, block)
        if final_ln:
            x = model.ln_f(x)
        W = model.wte.weight  # (V, d)
        logits = x @ (W if transpose_head else W.T)  # (B, T, V)
        factor = {"inv_sqrt": 1 / math.sqrt(d), "none": 1.0, "sqrt": math.sqrt(d),
                  "inv_d": 1 / d}[logit_scale]
        return logits * factor


LM_MISTAKES: dict[str, dict[str, Any]] = {
    "normalised after the residual sum (post-LN, the original transformer): here LayerNorm is "
    "applied to each branch's input only, x = x + Cmem(LN₁(x))": {"block": "post_ln"},
    "normalised the residual stream itself (x = LN(x), then x = x + Cmem(x)): the stream must "
    "go through the blocks unnormalised; only each branch's input is normalised":
        {"block": "ln_on_stream"},
    "ran the two memories in parallel on the same x: the persistent memory reads the stream "
    "*after* the contextual memory has been added": {"block": "parallel"},
    "used ln_1 for both branches: the persistent memory has its own LayerNorm, ln_2":
        {"block": "one_ln"},
    "applied the persistent memory first: the order is Cmem (ln_1) then Pmem (ln_2)":
        {"block": "swapped"},
    "forgot the residual connections (x = x + ...)": {"block": "no_residual"},
    "forgot the blocks' LayerNorms (ln_1 before Cmem, ln_2 before Pmem)": {"block": "no_ln"},
    "forgot the final LayerNorm model.ln_f before the head": {"final_ln": False},
    "forgot the 1/√d on the logits: the head computes LN(x) @ W_eᵀ / √n_embd":
        {"logit_scale": "none"},
    "multiplied the logits by √d; the papers divide them by √n_embd": {"logit_scale": "sqrt"},
    "divided the logits by d; the factor is 1/√n_embd": {"logit_scale": "inv_d"},
    "scaled the embedding by √d (as some transformers do); a mosaic reads the plain embedding "
    "rows": {"embed_scale": True},
    "multiplied by the embedding matrix untransposed: wte.weight is (vocab, d), the logits are "
    "h @ wte.weight.T": {"transpose_head": True},
    "ran only the first block: loop over every block of model.blocks": {"first_block_only": True},
}


def random_lm(vocab: int, n_layer: int, n_embd: int, n_head: int, seed: int) -> models.MemoryMosaicLM:
    """A package MemoryMosaicLM with varied per-head scalars and LayerNorm gains (eval mode)."""
    torch.manual_seed(seed)
    model = models.MemoryMosaicLM(models.MosaicConfig(
        vocab_size=vocab, block_size=16, n_layer=n_layer, n_head=n_head, n_embd=n_embd,
        pmem_size=2 * n_embd)).eval()
    gen = torch.Generator().manual_seed(seed + 1)
    _jitter_scalars(model, gen)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "ln" in name:
                p.copy_(torch.rand(p.shape, generator=gen) * 1.5 + 0.25)
            elif name.endswith("c_proj.weight"):
                p.mul_(3.0)  # every branch moves the residual stream visibly
        model.wte.weight.mul_(4.0)  # logits large enough that a missing scale shows
    return model


def _lm_cases() -> list[tuple[torch.Tensor, models.MemoryMosaicLM]]:
    cases = []
    for seed, (B, T, V, L, d, H) in enumerate([(2, 7, 12, 2, 12, 2), (2, 9, 29, 1, 16, 4),
                                               (1, 12, 24, 3, 24, 3)]):  # first: V == d
        gen = torch.Generator().manual_seed(300 + seed)
        cases.append((torch.randint(0, V, (B, T), generator=gen), random_lm(V, L, d, H, 50 + seed)))
    return cases


def check_mosaic_lm(mosaic_lm: Callable[[torch.Tensor, models.MemoryMosaicLM], torch.Tensor]) -> None:
    """Exercise 4.4: the learner's forward must give the package model's logits."""
    ex = "mosaic_lm"
    for k, (idx, model) in enumerate(_lm_cases()):
        want = reference_mosaic_lm(idx, model).double()
        before = {n: p.detach().clone() for n, p in model.state_dict().items()}
        given = idx.clone()
        with torch.no_grad():
            got = call_learner(CHAPTER, ex, mosaic_lm, given, model)
        if not torch.equal(given, idx):
            fail(CHAPTER, ex, "your function changed its argument `idx` in place")
        if any(not torch.equal(v, before[n]) for n, v in model.state_dict().items()):
            fail(CHAPTER, ex, "your function changed the model's weights; a forward pass only "
                 "reads them")
        if isinstance(got, tuple):
            fail(CHAPTER, ex, "returned a tuple; return the logits tensor (B, T, vocab_size) only")
        if not isinstance(got, torch.Tensor):
            fail(CHAPTER, ex, f"must return a torch tensor, got {type(got).__name__}")
        if tuple(got.shape) != tuple(want.shape):
            fail(CHAPTER, ex, f"on test case {k}: returned shape {tuple(got.shape)}, expected "
                 f"(B, T, vocab_size) = {tuple(want.shape)}")
        g = got.detach().double()
        if torch.allclose(g, want, rtol=1e-4, atol=1e-5):
            continue
        for diagnosis, flags in LM_MISTAKES.items():
            try:
                wrong = _lm(idx, model, **flags).double()
            except RuntimeError:  # e.g. the untransposed head when vocab != d
                continue
            if torch.allclose(g, wrong, rtol=1e-4, atol=1e-5):
                fail(CHAPTER, ex, f"wrong on test case {k}: it looks like you {diagnosis}.")
        err = (g - want).abs()
        t_bad = int(err.amax(dim=(0, 2)).argmax())
        first = int((err.amax(dim=(0, 2)) > 1e-4).nonzero()[0])
        fail(CHAPTER, ex, f"wrong on test case {k} ({model.config.n_layer} block(s)): logits "
             f"differ from position {first} on, most at t={t_bad} (by {float(err.max()):.3g}). "
             "Steps: wte(idx) (no positions), for each block x += cmem(ln_1(x)), "
             "x += pmem(ln_2(x)); ln_f; @ wte.weight.T; × 1/√n_embd.")
    passed(CHAPTER, ex)


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
    "counted the tied output head as a second matrix: lm_head.weight *is* wte.weight (counted "
    "once)": lambda V, T, L, d, H, P: _model_sizes(V, T, L, d, H, P, w_head=V * d, gw_head=V * d),
    "forgot GPT's position table wpe (block_size × n_embd)":
        lambda V, T, L, d, H, P: _model_sizes(V, T, L, d, H, P, gw_wpe=0),
    "gave the mosaic a position table: it has none, order comes from the leaky keys and the peek":
        lambda V, T, L, d, H, P: _model_sizes(V, T, L, d, H, P, w_wpe=T * d),
    "forgot the final LayerNorm ln_f (n_embd gains in each model)":
        lambda V, T, L, d, H, P: _model_sizes(V, T, L, d, H, P, w_ln_f=0, gw_ln_f=0),
    "forgot the persistent memory's tables M_k and M_v (2 · pmem_size · n_embd per block)":
        lambda V, T, L, d, H, P: _model_sizes(V, T, L, d, H, P, tables=0),
    "counted only one table per block; there are two, M_k and M_v":
        lambda V, T, L, d, H, P: _model_sizes(V, T, L, d, H, P, tables=P * d),
    "gave the contextual memory a query map W_q: its query is its own key, so it has W_φ, W_ψ, "
    "W_o only (3d²)": lambda V, T, L, d, H, P: _model_sizes(V, T, L, d, H, P, cmem=4 * d * d),
    "forgot the per-head scalars (4 per head in the C-mem: decay λ, β, γ, α; 3 in the P-mem)":
        lambda V, T, L, d, H, P: _model_sizes(V, T, L, d, H, P, cmem_scalars=0, pmem_scalars=0),
    "forgot the blocks' LayerNorm gains (2 · n_embd per block, no bias)":
        lambda V, T, L, d, H, P: _model_sizes(V, T, L, d, H, P, ln=0, g_ln=0),
    "counted LayerNorm biases: every LayerNorm here is bias-free (n_embd parameters each)":
        lambda V, T, L, d, H, P: _model_sizes(V, T, L, d, H, P, ln=4 * d, g_ln=4 * d,
                                              w_ln_f=2 * d, gw_ln_f=2 * d),
    "forgot the persistent memory's key map W_φ or its W_o (2d² in all)":
        lambda V, T, L, d, H, P: _model_sizes(V, T, L, d, H, P, pmem=d * d),
    "counted the GPT-2 MLP as d→d→d; it is d→4d→d, 8d²":
        lambda V, T, L, d, H, P: _model_sizes(V, T, L, d, H, P, g_mlp=2 * d * d),
    "counted one block only: multiply the per-block count by n_layer":
        lambda V, T, L, d, H, P: _model_sizes(V, T, 1, d, H, P),
}

SIZE_ARGS = ("vocab_size", "block_size", "n_layer", "n_embd", "n_head", "pmem_size")
SIZE_CASES = [(64, 40, 2, 16, 4, 56), (100, 48, 3, 24, 6, 40), (50_304, 512, 12, 768, 12, 2688),
              (37, 20, 1, 8, 2, 9)]


def check_model_sizes(model_sizes: Callable[..., tuple[int, int]]) -> None:
    """Exercise 4.5: count both whole models' parameters by formula, against the package's."""
    ex = "model_sizes"

    def learner(*case):
        out = call_learner(CHAPTER, ex, model_sizes, *case)
        if not isinstance(out, tuple | list) or len(out) != 2:
            fail(CHAPTER, ex, f"must return a pair (mosaic, gpt), got {out!r}")
        if any(not isinstance(v, int | np.integer) for v in out):
            fail(CHAPTER, ex, "parameter counts are integers; return ints, not "
                 f"{type(out[0]).__name__} (use // instead of /, or int(...))")
        return tuple(int(v) for v in out)

    for case in SIZE_CASES:
        got, want = learner(*case), reference_model_sizes(*case)
        if got == want:
            continue
        where = ", ".join(f"{n}={v}" for n, v in zip(SIZE_ARGS, case, strict=True))
        for diagnosis, wrong in SIZE_MISTAKES.items():
            if got == wrong(*case):
                fail(CHAPTER, ex, f"wrong with {where}: it looks like you {diagnosis}.")
        for i, name in enumerate(SIZE_ARGS):  # an argument the answer does not use
            changed = list(case)
            changed[i] = case[i] * 2
            if reference_model_sizes(*changed) != want and learner(*changed) == got:
                fail(CHAPTER, ex, f"wrong with {where}: your counts do not change with "
                     f"`{name}`, but the models' sizes do.")
        which = "mosaic" if got[0] != want[0] else "GPT"
        i = 0 if which == "mosaic" else 1
        fail(CHAPTER, ex, f"wrong with {where}: the {which} count is {got[i]:,}, expected "
             f"{want[i]:,} (off by {got[i] - want[i]:+,}). Per block: C-mem 3d² + 4H, P-mem "
             "2d² + 2Pd + 3H, LayerNorms 2d (GPT: 12d² + 2d); once: embedding V·d (tied head), "
             "ln_f d, GPT's wpe T·d.")
    passed(CHAPTER, ex)
