"""The models layer: the language models, built from :mod:`mosaics_edu.core` alone.

- ``lm``       : the Memory Mosaic language model and its GPT twin, side by side, the base
                 classes every language model shares, and cached generation
- ``v2``       : ``MosaicV2Config`` and ``MemoryMosaicV2LM`` (Memory Mosaics v2)
- ``registry`` : ``MODEL_KINDS``, model kind -> (model class, config class)
- ``flops``    : FLOPs per trained token and device peaks, the figures behind MFU

Every public name of ``lm`` and ``v2`` is importable from here (``models.GPT``).
"""

from .lm import (
    GPT,
    MLP,
    SHARED_PRESETS,
    Block,
    CausalSelfAttention,
    GPTConfig,
    LanguageModel,
    LanguageModelConfig,
    MemoryMosaicLM,
    MosaicConfig,
    MosaicLMBase,
    count_parameters,
    sample_next,
)
from .v2 import MemoryMosaicV2LM, MosaicV2Config

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
    "MosaicV2Config",
    "MemoryMosaicV2LM",
]
