"""Checks for chapter 07 (Looking inside a trained mosaic).

Three exercises, each compared with :mod:`mosaics_edu.inspection`:

- ``induction_score(weights, ids)`` — per head, the retrieval mass on the stored pairs whose
  token equals the current one, averaged over the queries whose token occurred before
  (reference: ``inspection.head_scores(weights, ids, offset=1)["induction"]``);
- ``direct_logit_attribution(component, residual, gain, unembed, scale, eps)`` — one residual
  component's direct share of the target logits, through the final LayerNorm with its σ held at
  the full residual's value (reference: the formula of ``inspection.logit_attribution``);
- ``loss_change(model, idx, targets, layer, head, is_name)`` — ablate one contextual-memory head
  and return the mean loss change on the name targets and on the others (reference: two means of
  ``inspection.per_token_loss`` differences).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .. import inspection, models
from . import compare

CHAPTER = "07_looking_inside"

__all__ = [
    "check_induction_score",
    "check_direct_logit_attribution",
    "check_loss_change",
    "reference_induction_score",
    "reference_direct_logit_attribution",
    "reference_loss_change",
    "INDUCTION_MISTAKES",
    "DLA_MISTAKES",
    "LOSS_CHANGE_MISTAKES",
]


# --------------------------------------------------------------------------------------------
# exercise 7.1: the induction score from a retrieval map
# --------------------------------------------------------------------------------------------


def reference_induction_score(weights: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """weights (H, T, T) of a mosaic block, ids (T,) -> (H,)."""
    return inspection.head_scores(weights, ids, offset=1)["induction"]


def _induction_variant(weights, ids, *, rows="eligible", match="current", transpose=False, reduce="mean"):
    w = np.asarray(weights, dtype=np.float64)
    if transpose:
        w = np.swapaxes(w, -1, -2)
    x = np.asarray(ids)
    T = len(x)
    s_idx, t_idx = np.arange(T)[None, :], np.arange(T)[:, None]
    past = s_idx < t_idx
    if match == "current":
        cond = (x[None, :] == x[:, None]) & past
    elif match == "gpt":  # the token *before* s equals the current one
        prev = np.concatenate([[-1], x[:-1]])
        cond = (prev[None, :] == x[:, None]) & (s_idx <= t_idx) & (s_idx >= 1)
    else:  # "target": the token at s equals the one to predict, x_{t+1}
        nxt = np.concatenate([x[1:], [-1]])
        cond = (x[None, :] == nxt[:, None]) & past
    mass = (w * cond[None]).sum(-1)  # (H, T)
    eligible = cond.any(-1) if rows == "eligible" else np.arange(T) >= (1 if rows == "from1" else 0)
    if reduce == "sum":
        return mass[:, eligible].sum(-1)
    return mass[:, eligible].mean(-1)


INDUCTION_MISTAKES: dict[str, dict] = {
    "averaged over every query position, also those whose token never occurred before (their "
    "mass is 0 by definition); average over the queries that have an earlier copy only": {"rows": "all"},
    "averaged over every position t ≥ 1 instead of only those whose token occurred before": {"rows": "from1"},
    "matched the token before s (x_{s-1} = x_t): that is a GPT's induction rule, whose value at s "
    "is position s itself; a mosaic's value at s already peeks at s + 1, so match x_s = x_t": {
        "match": "gpt"
    },
    "matched the token to predict (x_s = x_{t+1}) instead of the current token x_t": {"match": "target"},
    "read the map transposed: weights[h, t, s] is query t's weight on stored pair s (rows are queries)": {
        "transpose": True
    },
    "summed the mass over the queries instead of averaging it": {"reduce": "sum"},
}


def _induction_cases() -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(7)
    cases = []
    for H, T, vocab in ((3, 20, 5), (2, 12, 4)):
        logits = rng.normal(size=(H, T, T)) * 2
        mask = np.tril(np.ones((T, T), dtype=bool), k=-1)
        w = np.where(mask, np.exp(logits), 0.0)
        w[:, 1:] /= w[:, 1:].sum(-1, keepdims=True)
        cases.append((w, rng.integers(0, vocab, size=T)))
    ids = np.array([3, 1, 2, 0, 3, 1, 2, 0, 3, 1])  # a perfect induction head, then a uniform one
    w = np.zeros((2, 10, 10))
    for t in range(1, 10):
        w[1, t, :t] = 1.0 / t
        if t >= 4:
            w[0, t, t - 4] = 1.0
        else:
            w[0, t, :t] = 1.0 / t
    cases.append((w, ids))
    return cases


def check_induction_score(induction_score: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
    """Exercise 7.1: per-head induction score of a mosaic's (H, T, T) retrieval map."""
    compare(
        CHAPTER,
        "induction_score",
        induction_score,
        reference_induction_score,
        _induction_cases(),
        mistakes={
            d: (lambda w, x, f=f: _induction_variant(w, x, **f)) for d, f in INDUCTION_MISTAKES.items()
        },
        arg_names=("weights", "ids"),
        hint="For each head: mass[t] = Σ_{s<t, ids[s] == ids[t]} weights[h, t, s]; average it over the "
        "t that have such an s.",
    )


# --------------------------------------------------------------------------------------------
# exercise 7.2: direct logit attribution of one component
# --------------------------------------------------------------------------------------------


def reference_direct_logit_attribution(
    component: torch.Tensor,
    residual: torch.Tensor,
    gain: torch.Tensor,
    unembed: torch.Tensor,
    scale: float,
    eps: float,
) -> torch.Tensor:
    """component, residual, unembed: (N, d); gain: (d,) -> (N,)."""
    sigma = torch.sqrt(residual.var(-1, unbiased=False) + eps)  # (N,)
    centred = component - component.mean(-1, keepdim=True)  # (N, d)
    return (centred * gain * unembed).sum(-1) * scale / sigma


def _dla_variant(
    component,
    residual,
    gain,
    unembed,
    scale,
    eps,
    *,
    centre=True,
    sigma_of="residual",
    unbiased=False,
    use_gain=True,
    use_scale=True,
):
    source = residual if sigma_of == "residual" else component
    sigma = torch.sqrt(source.var(-1, unbiased=unbiased) + eps)
    c = component - component.mean(-1, keepdim=True) if centre else component
    g = gain if use_gain else torch.ones_like(gain)
    return (c * g * unembed).sum(-1) * (scale if use_scale else 1.0) / sigma


DLA_MISTAKES: dict[str, dict] = {
    "did not centre the component: the LayerNorm subtracts the mean over features, and the "
    "residual's mean is the sum of the components' means, so subtract component.mean(-1)": {"centre": False},
    "divided by the component's own standard deviation; σ is the residual's (the LayerNorm sees "
    "the sum of all components), held fixed": {"sigma_of": "component"},
    "used the unbiased variance (n - 1); LayerNorm divides by n (unbiased=False)": {"unbiased": True},
    "left out the LayerNorm's gain g": {"use_gain": False},
    "left out the head's scale (the mosaic multiplies by 1/√d before the tied head)": {"use_scale": False},
}


def _dla_cases() -> list[tuple]:
    g = torch.Generator().manual_seed(11)
    cases = []
    for N, d, scale in ((6, 16, 0.25), (4, 8, 1.0)):
        comp = torch.randn(N, d, generator=g) + 0.7  # a clear mean, so centring matters
        resid = comp + 2.0 * torch.randn(N, d, generator=g)
        gain = 1.0 + 0.5 * torch.randn(d, generator=g)
        unembed = torch.randn(N, d, generator=g)
        cases.append((comp, resid, gain, unembed, scale, 1e-5))
    return cases


def check_direct_logit_attribution(direct_logit_attribution: Callable[..., torch.Tensor]) -> None:
    """Exercise 7.2: one component's direct share of the target logit, per position."""
    compare(
        CHAPTER,
        "direct_logit_attribution",
        direct_logit_attribution,
        reference_direct_logit_attribution,
        _dla_cases(),
        mistakes={d: (lambda *a, f=f: _dla_variant(*a, **f)) for d, f in DLA_MISTAKES.items()},
        arg_names=("component", "residual", "gain", "unembed", "scale", "eps"),
        hint="share = Σ_features (component - its mean) · gain · unembed · scale / "
        "sqrt(var(residual) + eps), with the biased variance.",
    )


# --------------------------------------------------------------------------------------------
# exercise 7.3: one ablation
# --------------------------------------------------------------------------------------------


def reference_loss_change(
    model: torch.nn.Module,
    idx: torch.Tensor,
    targets: torch.Tensor,
    layer: int,
    head: int,
    is_name: torch.Tensor,
) -> tuple[float, float]:
    """(mean loss change on name targets, on the other targets), ablated minus intact."""
    return inspection.ablation_loss_change(model, idx, targets, (layer, "cmem", head), is_name)


def _loss_change_variant(
    model, idx, targets, layer, head, is_name, *, sign=1.0, swap=False, pooled=False, which=None
):
    if which == "swapped":
        layer, head = head, layer
    ablate = [(layer, "cmem", None if which == "memory" else head)]
    full = inspection.per_token_loss(model, idx, targets)
    diff = sign * (inspection.per_token_loss(model, idx, targets, ablate=ablate) - full)
    if pooled:
        m = float(diff.mean())
        return m, m
    a, b = float(diff[is_name].mean()), float(diff[~is_name].mean())
    return (b, a) if swap else (a, b)


LOSS_CHANGE_MISTAKES: dict[str, dict] = {
    "returned intact minus ablated; the change is ablated minus intact (a head that helps gives a "
    "positive change)": {"sign": -1.0},
    "returned the two groups in the wrong order: (names, others)": {"swap": True},
    "averaged over every target instead of per group": {"pooled": True},
    "zeroed the whole contextual memory of the block instead of one head": {"which": "memory"},
    "swapped layer and head in the ablation": {"which": "swapped"},
}


def _loss_change_cases() -> list[tuple]:
    torch.manual_seed(3)
    model = models.MemoryMosaicLM(
        models.MosaicConfig(vocab_size=24, block_size=24, n_layer=2, n_head=2, n_embd=16)
    )
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.4 * torch.randn(p.shape, generator=g))
    block = torch.randint(0, 24, (2, 8), generator=g)
    idx = torch.cat([block, block, block[:, :4]], dim=1)  # (2, 20): repeats to copy
    targets = torch.roll(idx, -1, 1)
    is_name = torch.zeros_like(idx, dtype=torch.bool)
    is_name[:, 8:19] = True
    return [(model, idx, targets, 1, 0, is_name), (model, idx, targets, 0, 1, is_name)]


def check_loss_change(loss_change: Callable[..., tuple[float, float]]) -> None:
    """Exercise 7.3: ablate one contextual-memory head; mean loss change on names and on the rest."""
    compare(
        CHAPTER,
        "loss_change",
        loss_change,
        reference_loss_change,
        _loss_change_cases(),
        mistakes={
            d: (lambda *a, f=f: _loss_change_variant(*a, **f)) for d, f in LOSS_CHANGE_MISTAKES.items()
        },
        arg_names=("model", "idx", "targets", "layer", "head", "is_name"),
        float32_probe=False,
        atol=1e-5,  # two float32 losses of ~3 nats subtracted: the order of the sums shows at 1e-6
        hint="Use inspection.per_token_loss with and without ablate=[(layer, 'cmem', head)]; return "
        "(mean of the difference where is_name, mean where not).",
    )
