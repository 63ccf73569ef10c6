"""mosaics_edu: the helper package of the course "Memory Mosaics, step by step".

Small modules, one idea each, in four folders that are four layers (lowest first; a module
imports only its own layer or lower ones, never a private name of another module:
``tools/import_contract.py`` checks it in CI). Read ``core/`` and ``models/`` first: they are
the whole model, in about 3,000 lines.

core/ — the math and the small utilities everything shares
- ``core.memory``     : an associative memory as kernel regression; causal retrieval
- ``core.features``   : leaky averages, key and value extractors
- ``core.layers``     : contextual memory, persistent memory, the mosaic block
- ``core.v2``         : Memory Mosaics v2's pieces: adaptive bandwidth β(n), gated keys,
                        short/long-term windows, the SwiGLU persistent memory, the v2 block
- ``core.validation`` : the input checks of every layer, one function per rule
- ``core.atomic``     : atomic file writes (checkpoints, token datasets, downloads, runs)
- ``core.env``        : versions and device, for chapter 00
data/ — the data, on the same lowest layer (it imports only ``core``)
- ``data``            : the generated story corpus, tokenizers, BabiStories, token batches

models/ — the language models
- ``models.lm``       : the Memory Mosaic language model and its GPT twin, side by side, the
                        base classes every language model shares, cached generation
- ``models.v2``       : ``MemoryMosaicV2LM`` (``--model mosaic-v2``)
- ``models.registry`` : ``MODEL_KINDS``, model kind -> (model class, config class)
- ``models.flops``    : FLOPs per trained token and device peaks, the figures behind MFU

training/ — one trainer for every language model, one optimizer step for every loop
- ``training.schedule``   : the learning-rate schedules (warm-up + cosine ``lr_at``, ``linear_lr``)
- ``training.step``       : one optimizer step (``optimizer_step``), shared by every training loop
- ``training.trainer``    : the training config, parameter groups, ``Trainer``, ``train()``
- ``training.checkpoint`` : the checkpoint file format (save, verify, load, rebuild a model)
- ``training.run_cache``  : a test session's finished runs, loaded instead of trained again
- ``training.cli``        : the command line behind ``python -m mosaics_edu.train``

course/ — what the chapters use
- ``course.toys``, ``course.induction``, ``course.compare``, ``course.softmax`` : pure
                        functions behind chapter figures
- ``course.moons``    : the three-moons experiment (chapter 03)
- ``course.icl``      : in-context learning measured, the shipped story models (chapter 06)
- ``course.regbench`` : RegBench-mini (chapter 07)
- ``course.inspection``, ``course.inspection_views`` : looking inside a trained model, and its
                        drawings (chapter 08)
- ``course.formation``: when induction heads form, measured on repeated random tokens
- ``course.copying``  : which heads copy a story's names, and whether they still do out of
                        distribution (with ``inspection``)
- ``course.v2_experiments`` : chapter 09's small v2 studies (bandwidth toy, β's growth)
- ``course.extrapolation``  : chapter 09's length extrapolation
- ``course.scaling``  : the arithmetic of data parallelism (chapter 10)
- ``course.capstone`` : chapter 11's project
- ``course.tuning``   : the evidence format of every fair comparison
                        (``assets/<comparison>/tuning.json``)
- ``course.diagrams`` : figures drawn by code (course map, memory unit, block diagrams)
- ``course.checks``   : exercise checks that diagnose mistakes
- ``course.widgets``  : thin ipywidgets around pure functions, the live loss plot

entry points — command lines, which nothing in the package imports
- ``train``    : ``python -m mosaics_edu.train`` (and ``torchrun ... -m mosaics_edu.train``)
- ``regbench`` : ``python -m mosaics_edu.regbench`` (train, sweep, tune, factors, ship)
- ``moons``    : ``python -m mosaics_edu.moons``
- ``bench``    : ``python -m mosaics_edu.bench``, the speed and memory targets as ratios
"""

__version__ = "0.1.0"
