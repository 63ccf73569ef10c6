"""The training layer: one trainer for every language model of the course.

- ``trainer``    : the training config and presets, the schedule, parameter groups, ``Trainer``
                   and ``train()``
- ``checkpoint`` : the checkpoint file format (save, verify, load, rebuild a model)
- ``run_cache``  : a test session's finished runs, loaded instead of trained again
- ``cli``        : the command line behind ``python -m mosaics_edu.train``

Every public name of ``trainer`` is importable from here (``training.TrainConfig``).
"""

from . import trainer
from .trainer import *  # noqa: F403

__all__ = list(trainer.__all__)
