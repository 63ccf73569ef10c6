"""Chapter 04's layers as plain functions of their weights: the references and their mistakes.

- The weights of a package :class:`~mosaics_edu.core.layers.ContextMemory` or
  :class:`~mosaics_edu.core.layers.PersistentMemory` as plain tensors (what the learner receives), and
  random layers whose per-head scalars all differ, so that mistakes show.
- :func:`context_memory`, :func:`persistent_memory` and :func:`mosaic_lm`: the layers and the
  whole model computed step by step (float64 for the memories), tested against the package. A
  known mistake is one of them with one step done wrong: a keyword switch (the mask off by one,
  the softmax over the wrong axis, ...), or a weight replaced by a function of the float64
  weights (``beta=lambda p: torch.ones_like(p["beta"])``: β forgotten).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ... import models
from ...core import layers
from ...core.features import leaky_average

__all__ = ["Weights", "context_memory", "context_memory_weights", "jitter_scalars", "mosaic_lm",
           "persistent_memory", "persistent_memory_weights", "random_context_memory", "random_inputs",
           "random_lm", "random_persistent_memory"]

Weights = dict[str, torch.Tensor]

# --------------------------------------------------------------------------------------------
# the weights of the package layers, as plain tensors
# --------------------------------------------------------------------------------------------


def context_memory_weights(layer: layers.ContextMemory) -> Weights:
    """The weights of a :class:`~mosaics_edu.core.layers.ContextMemory`, detached, with their meaning.

    ``W_phi``, ``W_psi``, ``W_o``: (d, d) matrices applied as ``x @ W.T`` (``nn.Linear``);
    ``decay`` λ_h, ``beta`` β_h, ``gamma`` γ_h, ``alpha`` α_h: (n_head,) effective per-head values.
    """
    if not isinstance(layer, layers.ContextMemory):
        raise TypeError(f"layer must be a mosaics_edu.core.layers.ContextMemory, got {type(layer).__name__}")
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
    """The weights of a :class:`~mosaics_edu.core.layers.PersistentMemory`, detached.

    ``W_phi``, ``W_o``: (d, d); ``M_k``, ``M_v``: (n_head, pmem_size, head_size) tables;
    ``decay`` λ_h, ``beta`` β_h, ``alpha`` α_h: (n_head,).
    """
    if not isinstance(layer, layers.PersistentMemory):
        raise TypeError(
            f"layer must be a mosaics_edu.core.layers.PersistentMemory, got {type(layer).__name__}")
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


def jitter_scalars(module: nn.Module, gen: torch.Generator) -> None:
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
    jitter_scalars(layer, torch.Generator().manual_seed(seed + 1))
    return layer


def random_persistent_memory(
    n_embd: int = 16, n_head: int = 4, pmem_size: int = 24, seed: int = 0
) -> layers.PersistentMemory:
    """A package P-mem with random weights and varied per-head λ, β, α (eval mode)."""
    torch.manual_seed(seed)
    layer = layers.PersistentMemory(n_embd, n_head, pmem_size).eval()
    jitter_scalars(layer, torch.Generator().manual_seed(seed + 1))
    return layer


def random_inputs(B: int, T: int, d: int, seed: int, scale: float = 1.0, shift: float = 0.0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(B, T, d, generator=gen) * scale + shift


def random_lm(vocab: int, n_layer: int, n_embd: int, n_head: int, seed: int) -> models.MemoryMosaicLM:
    """A package MemoryMosaicLM with varied per-head scalars and LayerNorm gains (eval mode)."""
    torch.manual_seed(seed)
    model = models.MemoryMosaicLM(models.MosaicConfig(
        vocab_size=vocab, block_size=16, n_layer=n_layer, n_head=n_head, n_embd=n_embd,
        pmem_size=2 * n_embd)).eval()
    gen = torch.Generator().manual_seed(seed + 1)
    jitter_scalars(model, gen)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "ln" in name:
                p.copy_(torch.rand(p.shape, generator=gen) * 1.5 + 0.25)
            elif name.endswith("c_proj.weight"):
                p.mul_(3.0)  # every branch moves the residual stream visibly
        model.wte.weight.mul_(4.0)  # logits large enough that a missing scale shows
    return model


# --------------------------------------------------------------------------------------------
# the layers step by step; a known mistake is one step done wrong
# --------------------------------------------------------------------------------------------


def _heads(x: torch.Tensor, W: torch.Tensor, n_head: int) -> torch.Tensor:
    """x @ W.T split into heads. (B, T, d) -> (B, H, T, hs)."""
    B, T, d = x.shape
    return (x @ W.T).view(B, T, n_head, d // n_head).transpose(1, 2)


def _heads_viewed(x: torch.Tensor, W: torch.Tensor, n_head: int) -> torch.Tensor:
    """x @ W.T viewed as (B, H, T, hs) directly, without the transpose: heads and time mixed."""
    B, T, d = x.shape
    return (x @ W.T).reshape(B, n_head, T, d // n_head)


def _merge(y: torch.Tensor) -> torch.Tensor:
    """(B, H, T, hs) -> (B, T, H*hs)."""
    B, H, T, hs = y.shape
    return y.transpose(1, 2).reshape(B, T, H * hs)


def _per_head(v: torch.Tensor) -> torch.Tensor:
    return v[:, None, None]  # (H,) -> (H, 1, 1)


def _float64(x: torch.Tensor, p: Weights, changed: dict[str, Callable[[Weights], torch.Tensor]]
             ) -> tuple[torch.Tensor, Weights]:
    """``x`` and the weights in float64, each weight named in ``changed`` replaced by its function
    of the float64 weights."""
    p = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in p.items()}
    return torch.as_tensor(x, dtype=torch.float64), {**p, **{k: f(p) for k, f in changed.items()}}


def context_memory(
    x: torch.Tensor,
    p: Weights,
    n_head: int,
    *,
    lag: int = 1,  # position t reads s <= t - lag: 1 is right, 0 reads its own pair, 2 misses one
    future: bool = False,  # read the pairs s > t instead of s < t
    first_row: str = "zero",  # "zero" | "nan" (left 0/0) | "uniform" (masked with -1e9, not zeroed)
    mask_value: float = float("-inf"),  # a finite fill (-1e4) lets the future through when β is large
    softmax_dim: int = -1,
    key_norm_dim: int | None = -1,  # None: keys not normalised
    normalise_values: bool = True,
    split: str = "transpose",  # "view": (B, T, d) viewed as (B, H, T, hs) without the transpose
    **changed: Callable[[Weights], torch.Tensor],  # a weight replaced by a function of the weights
) -> torch.Tensor:
    """C-mem as one function of its weights. x: (B, T, d) -> (B, T, d)."""
    x, p = _float64(x, p, changed)
    B, T, d = x.shape
    heads = _heads if split == "transpose" else _heads_viewed
    k = leaky_average(heads(x, p["W_phi"], n_head), p["decay"], method="recurrent")  # (B, H, T, hs)
    if key_norm_dim is not None:
        k = F.normalize(k, dim=key_norm_dim, eps=1e-12)
    logits = (k @ k.transpose(-1, -2)) * _per_head(p["beta"])  # (B, H, T, T)
    v_now = heads(x, p["W_psi"], n_head)  # (B, H, T, hs)
    v_next = F.pad(v_now[:, :, 1:], (0, 0, 0, 1))  # (B, H, T, hs): ṽ_{t+1}, 0 past the window
    g = _per_head(p["gamma"])
    v = g * v_now + (1 - g) * v_next
    if normalise_values:
        v = F.normalize(v, dim=-1, eps=1e-12)
    v = v * _per_head(p["alpha"])
    t = torch.arange(T)
    readable = (t[None, :] <= t[:, None] - lag)  # (T, T): s <= t - lag
    if future:
        readable = readable.T  # (T, T): s >= t + lag
    empty = ~readable.any(-1)  # (T,): rows with nothing to read
    if first_row == "uniform":
        w = torch.softmax(logits.masked_fill(~readable, -1e9), dim=softmax_dim)
    elif mask_value != float("-inf"):  # a finite fill, row 0 zeroed by hand
        w = torch.softmax(logits.masked_fill(~readable, mask_value), dim=softmax_dim)
        w = w.masked_fill(empty[:, None], 0.0)
    else:
        logits = logits.masked_fill(~readable, float("-inf"))
        w = torch.softmax(logits.masked_fill(empty[:, None], 0.0), dim=softmax_dim)
        w = w.masked_fill(~readable, 0.0) if softmax_dim != -1 else w
        w = w.masked_fill(empty[:, None], float("nan") if first_row == "nan" else 0.0)
    if first_row != "nan":
        w = torch.nan_to_num(w)
    return _merge(w @ v) @ p["W_o"].T  # (B, T, d)


def persistent_memory(x: torch.Tensor, p: Weights, n_head: int, *, normalise: bool = True,
                      softmax_dim: int = -1, **changed: Callable[[Weights], torch.Tensor]) -> torch.Tensor:
    """P-mem as one function of its weights. x: (B, T, d) -> (B, T, d)."""
    x, p = _float64(x, p, changed)
    q = leaky_average(_heads(x, p["W_phi"], n_head), p["decay"], method="recurrent")  # (B, H, T, hs)
    if normalise:
        q = F.normalize(q, dim=-1, eps=1e-12)
    q = q * _per_head(p["beta"])
    w = torch.softmax(q @ p["M_k"].transpose(-1, -2), dim=softmax_dim)  # (B, H, T, P)
    y = (w @ p["M_v"]) * _per_head(p["alpha"])  # (B, H, T, hs)
    return _merge(y) @ p["W_o"].T  # (B, T, d)


# --------------------------------------------------------------------------------------------
# the whole language model, from a package model's parts
# --------------------------------------------------------------------------------------------


def _block(x: torch.Tensor, b: layers.MosaicBlock, how: str = "pre_ln") -> torch.Tensor:
    """One block, pre-LN, or one of the known wrong arrangements (``how``)."""
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


def mosaic_lm(idx: torch.Tensor, model: models.MemoryMosaicLM, *, block: str = "pre_ln",
              final_ln: str = "end", logit_scale: str = "inv_sqrt", embed_scale: bool = False,
              transpose_head: bool = False, first_block_only: bool = False) -> torch.Tensor:
    """The LM's forward with switches that make the known mistakes. (B, T) -> (B, T, V)."""
    with torch.no_grad():
        d = model.config.n_embd
        x = model.wte(idx)  # (B, T, d)
        if embed_scale:
            x = x * math.sqrt(d)
        for b in (model.blocks[:1] if first_block_only else model.blocks):
            x = _block(x, b, block)
            if final_ln == "every":
                x = model.ln_f(x)
        if final_ln == "end":
            x = model.ln_f(x)
        W = model.wte.weight  # (V, d)
        logits = x @ (W if transpose_head else W.T)  # (B, T, V)
        factor = {"inv_sqrt": 1 / math.sqrt(d), "none": 1.0, "sqrt": math.sqrt(d),
                  "inv_d": 1 / d}[logit_scale]
        return logits * factor


