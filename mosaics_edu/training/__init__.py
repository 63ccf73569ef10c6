"""The training layer: one trainer for every language model of the course.

- ``trainer``    : the training config and presets, the schedule, parameter groups, ``Trainer``
                   and ``train()``
- ``checkpoint`` : the checkpoint file format (save, verify, load, rebuild a model)
- ``run_cache``  : a test session's finished runs, loaded instead of trained again
- ``cli``        : the command line behind ``python -m mosaics_edu.train``

Every public name of ``trainer`` is importable from here (``training.TrainConfig``).
"""

from .trainer import (
    PRESETS,
    TrainConfig,
    Trainer,
    TrainResult,
    basic_train_step,
    build_model,
    lr_at,
    padded_vocab_size,
    param_groups,
    prepare_data,
    train,
)

__all__ = [
    "PRESETS",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "basic_train_step",
    "build_model",
    "lr_at",
    "padded_vocab_size",
    "param_groups",
    "prepare_data",
    "train",
]
