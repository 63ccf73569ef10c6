"""Language models: the Memory Mosaic and its GPT twin, built the same way for a fair comparison.

- :class:`MemoryMosaicLM`: token embedding (no positional embedding of any kind) → ``n_layer``
  :class:`~mosaics_edu.core.layers.MosaicBlock` → final bias-free LayerNorm → tied output head, logits
  scaled by 1/√n_embd. Init: matrices N(0, 1/fan_in), output projections also / √n_layer, the tied
  embedding N(0, 1/n_embd), the persistent tables N(0, 1/head_size).
- :class:`GPT`: the nanoGPT-style GPT-2 baseline: learned positions, pre-LN, causal attention
  with W_q, W_k, W_v and 1/√head_size, 4d GELU MLP, no biases, tied head, N(0, 0.02²) init.

Both: ``forward(idx, targets=None) -> (logits, loss)`` (targets of -1 are ignored), and
``generate(idx, max_new_tokens, temperature=1.0, top_k=None, use_cache=True)``. Presets:
``MosaicConfig.preset("cpu-tiny")``, ``"gpu-small"``, ``"paper-gpt2-small"`` (same names for
:class:`GPTConfig`); any field can be overridden, e.g. ``preset("cpu-tiny", vocab_size=1000)``.
``MemoryMosaicLM.retrieval_weights(idx)`` returns every block's retrieval weights (to inspect
what each memory reads); ``unembed(h)`` maps a residual stream (B, T, d) to logits (the final
LayerNorm and the head, what a logit lens reads) and ``check_idx(idx)`` validates token ids.
:class:`LanguageModel` and :class:`LanguageModelConfig` are what every language model of the
package shares (``mosaics_edu.models.v2``'s too); :class:`MosaicLMBase` is the layout v1 and v2 share.
The registry of model kinds is :data:`mosaics_edu.models.registry.MODEL_KINDS`.
Build a model on the meta device (``with torch.device("meta"): ...``) to count parameters of
a large configuration without allocating it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..core.layers import Cache, MosaicBlock, init_linear
from ..core.validation import check_positive_int

__all__ = [
    "SHARED_PRESETS",
    "LanguageModelConfig",
    "LanguageModel",
    "MosaicLMBase",
    "MosaicConfig",
    "MemoryMosaicLM",
    "GPTConfig",
    "GPT",
    "CausalSelfAttention",
    "MLP",
    "Block",
    "count_parameters",
    "sample_next",
]


# --------------------------------------------------------------------------------------------
# configurations
# --------------------------------------------------------------------------------------------

SHARED_PRESETS: dict[str, dict[str, Any]] = {
    # a few seconds per hundred steps on a laptop CPU; vocab 256 = bytes (override for a tokenizer)
    "cpu-tiny": dict(vocab_size=256, block_size=128, n_layer=2, n_head=4, n_embd=64, dropout=0.0),
    # a single-GPU model, GPT-2 tokenizer
    "gpu-small": dict(
        vocab_size=50304, block_size=512, n_layer=6, n_head=6, n_embd=384, dropout=0.05
    ),
    # the papers' GPT-2-small-sized runs (BabiStories): 123.59 M (mosaic) / 123.98 M (GPT)
    "paper-gpt2-small": dict(
        vocab_size=50304, block_size=512, n_layer=12, n_head=12, n_embd=768, dropout=0.05
    ),
}


@dataclass
class LanguageModelConfig:
    """The fields and presets every language model's configuration shares."""

    vocab_size: int = 50304
    block_size: int = 512  # the longest sequence the model accepts (its context window)
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = SHARED_PRESETS

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            check_positive_int(name, getattr(self, name))
        if self.n_embd % self.n_head:
            raise ValueError(
                f"n_embd={self.n_embd} is not divisible by n_head={self.n_head}: each head gets "
                "n_embd/n_head features, so pick n_head among the divisors of n_embd"
            )
        if not isinstance(self.dropout, float | int) or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be a probability in [0, 1), got {self.dropout!r}")

    @classmethod
    def preset(cls, name: str, **overrides: Any):
        """A named configuration (``cpu-tiny``, ``gpu-small``, ``paper-gpt2-small``) + overrides."""
        if name not in cls.PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {sorted(cls.PRESETS)}")
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(f"unknown config field(s) {sorted(unknown)}; fields: {sorted(known)}")
        values = {k: v for k, v in cls.PRESETS[name].items() if k in known}
        values.update(overrides)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class MosaicConfig(LanguageModelConfig):
    """Hyper-parameters of a :class:`MemoryMosaicLM`.

    ``pmem_size`` (pairs per head in the persistent memory) defaults to 3.5 · n_embd, which
    makes a mosaic block the size of a GPT-2 block.

    ``dropout`` acts on every block's outputs and on the persistent memory's weights over its
    table. Two more places follow the authors' plain-PyTorch model when switched on:
    ``attn_dropout`` (``dropout`` on the contextual memory's retrieval weights) and
    ``embd_dropout`` (``dropout`` on the token embeddings). Both default to off, as in the
    authors' fused-attention model that trained the papers' language models, which has
    neither. Checkpoints saved before these fields existed load with the defaults (off).
    """

    pmem_size: int | None = None
    attn_dropout: bool = False  # True: the authors' plain-PyTorch model; False: the papers' runs
    embd_dropout: bool = False  # True: the authors' plain-PyTorch model; False: the papers' runs

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.pmem_size is None:
            self.pmem_size = int(round(3.5 * self.n_embd))
        check_positive_int("pmem_size", self.pmem_size)
        for name in ("attn_dropout", "embd_dropout"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(
                    f"{name} must be True (dropout there, the authors' plain-PyTorch model) or "
                    f"False (none, the papers' training runs), got {getattr(self, name)!r}"
                )


@dataclass
class GPTConfig(LanguageModelConfig):
    """Hyper-parameters of the :class:`GPT` baseline (bias-free, learned positions)."""


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters, each shared tensor (the tied embedding/head) counted once."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


# --------------------------------------------------------------------------------------------
# shared pieces: input checks and generation
# --------------------------------------------------------------------------------------------


class LanguageModel(nn.Module):
    """What every language model shares: input validation, the loss, and (cached) generation.

    A subclass provides ``_hidden(idx) -> (B, T, d)`` (before the final LayerNorm),
    ``unembed(h) -> (B, T, vocab)``, ``_prefill(idx) -> (last_logits, cache)`` and
    ``_step(token, cache) -> (logits, cache)``.
    """

    config: LanguageModelConfig

    def check_idx(self, idx: Any, name: str = "idx") -> None:
        """Refuse what is not a (batch, time) tensor of token ids this model accepts: wrong type
        or dtype, empty, longer than ``block_size``, ids outside [0, vocab_size)."""
        if not isinstance(idx, torch.Tensor):
            raise TypeError(f"{name} must be a torch tensor of token ids, got {type(idx).__name__}")
        if idx.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"{name} must hold integer token ids (torch.long), got {idx.dtype}")
        if idx.dim() != 2:
            raise ValueError(f"{name} must have shape (batch, time), got {tuple(idx.shape)}")
        T = idx.shape[1]
        if T == 0:
            raise ValueError(f"{name} is empty (time = 0): give at least one token")
        if T > self.config.block_size:
            raise ValueError(
                f"sequence length {T} exceeds block_size={self.config.block_size}: crop it "
                f"({name}[:, -block_size:]) or build the model with a larger block_size"
            )
        if not torch.compiler.is_compiling() and idx.numel():
            lo, hi = int(idx.min()), int(idx.max())
            if lo < 0 or hi >= self.config.vocab_size:
                raise ValueError(
                    f"{name} holds token ids in [{lo}, {hi}] but vocab_size="
                    f"{self.config.vocab_size}: ids must lie in [0, vocab_size)"
                )

    def _loss(self, logits: torch.Tensor, targets: Any, idx: torch.Tensor) -> torch.Tensor:
        if not isinstance(targets, torch.Tensor) or targets.dtype not in (torch.int64, torch.int32):
            raise TypeError("targets must be a tensor of integer token ids (torch.long)")
        if targets.shape != idx.shape:
            raise ValueError(
                f"targets must have the shape of idx {tuple(idx.shape)}, got {tuple(targets.shape)}"
            )
        return F.cross_entropy(
            logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1).long(), ignore_index=-1
        )

    def unembed(self, h: torch.Tensor) -> torch.Tensor:
        """Residual stream h (B, T, d) -> logits (B, T, vocab): final LayerNorm, then the head."""
        raise NotImplementedError

    def _hidden(self, idx: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _prefill(self, idx: torch.Tensor) -> tuple[torch.Tensor, Cache]:
        raise NotImplementedError

    def _step(self, token: torch.Tensor, cache: Cache) -> tuple[torch.Tensor, Cache]:
        raise NotImplementedError

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """idx: (B, T) token ids -> logits (B, T, vocab_size), and the mean cross-entropy
        against ``targets`` (B, T) if given (target -1 = ignored)."""
        self.check_idx(idx)
        logits = self.unembed(self._hidden(idx))  # (B, T, vocab)
        loss = None if targets is None else self._loss(logits, targets, idx)
        return logits, loss

    @torch.no_grad()
    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        use_cache: bool = True,
        generator: torch.Generator | None = None,
        vocab_limit: int | None = None,
    ) -> torch.Tensor:
        """Continue ``idx`` (B, T) by ``max_new_tokens`` tokens -> (B, T + max_new_tokens).

        ``temperature=0`` is greedy decoding; ``top_k`` keeps the k likeliest tokens. With
        ``use_cache`` each new token costs one position of work instead of a full re-forward; the
        tokens are the same. Once the sequence outgrows ``block_size`` both paths read only the
        last ``block_size`` tokens (the cache is then rebuilt on that window at every step).
        ``vocab_limit`` samples among the first ``vocab_limit`` ids only: a model trained with a
        padded vocabulary (``train.padded_vocab_size``) has rows no tokenizer can decode.
        """
        if not isinstance(idx, torch.Tensor) or idx.dim() != 2 or idx.shape[1] == 0:
            raise ValueError("idx must be a non-empty (batch, time) tensor of token ids")
        if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be an integer >= 0, got {max_new_tokens!r}")
        if not isinstance(temperature, float | int) or temperature < 0:
            raise ValueError(f"temperature must be >= 0 (0 = greedy), got {temperature!r}")
        if top_k is not None and (not isinstance(top_k, int) or top_k <= 0):
            raise ValueError(f"top_k must be None or a positive integer, got {top_k!r}")
        if vocab_limit is not None and (
            not isinstance(vocab_limit, int) or not 0 < vocab_limit <= self.config.vocab_size
        ):
            raise ValueError(
                f"vocab_limit must be None or an integer in [1, vocab_size={self.config.vocab_size}]"
                f", got {vocab_limit!r}: pass the tokenizer's vocab_size"
            )
        block = self.config.block_size
        self.check_idx(idx[:, -block:])
        was_training = self.training
        self.eval()
        try:
            cache: Cache | None = None
            cached_len = 0
            for _ in range(max_new_tokens):
                window = idx[:, -block:]
                if not use_cache:
                    logits = self.unembed(self._hidden(window)[:, -1:])[:, -1]  # (B, vocab)
                elif cache is None or cached_len >= block:
                    logits, cache = self._prefill(window)
                    cached_len = window.shape[1]
                else:
                    logits, cache = self._step(idx[:, -1:], cache)
                    cached_len += 1
                idx_next = sample_next(logits[:, :vocab_limit], temperature, top_k, generator)  # (B, 1)
                idx = torch.cat([idx, idx_next], dim=1)
        finally:
            self.train(was_training)
        return idx


def sample_next(
    logits: torch.Tensor, temperature: float, top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Next token from the last position's logits (B, vocab) -> ids (B, 1).

    ``temperature=0``: the likeliest token. Otherwise a draw from softmax(logits / temperature),
    restricted to the ``top_k`` likeliest tokens when ``top_k`` is given.
    """
    logits = logits.float()
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits / temperature
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator)


# --------------------------------------------------------------------------------------------
# the Memory Mosaic
# --------------------------------------------------------------------------------------------


class MosaicLMBase(LanguageModel):
    """The layout Memory Mosaics v1 and v2 share: token embedding (no positions) → blocks →
    final LayerNorm → tied head, logits × 1/√d; a cache per block; every block's retrieval
    weights. A subclass builds ``wte``, ``drop``, ``blocks``, ``ln_f`` and ``lm_head``; its
    blocks provide ``forward(x, return_weights=False)``, ``prefill(x)`` and ``step(x_t, cache)``.
    """

    def _hidden(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.drop(self.wte(idx))  # (B, T, d)
        for block in self.blocks:
            x = block(x)
        return x

    def unembed(self, h: torch.Tensor) -> torch.Tensor:
        """h (B, T, d) -> logits (B, T, V): final LayerNorm, tied head, logits / √d."""
        # logits / √d, applied to the (B, T, d) input of the head: same numbers, V/d times cheaper
        return self.lm_head(self.ln_f(h) * (1.0 / math.sqrt(self.config.n_embd)))  # (B, T, V)

    def _prefill(self, idx: torch.Tensor) -> tuple[torch.Tensor, Cache]:
        x = self.wte(idx)  # (B, T, d)
        caches = []
        for block in self.blocks:
            x, cache = block.prefill(x)
            caches.append(cache)
        return self.unembed(x[:, -1:])[:, -1], {"blocks": caches}

    def _step(self, token: torch.Tensor, cache: Cache) -> tuple[torch.Tensor, Cache]:
        x = self.wte(token)  # (B, 1, d)
        caches = []
        for block, c in zip(self.blocks, cache["blocks"], strict=True):
            x, c = block.step(x, c)
            caches.append(c)
        return self.unembed(x)[:, -1], {"blocks": caches}

    @torch.no_grad()
    def retrieval_weights(self, idx: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """Per block, the contextual (B, H, T, T) and persistent (B, H, T, pmem_size) weights."""
        self.check_idx(idx)
        x = self.wte(idx)
        out = []
        for block in self.blocks:
            x, weights = block(x, return_weights=True)
            out.append(weights)
        return out


class MemoryMosaicLM(MosaicLMBase):
    """A Memory Mosaic language model (GPT-2-like layout, no positional embedding)."""

    def __init__(self, config: MosaicConfig) -> None:
        super().__init__()
        if not isinstance(config, MosaicConfig):
            raise TypeError(f"config must be a MosaicConfig, got {type(config).__name__}")
        self.config = config
        c = config
        self.wte = nn.Embedding(c.vocab_size, c.n_embd)
        self.drop = nn.Dropout(c.dropout if c.embd_dropout else 0.0)  # see MosaicConfig
        attn_dropout = c.dropout if c.attn_dropout else 0.0
        self.blocks = nn.ModuleList(
            MosaicBlock(c.n_embd, c.n_head, c.pmem_size, c.dropout, c.n_layer, attn_dropout)
            for _ in range(c.n_layer)
        )
        self.ln_f = nn.LayerNorm(c.n_embd, bias=False)
        self.lm_head = nn.Linear(c.n_embd, c.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied: one matrix, counted once
        init_linear(self.lm_head)  # the tied matrix ends up N(0, 1/n_embd), as in the papers


# --------------------------------------------------------------------------------------------
# the GPT baseline
# --------------------------------------------------------------------------------------------


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention, W_q/W_k/W_v in one matrix, no biases."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.n_head, self.n_embd, self.dropout = config.n_head, config.n_embd, config.dropout
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=False)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=False)
        self.resid_dropout = nn.Dropout(config.dropout)

    def qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B, T, C) -> queries, keys, values, each (B, H, T, hs)."""
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)  # 3 × (B, T, C)
        hs = C // self.n_head
        return tuple(t.view(B, T, self.n_head, hs).transpose(1, 2) for t in (q, k, v))  # (B,H,T,hs)

    def _out(self, y: torch.Tensor) -> torch.Tensor:
        B, H, T, hs = y.shape
        return self.resid_dropout(self.c_proj(y.transpose(1, 2).reshape(B, T, H * hs)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x)
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=p)  # (B, H, T, hs)
        return self._out(y)

    def prefill(self, x: torch.Tensor) -> tuple[torch.Tensor, Cache]:
        q, k, v = self.qkv(x)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self._out(y), {"k": k, "v": v}

    def step(self, x_t: torch.Tensor, cache: Cache) -> tuple[torch.Tensor, Cache]:
        q, k, v = self.qkv(x_t)  # (B, H, 1, hs) each
        k = torch.cat([cache["k"], k], dim=2)  # (B, H, t+1, hs)
        v = torch.cat([cache["v"], v], dim=2)
        y = F.scaled_dot_product_attention(q, k, v)  # the newest query sees every cached key
        return self._out(y), {"k": k, "v": v}


class MLP(nn.Module):
    """d -> 4d -> GELU -> d, no biases.

    The GELU is the exact one, x·Φ(x) with the Gaussian CDF written with erf (PyTorch's
    default, ``approximate="none"``), as in the nanoGPT model the papers' baseline comes from.
    GPT-2's original code used the tanh approximation; the two differ by at most 4.7e-4.
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=False)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=False)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    """Pre-LN transformer block: ``x += Attn(LN(x)); x += MLP(LN(x))``."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=False)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=False)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))

    def prefill(self, x: torch.Tensor) -> tuple[torch.Tensor, Cache]:
        y, cache = self.attn.prefill(self.ln_1(x))
        x = x + y
        return x + self.mlp(self.ln_2(x)), cache

    def step(self, x_t: torch.Tensor, cache: Cache) -> tuple[torch.Tensor, Cache]:
        y, cache = self.attn.step(self.ln_1(x_t), cache)
        x_t = x_t + y
        return x_t + self.mlp(self.ln_2(x_t)), cache


class GPT(LanguageModel):
    """The nanoGPT-style GPT-2 baseline of the papers (bias-free, tied head)."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        if not isinstance(config, GPTConfig):
            raise TypeError(f"config must be a GPTConfig, got {type(config).__name__}")
        self.config = c = config
        self.wte = nn.Embedding(c.vocab_size, c.n_embd)
        self.wpe = nn.Embedding(c.block_size, c.n_embd)
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.n_layer))
        self.ln_f = nn.LayerNorm(c.n_embd, bias=False)
        self.lm_head = nn.Linear(c.n_embd, c.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight
        for name, p in self.named_parameters():
            if p.dim() >= 2:  # matrices and embeddings: N(0, 0.02²), output projections smaller
                std = 0.02 / math.sqrt(2 * c.n_layer) if name.endswith("c_proj.weight") else 0.02
                nn.init.normal_(p, mean=0.0, std=std)

    def _hidden(self, idx: torch.Tensor, start: int = 0) -> torch.Tensor:
        T = idx.shape[1]
        pos = torch.arange(start, start + T, device=idx.device)  # (T,)
        x = self.drop(self.wte(idx) + self.wpe(pos))  # (B, T, d)
        for block in self.blocks:
            x = block(x)
        return x

    def unembed(self, h: torch.Tensor) -> torch.Tensor:
        """h (B, T, d) -> logits (B, T, vocab): final LayerNorm, tied head."""
        return self.lm_head(self.ln_f(h))  # (B, T, vocab)

    def _prefill(self, idx: torch.Tensor) -> tuple[torch.Tensor, Cache]:
        T = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(T, device=idx.device))  # (B, T, d)
        caches = []
        for block in self.blocks:
            x, cache = block.prefill(x)
            caches.append(cache)
        return self.unembed(x[:, -1:])[:, -1], {"blocks": caches, "pos": T}

    def _step(self, token: torch.Tensor, cache: Cache) -> tuple[torch.Tensor, Cache]:
        pos = cache["pos"]
        x = self.wte(token) + self.wpe.weight[pos]  # (B, 1, d)
        caches = []
        for block, c in zip(self.blocks, cache["blocks"], strict=True):
            x, c = block.step(x, c)
            caches.append(c)
        return self.unembed(x)[:, -1], {"blocks": caches, "pos": pos + 1}
