"""The chapter 05 checks pass the reference answers and diagnose every known mistake."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from check_contract import table_tests

from mosaics_edu import training as train
from mosaics_edu.course.checks import CheckFailed, ch05


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
    _raises(ch05.check_lr_at, lambda *a: 1e-3, "ignores its argument `max_lr`")


def test_lr_stub_is_reported():
    def stub(*a):
        raise NotImplementedError()

    _raises(ch05.check_lr_at, stub, "not implemented")


# ---- 5.2 the parameter groups ----------------------------------------------------------------


def param_groups(model, weight_decay):
    params = [p for p in model.parameters() if p.requires_grad]
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


# ---- wrong answers written for these tests (none is a mistake model of the checks) ------------
# Each row: (check, learner answer, a phrase the message must contain). A phrase that names the
# mistake counts the answer as "recognised by name"; the rest must at least fail.


def _lr_fixed_floor(step, max_lr, min_lr, warmup_steps, max_steps):
    return lr_at(step, max_lr, 1e-4, warmup_steps, max_steps)  # the papers' floor, typed in


def _lr_fixed_warmup(step, max_lr, min_lr, warmup_steps, max_steps):
    return lr_at(step, max_lr, min_lr, 10, max_steps)


def _lr_flat_warmup(step, max_lr, min_lr, warmup_steps, max_steps):
    if step < warmup_steps:
        return max_lr  # no ramp at all
    return lr_at(step, max_lr, min_lr, warmup_steps, max_steps)


def _lr_warm_to_w_plus_one(step, max_lr, min_lr, warmup_steps, max_steps):
    if step < warmup_steps:
        return max_lr * (step + 1) / (warmup_steps + 1)
    return lr_at(step, max_lr, min_lr, warmup_steps, max_steps)


def _lr_exponential(step, max_lr, min_lr, warmup_steps, max_steps):
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    p = min(1.0, (step - warmup_steps) / (max_steps - warmup_steps))
    return max_lr * (min_lr / max_lr) ** p


def _lr_swapped_names(step, min_lr, max_lr, warmup_steps, max_steps):  # arguments in wrong order
    return lr_at(step, max_lr, min_lr, warmup_steps, max_steps)


def _lr_cos_degrees(step, max_lr, min_lr, warmup_steps, max_steps):
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step >= max_steps:
        return min_lr
    p = (step - warmup_steps) / (max_steps - warmup_steps)
    return min_lr + 0.5 * (1 + math.cos(180 * p)) * (max_lr - min_lr)


def _wd_fixed(model, weight_decay):
    ps = list(model.parameters())
    return [{"params": [p for p in ps if p.dim() >= 2], "weight_decay": 0.1},
            {"params": [p for p in ps if p.dim() < 2], "weight_decay": 0.0}]


def _wd_by_name(model, weight_decay):
    named = list(model.named_parameters())
    return [{"params": [p for n, p in named if "weight" in n], "weight_decay": weight_decay},
            {"params": [p for n, p in named if "weight" not in n], "weight_decay": 0.0}]


def _wd_no_bias_rule(model, weight_decay):
    named = list(model.named_parameters())
    return [{"params": [p for n, p in named if "bias" not in n], "weight_decay": weight_decay},
            {"params": [p for n, p in named if "bias" in n], "weight_decay": 0.0}]


def _wd_named_pairs(model, weight_decay):
    named = list(model.named_parameters())
    return [{"params": [(n, p) for n, p in named if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [(n, p) for n, p in named if p.dim() < 2], "weight_decay": 0.0}]


def _wd_tables_only(model, weight_decay):
    ps = list(model.parameters())
    return [{"params": [p for p in ps if p.dim() > 2], "weight_decay": weight_decay},
            {"params": [p for p in ps if p.dim() <= 2], "weight_decay": 0.0}]


def _wd_freezes(model, weight_decay):
    for p in model.parameters():
        if p.dim() < 2:
            p.requires_grad_(False)  # "no decay" misread as "no training"
    return param_groups(model, weight_decay)


def _wd_one_group_scaled(model, weight_decay):
    return [{"params": list(model.parameters()), "weight_decay": weight_decay / 2}]


def _step_unguarded(model, optimizer, x, y, grad_clip):
    optimizer.zero_grad()
    _, loss = model(x, y)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)  # also when grad_clip == 0
    optimizer.step()
    return loss.item()


def _step_fixed_clip(model, optimizer, x, y, grad_clip):
    optimizer.zero_grad()
    _, loss = model(x, y)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    return loss.item()


def _step_clip_value(model, optimizer, x, y, grad_clip):
    optimizer.zero_grad()
    _, loss = model(x, y)
    loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_value_(model.parameters(), grad_clip)  # entries, not the norm
    optimizer.step()
    return loss.item()


def _step_twice(model, optimizer, x, y, grad_clip):
    loss = train_step(model, optimizer, x, y, grad_clip)
    optimizer.step()
    return loss


def _step_zero_at_end(model, optimizer, x, y, grad_clip):
    _, loss = model(x, y)  # the stale gradients are still there
    loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    optimizer.zero_grad()
    return loss.item()


def _step_halved_clip(model, optimizer, x, y, grad_clip):
    return train_step(model, optimizer, x, y, grad_clip / 2)


def _step_fixed_half(model, optimizer, x, y, grad_clip):
    return train_step(model, optimizer, x, y, 0.5)


def _step_sum_loss(model, optimizer, x, y, grad_clip):
    optimizer.zero_grad()
    logits, _ = model(x)
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum")
    loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return loss.item()


WRONG = [
    (ch05.check_lr_at, _lr_fixed_floor, "ignores its argument `min_lr`"),
    (ch05.check_lr_at, _lr_fixed_warmup, "ignores its argument `warmup_steps`"),
    (ch05.check_lr_at, _lr_swapped_names, "swapped max_lr and min_lr"),
    (ch05.check_lr_at, _lr_flat_warmup, "held max_lr during the warm-up"),
    (ch05.check_lr_at, _lr_warm_to_w_plus_one, "'step 0' is wrong"),
    (ch05.check_lr_at, _lr_exponential, "'step 11' is wrong"),
    (ch05.check_lr_at, _lr_cos_degrees, "'step 11' is wrong"),
    (ch05.check_param_groups, _wd_fixed, "typed the papers' 0.1"),
    (ch05.check_param_groups, _wd_by_name, "you chose by name"),
    (ch05.check_param_groups, _wd_no_bias_rule, "you decay every parameter"),
    (ch05.check_param_groups, _wd_named_pairs, "(name, tensor) pairs"),
    (ch05.check_param_groups, _wd_freezes, "changed the model's parameters"),
    (ch05.check_param_groups, _wd_tables_only, "should decay but does not"),
    (ch05.check_param_groups, _wd_one_group_scaled, "weight_decay=0.05"),
    (ch05.check_train_step, _step_unguarded, "`if grad_clip > 0`"),
    (ch05.check_train_step, _step_fixed_clip, "clipped at a fixed 1 instead of the argument"),
    (ch05.check_train_step, _step_zero_at_end, "did not zero the gradients"),
    (ch05.check_train_step, _step_halved_clip, "clipped at grad_clip × 0.5"),
    (ch05.check_train_step, _step_fixed_half, "clipped at a fixed 0.5 instead"),
    (ch05.check_train_step, _step_clip_value, "clipped each gradient entry to ±grad_clip"),
    (ch05.check_train_step, _step_twice, "parameter tensors differ"),
    (ch05.check_train_step, _step_sum_loss, "the returned loss"),
]
NAMED = {"ignores its argument", "swapped", "typed the papers'", "chose by name", "decay every",
         "(name, tensor)", "changed the model's", "if grad_clip > 0", "fixed 1", "did not zero",
         "ignored the argument", "grad_clip × 0.5", "fixed 0.5"}


# ---- correct answers written differently: they must pass ------------------------------------


def _lr_cos_squared(step, max_lr, min_lr, warmup_steps, max_steps):
    if step < warmup_steps:
        return (step + 1) * max_lr / warmup_steps
    p = min(1.0, (step - warmup_steps) / (max_steps - warmup_steps))
    return min_lr + (max_lr - min_lr) * math.cos(math.pi * p / 2) ** 2  # = (1 + cos πp) / 2


def _lr_numpy_float32(step, max_lr, min_lr, warmup_steps, max_steps):
    if step < warmup_steps:
        return np.float32(max_lr * (step + 1) / warmup_steps)
    if step > max_steps:  # '>' is fine: at max_steps the cosine is already at the floor
        return np.float32(min_lr)
    p = np.float32((step - warmup_steps) / (max_steps - warmup_steps))
    return np.float32(min_lr) + np.float32(0.5) * (1 + np.cos(np.pi * p)) * np.float32(max_lr - min_lr)


def _wd_generator(model, weight_decay):
    yield {"params": filter(lambda p: p.ndim >= 2, model.parameters()),
           "weight_decay": weight_decay}
    yield {"params": (p for p in model.parameters() if p.ndim < 2), "weight_decay": 0.0}


def _wd_by_shape_names(model, weight_decay):
    decay, rest = [], []
    for _, p in model.named_parameters():
        (decay if len(p.shape) > 1 else rest).append(p)
    return ({"weight_decay": weight_decay, "params": tuple(decay)},
            {"weight_decay": 0.0, "params": tuple(rest)})


def _step_manual_clip(model, optimizer, x, y, grad_clip):
    for p in model.parameters():
        p.grad = None
    _, loss = model(x, y)
    loss.backward()
    if grad_clip > 0:
        norm = torch.sqrt(sum((p.grad ** 2).sum() for p in model.parameters()))
        if norm > grad_clip:
            for p in model.parameters():
                p.grad.mul_(grad_clip / (norm + 1e-6))
    optimizer.step()
    return float(loss)


def _step_optimizer_params(model, optimizer, x, y, grad_clip):
    optimizer.zero_grad(set_to_none=False)
    loss = model(x, y)[1]
    loss.backward()
    params = [p for g in optimizer.param_groups for p in g["params"]]
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(params, max_norm=grad_clip)
    optimizer.step()
    return loss.detach().item()


def _lr_guarded_float32(step, max_lr, min_lr, warmup_steps, max_steps):
    if step < warmup_steps:
        return np.float32(max_lr) * np.float32(step + 1) / np.float32(warmup_steps)
    if step >= max_steps:
        return np.float32(min_lr)
    p = np.float32(step - warmup_steps) / np.float32(max_steps - warmup_steps)
    return np.float32(min_lr) + np.float32(max_lr - min_lr) * np.float32(0.5) * (1 + np.cos(np.pi * p))


def _lr_table(step, max_lr, min_lr, warmup_steps, max_steps):  # the whole schedule, then one entry
    warm = [max_lr * (s + 1) / warmup_steps for s in range(warmup_steps)]
    span = max_steps - warmup_steps
    decay = [min_lr + (max_lr - min_lr) * math.cos(math.pi * s / span / 2) ** 2 for s in range(span)]
    table = warm + decay
    return table[step] if step < len(table) else min_lr


def _lr_torch_clamped(step, max_lr, min_lr, warmup_steps, max_steps):  # p clamped, no floor branch
    s = torch.tensor(float(step), dtype=torch.float64)
    if step < warmup_steps:
        return float(max_lr * (s + 1) / warmup_steps)
    p = ((s - warmup_steps) / max(max_steps - warmup_steps, 1)).clamp(max=1.0)
    return float(min_lr + (max_lr - min_lr) * (1 + torch.cos(torch.pi * p)) / 2)


def _lr_torch(step, max_lr, min_lr, warmup_steps, max_steps):
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step >= max_steps:
        return min_lr
    p = torch.tensor((step - warmup_steps) / (max_steps - warmup_steps), dtype=torch.float32)
    return float(min_lr + (max_lr - min_lr) * (1 + torch.cos(torch.pi * p)) / 2)


def _wd_frozen_included(model, weight_decay):  # frozen tensors in a group are allowed
    ps = list(model.parameters())
    return [{"params": [p for p in ps if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in ps if p.dim() < 2], "weight_decay": 0.0}]


def _step_closure(model, optimizer, x, y, grad_clip):  # the optimizer's closure form
    model.train()
    losses = []

    def closure():
        optimizer.zero_grad()
        loss = model(x, y)[1]
        loss.backward()
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        losses.append(loss.item())
        return loss

    optimizer.step(closure)
    return losses[0]


def _lr_ones_based(step, max_lr, min_lr, warmup_steps, max_steps):  # counts steps from 1
    return lr_at(step + 1, max_lr, min_lr, warmup_steps, max_steps)


def _wd_grad_filter(model, weight_decay):  # keeps only parameters that already have a gradient
    ps = [p for p in model.parameters() if p.grad is not None]
    return [{"params": [p for p in ps if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in ps if p.dim() < 2], "weight_decay": 0.0}]


def _wd_drops_frozen_matrix(model, weight_decay):  # decays the 2-D tensors that are not embeddings
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return [{"params": [p for n, p in named if p.dim() >= 2 and "wpe" not in n and "wte" not in n],
             "weight_decay": weight_decay},
            {"params": [p for n, p in named if p.dim() < 2 or "wpe" in n or "wte" in n], "weight_decay": 0.0}]


def _step_no_guard_small(model, optimizer, x, y, grad_clip):  # clips with max(grad_clip, 1e-6)
    optimizer.zero_grad()
    _, loss = model(x, y)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max(grad_clip, 1e-6))
    optimizer.step()
    return loss.item()


def _step_clip_free_skipped(model, optimizer, x, y, grad_clip):  # "no clip needed": skips the step
    optimizer.zero_grad()
    _, loss = model(x, y)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip) if grad_clip > 0 else None
    if norm is None or norm > grad_clip:
        optimizer.step()
    return loss.item()


REGIME_WRONG = [
    (ch05.check_lr_at, _lr_cos_squared, "your function raised ZeroDivisionError", "no-decay"),
    (ch05.check_lr_at, _lr_numpy_float32, "your function raised ZeroDivisionError", "no-decay"),
    (ch05.check_lr_at, _lr_torch_clamped, "every failing case is one where warmup_steps = max_steps",
     "no-decay"),
    (ch05.check_param_groups, _wd_grad_filter, "parameters missing from the groups", "tied"),
    (ch05.check_param_groups, _wd_drops_frozen_matrix, "the embeddings do not decay", "frozen"),
    (ch05.check_train_step, _step_no_guard_small, "clipped even with grad_clip=0", "no-clip"),
    (ch05.check_train_step, _step_clip_free_skipped, "never changed the weights", "clip-free"),
]
WRONG.append((ch05.check_lr_at, _lr_ones_based, "counted the steps from 1"))

RIGHT = [
    (ch05.check_lr_at, _lr_guarded_float32),
    (ch05.check_lr_at, _lr_table),
    (ch05.check_lr_at, _lr_torch),
    (ch05.check_param_groups, _wd_frozen_included),
    (ch05.check_param_groups, _wd_generator),
    (ch05.check_param_groups, _wd_by_shape_names),
    (ch05.check_train_step, _step_manual_clip),
    (ch05.check_train_step, _step_optimizer_params),
    (ch05.check_train_step, _step_closure),
]


for _check in (ch05.check_lr_at, ch05.check_param_groups, ch05.check_train_step):  # one table each
    _name = _check.__name__.removeprefix("check_")
    _wrong = [(w.__name__, w, phrase) for c, w, phrase in WRONG if c is _check]
    _wrong += [(w.__name__, w, phrase, regime) for c, w, phrase, regime in REGIME_WRONG if c is _check]
    globals()[f"test_{_name}_wrong_fails"], globals()[f"test_{_name}_variant_passes"] = table_tests(
        _check, _wrong, [(r.__name__, r) for c, r in RIGHT if c is _check])


def test_cases_are_in_the_regimes_they_name():
    for case in ch05.LR_CASES:
        _, _, warmup, max_steps = case
        for regime in case.regime:
            assert regime in ch05.LR_REGIMES
            assert {"no-warmup": warmup == 0, "no-decay": warmup == max_steps,
                    "short-warmup": warmup == 1}[regime], regime
    models = ch05._tiny_models()
    for case in ch05.GROUP_CASES:
        model = models[case[0]]
        for regime in case.regime:
            holds = {"tied": model.lm_head.weight is model.wte.weight,
                     "3d-tables": any(p.dim() == 3 for p in model.parameters()),
                     "frozen": any(not p.requires_grad for p in model.parameters())}[regime]
            assert holds, regime
    for case in ch05.STEP_CASES:
        model, _, x, y = ch05.step_setup(case[0])
        for p in model.parameters():
            p.grad = None
        model(x, y)[1].backward()
        norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), float("inf")))
        for regime in case.regime:
            assert regime in ch05.STEP_REGIMES
            assert {"clip-binds": 0 < case[1] < norm, "clip-free": case[1] > norm,
                    "no-clip": case[1] == 0}[regime], (regime, norm)


@pytest.mark.parametrize("check", [ch05.check_lr_at, ch05.check_param_groups, ch05.check_train_step])
def test_every_check_fails_on_its_stub(check):
    def stub(*args):
        raise NotImplementedError()

    _raises(check, stub, "not implemented yet")
