"""The shared optimizer step (training.step) and the schedules (training.schedule)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from mosaics_edu import training as tr


def _setup(seed: int = 0, stale: bool = True):
    """A tiny regression model with large gradients (so clipping binds), stale gradients from an
    "earlier step", an AdamW with two groups of different learning rates, and a loss."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
    if stale:
        for p in model.parameters():
            p.grad = torch.randn_like(p) * 5.0
    opt = torch.optim.AdamW(
        [{"params": [model[0].weight, model[2].weight], "lr": 1e-2, "weight_decay": 0.1},
         {"params": [model[0].bias, model[2].bias], "lr": 5e-3, "weight_decay": 0.0}],
    )  # fmt: skip
    gen = torch.Generator().manual_seed(seed + 1)
    x, y = torch.randn(16, 4, generator=gen), 10 * torch.randn(16, 3, generator=gen)
    return model, opt, x, y


def _loss(model, x, y):
    return ((model(x) - y) ** 2).mean()


def _by_hand(model, opt, x, y, lr, clip):
    for group in opt.param_groups:
        group["lr"] = lr
    opt.zero_grad(set_to_none=True)
    loss = _loss(model, x, y)
    loss.backward()
    if clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    opt.step()
    return float(loss.detach())


@pytest.mark.parametrize("clip", [0.0, 0.1, 1e6])
def test_optimizer_step_is_zero_grad_backward_clip_step_bit_for_bit(clip):
    m1, o1, x, y = _setup()
    m2, o2, _, _ = _setup()
    for _ in range(3):
        want = _by_hand(m1, o1, x, y, 3e-3, clip)
        got = tr.optimizer_step(m2, o2, _loss(m2, x, y), lr=3e-3, grad_clip=clip)
        assert isinstance(got, float) and got == want
    for p, q in zip(m1.parameters(), m2.parameters(), strict=True):
        assert torch.equal(p, q)


def test_the_lr_is_set_in_every_group_and_none_leaves_it():
    model, opt, x, y = _setup()
    tr.optimizer_step(model, opt, _loss(model, x, y), lr=7e-4)
    assert [g["lr"] for g in opt.param_groups] == [7e-4, 7e-4]
    tr.optimizer_step(model, opt, _loss(model, x, y))
    assert [g["lr"] for g in opt.param_groups] == [7e-4, 7e-4]
    tr.set_lr(opt, 0.0)
    assert [g["lr"] for g in opt.param_groups] == [0.0, 0.0]


def test_stale_gradients_do_not_leak_into_the_step():
    fresh, o1, x, y = _setup(stale=False)
    stale, o2, _, _ = _setup(stale=True)
    tr.optimizer_step(fresh, o1, _loss(fresh, x, y), grad_clip=1.0)
    tr.optimizer_step(stale, o2, _loss(stale, x, y), grad_clip=1.0)
    for p, q in zip(fresh.parameters(), stale.parameters(), strict=True):
        assert torch.equal(p, q)


def test_grad_clip_zero_means_no_clipping_and_apply_gradients_reports_the_norm():
    model, opt, x, y = _setup(stale=False)
    _loss(model, x, y).backward()
    norm = float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()])))
    assert norm > 1.0  # so a clip at 1.0 binds, and "no clipping" is visible
    grads = [p.grad.clone() for p in model.parameters()]
    assert math.isnan(tr.apply_gradients(model.parameters(), opt, grad_clip=0.0))
    assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), grads, strict=True))
    model, opt, x, y = _setup(stale=False)
    _loss(model, x, y).backward()
    assert tr.apply_gradients(model.parameters(), opt, grad_clip=1.0) == pytest.approx(norm, rel=1e-6)
    clipped = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()]))
    assert float(clipped) == pytest.approx(1.0, rel=1e-5)


def test_a_disabled_grad_scaler_steps_as_without_one():
    m1, o1, x, y = _setup()
    m2, o2, _, _ = _setup()
    for model, opt, scaler in ((m1, o1, None), (m2, o2, torch.amp.GradScaler("cpu", enabled=False))):
        opt.zero_grad(set_to_none=True)
        _loss(model, x, y).backward()
        tr.apply_gradients(model.parameters(), opt, grad_clip=0.5, scaler=scaler)
    for p, q in zip(m1.parameters(), m2.parameters(), strict=True):
        assert torch.equal(p, q)


@pytest.mark.parametrize("clip", [0.0, 0.5])
def test_with_a_grad_scaler_it_is_unscale_clip_step_update_as_the_trainer_did(clip):
    """The fp16 path (GradScaler enabled; here on the CPU, where torch runs it too): the order the
    Trainer always took, bit for bit, including a step skipped because the gradients overflowed."""
    models = [_setup() for _ in range(2)]
    scalers = [torch.amp.GradScaler("cpu", init_scale=2.0**10, growth_interval=1) for _ in range(2)]
    norms = []
    for k in range(4):
        for i, ((model, opt, x, y), scaler) in enumerate(zip(models, scalers, strict=True)):
            opt.zero_grad(set_to_none=True)
            loss = _loss(model, x, y) * (float("inf") if k == 2 else 1.0)  # step 2 overflows
            scaler.scale(loss).backward()
            if i == 0:  # what Trainer.train_step wrote out before apply_gradients existed
                norm = float("nan")
                if clip > 0:
                    scaler.unscale_(opt)
                    norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), clip))
                scaler.step(opt)
                scaler.update()
            else:
                norm = tr.apply_gradients(model.parameters(), opt, grad_clip=clip, scaler=scaler)
            norms.append(norm)
        assert scalers[0].get_scale() == scalers[1].get_scale()
        assert norms[-2] == norms[-1] or (math.isnan(norms[-2]) and math.isnan(norms[-1]))
    for p, q in zip(models[0][0].parameters(), models[1][0].parameters(), strict=True):
        assert torch.equal(p, q)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), "1.0", None, True])
def test_a_bad_grad_clip_is_refused_by_name(bad):
    model, opt, x, y = _setup()
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ValueError, match="grad_clip"):
        tr.optimizer_step(model, opt, _loss(model, x, y), grad_clip=bad)
    with pytest.raises(ValueError, match="grad_clip"):
        tr.apply_gradients(model.parameters(), opt, grad_clip=bad)
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before, strict=True))


@pytest.mark.parametrize("bad", [-1e-3, float("nan"), float("inf"), "1e-3", True])
def test_a_bad_lr_is_refused_by_name(bad):
    model, opt, x, y = _setup()
    with pytest.raises(ValueError, match="lr"):
        tr.optimizer_step(model, opt, _loss(model, x, y), lr=bad)
    with pytest.raises(ValueError, match="lr"):
        tr.set_lr(opt, bad)
    assert [g["lr"] for g in opt.param_groups] == [1e-2, 5e-3]


def test_a_loss_that_cannot_be_stepped_on_is_refused():
    model, opt, x, y = _setup()
    with pytest.raises(ValueError, match="scalar"):
        tr.optimizer_step(model, opt, (model(x) - y) ** 2)
    with torch.no_grad():
        frozen = _loss(model, x, y)
    with pytest.raises(ValueError, match="does not require grad"):
        tr.optimizer_step(model, opt, frozen)
    with pytest.raises(TypeError, match="nn.Module"):
        tr.optimizer_step(list(model.parameters()), opt, _loss(model, x, y))


def test_linear_lr_goes_straight_from_start_to_end_then_stays():
    assert tr.linear_lr(0, 1e-2, 5e-6, 499) == 1e-2
    assert tr.linear_lr(499, 1e-2, 5e-6, 499) == pytest.approx(5e-6)
    assert tr.linear_lr(500, 1e-2, 5e-6, 499) == 5e-6
    assert tr.linear_lr(10, 1.0, 0.0, 20) == pytest.approx(0.5)
    assert tr.linear_lr(5, 0.0, 1.0, 10) == pytest.approx(0.5)  # a ramp works too
    assert tr.linear_lr(0, 0.3, 0.1, 0) == 0.3  # a one-step run: the start
    # three moons' formula, bit for bit
    for s in range(0, 500, 7):
        assert tr.linear_lr(s, 1e-2, 5e-6, 499) == 1e-2 + (5e-6 - 1e-2) * (s / 499)
    for bad in (dict(step=-1), dict(step=1.5), dict(start_lr=-1.0), dict(end_lr=float("nan")),
                dict(max_steps=-1)):  # fmt: skip
        kw = dict(step=0, start_lr=1e-2, end_lr=1e-3, max_steps=10) | bad
        with pytest.raises(ValueError, match=next(iter(bad))):
            tr.linear_lr(**kw)
