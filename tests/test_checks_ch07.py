"""The chapter 07 checks pass correct answers (written several ways) and diagnose known mistakes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mosaics_edu import inspection
from mosaics_edu.checks import CheckFailed, ch07


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
    for fn in (ch07.reference_induction_score, induction_loops, induction_torch_float32):
        ch07.check_induction_score(fn)
    assert capsys.readouterr().out.count("passed") == 3


@pytest.mark.parametrize("diagnosis", list(ch07.INDUCTION_MISTAKES))
def test_every_induction_mistake_is_diagnosed(diagnosis):
    flags = ch07.INDUCTION_MISTAKES[diagnosis]
    _raises(ch07.check_induction_score, lambda w, x: ch07._induction_variant(w, x, **flags), diagnosis)


def test_induction_other_wrong_answers():
    def in_place(weights, ids):
        weights *= 1.0  # harmless numerically, but the check must still notice a changed argument
        weights[:, 0, 0] = 5.0
        return ch07.reference_induction_score(weights, ids)

    _raises(ch07.check_induction_score, in_place, "in place")
    _raises(ch07.check_induction_score, lambda w, x: np.ones(w.shape[0]), "wrong")
    _raises(
        ch07.check_induction_score, lambda w, x: ch07.reference_induction_score(w, np.zeros_like(x)), "wrong"
    )

    def stub(weights, ids):
        raise NotImplementedError()

    _raises(ch07.check_induction_score, stub, "not implemented")


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
    for fn in (ch07.reference_direct_logit_attribution, dla_numpy, dla_layernorm):
        ch07.check_direct_logit_attribution(fn)
    assert capsys.readouterr().out.count("passed") == 3


@pytest.mark.parametrize("diagnosis", list(ch07.DLA_MISTAKES))
def test_every_dla_mistake_is_diagnosed(diagnosis):
    flags = ch07.DLA_MISTAKES[diagnosis]
    _raises(ch07.check_direct_logit_attribution, lambda *a: ch07._dla_variant(*a, **flags), diagnosis)


def test_dla_other_wrong_answers():
    def half(component, residual, gain, unembed, scale, eps):
        return ch07.reference_direct_logit_attribution(component, residual, gain, unembed, scale, eps).half()

    _raises(ch07.check_direct_logit_attribution, half, "wrong")

    def in_place(component, residual, gain, unembed, scale, eps):
        component -= component.mean(-1, keepdim=True)
        return ch07.reference_direct_logit_attribution(component, residual, gain, unembed, scale, eps)

    _raises(ch07.check_direct_logit_attribution, in_place, "in place")


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
    got = ch07.reference_direct_logit_attribution(
        tr.components["block1.pmem"][0],
        tr.residual[0],
        model.ln_f.weight,
        model.lm_head.weight[targets[0]],
        16**-0.5,
        model.ln_f.eps,
    )
    torch.testing.assert_close(got, att["block1.pmem"][0])


# ---- 7.3 one ablation ------------------------------------------------------------------------


def loss_change_by_hand(model, idx, targets, layer, head, is_name):
    full = inspection.per_token_loss(model, idx, targets)
    cut = inspection.per_token_loss(model, idx, targets, ablate=[(layer, "cmem", head)])
    names = (cut[is_name] - full[is_name]).mean()
    others = cut[~is_name].mean() - full[~is_name].mean()  # mean of a difference = difference of means
    return names.item(), others.item()


def test_loss_change_correct_variants_pass(capsys):
    ch07.check_loss_change(ch07.reference_loss_change)
    ch07.check_loss_change(loss_change_by_hand)
    assert capsys.readouterr().out.count("passed") == 2


@pytest.mark.parametrize("diagnosis", list(ch07.LOSS_CHANGE_MISTAKES))
def test_every_loss_change_mistake_is_diagnosed(diagnosis):
    flags = ch07.LOSS_CHANGE_MISTAKES[diagnosis]
    _raises(ch07.check_loss_change, lambda *a: ch07._loss_change_variant(*a, **flags), diagnosis)


def test_loss_change_other_wrong_answers():
    _raises(ch07.check_loss_change, lambda *a: (0.0, 0.0), "wrong")

    def ablated_pmem(model, idx, targets, layer, head, is_name):
        full = inspection.per_token_loss(model, idx, targets)
        cut = inspection.per_token_loss(model, idx, targets, ablate=[(layer, "pmem", None)])
        d = cut - full
        return d[is_name].mean().item(), d[~is_name].mean().item()

    _raises(ch07.check_loss_change, ablated_pmem, "wrong")
