"""The chapter 08 checks pass correct answers (written several ways) and diagnose known mistakes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from check_contract import table_tests

from mosaics_edu.course import inspection
from mosaics_edu.course.checks import CheckFailed, ch08
from mosaics_edu.models import GPT, MemoryMosaicLM


def _raises(check, fn, *fragments):
    with pytest.raises(CheckFailed) as err:
        check(fn)
    for f in fragments:
        assert f in str(err.value), str(err.value)


# ---- 7.1 induction score ---------------------------------------------------------------------


def induction_loops(weights, ids):
    H, T, _ = weights.shape
    out = []
    for h in range(H):
        masses = [
            sum(weights[h, t, s] for s in range(t) if ids[s] == ids[t])
            for t in range(T)
            if any(ids[s] == ids[t] for s in range(t))
        ]
        out.append(np.mean(masses))
    return np.array(out)


def induction_torch_float32(weights, ids):
    w = torch.as_tensor(weights, dtype=torch.float32)
    x = torch.as_tensor(ids)
    same = (x[None, :] == x[:, None]) & torch.ones(len(x), len(x), dtype=torch.bool).tril(-1)
    rows = same.any(-1)
    return (w * same).sum(-1)[:, rows].mean(-1)


def test_induction_correct_variants_pass(capsys):
    for fn in (ch08.reference_induction_score, induction_loops, induction_torch_float32):
        ch08.check_induction_score(fn)
    assert capsys.readouterr().out.count("passed") == 3


@pytest.mark.parametrize("diagnosis", list(ch08.INDUCTION_MISTAKES))
def test_every_induction_mistake_is_diagnosed(diagnosis):
    flags = ch08.INDUCTION_MISTAKES[diagnosis]
    _raises(ch08.check_induction_score, lambda w, x: ch08._induction_variant(w, x, **flags), diagnosis)


def test_induction_other_wrong_answers():
    def in_place(weights, ids):
        weights *= 1.0  # harmless numerically, but the check must still notice a changed argument
        weights[:, 0, 0] = 5.0
        return ch08.reference_induction_score(weights, ids)

    _raises(ch08.check_induction_score, in_place, "in place")
    _raises(ch08.check_induction_score, lambda w, x: np.ones(w.shape[0]), "wrong")
    _raises(
        ch08.check_induction_score, lambda w, x: ch08.reference_induction_score(w, np.zeros_like(x)), "wrong"
    )

    def stub(weights, ids):
        raise NotImplementedError()

    _raises(ch08.check_induction_score, stub, "not implemented")


# ---- 7.2 direct logit attribution ------------------------------------------------------------


def dla_numpy(component, residual, gain, unembed, scale, eps):
    c, r = component.numpy().astype(np.float64), residual.numpy().astype(np.float64)
    sigma = np.sqrt(((r - r.mean(-1, keepdims=True)) ** 2).mean(-1) + eps)
    return ((c - c.mean(-1, keepdims=True)) @ np.diag(gain.numpy()) * unembed.numpy()).sum(-1) * scale / sigma


def dla_layernorm(component, residual, gain, unembed, scale, eps):
    """Through torch's own layer_norm: LN(residual) minus LN(residual - component), in the
    linear regime where σ is held fixed (the difference of two centred vectors over one σ)."""
    sigma = torch.sqrt(residual.var(-1, unbiased=False, keepdim=True) + eps)
    normed = torch.nn.functional.layer_norm(
        component * 0 + (component - component.mean(-1, keepdim=True)),
        component.shape[-1:],
        weight=gain,
        eps=0.0,
    )
    own = torch.sqrt(component.var(-1, unbiased=False, keepdim=True))
    return (normed * own / sigma * unembed).sum(-1) * scale


def test_dla_correct_variants_pass(capsys):
    for fn in (ch08.reference_direct_logit_attribution, dla_numpy, dla_layernorm):
        ch08.check_direct_logit_attribution(fn)
    assert capsys.readouterr().out.count("passed") == 3


@pytest.mark.parametrize("diagnosis", list(ch08.DLA_MISTAKES))
def test_every_dla_mistake_is_diagnosed(diagnosis):
    flags = ch08.DLA_MISTAKES[diagnosis]
    _raises(ch08.check_direct_logit_attribution, lambda *a: ch08._dla_variant(*a, **flags), diagnosis)


def test_dla_other_wrong_answers():
    def half(component, residual, gain, unembed, scale, eps):
        return ch08.reference_direct_logit_attribution(component, residual, gain, unembed, scale, eps).half()

    _raises(ch08.check_direct_logit_attribution, half, "wrong")

    def in_place(component, residual, gain, unembed, scale, eps):
        component -= component.mean(-1, keepdim=True)
        return ch08.reference_direct_logit_attribution(component, residual, gain, unembed, scale, eps)

    _raises(ch08.check_direct_logit_attribution, in_place, "in place")


def test_dla_reference_is_the_packages_attribution():
    """The exercise's formula, applied to a real model's component, gives inspection's share."""
    from mosaics_edu import models

    torch.manual_seed(0)
    model = models.MemoryMosaicLM(
        models.MosaicConfig(vocab_size=30, block_size=16, n_layer=2, n_head=2, n_embd=16)
    )
    idx = torch.randint(0, 30, (1, 12))
    targets = torch.roll(idx, -1, 1)
    tr = inspection.trace(model, idx)
    att = inspection.logit_attribution(model, idx, targets)
    got = ch08.reference_direct_logit_attribution(
        tr.components["block1.pmem"][0],
        tr.residual[0],
        model.ln_f.weight,
        model.lm_head.weight[targets[0]],
        16**-0.5,
        model.ln_f.eps,
    )
    torch.testing.assert_close(got, att["block1.pmem"][0])


# ---- 7.3 ablate a head with a hook before W_o --------------------------------------------------


def ablate_clone(memory, head):
    hs = memory.c_proj.in_features // memory.n_head

    def zero_head(module, inputs):
        y = inputs[0].clone()  # (B, T, d): the heads side by side
        y[..., head * hs:(head + 1) * hs] = 0
        return (y,)

    return memory.c_proj.register_forward_pre_hook(zero_head)


def test_ablate_head_reference_passes_and_a_stub_fails(capsys):
    ch08.check_ablate_head(ablate_clone)
    assert "passed" in capsys.readouterr().out
    with pytest.raises(CheckFailed, match="not implemented yet"):
        ch08.check_ablate_head(lambda memory, head: (_ for _ in ()).throw(NotImplementedError()))


@pytest.mark.parametrize("diagnosis", list(ch08.ABLATE_MISTAKES))
def test_every_ablation_mistake_is_diagnosed(diagnosis):
    flags = ch08.ABLATE_MISTAKES[diagnosis]
    _raises(ch08.check_ablate_head, lambda m, h: ch08._ablate_variant(m, h, **flags), diagnosis)


def test_the_models_of_the_cases_carry_no_hook_afterwards():
    ch08.check_ablate_head(ablate_clone)
    for kind, (model, _, _) in ch08._story_models().items():
        assert not ch08._hooks(model), kind


# ---- tables: wrong answers (several in the regimes of the cases) and correct variants -----------


def i_zero_when_none(weights, ids):  # returns 0 when no query qualifies
    T = len(ids)
    same = (ids[None, :] == ids[:, None]) & np.tri(T, k=-1, dtype=bool)
    rows = same.any(1)
    if not rows.any():
        return np.zeros(weights.shape[0])
    return (weights * same).sum(-1)[:, rows].mean(-1)


def i_all_rows(weights, ids):  # averages over every query t >= 1
    T = len(ids)
    same = (ids[None, :] == ids[:, None]) & np.tri(T, k=-1, dtype=bool)
    return (weights * same).sum(-1)[:, 1:].mean(-1)


def i_next_token(weights, ids):  # the mass on pairs holding the token to predict
    nxt = np.r_[ids[1:], -1]
    T = len(ids)
    cond = (ids[None, :] == nxt[:, None]) & np.tri(T, k=-1, dtype=bool)
    rows = cond.any(1)
    return (weights * cond).sum(-1)[:, rows].mean(-1)


def i_max_not_mean(weights, ids):
    T = len(ids)
    same = (ids[None, :] == ids[:, None]) & np.tri(T, k=-1, dtype=bool)
    rows = same.any(1)
    return (weights * same).sum(-1)[:, rows].max(-1) if rows.any() else np.full(len(weights), np.nan)


def i_in_place(weights, ids):
    weights[:, 0, 0] = 5.0
    return ch08.reference_induction_score(weights, ids)


INDUCTION_WRONG = [
    ("zero-when-none", i_zero_when_none, "returned 0 where no query's token occurred before", "no-copy"),
    ("all-rows", i_all_rows, "averaged over every position t ≥ 1", "few-queries"),
    ("next-token", i_next_token, "matched the token to predict"),
    ("max-not-mean", i_max_not_mean, "entries differ"),
    ("in-place", i_in_place, "in place"),
    ("ones", lambda w, x: np.ones(w.shape[0]), "wrong"),
    ("ignores-ids", lambda w, x: ch08.reference_induction_score(w, np.zeros_like(x)), "wrong"),
]
INDUCTION_RIGHT = [("package", ch08.reference_induction_score), ("loops", induction_loops),
                   ("torch-float32", induction_torch_float32)]


def d_eps_outside(component, residual, gain, unembed, scale, eps):
    sigma = residual.std(-1, unbiased=False) + eps
    return ((component - component.mean(-1, keepdim=True)) * gain * unembed).sum(-1) * scale / sigma


def d_no_eps(component, residual, gain, unembed, scale, eps):
    sigma = residual.var(-1, unbiased=False).sqrt()
    return ((component - component.mean(-1, keepdim=True)) * gain * unembed).sum(-1) * scale / sigma


def d_divides_scale(component, residual, gain, unembed, scale, eps):
    sigma = torch.sqrt(residual.var(-1, unbiased=False) + eps)
    return ((component - component.mean(-1, keepdim=True)) * gain * unembed).sum(-1) / scale / sigma


def d_centres_residual(component, residual, gain, unembed, scale, eps):  # subtracts the residual's mean
    sigma = torch.sqrt(residual.var(-1, unbiased=False) + eps)
    return ((component - residual.mean(-1, keepdim=True)) * gain * unembed).sum(-1) * scale / sigma


def d_torch_var(component, residual, gain, unembed, scale, eps):  # torch's default var: unbiased
    sigma = torch.sqrt(residual.var(-1) + eps)
    return ((component - component.mean(-1, keepdim=True)) * gain * unembed).sum(-1) * scale / sigma


DLA_WRONG = [
    ("eps-outside", d_eps_outside, "added ε outside the square root", "tiny-variance"),
    ("no-eps", d_no_eps, "left out ε", "tiny-variance"),
    ("divides-scale", d_divides_scale, "divided by the head's scale", "scale-not-one"),
    ("centres-residual", d_centres_residual, "entries differ"),
    ("torch-default-var", d_torch_var, "used the unbiased variance"),
    ("half", lambda *a: ch08.reference_direct_logit_attribution(*a).half(), "float16"),
    ("in-place", lambda c, r, g, u, s, e: ch08.reference_direct_logit_attribution(
        c.sub_(c.mean(-1, keepdim=True)), r, g, u, s, e), "in place"),
]


def d_einsum(component, residual, gain, unembed, scale, eps):
    c = component - component.mean(-1, keepdim=True)
    return torch.einsum("nd,d,nd->n", c, gain, unembed) * scale * torch.rsqrt(
        residual.var(-1, unbiased=False) + eps)


DLA_RIGHT = [("numpy", dla_numpy), ("layer-norm", dla_layernorm), ("einsum", d_einsum)]


def a_output_hook(memory, head):  # a forward hook: W_o's output, not its input
    hs = memory.c_proj.in_features // memory.n_head

    def zero(module, inputs, output):
        output = output.clone()
        output[..., head * hs:(head + 1) * hs] = 0
        return output

    return memory.c_proj.register_forward_hook(zero)


def a_from_one(memory, head):  # heads counted from 1
    hs = memory.c_proj.in_features // memory.n_head
    return memory.c_proj.register_forward_pre_hook(
        lambda m, inp: (inp[0] * (torch.arange(inp[0].shape[-1]) // hs != head - 1),))


def a_no_return(memory, head):  # forgets to return the handle
    ablate_clone(memory, head)


def a_zero_weights(memory, head):  # edits W_o's weights instead of hooking
    hs = memory.c_proj.in_features // memory.n_head
    with torch.no_grad():
        memory.c_proj.weight[:, head * hs:(head + 1) * hs] = 0
    return memory.c_proj.register_forward_pre_hook(lambda m, inp: None)


def a_head_size(memory, head):  # the mosaic's attribute: the GPT's attention has none
    def zero(module, inputs):
        y = inputs[0].clone()
        y[..., head * memory.head_size:(head + 1) * memory.head_size] = 0
        return (y,)

    return memory.c_proj.register_forward_pre_hook(zero)


def a_first_sequence(memory, head):  # zeroes the head in the first sequence only
    hs = memory.c_proj.in_features // memory.n_head

    def zero(module, inputs):
        y = inputs[0].clone()
        y[0, :, head * hs:(head + 1) * hs] = 0
        return (y,)

    return memory.c_proj.register_forward_pre_hook(zero)


def a_from_the_end(memory, head):  # counts from the end: [-hs:-0] is empty for the last head
    H = memory.n_head
    hs = memory.c_proj.in_features // H

    def zero(module, inputs):
        y = inputs[0].clone()
        y[..., -(H - head) * hs:-(H - head - 1) * hs] = 0
        return (y,)

    return memory.c_proj.register_forward_pre_hook(zero)


def a_two_hooks(memory, head):  # registers the hook twice, returns one handle
    ablate_clone(memory, head)
    return ablate_clone(memory, head)


def a_always_head_zero(memory, head):
    return ablate_clone(memory, 0)


ABLATE_WRONG = [
    ("output-hook", a_output_hook, "zeroed features of W_o's *output*"),
    ("from-one", a_from_one, "counted the heads from 1"),
    ("no-return", a_no_return, "not the handle"),
    ("zero-weights", a_zero_weights, "changed the weights `c_proj.weight` of `memory` in place"),
    ("head-size", a_head_size, "raised AttributeError", "gpt"),
    ("first-sequence", a_first_sequence, "idx holds two sequences", "batch"),
    ("from-the-end", a_from_the_end, "the head is the last one", "last-head"),
    ("two-hooks", a_two_hooks, "a hook is still registered"),
    ("head-zero", a_always_head_zero, "ignores its argument `head`"),
]


def ablate_mask(memory, head):  # a (H, hs) mask over a view of the heads
    H = memory.n_head

    def zero(module, inputs):
        B, T, d = inputs[0].shape
        keep = torch.ones(H, 1)
        keep[head] = 0
        return ((inputs[0].view(B, T, H, d // H) * keep).reshape(B, T, d),)

    return memory.c_proj.register_forward_pre_hook(zero)


def ablate_in_place(memory, head):  # edits the hook's input in place (a fresh tensor here)
    hs = memory.c_proj.in_features // memory.n_head

    def zero(module, inputs):
        inputs[0][..., head * hs:(head + 1) * hs] = 0

    return memory.c_proj.register_forward_pre_hook(zero)


def ablate_cat(memory, head):
    hs = memory.c_proj.in_features // memory.n_head

    def zero(module, inputs):
        y = inputs[0]
        parts = list(y.split(hs, dim=-1))  # H blocks of (B, T, hs)
        parts[head] = torch.zeros_like(parts[head])
        return (torch.cat(parts, dim=-1),)

    return memory.c_proj.register_forward_pre_hook(zero)


ABLATE_RIGHT = [("clone", ablate_clone), ("mask", ablate_mask), ("in-place", ablate_in_place),
                ("cat", ablate_cat)]

test_induction_wrong, test_induction_right = table_tests(ch08.check_induction_score, INDUCTION_WRONG,
                                                         INDUCTION_RIGHT)
test_dla_wrong, test_dla_right = table_tests(ch08.check_direct_logit_attribution, DLA_WRONG, DLA_RIGHT)
test_ablate_wrong, test_ablate_right = table_tests(ch08.check_ablate_head, ABLATE_WRONG, ABLATE_RIGHT)


def test_cases_are_in_the_regimes_they_name():
    for case in ch08.induction_cases():
        w, ids = case
        T = len(ids)
        qualifies = ((ids[None, :] == ids[:, None]) & np.tri(T, k=-1, dtype=bool)).any(1)
        for regime in case.regime:
            assert regime in ch08.INDUCTION_REGIMES
            assert {"no-copy": not qualifies.any(), "few-queries": 0 < qualifies[1:].sum() < T - 1,
                    "one-head": w.shape[0] == 1}[regime], regime
    for case in ch08.dla_cases():
        _, resid, _, _, scale, eps = case
        for regime in case.regime:
            assert regime in ch08.DLA_REGIMES
            assert {"tiny-variance": bool(resid.var(-1, unbiased=False).min() <= eps),
                    "large-eps": eps >= 0.1, "scale-not-one": scale != 1.0}[regime], regime
    for case in ch08.ablation_cases():
        model, idx, _, layer, head = case
        for regime in case.regime:
            assert regime in ch08.ABLATE_REGIMES
            assert {"mosaic": isinstance(model, MemoryMosaicLM), "gpt": isinstance(model, GPT),
                    "first-head": head == 0, "last-head": head == model.config.n_head - 1,
                    "batch": idx.shape[0] >= 2}[regime], regime
