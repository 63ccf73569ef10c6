"""mosaics_edu: the helper package of the course "Memory Mosaics, step by step".

Small modules, one idea each:

- ``memory``    : an associative memory as Gaussian kernel regression
- ``features``  : leaky averages, key and value extractors
- ``layers``    : contextual memory, persistent memory, the mosaic block
- ``models``    : the Memory Mosaic language model and its GPT twin, cached generation
- ``data``      : the generated story corpus, tokenizers, BabiStories, token batches
- ``train``     : the trainer and ``python -m mosaics_edu.train``
- ``bench``     : ``python -m mosaics_edu.bench``, the speed and memory targets as ratios
- ``moons``     : the three-moons experiment and ``python -m mosaics_edu.moons``
- ``toys``, ``induction``, ``compare``, ``softmax`` : pure functions behind chapter figures
- ``diagrams``  : figures drawn by code (course map, memory unit, block diagrams)
- ``checks``    : exercise checks that diagnose mistakes
- ``widgets``   : thin ipywidgets around pure functions
- ``env``       : versions and device, for chapter 00
"""

__version__ = "0.1.0"
