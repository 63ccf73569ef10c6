"""The layers of a Memory Mosaic v2: short-term, long-term and persistent memory, and the block.

- :class:`ShortTermMemory` / :class:`LongTermMemory`: contextual memories (gated keys
  :class:`~mosaics_edu.core.v2.gated_keys.GatedKeyExtractor`, v1's two-tap values, adaptive bandwidth
  :class:`~mosaics_edu.core.v2.bandwidth.AdaptiveBandwidth`) that read different windows of the past
  (:mod:`mosaics_edu.core.v2.windows`). They have separate parameters: the random delay of the
  long-term memory in training pushes position-dependent signals into the short-term one and
  position-invariant ones into the long-term one.
- :class:`SwiGLU`: the persistent memory of v2, a dense two-layer network ``W₂(SiLU(W₁x) ⊙ W₃x)``.
- :class:`MosaicV2Block`: ``x += W_o [short(LN₁ x); long(LN₁ x)]; x += SwiGLU(LN₂ x)``,
  bias-free LayerNorms; the memories' head outputs are concatenated and projected by one W_o.

Init (the v2 paper's Table 6, :func:`init_v2`): truncated normal N(0, σ²) cut at ±3σ with
σ = 1/√(2·d·(l+1)) for W_φ, W_ψ, w_g, w_λ, W_o, W₁, W₃ (d the model width, l the block index
from 0) and σ = 1/√(2·d′·(l+1)) for W₂ (d′ the SwiGLU hidden width).

Generation: ``prefill(x) -> (y, cache)`` and ``step(x_t, cache)`` as in v1. A memory's cache
holds every stored key, the finished values (a value is finished once the next input exists),
the last ṽ and the gated-key state ``(u, M)``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..features import ValueExtractor
from ..layers import merge_heads
from ..memory import causal_retrieval
from .bandwidth import AdaptiveBandwidth
from .gated_keys import GatedKeyExtractor
from .windows import (
    long_term_mask,
    long_term_range,
    pair_counts,
    short_term_mask,
    short_term_range,
    window_retrieval,
)

__all__ = [
    "ValueExtractorV2",
    "WindowMemory",
    "ShortTermMemory",
    "LongTermMemory",
    "SwiGLU",
    "MosaicV2Block",
    "init_v2",
    "draw_delay",
]

Cache = dict[str, Any]
MAX_LOG_VALUE_SCALE = 15.0  # α_ψ = exp(min(|θ|, 15)) (Table 6)


def init_v2(linear: nn.Linear, width: int, layer: int = 0) -> None:
    """Table 6 init: truncated N(0, σ²) at ±3σ, σ = 1/√(2·width·(layer+1))."""
    std = 1.0 / math.sqrt(2 * width * (layer + 1))
    nn.init.trunc_normal_(linear.weight, mean=0.0, std=std, a=-3 * std, b=3 * std)


def _check_x(x: Any, n_embd: int, who: str) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[-1] != n_embd:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{who} expects x of shape (batch, time, n_embd={n_embd}), got {got}")
    if x.shape[1] == 0:
        raise ValueError(f"{who}: x is empty (time = 0): give at least one position")


class ValueExtractorV2(ValueExtractor):
    """v1's two-tap values ``v_t = α_ψ Norm(γ ṽ_t + (1-γ) ṽ_{t+1})`` with v2's scale
    ``α_ψ = exp(min(|θ|, 15))``, θ = 0 at init (α_ψ = 1 at init and ≥ 1 always)."""

    def __init__(self, n_embd: int, n_head: int) -> None:
        super().__init__(n_embd, n_head)
        nn.init.zeros_(self.alpha_logit)

    @property
    def alpha(self) -> torch.Tensor:
        """α_ψ = exp(min(|θ|, 15)), the norm of every value of head h. Shape (H,)."""
        return self.alpha_logit.abs().clamp(max=MAX_LOG_VALUE_SCALE).exp()


def draw_delay(seed: int, step: int, layer: int, delay_min: int, delay_max: int) -> int:
    """The long-term delay m ~ U{delay_min … delay_max} of ``layer`` at optimizer step ``step``.

    A pure function of its arguments (a generator seeded by ``(seed, step, layer)`` through
    numpy's SeedSequence, which mixes the three integers), so every process and every resumed
    run gets the same m; torch's global generator is left untouched.
    """
    if delay_min > delay_max:
        raise ValueError(f"need delay_min <= delay_max, got {delay_min} > {delay_max}")
    if delay_min == delay_max:
        return delay_min
    rng = np.random.default_rng(np.random.SeedSequence([seed, step, layer]))
    return int(rng.integers(delay_min, delay_max + 1))


class WindowMemory(nn.Module):
    """What both contextual memories share; a subclass says which pairs a query reads
    (``_mask(T)`` for a whole sequence, ``_range(t)`` for one new position)."""

    def __init__(self, n_embd: int, n_head: int, layer: int = 0) -> None:
        super().__init__()
        self.keys = GatedKeyExtractor(n_embd, n_head)
        self.values = ValueExtractorV2(n_embd, n_head)
        self.bandwidth = AdaptiveBandwidth(n_head)
        self.n_embd, self.n_head, self.head_size = n_embd, n_head, n_embd // n_head
        for linear in (self.keys.proj, self.keys.gate, self.keys.decay_proj, self.values.proj):
            init_v2(linear, n_embd, layer)

    def _mask(self, T: int, device: torch.device) -> torch.Tensor:
        raise NotImplementedError

    def _range(self, t: int) -> tuple[int, int]:
        raise NotImplementedError

    def forward(
        self, x: torch.Tensor, return_weights: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """x: (B, T, d) -> heads concatenated (B, T, d) (before W_o), and the (B, H, T, T)
        retrieval weights if ``return_weights``."""
        _check_x(x, self.n_embd, type(self).__name__)
        k = self.keys(x)  # (B, H, T, hs) unit keys
        v = self.values(x)  # (B, H, T, hs)
        out = self._read(k, v, return_weights)
        if return_weights:
            return merge_heads(out[0]), out[1]
        return merge_heads(out)

    def _read(
        self, k: torch.Tensor, v: torch.Tensor, return_weights: bool
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Every position's retrieval from the pairs of its window, at bandwidth β(n_t).
        k, v: (B, H, T, hs) -> (B, H, T, hs) (and the (B, H, T, T) weights if asked)."""
        mask = self._mask(k.shape[2], k.device)  # (T, T)
        beta = self.bandwidth(pair_counts(mask))  # (H, T): β(n_t)
        return window_retrieval(k, v, k, beta, mask, return_weights=return_weights)

    def prefill(self, x: torch.Tensor) -> tuple[torch.Tensor, Cache]:
        """A whole prompt (eval): x (B, T, d) -> (B, T, d) and the cache for :meth:`step`."""
        _check_x(x, self.n_embd, type(self).__name__)
        u, m = self.keys.leaky_keys(x)  # (B, H, T, hs), (B, H, T)
        k = u * u.norm(dim=-1, keepdim=True).clamp_min(1e-12).reciprocal()
        v_tilde = self.values.project(x)  # (B, H, T, hs)
        v_done = self.values.combine(v_tilde[:, :, :-1], v_tilde[:, :, 1:])  # (B, H, T-1, hs)
        v = F.pad(v_done, (0, 0, 0, 1))  # the last value needs x_{T}: never read by rows < T
        mask = self._mask(x.shape[1], x.device)
        y = window_retrieval(k, v, k, self.bandwidth(pair_counts(mask)), mask)
        cache = {"keys": k, "values": v_done, "v_last": v_tilde[:, :, -1:],
                 "state": (u[:, :, -1], m[:, :, -1])}  # fmt: skip
        return merge_heads(y), cache

    def step(self, x_t: torch.Tensor, cache: Cache) -> tuple[torch.Tensor, Cache]:
        """One new position x_t (B, 1, d) -> (B, 1, d) and the updated cache: x_t finishes the
        previous value, the new key reads the stored pairs of its window, then it is stored."""
        t = cache["keys"].shape[2]  # the new position's index
        k_t, state = self.keys.step(x_t, cache["state"])  # (B, H, 1, hs)
        v_tilde = self.values.project(x_t)  # (B, H, 1, hs)
        values = torch.cat([cache["values"], self.values.combine(cache["v_last"], v_tilde)], dim=2)
        lo, hi = self._range(t)
        n = torch.tensor([hi - lo], device=x_t.device)
        y = window_retrieval(cache["keys"][:, :, lo:hi], values[:, :, lo:hi], k_t,
                             self.bandwidth(n))  # (B, H, 1, hs)
        keys = torch.cat([cache["keys"], k_t], dim=2)
        return merge_heads(y), {"keys": keys, "values": values, "v_last": v_tilde, "state": state}


class ShortTermMemory(WindowMemory):
    """Reads the pairs of the last ``window - 1`` positions (h = ``window``)."""

    def __init__(self, n_embd: int, n_head: int, window: int, layer: int = 0) -> None:
        if not isinstance(window, int) or isinstance(window, bool) or window < 2:
            raise ValueError(f"window (h) must be an integer >= 2 (it reads h-1 pairs), got {window!r}")
        super().__init__(n_embd, n_head, layer)
        self.window = window

    def _mask(self, T: int, device: torch.device) -> torch.Tensor:
        return short_term_mask(T, self.window, device)

    def _range(self, t: int) -> tuple[int, int]:
        return short_term_range(t, self.window)


class LongTermMemory(WindowMemory):
    """Reads the pairs at positions ≤ t - m. In training m ~ U{delay_min … delay_max}; in eval
    m = delay.

    The training draw is a pure function of ``(seed, step, layer)`` (:func:`draw_delay`), not of
    torch's global generator: every DDP process draws the same m at the same step, and a resumed
    run draws what an uninterrupted one would. The trainer calls
    :meth:`MemoryMosaicV2LM.set_delay_step` before each optimizer step (all micro-batches of a
    step share m). Used outside the trainer (no step set), each training forward advances a
    private counter, which is the step: a fresh, repeatable draw per forward.
    """

    def __init__(
        self, n_embd: int, n_head: int, delay_min: int, delay_max: int, delay: int, layer: int = 0
    ) -> None:
        for name, value in (("delay_min", delay_min), ("delay_max", delay_max), ("delay", delay)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} (m) must be an integer >= 1 (m = 0 would read s = t), "
                                 f"got {value!r}")
        if delay_min > delay_max:
            raise ValueError(f"need delay_min <= delay_max, got {delay_min} > {delay_max}")
        super().__init__(n_embd, n_head, layer)
        self.delay_min, self.delay_max, self.delay = delay_min, delay_max, delay
        self.layer = layer
        self.delay_seed = 0  # the run's seed (set_delay_step)
        self.delay_step: int | None = None  # the optimizer step; None: count forwards instead
        self._forwards = 0

    def set_delay_step(self, step: int, seed: int = 0) -> None:
        """Draw the training delay of optimizer step ``step`` of the run seeded ``seed``."""
        for name, value in (("step", step), ("seed", seed)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        self.delay_step, self.delay_seed = step, seed

    def current_delay(self) -> int:
        """m for this forward: the (seed, step, layer) draw in training, ``delay`` in eval."""
        if not self.training:
            return self.delay
        step = self.delay_step
        if step is None:  # no trainer: each training forward is a step of its own
            step = self._forwards
            self._forwards += 1
        return draw_delay(self.delay_seed, step, self.layer, self.delay_min, self.delay_max)

    def _mask(self, T: int, device: torch.device) -> torch.Tensor:
        return long_term_mask(T, self.current_delay(), device)

    def _read(
        self, k: torch.Tensor, v: torch.Tensor, return_weights: bool
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """The window s ≤ t - m is causal attention delayed by m: the fused kernel skips the
        pairs a position may not read instead of masking them (the same numbers as the
        masked form, up to float rounding, which the weights path still uses)."""
        if return_weights:
            return super()._read(k, v, return_weights)
        T, m = k.shape[2], self.current_delay()
        n = (torch.arange(T, device=k.device) - m + 1).clamp_min(0)  # (T,): pairs held, n_t
        q = k * self.bandwidth(n).to(k.dtype)[None, :, :, None]  # (B, H, T, hs): β(n_t) k_t
        return causal_retrieval(k, v, q, delay=m)

    def _range(self, t: int) -> tuple[int, int]:
        return long_term_range(t, self.delay)


class SwiGLU(nn.Module):
    """The persistent memory of v2: ``W₂(SiLU(W₁x) ⊙ W₃x)``, no biases, then dropout.

    x: (B, T, d) -> (B, T, d); hidden width d′ = ``hidden``. Position-wise (unlike v1's
    persistent memory, whose query was a leaky average), so generation needs no cache.
    """

    def __init__(self, n_embd: int, hidden: int, dropout: float = 0.0, layer: int = 0) -> None:
        super().__init__()
        self.w1 = nn.Linear(n_embd, hidden, bias=False)
        self.w3 = nn.Linear(n_embd, hidden, bias=False)
        self.w2 = nn.Linear(hidden, n_embd, bias=False)
        self.dropout = nn.Dropout(dropout)
        init_v2(self.w1, n_embd, layer)
        init_v2(self.w3, n_embd, layer)
        init_v2(self.w2, hidden, layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.w2(F.silu(self.w1(x)) * self.w3(x)))


class MosaicV2Block(nn.Module):
    """``x += W_o [short(LN₁ x); long(LN₁ x)]; x += SwiGLU(LN₂ x)`` (bias-free LayerNorms).

    Args: n_embd d, n_head heads per memory (each of head size d/n_head), ffn_size d′, window h,
    delay_min/delay_max (m in training), delay (m in eval), long_term (False: short-term and
    persistent memory only), dropout (on both outputs), layer (block index, for the init).
    """

    def __init__(
        self, n_embd: int, n_head: int, ffn_size: int, window: int, delay_min: int,
        delay_max: int, delay: int, long_term: bool = True, dropout: float = 0.0, layer: int = 0,
    ) -> None:
        super().__init__()
        self.n_embd = n_embd
        self.ln_1 = nn.LayerNorm(n_embd, bias=False)
        self.short = ShortTermMemory(n_embd, n_head, window, layer)
        self.long = LongTermMemory(n_embd, n_head, delay_min, delay_max, delay, layer) if long_term else None
        n_memories = 2 if long_term else 1
        self.c_proj = nn.Linear(n_memories * n_embd, n_embd, bias=False)  # W_o
        init_v2(self.c_proj, n_embd, layer)
        self.resid_dropout = nn.Dropout(dropout)
        self.ln_2 = nn.LayerNorm(n_embd, bias=False)
        self.pmem = SwiGLU(n_embd, ffn_size, dropout, layer)

    def _memories(self) -> list[WindowMemory]:
        return [self.short] if self.long is None else [self.short, self.long]

    def forward(
        self, x: torch.Tensor, return_weights: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """x: (B, T, d) -> (B, T, d); with ``return_weights`` also ``{"short": (B, H, T, T),
        "long": (B, H, T, T)}`` (the retrieval weights of each contextual memory)."""
        _check_x(x, self.n_embd, type(self).__name__)
        h = self.ln_1(x)
        outs = [mem(h, return_weights=return_weights) for mem in self._memories()]
        ys = [o[0] for o in outs] if return_weights else outs
        x = x + self.resid_dropout(self.c_proj(torch.cat(ys, dim=-1)))
        x = x + self.pmem(self.ln_2(x))
        if not return_weights:
            return x
        names = ("short", "long")
        return x, {name: o[1] for name, o in zip(names, outs, strict=False)}

    def prefill(self, x: torch.Tensor) -> tuple[torch.Tensor, Cache]:
        """Whole prompt x: (B, T, d) -> (B, T, d) and every memory's cache."""
        h = self.ln_1(x)
        ys, cache = [], {}
        for name, mem in zip(("short", "long"), self._memories(), strict=False):
            y, cache[name] = mem.prefill(h)
            ys.append(y)
        x = x + self.c_proj(torch.cat(ys, dim=-1))
        return x + self.pmem(self.ln_2(x)), cache

    def step(self, x_t: torch.Tensor, cache: Cache) -> tuple[torch.Tensor, Cache]:
        """One new position x_t: (B, 1, d) -> (B, 1, d) and the updated cache."""
        h = self.ln_1(x_t)
        ys, new = [], {}
        for name, mem in zip(("short", "long"), self._memories(), strict=False):
            y, new[name] = mem.step(h, cache[name])
            ys.append(y)
        x_t = x_t + self.c_proj(torch.cat(ys, dim=-1))
        return x_t + self.pmem(self.ln_2(x_t)), new
