"""The layers of a Memory Mosaic: contextual memory, persistent memory, and the block.

- :class:`ContextMemory` (C-mem): ``n_head`` elementary memory units. Each stores the pairs
  (key, value) of the current sequence and answers position t from the pairs s < t only
  (strict causality: the value of s peeks at x_{s+1}, whose index s + 1 ≤ t). Heads are
  concatenated, then W_o.
- :class:`PersistentMemory` (P-mem): replaces the MLP of a transformer. Its query is a leaky-average
  key like the C-mem's, its memory is a learned table of ``pmem_size`` pairs per head.
- :class:`MosaicBlock`: ``x += Cmem(LN(x)); x += Pmem(LN(x))`` with bias-free LayerNorms.

Every layer exposes its effective per-head quantities (``.decay``, ``.beta``, ``.gamma``,
``.alpha``) and can return its retrieval weights (``return_weights=True``). The retrieval itself
is :func:`mosaics_edu.core.memory.causal_retrieval` (fused attention; the weights path writes the
(T, T) softmax out and gives the same output).

Generation support: ``prefill(x) -> (y, cache)`` on a whole prompt, then ``step(x_t, cache)``
one position at a time. The C-mem cache holds the stored keys, the finished values (a value is
finished once the next input exists) and the running leaky-average state.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .features import KeyExtractor, ValueExtractor, alpha_logit_init, scaled_unit, value_scale
from .memory import causal_retrieval, retrieve
from .validation import check_dropout, check_heads, check_input, check_positive_int

__all__ = ["ContextMemory", "PersistentMemory", "MosaicBlock", "init_linear", "merge_heads"]

Cache = dict[str, Any]


def init_linear(linear: nn.Linear, n_layer: int = 1) -> None:
    """The papers' init: weights N(0, 1/fan_in), divided by √n_layer for output projections."""
    std = 1.0 / math.sqrt(linear.in_features * n_layer)
    nn.init.normal_(linear.weight, mean=0.0, std=std)


def merge_heads(y: torch.Tensor) -> torch.Tensor:
    """The heads side by side, as W_o reads them (v1's and v2's memories): (B, H, T, hs) ->
    (B, T, H*hs)."""
    B, H, T, hs = y.shape
    return y.transpose(1, 2).reshape(B, T, H * hs)


class _Memory(nn.Module):
    """What both memories share: a leaky-average key extractor (whose per-head λ_h and β_h are
    the layer's), the output map W_o, the output dropout, and the papers' init.

    A subclass calls ``super().__init__``, adds its own parameters, then :meth:`_add_output`
    (this order keeps the random draws, hence a seed's weights, those of the original layers).
    """

    def __init__(self, n_embd: int, n_head: int, dropout: float) -> None:
        super().__init__()
        check_heads(n_embd, n_head)
        check_dropout(dropout)
        self.n_embd, self.n_head, self.dropout = n_embd, n_head, float(dropout)
        self.head_size = n_embd // n_head
        self.keys = KeyExtractor(n_embd, n_head)

    def _add_output(self, n_layer: int, *inputs: nn.Linear) -> None:
        """W_o (no bias) and the output dropout; init W_φ, the given ``inputs``, W_o / √n_layer."""
        self.c_proj = nn.Linear(self.n_embd, self.n_embd, bias=False)  # W_o
        self.resid_dropout = nn.Dropout(self.dropout)
        for linear in (self.keys.proj, *inputs):
            init_linear(linear)
        init_linear(self.c_proj, n_layer)

    @property
    def decay(self) -> torch.Tensor:
        """λ_h, the fraction of the past the key's leaky average keeps per step. Shape (H,)."""
        return self.keys.decay

    @property
    def beta(self) -> torch.Tensor:
        """β_h = s_h², the multiplier of k̂_t·k̂_s in the retrieval logits. Shape (H,)."""
        return self.keys.beta


class ContextMemory(_Memory):
    """Contextual memory: strictly causal kernel regression over the sequence's own pairs.

    y_t = Σ_{s<t} softmax_s(β_h k̂_t·k̂_s) v_s per head, with y_0 = 0 (empty memory);
    then the heads are concatenated and projected by W_o (no bias), then dropout.

    Args:
        n_embd: model width d. n_head: number of memory units (heads); d % n_head == 0.
        dropout: on the output (training only).
        n_layer: depth of the network, only to scale the init of W_o by 1/√n_layer.
        attn_dropout: on the retrieval weights (training only). The authors' plain-PyTorch model
            drops them; the model that trained the papers' language models does not (0, the
            default).
    """

    def __init__(
        self, n_embd: int, n_head: int, dropout: float = 0.0, n_layer: int = 1,
        attn_dropout: float = 0.0,
    ) -> None:
        super().__init__(n_embd, n_head, dropout)
        check_dropout(attn_dropout, "attn_dropout")
        self.attn_dropout = float(attn_dropout)
        self.values = ValueExtractor(n_embd, n_head)
        self._add_output(n_layer, self.values.proj)

    @property
    def gamma(self) -> torch.Tensor:
        """γ_h, the weight of ṽ_t (now) against ṽ_{t+1} (next) in the value."""
        return self.values.gamma

    @property
    def alpha(self) -> torch.Tensor:
        """α_h, the norm of the values."""
        return self.values.alpha

    def forward(
        self, x: torch.Tensor, return_weights: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """x: (B, T, d) -> y (B, T, d), and the weights (B, H, T, T) if ``return_weights``."""
        check_input(x, self.n_embd, type(self).__name__)
        k = self.keys(x)  # (B, H, T, hs), norm s_h: logits k_t·k_s = β_h k̂_t·k̂_s
        v = self.values(x)  # (B, H, T, hs)
        p = self.attn_dropout if self.training else 0.0
        out = causal_retrieval(k, v, dropout_p=p, return_weights=return_weights)
        y, weights = out if return_weights else (out, None)  # (B, H, T, hs), (B, H, T, T)
        y = self.resid_dropout(self.c_proj(merge_heads(y)))  # (B, T, d)
        return (y, weights) if return_weights else y

    # ---- generation -------------------------------------------------------------------------
    def prefill(self, x: torch.Tensor) -> tuple[torch.Tensor, Cache]:
        """Run a whole prompt and return the cache for :meth:`step`. x: (B, T, d)."""
        check_input(x, self.n_embd, type(self).__name__)
        k_bar = self.keys.leaky_keys(x)  # (B, H, T, hs)
        k = self.keys.unit(k_bar, self.keys.scale)  # (B, H, T, hs)
        v_tilde = self.values.project(x)  # (B, H, T, hs)
        v_finished = self.values.combine(v_tilde[:, :, :-1], v_tilde[:, :, 1:])  # (B, H, T-1, hs)
        v = F.pad(v_finished, (0, 0, 0, 1))  # the last value's ṽ_{t+1} is not known: not read
        y = self.c_proj(merge_heads(causal_retrieval(k, v)))  # (B, T, d)
        cache = {"keys": k, "values": v_finished, "v_last": v_tilde[:, :, -1:],
                 "k_state": k_bar[:, :, -1:], "consts": self._step_constants(x.dtype)}
        return y, cache

    def _step_constants(self, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        """The per-head λ, s, γ, α shaped (H, 1, 1) in ``dtype``, computed once per prompt: a
        generated position then costs its projections and one retrieval, not eight operations
        per parameter to rebuild them (the same numbers: the parameters do not change while a
        cache is in use)."""
        with torch.no_grad():
            return {name: value.to(dtype)[:, None, None] for name, value in (
                ("decay", self.keys.decay), ("scale", self.keys.scale),
                ("gamma", self.values.gamma), ("alpha", self.values.alpha))}

    def step(self, x_t: torch.Tensor, cache: Cache) -> tuple[torch.Tensor, Cache]:
        """Process one new position. x_t: (B, 1, d) -> y_t (B, 1, d) and the updated cache.

        The new input finishes the previous position's value (its one-step peek), the new key
        queries every stored pair (all of them are in its past), then the key is stored.
        """
        c = cache.get("consts") or self._step_constants(x_t.dtype)
        k_state = self.keys.project(x_t) + c["decay"] * cache["k_state"]  # (B, H, 1, hs): k̄_t
        k_t = scaled_unit(k_state) * c["scale"]  # (B, H, 1, hs): s_h k̂_t
        v_tilde = self.values.project(x_t)  # (B, H, 1, hs)
        v_bar = torch.lerp(v_tilde, cache["v_last"], c["gamma"])  # γ ṽ_{t-1} + (1-γ) ṽ_t
        v_prev = scaled_unit(v_bar, c["alpha"][:, :, 0])  # (B, H, 1, hs): the value of t-1
        values = torch.cat([cache["values"], v_prev], dim=2)  # (B, H, t, hs)
        y = retrieve(cache["keys"], values, k_t)  # (B, H, 1, hs)
        keys = torch.cat([cache["keys"], k_t], dim=2)  # (B, H, t+1, hs)
        cache = {"keys": keys, "values": values, "v_last": v_tilde, "k_state": k_state,
                 "consts": c}
        return self.c_proj(merge_heads(y)), cache


class PersistentMemory(_Memory):
    """Persistent memory: retrieval from learned key/value tables, in place of the MLP.

    q_t = β_h k̂_t (a leaky-average unit key, scaled by β_h = s_h² because the table keys carry
    no scale), y_t = α_h softmax(q_t M_kᵀ) M_v per head, concat, W_o, dropout.
    Tables ``M_k, M_v``: (n_head, pmem_size, head_size), init N(0, 1/head_size).
    ``dropout`` acts on the output and, as in the authors' plain-PyTorch model, on the
    retrieval weights over the table (training only; the C-mem's ``attn_dropout`` leaves it).
    """

    def __init__(
        self, n_embd: int, n_head: int, pmem_size: int, dropout: float = 0.0, n_layer: int = 1
    ) -> None:
        check_positive_int("pmem_size", pmem_size)
        super().__init__(n_embd, n_head, dropout)
        self.pmem_size = pmem_size
        std = 1.0 / math.sqrt(self.head_size)
        self.table_keys = nn.Parameter(torch.randn(n_head, pmem_size, self.head_size) * std)
        self.table_values = nn.Parameter(torch.randn(n_head, pmem_size, self.head_size) * std)
        self.alpha_logit = nn.Parameter(alpha_logit_init(n_head))
        self._add_output(n_layer)

    @property
    def alpha(self) -> torch.Tensor:
        """α_h = exp(10 θ^v_h), the output scale (parameterised like a value's norm). (H,)"""
        return value_scale(self.alpha_logit)

    def _read(
        self, q: torch.Tensor, return_weights: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Queries q = β_h k̂_t: (B, H, T, hs) -> y (B, T, d) before dropout, and optionally the
        weights (B, H, T, pmem).

        The table is the same for every sequence, so the B·T queries of a head form one batch.
        """
        B, H, T, hs = q.shape
        q = q.transpose(0, 1).reshape(1, H, B * T, hs)  # (1, H, B*T, hs)
        # α_h multiplies every answer of head h, so it can scale the (small) value table instead
        table_values = self.table_values * self.alpha[:, None, None]  # (H, P, hs)
        mk = self.table_keys.to(q.dtype)[None]  # (1, H, P, hs)
        mv = table_values.to(q.dtype)[None]  # (1, H, P, hs)
        p = self.dropout if self.training else 0.0
        out = retrieve(mk, mv, q, dropout_p=p, return_weights=return_weights)  # (1, H, B*T, hs)
        y, weights = out if return_weights else (out, None)
        if return_weights:
            weights = weights.view(H, B, T, -1).transpose(0, 1)  # (B, H, T, P)
        y = y.view(H, B, T, hs).permute(1, 2, 0, 3).reshape(B, T, H * hs)  # (B, T, d)
        return self.c_proj(y), weights

    def forward(
        self, x: torch.Tensor, return_weights: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """x: (B, T, d) -> y (B, T, d), and the weights (B, H, T, pmem_size) if asked."""
        q = self.keys.scaled_keys(x, self.beta, heads_first=True)  # (B, H, T, hs): β_h k̂_t
        y, weights = self._read(q, return_weights)
        y = self.resid_dropout(y)
        return (y, weights) if return_weights else y

    def prefill(self, x: torch.Tensor) -> tuple[torch.Tensor, Cache]:
        """Whole prompt; the cache is the last leaky-average state. x: (B, T, d)."""
        k_bar = self.keys.leaky_keys(x)  # (B, H, T, hs)
        y, _ = self._read(self.keys.unit(k_bar, self.beta), False)
        return y, {"k_state": k_bar[:, :, -1:], "consts": self._step_constants(x.dtype)}

    def _step_constants(self, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        """λ_h and β_h (H, 1, 1) and the tables as :meth:`_read` passes them (α_h folded into
        the values), computed once per prompt (see :meth:`ContextMemory._step_constants`)."""
        with torch.no_grad():
            return {"decay": self.keys.decay.to(dtype)[:, None, None],
                    "beta": self.beta.to(dtype)[:, None, None],
                    "mk": self.table_keys.to(dtype)[None],  # (1, H, P, hs)
                    "mv": (self.table_values * self.alpha[:, None, None]).to(dtype)[None]}

    def step(self, x_t: torch.Tensor, cache: Cache) -> tuple[torch.Tensor, Cache]:
        """One new position. x_t: (B, 1, d) -> y_t (B, 1, d) and the updated cache."""
        c = cache.get("consts") or self._step_constants(x_t.dtype)
        k_state = self.keys.project(x_t) + c["decay"] * cache["k_state"]  # (B, H, 1, hs)
        q = scaled_unit(k_state, c["beta"][:, :, 0])  # (B, H, 1, hs): β_h k̂_t
        B, H, _, hs = q.shape
        y = retrieve(c["mk"], c["mv"], q.transpose(0, 1).reshape(1, H, B, hs))  # (1, H, B, hs)
        y = self.c_proj(y.view(H, B, 1, hs).permute(1, 2, 0, 3).reshape(B, 1, H * hs))
        return y, {"k_state": k_state, "consts": c}


class MosaicBlock(nn.Module):
    """A mosaic block: ``x += Cmem(LN₁(x)); x += Pmem(LN₂(x))``, bias-free pre-LayerNorm.

    With ``pmem_size = 3.5 · n_embd`` it has the size of a GPT-2 block (12 d² + small terms).
    Per-head quantities: ``.decay``, ``.beta``, ``.alpha`` are dicts ``{"cmem": ..., "pmem": ...}``;
    ``.gamma`` is the contextual memory's.
    """

    def __init__(
        self, n_embd: int, n_head: int, pmem_size: int, dropout: float = 0.0, n_layer: int = 1,
        attn_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd, bias=False)
        self.cmem = ContextMemory(n_embd, n_head, dropout, n_layer, attn_dropout)
        self.ln_2 = nn.LayerNorm(n_embd, bias=False)
        self.pmem = PersistentMemory(n_embd, n_head, pmem_size, dropout, n_layer)

    @property
    def decay(self) -> dict[str, torch.Tensor]:
        """λ_h of both memories' key leaky averages: ``{"cmem": (H,), "pmem": (H,)}``."""
        return {"cmem": self.cmem.decay, "pmem": self.pmem.decay}

    @property
    def beta(self) -> dict[str, torch.Tensor]:
        """β_h of both memories: ``{"cmem": (H,), "pmem": (H,)}`` (e² ≈ 7.39 at init)."""
        return {"cmem": self.cmem.beta, "pmem": self.pmem.beta}

    @property
    def alpha(self) -> dict[str, torch.Tensor]:
        """α_h, the output scales: ``{"cmem": (H,), "pmem": (H,)}`` (e^-0.5 at init)."""
        return {"cmem": self.cmem.alpha, "pmem": self.pmem.alpha}

    @property
    def gamma(self) -> torch.Tensor:
        """γ_h of the contextual memory's values (the persistent memory has no values). (H,)"""
        return self.cmem.gamma

    def forward(
        self, x: torch.Tensor, return_weights: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """x: (B, T, d) -> (B, T, d); with ``return_weights`` also
        ``{"cmem": (B, H, T, T), "pmem": (B, H, T, pmem_size)}``."""
        check_input(x, self.cmem.n_embd, type(self).__name__)
        if not return_weights:
            x = x + self.cmem(self.ln_1(x))
            return x + self.pmem(self.ln_2(x))
        y, w_c = self.cmem(self.ln_1(x), return_weights=True)
        x = x + y
        y, w_p = self.pmem(self.ln_2(x), return_weights=True)
        return x + y, {"cmem": w_c, "pmem": w_p}

    def prefill(self, x: torch.Tensor) -> tuple[torch.Tensor, Cache]:
        """Whole prompt x: (B, T, d) -> (B, T, d) and the cache of both memories."""
        check_input(x, self.cmem.n_embd, type(self).__name__)
        y, c_cache = self.cmem.prefill(self.ln_1(x))
        x = x + y
        y, p_cache = self.pmem.prefill(self.ln_2(x))
        return x + y, {"cmem": c_cache, "pmem": p_cache}

    def step(self, x_t: torch.Tensor, cache: Cache) -> tuple[torch.Tensor, Cache]:
        """One new position x_t: (B, 1, d) -> (B, 1, d) and the updated cache."""
        y, c_cache = self.cmem.step(self.ln_1(x_t), cache["cmem"])
        x_t = x_t + y
        y, p_cache = self.pmem.step(self.ln_2(x_t), cache["pmem"])
        return x_t + y, {"cmem": c_cache, "pmem": p_cache}
