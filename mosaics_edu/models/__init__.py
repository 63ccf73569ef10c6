"""The models layer: the language models, built from :mod:`mosaics_edu.core` alone.

- ``lm``       : the Memory Mosaic language model and its GPT twin, side by side, the base
                 classes every language model shares, and cached generation
- ``v2``       : ``MosaicV2Config`` and ``MemoryMosaicV2LM`` (Memory Mosaics v2)
- ``registry`` : ``MODEL_KINDS``, model kind -> (model class, config class)
- ``flops``    : FLOPs per trained token and device peaks, the figures behind MFU

Every public name of ``lm`` and ``v2`` is importable from here (``models.GPT``).
"""

from . import lm, v2
from .lm import *  # noqa: F403
from .v2 import *  # noqa: F403

__all__ = [*lm.__all__, *v2.__all__]
