"""One optimizer step, written once for every training loop of the course.

    loss = loss_of(model, batch)                      # the recipe's forward and loss
    optimizer_step(model, optimizer, loss, lr=learning_rate(step, config), grad_clip=1.0)

:func:`optimizer_step` sets the learning rate of every parameter group, zeroes the gradients,
backpropagates ``loss``, clips the global gradient norm and steps. The loops built on it:

- :func:`mosaics_edu.training.trainer.basic_train_step` — a language model's plain step
  (chapter 05's exercise 5.3);
- :func:`mosaics_edu.course.regbench.train.train_run` — RegBench (cross-entropy, cosine
  schedule, clipping);
- :func:`mosaics_edu.course.moons.train.train_moons` — three moons (clipped squared error,
  linear decay, no clipping).

A recipe is then a config, a batch source, a loss and a schedule
(:mod:`mosaics_edu.training.schedule`) around this one step.

The language-model :class:`~mosaics_edu.training.trainer.Trainer` accumulates gradients over
micro-batches, under autocast, with a gradient scaler for fp16 and DDP's gradient averaging, so
its backward passes are its own; it shares the two ends of the step: :func:`set_lr` before and
:func:`apply_gradients` (unscale, clip, step) after.

Zeroing the gradients only has to come before ``backward()``: the forward that built ``loss`` may
run before the call, as it does in every loop above.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Real

import torch
import torch.nn as nn

__all__ = ["apply_gradients", "optimizer_step", "set_lr"]


def _check_rate(name: str, value: object) -> None:
    """A ValueError naming ``name`` unless ``value`` is a finite number >= 0."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set the learning rate of every parameter group of ``optimizer`` to ``lr`` (a schedule's
    value for this step; one rate for all groups, whatever their weight decay)."""
    _check_rate("lr", lr)
    for group in optimizer.param_groups:
        group["lr"] = lr


def apply_gradients(
    parameters: Iterable[torch.Tensor], optimizer: torch.optim.Optimizer, *, grad_clip: float = 0.0,
    scaler: torch.amp.GradScaler | None = None,
) -> float:
    """Use the gradients that ``backward()`` left: clip their global norm to ``grad_clip`` (0: no
    clipping), then ``optimizer.step()``. Returns the norm before clipping (NaN when not clipping:
    it is not computed then).

    ``parameters``: those whose norm is clipped, e.g. ``model.parameters()`` (the norm adds the
    gradients up in that order). ``scaler``: a :class:`torch.amp.GradScaler` whose scaled loss
    gave the gradients (fp16); they are unscaled before clipping and the step goes through it (a
    disabled scaler steps plainly). The gradients are left as they are: zero them before the next
    ``backward()``.
    """
    _check_rate("grad_clip", grad_clip)
    grad_norm = float("nan")
    if grad_clip > 0:
        if scaler is not None:
            scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
        grad_norm = float(torch.nn.utils.clip_grad_norm_(parameters, grad_clip))
    if scaler is not None:
        scaler.step(optimizer)  # skips the step if the fp16 gradients overflowed
        scaler.update()
    else:
        optimizer.step()
    return grad_norm


def optimizer_step(
    model: nn.Module, optimizer: torch.optim.Optimizer, loss: torch.Tensor, *, lr: float | None = None,
    grad_clip: float = 0.0,
) -> float:
    """One optimizer step on the scalar ``loss`` of ``model``: set the learning rate of every
    parameter group to ``lr`` (None: leave it), zero the gradients, ``loss.backward()``, clip the
    global gradient norm over ``model.parameters()`` to ``grad_clip`` (0: no clipping), step.
    Returns the loss as a float.

    Zeroing first means gradients left by an earlier step (or an earlier ``backward()``) never
    leak into this one; clipping the norm of all gradients together keeps the direction of the
    step and bounds its size.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        raise ValueError(
            f"loss must be a scalar tensor (reduce it, e.g. .mean()), got "
            f"{tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__}"
        )
    if not loss.requires_grad:
        raise ValueError("loss does not require grad: compute it outside torch.no_grad(), from the model")
    _check_rate("grad_clip", grad_clip)
    if lr is not None:
        set_lr(optimizer, lr)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    apply_gradients(model.parameters(), optimizer, grad_clip=grad_clip)
    return float(loss.detach())
