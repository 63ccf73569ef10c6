"""Memory Mosaics v2's pieces ("Memory Mosaics at Scale"), one idea per module:

- ``bandwidth``  : the adaptive bandwidth β(n) = β₁ n^α + β₀
- ``gated_keys`` : gated, input-dependent keys, as a recursion and as an O(T) chunked scan
- ``windows``    : the short-term and long-term windows and their retrieval
- ``layers``     : short-term, long-term and persistent (SwiGLU) memory, the v2 block

The language model built from them is :class:`mosaics_edu.models.MemoryMosaicV2LM`.
"""

from .bandwidth import AdaptiveBandwidth
from .gated_keys import GatedKeyExtractor, gated_leaky_recurrent, gated_leaky_scan
from .layers import LongTermMemory, MosaicV2Block, ShortTermMemory, SwiGLU

__all__ = [
    "AdaptiveBandwidth",
    "GatedKeyExtractor",
    "gated_leaky_recurrent",
    "gated_leaky_scan",
    "ShortTermMemory",
    "LongTermMemory",
    "SwiGLU",
    "MosaicV2Block",
]
