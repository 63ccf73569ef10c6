"""The registry of language models: model kind -> (model class, config class).

What ``--model`` names on the command line (``python -m mosaics_edu.train --model mosaic-v2``),
and what a checkpoint's ``model_kind`` is rebuilt from. A config class has
``preset(name, **overrides)``; its model takes it as sole argument. It lives above the models
it lists, so that no model module imports another to register it.
"""

from __future__ import annotations

from torch import nn

from .lm import GPT, GPTConfig, MemoryMosaicLM, MosaicConfig
from .v2 import MemoryMosaicV2LM, MosaicV2Config

__all__ = ["MODEL_KINDS"]

MODEL_KINDS: dict[str, tuple[type[nn.Module], type]] = {
    "mosaic": (MemoryMosaicLM, MosaicConfig),
    "gpt": (GPT, GPTConfig),
    "mosaic-v2": (MemoryMosaicV2LM, MosaicV2Config),
}
