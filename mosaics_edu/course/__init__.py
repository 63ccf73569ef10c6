"""The course layer: what the chapters use, built on the models and the trainer.

- ``toys``, ``induction``, ``compare``, ``softmax`` : pure functions behind chapter figures
- ``moons``     : the three-moons experiment (chapter 03) and ``python -m mosaics_edu.moons``
- ``icl``       : in-context learning measured, the shipped story models (chapter 06)
- ``regbench``  : RegBench-mini (chapter 07) and ``python -m mosaics_edu.regbench``
- ``inspection``, ``inspection_views`` : looking inside a trained model, and its drawings
                  (chapter 08)
- ``formation`` : when induction heads form, measured on repeated random tokens
- ``copying``   : which heads copy a story's names, and whether they still do out of
                  distribution (with ``inspection``)
- ``v2_experiments`` : chapter 09's small v2 studies (the bandwidth toy, β's growth exponent)
- ``extrapolation``  : chapter 09's length extrapolation, v1 against v2 and its ablations
- ``scaling``   : the arithmetic of data parallelism (chapter 10)
- ``capstone``  : chapter 11's project
- ``tuning``    : the evidence format of every fair comparison (``assets/<comparison>/tuning.json``)
- ``diagrams``  : figures drawn by code (course map, memory unit, block diagrams)
- ``checks``    : exercise checks that diagnose mistakes
- ``widgets``   : thin ipywidgets around pure functions, the live loss plot
"""
