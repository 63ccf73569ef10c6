"""mosaics_edu: the helper package of the course "Memory Mosaics, step by step".

Small modules, one idea each:

- ``memory``    : an associative memory as Gaussian kernel regression
- ``features``  : leaky averages, key and value extractors
- ``layers``    : contextual memory, persistent memory, the mosaic block
- ``models``    : the Memory Mosaic language model and its GPT twin, cached generation, and
                  the base classes every language model shares
- ``registry``  : ``MODEL_KINDS``, model kind -> (model class, config class)
- ``flops``     : FLOPs per trained token and device peaks, the figures behind MFU
- ``v2``        : Memory Mosaics v2: adaptive bandwidth β(n), gated keys, short/long-term and
                  SwiGLU persistent memory, ``MemoryMosaicV2LM`` (``--model mosaic-v2``)
- ``data``      : the generated story corpus, tokenizers, BabiStories, token batches
- ``train``     : the training config, schedule, parameter groups, ``Trainer`` and ``train()``
- ``cli``       : the command line ``python -m mosaics_edu.train``
- ``checkpoint``: the checkpoint file format (save, verify, load, rebuild a model)
- ``atomic``    : atomic file writes (checkpoints, token datasets, downloads, runs)
- ``bench``     : ``python -m mosaics_edu.bench``, the speed and memory targets as ratios
- ``moons``     : the three-moons experiment and ``python -m mosaics_edu.moons``
- ``toys``, ``induction``, ``compare``, ``softmax`` : pure functions behind chapter figures
- ``diagrams``  : figures drawn by code (course map, memory unit, block diagrams)
- ``checks``    : exercise checks that diagnose mistakes
- ``widgets``   : thin ipywidgets around pure functions, the live loss plot
- ``env``       : versions and device, for chapter 00
"""

__version__ = "0.1.0"
