"""Memory Mosaics v2 ("Memory Mosaics at Scale"), one idea per module:

- ``bandwidth``  : the adaptive bandwidth β(n) = β₁ n^α + β₀
- ``gated_keys`` : gated, input-dependent keys, as a recursion and as an O(T) chunked scan
- ``windows``    : the short-term and long-term windows and their retrieval
- ``layers``     : short-term, long-term and persistent (SwiGLU) memory, the v2 block
- ``model``      : ``MosaicV2Config`` and ``MemoryMosaicV2LM`` (``--model mosaic-v2`` in
                   :data:`mosaics_edu.registry.MODEL_KINDS`)
"""

from .bandwidth import AdaptiveBandwidth
from .gated_keys import GatedKeyExtractor, gated_leaky_recurrent, gated_leaky_scan
from .layers import LongTermMemory, MosaicV2Block, ShortTermMemory, SwiGLU
from .model import MemoryMosaicV2LM, MosaicV2Config

__all__ = [
    "AdaptiveBandwidth",
    "GatedKeyExtractor",
    "gated_leaky_recurrent",
    "gated_leaky_scan",
    "ShortTermMemory",
    "LongTermMemory",
    "SwiGLU",
    "MosaicV2Block",
    "MosaicV2Config",
    "MemoryMosaicV2LM",
]
