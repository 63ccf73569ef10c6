"""The chapter 07 checks pass correct answers (written several ways) and diagnose known mistakes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from check_contract import table_tests

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
    return ch07.reference_induction_score(weights, ids)


INDUCTION_WRONG = [
    ("zero-when-none", i_zero_when_none, "returned 0 where no query's token occurred before", "no-copy"),
    ("all-rows", i_all_rows, "averaged over every position t ≥ 1", "few-queries"),
    ("next-token", i_next_token, "matched the token to predict"),
    ("max-not-mean", i_max_not_mean, "entries differ"),
    ("in-place", i_in_place, "in place"),
    ("ones", lambda w, x: np.ones(w.shape[0]), "wrong"),
    ("ignores-ids", lambda w, x: ch07.reference_induction_score(w, np.zeros_like(x)), "wrong"),
]
INDUCTION_RIGHT = [("package", ch07.reference_induction_score), ("loops", induction_loops),
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
    ("half", lambda *a: ch07.reference_direct_logit_attribution(*a).half(), "float16"),
    ("in-place", lambda c, r, g, u, s, e: ch07.reference_direct_logit_attribution(
        c.sub_(c.mean(-1, keepdim=True)), r, g, u, s, e), "in place"),
]


def d_einsum(component, residual, gain, unembed, scale, eps):
    c = component - component.mean(-1, keepdim=True)
    return torch.einsum("nd,d,nd->n", c, gain, unembed) * scale * torch.rsqrt(
        residual.var(-1, unbiased=False) + eps)


DLA_RIGHT = [("numpy", dla_numpy), ("layer-norm", dla_layernorm), ("einsum", d_einsum)]


def l_per_sequence(model, idx, targets, layer, head, is_name):  # the mean of per-sequence means
    d = (inspection.per_token_loss(model, idx, targets, ablate=[(layer, "cmem", head)])
         - inspection.per_token_loss(model, idx, targets))
    return (float(np.mean([d[b][is_name[b]].mean().item() for b in range(len(d))])),
            float(np.mean([d[b][~is_name[b]].mean().item() for b in range(len(d))])))


def l_weighted_wrong(model, idx, targets, layer, head, is_name):  # weights each sequence by its length
    d = (inspection.per_token_loss(model, idx, targets, ablate=[(layer, "cmem", head)])
         - inspection.per_token_loss(model, idx, targets))
    names = [d[b][is_name[b]].sum().item() / is_name[0].sum().item() for b in range(len(d))]
    others = [d[b][~is_name[b]].sum().item() / (~is_name[0]).sum().item() for b in range(len(d))]
    return float(np.mean(names)), float(np.mean(others))


def l_pmem(model, idx, targets, layer, head, is_name):
    full = inspection.per_token_loss(model, idx, targets)
    cut = inspection.per_token_loss(model, idx, targets, ablate=[(layer, "pmem", None)])
    d = cut - full
    return d[is_name].mean().item(), d[~is_name].mean().item()


def l_intact_minus_ablated(model, idx, targets, layer, head, is_name):
    d = (inspection.per_token_loss(model, idx, targets)
         - inspection.per_token_loss(model, idx, targets, ablate=[(layer, "cmem", head)]))
    return d[is_name].mean().item(), d[~is_name].mean().item()


def l_losses_not_changes(model, idx, targets, layer, head, is_name):  # the ablated losses themselves
    cut = inspection.per_token_loss(model, idx, targets, ablate=[(layer, "cmem", head)])
    return cut[is_name].mean().item(), cut[~is_name].mean().item()


def l_head_zero(model, idx, targets, layer, head, is_name):  # always head 0
    d = (inspection.per_token_loss(model, idx, targets, ablate=[(layer, "cmem", 0)])
         - inspection.per_token_loss(model, idx, targets))
    return d[is_name].mean().item(), d[~is_name].mean().item()


LOSS_WRONG = [
    ("per-sequence", l_per_sequence, "averaged the sequences' means", "unequal-groups"),
    ("weighted-by-first", l_weighted_wrong, "every failing case is one where the sequences hold different",
     "unequal-groups"),
    ("pmem", l_pmem, "wrong"),
    ("intact-minus-ablated", l_intact_minus_ablated, "returned intact minus ablated"),
    ("losses-not-changes", l_losses_not_changes, "wrong"),
    ("head-zero", l_head_zero, "ignores its argument `head`"),
    ("zeros", lambda *a: (0.0, 0.0), "wrong"),
]


def l_masked_sums(model, idx, targets, layer, head, is_name):
    d = (inspection.per_token_loss(model, idx, targets, ablate=[(layer, "cmem", head)])
         - inspection.per_token_loss(model, idx, targets)).double()
    m = is_name.double()
    return float((d * m).sum() / m.sum()), float((d * (1 - m)).sum() / (1 - m).sum())


LOSS_RIGHT = [("package", ch07.reference_loss_change), ("by-hand", loss_change_by_hand),
              ("masked-sums", l_masked_sums)]

test_induction_wrong, test_induction_right = table_tests(ch07.check_induction_score, INDUCTION_WRONG,
                                                         INDUCTION_RIGHT)
test_dla_wrong, test_dla_right = table_tests(ch07.check_direct_logit_attribution, DLA_WRONG, DLA_RIGHT)
test_loss_wrong, test_loss_right = table_tests(ch07.check_loss_change, LOSS_WRONG, LOSS_RIGHT)


def test_cases_are_in_the_regimes_they_name():
    for case in ch07.induction_cases():
        w, ids = case
        T = len(ids)
        qualifies = ((ids[None, :] == ids[:, None]) & np.tri(T, k=-1, dtype=bool)).any(1)
        for regime in case.regime:
            assert regime in ch07.INDUCTION_REGIMES
            assert {"no-copy": not qualifies.any(), "few-queries": 0 < qualifies[1:].sum() < T - 1,
                    "one-head": w.shape[0] == 1}[regime], regime
    for case in ch07.dla_cases():
        _, resid, _, _, scale, eps = case
        for regime in case.regime:
            assert regime in ch07.DLA_REGIMES
            assert {"tiny-variance": bool(resid.var(-1, unbiased=False).min() <= eps),
                    "large-eps": eps >= 0.1, "scale-not-one": scale != 1.0}[regime], regime
    for case in ch07.loss_change_cases():
        is_name = case[5]
        counts = is_name.sum(1)
        for regime in case.regime:
            assert regime in ch07.LOSS_CHANGE_REGIMES
            assert {"unequal-groups": len(set(counts.tolist())) > 1,
                    "equal-groups": len(set(counts.tolist())) == 1}[regime], regime
