"""The core layer: the math of Memory Mosaics and the small utilities everything shares.

Nothing here imports a model, a trainer or a chapter's helper; read these modules first.

- ``memory``     : an associative memory as kernel regression; causal retrieval
- ``features``   : leaky averages, key and value extractors
- ``layers``     : contextual memory, persistent memory, the mosaic block
- ``v2``         : Memory Mosaics v2's pieces (adaptive bandwidth, gated keys, windows, blocks)
- ``validation`` : the input checks, one function per rule, shared by every layer
- ``atomic``     : atomic file writes (checkpoints, token datasets, downloads, runs)
- ``env``        : versions and device, for chapter 00
"""
