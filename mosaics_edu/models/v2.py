"""The Memory Mosaic v2 language model, built like v1's for a fair comparison.

:class:`MemoryMosaicV2LM`: token embedding (no positional embedding) → ``n_layer``
:class:`~mosaics_edu.core.v2.layers.MosaicV2Block` → final bias-free LayerNorm → tied output head,
logits scaled by 1/√n_embd (v1's layout, inherited from :class:`mosaics_edu.models.MosaicLMBase`;
generation, sampling and input checks from :class:`mosaics_edu.models.LanguageModel`).
``forward(idx, targets=None) -> (logits, loss)``, ``generate(...)`` with an exact cache,
``retrieval_weights(idx)``.

Course-scale defaults (:class:`MosaicV2Config`). The paper trains at context 4,096 with a
short-term window h = 256 and a long-term delay m ~ U[64, 256] in training, m = 64 at inference:
m ranges over [h/4, h] and is h/4 at inference. The course keeps those ratios and scales h with
the context: h = block_size / 4 (at least 2, at most the paper's 256), m ∈ [h/4, h], m = h/4 at
inference; ``cpu-tiny`` (context 128) gets h = 32, m ∈ [8, 32], m = 8. The window is a
quarter of the context rather than the paper's sixteenth so that at 128 tokens the short-term
memory still spans a few words. The persistent memory's hidden width defaults to d′ = 2d, which
makes a block 12 d² (plus 4·d·H for the gates), the size of a GPT-2 block (4 d² attention + 8 d²
MLP): ``count_parameters`` of a v2 model and of a ``GPTConfig`` with the same preset differ only
by GPT's position table and v2's gates (about 5 % at cpu-tiny, under 1 % at gpu-small). The
block size bounds the input only; no parameter depends on it, so a trained model can be rebuilt
with a larger ``block_size`` to be evaluated on longer sequences.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

from torch import nn

from ..core.v2.layers import MosaicV2Block
from ..core.validation import check_positive_int
from .lm import SHARED_PRESETS, LanguageModelConfig, MosaicLMBase

__all__ = ["MosaicV2Config", "MemoryMosaicV2LM"]

# v1's presets plus the short-term window; a preset without an entry gets h = block_size / 4
_V2_EXTRA: dict[str, dict[str, Any]] = {
    "cpu-tiny": dict(short_window=32),  # context 128
    "gpu-small": dict(short_window=128),  # context 512
    "paper-gpt2-small": dict(short_window=128),  # context 512, the v1 papers' size
}


@dataclass
class MosaicV2Config(LanguageModelConfig):
    """Hyper-parameters of a :class:`MemoryMosaicV2LM` (v1's fields plus the v2 ones below).

    ``ffn_size`` d′ (default 2·n_embd: a GPT-2 block's budget), ``short_window`` h (default
    block_size/4 within [2, 256]), ``delay_min``/``delay_max`` the range of the long-term delay m
    in training (default h/4 and h), ``delay`` m at inference (default ``delay_min``),
    ``long_term`` (False: no long-term memory, for ablations). ``dropout`` acts on every block's
    outputs.
    """

    ffn_size: int | None = None
    short_window: int | None = None
    delay_min: int | None = None
    delay_max: int | None = None
    delay: int | None = None
    long_term: bool = True

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        name: {**values, **_V2_EXTRA.get(name, {})} for name, values in SHARED_PRESETS.items()
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.ffn_size is None:
            self.ffn_size = 2 * self.n_embd
        if self.short_window is None:
            self.short_window = min(256, max(2, self.block_size // 4))
        if self.delay_min is None:
            self.delay_min = max(1, self.short_window // 4)
        if self.delay_max is None:
            self.delay_max = max(self.delay_min, self.short_window)
        if self.delay is None:
            self.delay = self.delay_min
        for name in ("ffn_size", "short_window", "delay_min", "delay_max", "delay"):
            check_positive_int(name, getattr(self, name))
        if self.short_window < 2:
            raise ValueError(
                f"short_window (h) must be >= 2: the short-term memory reads the last h-1 "
                f"positions, got {self.short_window}"
            )
        if self.delay_min > self.delay_max:
            raise ValueError(
                f"delay_min={self.delay_min} > delay_max={self.delay_max}: the training delay m "
                "is drawn from [delay_min, delay_max]; swap them or set them equal (no random delay)"
            )
        if not isinstance(self.long_term, bool):
            raise ValueError(f"long_term must be True or False, got {self.long_term!r}")


class MemoryMosaicV2LM(MosaicLMBase):
    """A Memory Mosaic v2 language model (v1's layout with v2 blocks; no positional embedding).

    v1's plumbing comes from :class:`~mosaics_edu.models.MosaicLMBase`: embed → blocks → LN →
    tied head × 1/√d, a cache per block, every block's retrieval weights. It is not a
    :class:`~mosaics_edu.models.MemoryMosaicLM`: code that asks for a v1 model refuses it.
    """

    def __init__(self, config: MosaicV2Config) -> None:
        super().__init__()
        if not isinstance(config, MosaicV2Config):
            raise TypeError(
                f"config must be a MosaicV2Config, got {type(config).__name__} "
                "(build one with MosaicV2Config.preset('cpu-tiny'))"
            )
        self.config = c = config
        self.wte = nn.Embedding(c.vocab_size, c.n_embd)
        self.drop = nn.Identity()  # no embedding dropout (v1's default)
        self.blocks = nn.ModuleList(
            MosaicV2Block(c.n_embd, c.n_head, c.ffn_size, c.short_window, c.delay_min,
                          c.delay_max, c.delay, c.long_term, c.dropout, layer)
            for layer in range(c.n_layer)
        )  # fmt: skip
        self.ln_f = nn.LayerNorm(c.n_embd, bias=False)
        self.lm_head = nn.Linear(c.n_embd, c.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied: one matrix, counted once
        std = 1.0 / math.sqrt(2 * c.n_embd)  # Table 6: embedding/classifier σ = 1/√(2d)
        nn.init.trunc_normal_(self.wte.weight, std=std, a=-3 * std, b=3 * std)

    def set_delay_step(self, step: int, seed: int = 0) -> None:
        """Fix the long-term memories' training delay m for optimizer step ``step`` of the run
        seeded ``seed`` (each layer draws its own m from ``(seed, step, layer)``). The trainer
        calls this before every step, so DDP processes agree and resumed runs repeat."""
        for block in self.blocks:
            if block.long is not None:
                block.long.set_delay_step(step, seed)

    def extra_repr(self) -> str:
        c = self.config
        return (f"short_window={c.short_window}, delay=[{c.delay_min}, {c.delay_max}] (eval "
                f"{c.delay}), long_term={c.long_term}")

