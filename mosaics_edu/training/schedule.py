"""Learning-rate schedules: the learning rate of optimizer step ``step``, as a pure function.

Every schedule of the course lives here, side by side, with one argument convention:
``(step, <rates>, <step counts>)``, ``step`` 0-based, and ``max_steps`` the step at which the
schedule reaches its final rate (after it, the rate stays there).

- :func:`lr_at` — linear warm-up, then cosine decay to a floor: the papers' recipe, used by the
  language-model :class:`~mosaics_edu.training.trainer.Trainer` and by RegBench
  (:func:`mosaics_edu.course.regbench.train.learning_rate`); chapter 05's exercise 5.1;
- :func:`linear_lr` — a straight line from one rate to another: the three-moons recipe
  (:func:`mosaics_edu.course.moons.train.learning_rate`).

A recipe binds its config to one of these (``learning_rate(step, config)``) and hands the value
to :func:`mosaics_edu.training.step.optimizer_step`; the schedules themselves know no config, so
a chapter can plot them and a test can pin them down.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["linear_lr", "lr_at"]


def lr_at(step: int, max_lr: float, min_lr: float, warmup_steps: int, max_steps: int) -> float:
    """Learning rate for optimizer step ``step`` (0-based): linear warm-up, then cosine decay.

    - ``step < warmup_steps``: ``max_lr * (step + 1) / warmup_steps`` (reaches max_lr on the last
      warm-up step);
    - ``warmup_steps <= step <= max_steps``: ``min_lr + (max_lr - min_lr) * (1 + cos(pi p)) / 2``
      with ``p = (step - warmup_steps) / (max_steps - warmup_steps)`` going from 0 to 1;
    - after ``max_steps``: ``min_lr``.
    """
    if not isinstance(step, (int, np.integer)) or step < 0:
        raise ValueError(f"step must be a non-negative int, got {step!r}")
    if not 0 <= min_lr <= max_lr:
        raise ValueError(f"need 0 <= min_lr <= max_lr, got min_lr={min_lr}, max_lr={max_lr}")
    if not 0 <= warmup_steps <= max_steps or max_steps < 1:
        raise ValueError(
            f"need 0 <= warmup_steps <= max_steps and max_steps >= 1, got "
            f"warmup_steps={warmup_steps}, max_steps={max_steps}"
        )
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step >= max_steps or max_steps == warmup_steps:
        return min_lr
    progress = (step - warmup_steps) / (max_steps - warmup_steps)  # in [0, 1)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (max_lr - min_lr)


def linear_lr(step: int, start_lr: float, end_lr: float, max_steps: int) -> float:
    """Learning rate for optimizer step ``step`` (0-based): a straight line from ``start_lr`` at
    step 0 to ``end_lr`` at step ``max_steps``, then ``end_lr``.

    ``start_lr + (end_lr - start_lr) * step / max_steps`` up to ``max_steps`` (``max_steps = 0``:
    ``start_lr`` at step 0). Either end may be the larger (a decay or a ramp). The three-moons
    recipe decays from 1e-2 to 5e-6 and reaches the end on its last step: ``max_steps = steps - 1``.
    """
    if not isinstance(step, (int, np.integer)) or step < 0:
        raise ValueError(f"step must be a non-negative int, got {step!r}")
    if not (start_lr >= 0 and end_lr >= 0 and math.isfinite(start_lr) and math.isfinite(end_lr)):
        raise ValueError(f"need finite start_lr, end_lr >= 0, got start_lr={start_lr}, end_lr={end_lr}")
    if not isinstance(max_steps, (int, np.integer)) or max_steps < 0:
        raise ValueError(f"max_steps must be a non-negative int, got {max_steps!r}")
    if step > max_steps:
        return end_lr
    frac = step / max(max_steps, 1)
    return start_lr + (end_lr - start_lr) * frac
