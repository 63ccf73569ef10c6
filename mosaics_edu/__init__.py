"""mosaics_edu: the helper package of the course "Memory Mosaics, step by step".

Small modules, one idea each, in layers (lowest first; a module imports only its own layer or
lower ones: ``tools/import_contract.py`` checks it):

core — the math, the data, the utilities they share
- ``memory``    : an associative memory as Gaussian kernel regression; causal retrieval
- ``features``  : leaky averages, key and value extractors
- ``layers``    : contextual memory, persistent memory, the mosaic block
- ``_validate`` : the input checks of memory, features and layers
- ``data``      : the generated story corpus, tokenizers, BabiStories, token batches
- ``atomic``    : atomic file writes (checkpoints, token datasets, downloads, runs)
- ``env``       : versions and device, for chapter 00

models — the language models
- ``models``    : the Memory Mosaic language model and its GPT twin, cached generation, and
                  the base classes every language model shares
- ``v2``        : Memory Mosaics v2: adaptive bandwidth β(n), gated keys, short/long-term and
                  SwiGLU persistent memory (core pieces), ``MemoryMosaicV2LM`` (``--model
                  mosaic-v2``); its ``experiments`` and ``extrapolation`` are chapter 09's (course)
- ``registry``  : ``MODEL_KINDS``, model kind -> (model class, config class)
- ``flops``     : FLOPs per trained token and device peaks, the figures behind MFU

training
- ``train``     : the training config, schedule, parameter groups, ``Trainer`` and ``train()``
- ``checkpoint``: the checkpoint file format (save, verify, load, rebuild a model)
- ``run_cache`` : a test session's finished runs, loaded instead of trained again

course — what the chapters use
- ``toys``, ``induction``, ``compare``, ``softmax`` : pure functions behind chapter figures
- ``moons``     : the three-moons experiment (chapter 03) and ``python -m mosaics_edu.moons``
- ``icl``       : in-context learning measured, the shipped story models (chapter 06)
- ``regbench``  : RegBench-mini (chapter 07) and ``python -m mosaics_edu.regbench``
- ``inspection``, ``inspection_views`` : looking inside a trained model, and its drawings
                  (chapter 08)
- ``formation`` : when induction heads form, measured on repeated random tokens
- ``copying``   : which heads copy a story's names, and whether they still do out of
                  distribution (with ``inspection``)
- ``scaling``   : the arithmetic of data parallelism (chapter 10)
- ``capstone``  : chapter 11's project
- ``tuning``    : the evidence format of every fair comparison (``assets/<comparison>/tuning.json``)
- ``diagrams``  : figures drawn by code (course map, memory unit, block diagrams)
- ``checks``    : exercise checks that diagnose mistakes
- ``widgets``   : thin ipywidgets around pure functions, the live loss plot

tools — command lines, which nothing in the package imports
- ``cli``       : the command line ``python -m mosaics_edu.train``
- ``bench``     : ``python -m mosaics_edu.bench``, the speed and memory targets as ratios
"""

__version__ = "0.1.0"
