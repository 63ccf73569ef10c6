"""The chapter 05 checks pass the reference answers and diagnose every known mistake."""

from __future__ import annotations

import math

import pytest
import torch

from mosaics_edu import train
from mosaics_edu.checks import CheckFailed, ch05


def _raises(check, fn, *fragments):
    with pytest.raises(CheckFailed) as err:
        check(fn)
    for f in fragments:
        assert f in str(err.value), str(err.value)


# ---- 5.1 the schedule ------------------------------------------------------------------------


def lr_at(step, max_lr, min_lr, warmup_steps, max_steps):
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step >= max_steps:
        return min_lr
    p = (step - warmup_steps) / (max_steps - warmup_steps)
    return min_lr + 0.5 * (1 + math.cos(math.pi * p)) * (max_lr - min_lr)


def test_lr_reference_passes(capsys):
    ch05.check_lr_at(lr_at)
    ch05.check_lr_at(train.lr_at)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("diagnosis", list(ch05.LR_MISTAKES))
def test_every_lr_mistake_is_diagnosed(diagnosis):
    flags = ch05.LR_MISTAKES[diagnosis]
    _raises(ch05.check_lr_at, lambda *a: ch05._lr_variant(*a, **flags), diagnosis)


def test_lr_hand_written_mistakes():
    def no_floor(step, max_lr, min_lr, warmup_steps, max_steps):
        return lr_at(step, max_lr, 0.0, warmup_steps, max_steps)

    def warm_from_zero(step, max_lr, min_lr, warmup_steps, max_steps):
        if step < warmup_steps:
            return max_lr * step / warmup_steps
        return lr_at(step, max_lr, min_lr, warmup_steps, max_steps)

    _raises(ch05.check_lr_at, no_floor, "decayed to 0")
    _raises(ch05.check_lr_at, warm_from_zero, "started the warm-up at 0")
    _raises(ch05.check_lr_at, lambda *a: 1e-3, "at step")


def test_lr_stub_is_reported():
    def stub(*a):
        raise NotImplementedError()

    _raises(ch05.check_lr_at, stub, "not implemented")


# ---- 5.2 the parameter groups ----------------------------------------------------------------


def param_groups(model, weight_decay):
    params = list(model.parameters())
    return [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]


def test_param_groups_reference_passes(capsys):
    ch05.check_param_groups(param_groups)
    ch05.check_param_groups(train.param_groups)
    assert "passed" in capsys.readouterr().out


def _groups(rule, wd_key=True, use_named_dupes=False):
    def fn(model, weight_decay):
        if use_named_dupes:
            named = list(model.named_parameters(remove_duplicate=False))
        else:
            named = list(model.named_parameters())
        dec = [p for n, p in named if rule(n, p)]
        rest = [p for n, p in named if not rule(n, p)]
        g = [{"params": dec, "weight_decay": weight_decay}, {"params": rest}]
        if wd_key:
            g[1]["weight_decay"] = 0.0
        return g
    return fn


@pytest.mark.parametrize("rule, fragment", [
    (lambda n, p: True, "decay every parameter"),
    (lambda n, p: False, "nothing decays"),
    (lambda n, p: p.dim() < 2, "swapped"),
    (lambda n, p: p.dim() == 2, "3-D"),
    (lambda n, p: p.dim() >= 2 and "wte" not in n and "wpe" not in n, "embeddings"),
    (lambda n, p: p.dim() >= 2 and "ln" not in n and "c_proj" not in n, "should decay but"),
])
def test_param_group_mistakes(rule, fragment):
    _raises(ch05.check_param_groups, _groups(rule), fragment)


def test_param_group_format_mistakes():
    _raises(ch05.check_param_groups, _groups(lambda n, p: p.dim() >= 2, wd_key=False),
            "'weight_decay'")
    _raises(ch05.check_param_groups,
            _groups(lambda n, p: p.dim() >= 2, use_named_dupes=True), "listed twice")
    _raises(ch05.check_param_groups, lambda m, wd: list(m.parameters()), "list of dicts")
    _raises(ch05.check_param_groups,
            lambda m, wd: [{"params": [p for p in m.parameters() if p.dim() >= 2],
                            "weight_decay": wd}], "missing")
    _raises(ch05.check_param_groups,
            lambda m, wd: [{"params": [p for p in m.parameters() if p.dim() >= 2],
                            "weight_decay": 0.5},
                           {"params": [p for p in m.parameters() if p.dim() < 2],
                            "weight_decay": 0.0}], "weight_decay=0.1")


# ---- 5.3 one training step -------------------------------------------------------------------


def train_step(model, optimizer, x, y, grad_clip):
    model.train()
    optimizer.zero_grad()
    _, loss = model(x, y)
    loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return loss.item()


def test_train_step_reference_passes(capsys):
    ch05.check_train_step(train_step)
    ch05.check_train_step(ch05.reference_train_step)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("diagnosis", list(ch05.STEP_MISTAKES))
def test_every_step_mistake_is_diagnosed(diagnosis):
    flags = ch05.STEP_MISTAKES[diagnosis]
    _raises(ch05.check_train_step, lambda *a: ch05._step_variant(*a, **flags), diagnosis)


def test_hand_written_step_mistakes():
    def clip_after_step(model, optimizer, x, y, grad_clip):
        optimizer.zero_grad()
        _, loss = model(x, y)
        loss.backward()
        optimizer.step()
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        return loss.item()

    def zero_between(model, optimizer, x, y, grad_clip):
        _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.zero_grad()
        optimizer.step()
        return loss.item()

    def returns_tensor(model, optimizer, x, y, grad_clip):
        train_step(model, optimizer, x, y, grad_clip)
        return torch.tensor(1.0)

    def loss_after(model, optimizer, x, y, grad_clip):
        train_step(model, optimizer, x, y, grad_clip)
        with torch.no_grad():
            return model(x, y)[1].item()

    _raises(ch05.check_train_step, clip_after_step, "clipped after optimizer.step()")
    _raises(ch05.check_train_step, zero_between, "never changed the weights")
    _raises(ch05.check_train_step, returns_tensor, "Python float")
    _raises(ch05.check_train_step, loss_after, "before the update")
