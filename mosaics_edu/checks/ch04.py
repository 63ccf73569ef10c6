"""Checks for chapter 04 (A memory mosaic layer).

The learner rebuilds the three layers of a mosaic block as plain functions of their weights:

- ``context_memory(x, p, n_head)``     — the contextual memory (strictly causal retrieval),
- ``persistent_memory(x, p, n_head)``  — the persistent memory (learned key/value tables),
- ``mosaic_block(x, block)``           — the pre-LayerNorm residual block,
- ``block_sizes(n_embd, n_head, pmem_size)`` — parameter counts of a mosaic and a GPT-2 block.

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
from . import as_numpy, call_learner, compare, fail, passed

CHAPTER = "04_mosaic_layer"

__all__ = [
    "context_memory_weights",
    "persistent_memory_weights",
    "reference_context_memory",
    "reference_persistent_memory",
    "reference_mosaic_block",
    "reference_block_sizes",
    "random_context_memory",
    "random_persistent_memory",
    "random_block",
    "check_context_memory",
    "check_persistent_memory",
    "check_mosaic_block",
    "check_block_sizes",
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
    """A package C-mem with random weights and varied per-head λ, β, γ, α (eval mode)."""
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
) -> torch.Tensor:
    """C-mem as one function of its weights. x: (B, T, d) -> (B, T, d)."""
    x = torch.as_tensor(x, dtype=torch.float64)
    p = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in p.items()}
    B, T, d = x.shape
    k = _heads(x, p["W_phi"], n_head)  # (B, H, T, hs)
    if leaky:
        k = leaky_average(k, p["decay"], method="recurrent")  # (B, H, T, hs)
    if normalise_keys:
        k = F.normalize(k, dim=-1, eps=1e-12)
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
) -> torch.Tensor:
    """P-mem as one function of its weights. x: (B, T, d) -> (B, T, d)."""
    x = torch.as_tensor(x, dtype=torch.float64)
    p = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in p.items()}
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


# --------------------------------------------------------------------------------------------
# exercise 4.1: the contextual memory
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
}


def _cmem_cases() -> list[tuple[torch.Tensor, Weights, int]]:
    cases = []
    for seed, (B, T, d, H) in enumerate([(1, 6, 8, 2), (2, 9, 16, 4), (2, 12, 12, 3)]):
        layer = random_context_memory(d, H, seed=10 + seed)
        cases.append((_inputs(B, T, d, seed), context_memory_weights(layer), H, layer))
    return cases


def check_context_memory(context_memory: Callable[..., torch.Tensor]) -> None:
    """Exercise 4.1: the learner's C-mem must equal the package's ContextMemory on its weights."""
    ex = "context_memory"
    for k, (x, p, H, layer) in enumerate(_cmem_cases()):
        want = _layer_ground_truth(layer, x)
        got = call_learner(CHAPTER, ex, context_memory, x.clone(), {n: t.clone() for n, t in p.items()}, H)
        if not isinstance(got, torch.Tensor):
            fail(CHAPTER, ex, f"must return a torch tensor of shape {tuple(want.shape)}, "
                 f"got {type(got).__name__}")
        if tuple(got.shape) != tuple(want.shape):
            fail(CHAPTER, ex, f"returned shape {tuple(got.shape)}, expected (B, T, d) = "
                 f"{tuple(want.shape)}: concatenate the heads back before W_o")
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
        fail(CHAPTER, ex, f"wrong on test case {k}: largest difference {err.max():.3g}, at "
             f"position t={t_bad}. Go through the steps in order: keys (project, leaky average, "
             "normalise), values (project, peek, normalise, α), logits β k̂·k̂, mask s < t, "
             "softmax over s, zero row 0, merge heads, W_o.")
    passed(CHAPTER, ex)


# --------------------------------------------------------------------------------------------
# exercise 4.2: the persistent memory
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
}


def _pmem_cases() -> list[tuple[torch.Tensor, Weights, int, nn.Module]]:
    cases = []
    for seed, (B, T, d, H, P) in enumerate([(1, 5, 8, 2, 12), (2, 7, 16, 4, 56), (1, 6, 12, 3, 9)]):
        layer = random_persistent_memory(d, H, P, seed=20 + seed)
        cases.append((_inputs(B, T, d, 100 + seed), persistent_memory_weights(layer), H, layer))
    return cases


def check_persistent_memory(persistent_memory: Callable[..., torch.Tensor]) -> None:
    """Exercise 4.2: the learner's P-mem must equal the package's PersistentMemory."""
    ex = "persistent_memory"
    for k, (x, p, H, layer) in enumerate(_pmem_cases()):
        want = _layer_ground_truth(layer, x)
        got = call_learner(CHAPTER, ex, persistent_memory, x.clone(),
                           {n: t.clone() for n, t in p.items()}, H)
        if not isinstance(got, torch.Tensor):
            fail(CHAPTER, ex, f"must return a torch tensor, got {type(got).__name__}")
        if tuple(got.shape) != tuple(want.shape):
            fail(CHAPTER, ex, f"returned shape {tuple(got.shape)}, expected (B, T, d) = "
                 f"{tuple(want.shape)}")
        g = got.detach().double()
        if torch.allclose(g, want, rtol=1e-4, atol=1e-5):
            continue
        for diagnosis, flags in PMEM_MISTAKES.items():
            if torch.allclose(g, _pmem(x, p, H, **flags), rtol=1e-4, atol=1e-5):
                fail(CHAPTER, ex, f"wrong on test case {k}: it looks like you {diagnosis}.")
        fail(CHAPTER, ex, f"wrong on test case {k}: largest difference "
             f"{(g - want).abs().max():.3g}. Steps: W_φ, leaky average, normalise, × β, softmax "
             "against M_k over the table, × M_v, × α, merge heads, W_o.")
    passed(CHAPTER, ex)


# --------------------------------------------------------------------------------------------
# exercise 4.3: the block
# --------------------------------------------------------------------------------------------


def reference_mosaic_block(x: torch.Tensor, block: layers.MosaicBlock) -> torch.Tensor:
    """Pre-LN residual: ``x + Cmem(LN₁(x))``, then ``+ Pmem(LN₂(·))``. (B, T, d) -> (B, T, d)."""
    x = x + block.cmem(block.ln_1(x))
    return x + block.pmem(block.ln_2(x))


def _post_ln(x, b):
    x = b.ln_1(x + b.cmem(x))
    return b.ln_2(x + b.pmem(x))


def _ln_on_stream(x, b):
    x = b.ln_1(x)
    x = x + b.cmem(x)
    x = b.ln_2(x)
    return x + b.pmem(x)


def _parallel(x, b):
    return x + b.cmem(b.ln_1(x)) + b.pmem(b.ln_2(x))


def _one_ln(x, b):
    x = x + b.cmem(b.ln_1(x))
    return x + b.pmem(b.ln_1(x))


def _swapped(x, b):
    x = x + b.pmem(b.ln_2(x))
    return x + b.cmem(b.ln_1(x))


def _no_residual(x, b):
    return b.pmem(b.ln_2(b.cmem(b.ln_1(x))))


def _no_ln(x, b):
    x = x + b.cmem(x)
    return x + b.pmem(x)


BLOCK_MISTAKES: dict[str, Callable] = {
    "normalised after the residual sum (post-LN, the original transformer): here LayerNorm is "
    "applied to the branch input only, x = x + Cmem(LN₁(x))": _post_ln,
    "normalised the residual stream itself (x = LN(x), then x = x + Cmem(x)): the stream must go "
    "through unnormalised; only the branch input is normalised": _ln_on_stream,
    "ran the two memories in parallel on the same x: the persistent memory reads the stream "
    "*after* the contextual memory has been added": _parallel,
    "used ln_1 for both branches: the persistent memory has its own LayerNorm, ln_2": _one_ln,
    "applied the persistent memory first: the order is Cmem (ln_1) then Pmem (ln_2)": _swapped,
    "forgot the residual connections (x + ...)": _no_residual,
    "forgot the LayerNorms (ln_1 before Cmem, ln_2 before Pmem)": _no_ln,
}


def check_mosaic_block(mosaic_block: Callable[..., torch.Tensor]) -> None:
    """Exercise 4.3: compose ln_1, cmem, ln_2, pmem of a package block into the block."""
    cases = []
    for seed, (B, T, d, H, P) in enumerate([(1, 6, 8, 2, 28), (2, 8, 16, 4, 56)]):
        block = random_block(d, H, P, seed=30 + seed)
        cases.append((_inputs(B, T, d, 200 + seed, scale=3.0, shift=1.5), block))

    def ref(x, b):
        with torch.no_grad():
            return reference_mosaic_block(x, b)

    def learner(x, b):
        with torch.no_grad():
            return mosaic_block(x, b)

    mistakes = {k: (lambda x, b, f=f: _nograd(f, x, b)) for k, f in BLOCK_MISTAKES.items()}
    compare(CHAPTER, "mosaic_block", learner, ref, cases, mistakes=mistakes, rtol=1e-4, atol=1e-5)


def _nograd(f: Callable, *args: Any) -> Any:
    with torch.no_grad():
        return f(*args)


# --------------------------------------------------------------------------------------------
# exercise 4.4: parameter counts
# --------------------------------------------------------------------------------------------


def reference_block_sizes(n_embd: int, n_head: int, pmem_size: int) -> tuple[int, int]:
    """(mosaic block, GPT-2 block) parameter counts, both measured on the package's modules."""
    mosaic = models.count_parameters(layers.MosaicBlock(n_embd, n_head, pmem_size))
    gpt = models.count_parameters(models.Block(models.GPTConfig(n_embd=n_embd, n_head=n_head)))
    return int(mosaic), int(gpt)


def _sizes(n_embd: int, n_head: int, pmem_size: int, **wrong: int) -> tuple[int, int]:
    d, H, P = n_embd, n_head, pmem_size
    parts = {"ln": 2 * d, "cmem": 3 * d * d, "cmem_scalars": 4 * H, "pmem": 2 * d * d,
             "tables": 2 * P * d, "pmem_scalars": 3 * H}
    gparts = {"ln": 2 * d, "attn": 4 * d * d, "mlp": 8 * d * d}
    for k, v in wrong.items():
        (gparts if k.startswith("g_") else parts)[k.removeprefix("g_")] = v
    return sum(parts.values()), sum(gparts.values())


SIZE_MISTAKES: dict[str, Callable] = {
    "forgot the persistent memory's tables M_k and M_v (2 · n_head · pmem_size · head_size)":
        lambda d, H, P: _sizes(d, H, P, tables=0),
    "counted only one table; there are two, M_k and M_v":
        lambda d, H, P: _sizes(d, H, P, tables=P * d),
    "gave the contextual memory a query map W_q: its query is its own key, so it has W_φ, W_ψ, "
    "W_o only (3d²)": lambda d, H, P: _sizes(d, H, P, cmem=4 * d * d),
    "forgot the per-head scalars (4 per head in the C-mem: λ, β, γ, α; 3 in the P-mem)":
        lambda d, H, P: _sizes(d, H, P, cmem_scalars=0, pmem_scalars=0),
    "forgot the LayerNorm gains (d each, no bias), in both blocks":
        lambda d, H, P: _sizes(d, H, P, ln=0, g_ln=0),
    "counted LayerNorm biases: both blocks use bias-free LayerNorms (d parameters each)":
        lambda d, H, P: _sizes(d, H, P, ln=4 * d, g_ln=4 * d),
    "forgot the persistent memory's key map W_φ or its W_o (2d² in all)":
        lambda d, H, P: _sizes(d, H, P, pmem=d * d),
    "counted the GPT-2 MLP as d→d→d; it is d→4d→d, 8d²":
        lambda d, H, P: _sizes(d, H, P, g_mlp=2 * d * d),
    "forgot the GPT-2 block's LayerNorm gains (2d)":
        lambda d, H, P: _sizes(d, H, P, g_ln=0),
}


def check_block_sizes(block_sizes: Callable[[int, int, int], tuple[int, int]]) -> None:
    """Exercise 4.4: count both blocks' parameters by formula; compare with the package modules."""
    cases = [(64, 4, 224), (48, 6, 100), (768, 12, 2688)]

    def learner(d, H, P):
        out = block_sizes(d, H, P)
        if not isinstance(out, tuple | list) or len(out) != 2:
            fail(CHAPTER, "block_sizes", f"must return a pair (mosaic, gpt), got {out!r}")
        return tuple(int(v) for v in out)

    compare(CHAPTER, "block_sizes", learner, reference_block_sizes, cases,
            mistakes=SIZE_MISTAKES, quiet=True)
    got = as_numpy(block_sizes(768, 12, 2688))
    if np.asarray(got).dtype.kind not in "iu":
        fail(CHAPTER, "block_sizes", "parameter counts are integers; return ints, not floats")
    passed(CHAPTER, "block_sizes")
