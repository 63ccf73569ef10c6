"""The training layer: one trainer for every language model of the course, and the one
optimizer step and the schedules every training loop of the course shares.

- ``schedule``   : learning-rate schedules as pure functions of the step (warm-up + cosine
                   ``lr_at``, the linear ``linear_lr``)
- ``step``       : one optimizer step (``optimizer_step``: set the lr, zero, backward, clip, step)
                   and its two ends (``set_lr``, ``apply_gradients``)
- ``trainer``    : the training config and presets, parameter groups, ``basic_train_step``,
                   ``Trainer`` and ``train()``
- ``checkpoint`` : the checkpoint file format (save, verify, load, rebuild a model)
- ``run_cache``  : a test session's finished runs, loaded instead of trained again
- ``cli``        : the command line behind ``python -m mosaics_edu.train``

Every public name of ``schedule``, ``step`` and ``trainer`` is importable from here
(``training.TrainConfig``, ``training.lr_at``, ``training.optimizer_step``).
"""

from . import schedule, step, trainer
from .schedule import *  # noqa: F403
from .step import *  # noqa: F403
from .trainer import *  # noqa: F403

__all__ = [*schedule.__all__, *step.__all__, *trainer.__all__]
