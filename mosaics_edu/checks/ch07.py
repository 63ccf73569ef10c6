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
from . import Case, compare, notebook_check

CHAPTER = "07_looking_inside"
H1, H2, H3 = "(see hint 1 above)", "(see hint 2 above)", "(see hint 3 above)"

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
    "induction_cases",
    "dla_cases",
    "loss_change_cases",
    "INDUCTION_REGIMES",
    "DLA_REGIMES",
    "LOSS_CHANGE_REGIMES",
]


# --------------------------------------------------------------------------------------------
# exercise 7.1: the induction score from a retrieval map
# --------------------------------------------------------------------------------------------


def reference_induction_score(weights: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """weights (H, T, T) of a mosaic block, ids (T,) -> (H,)."""
    return inspection.head_scores(weights, ids, offset=1)["induction"]


def _induction_variant(weights, ids, *, rows="eligible", match="current", transpose=False, reduce="mean",
                       empty="nan"):
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
    if not eligible.any():
        return np.full(len(w), np.nan if empty == "nan" else 0.0)
    if reduce == "sum":
        return mass[:, eligible].sum(-1)
    return mass[:, eligible].mean(-1)


INDUCTION_MISTAKES: dict[str, dict] = {
    f"averaged over every query position, also those whose token never occurred before (their "
    f"mass is 0 by definition); average over the queries that have an earlier copy only {H2}":
        {"rows": "all"},
    f"averaged over every position t ≥ 1 instead of only those whose token occurred before {H2}":
        {"rows": "from1"},
    f"matched the token before s (x_{{s-1}} = x_t): that is a GPT's induction rule, whose value at s "
    f"is position s itself; a mosaic's value at s already peeks at s + 1, so match x_s = x_t {H1}": {
        "match": "gpt"
    },
    f"matched the token to predict (x_s = x_{{t+1}}) instead of the current token x_t {H1}":
        {"match": "target"},
    f"read the map transposed: weights[h, t, s] is query t's weight on stored pair s (rows are "
    f"queries) {H2}": {"transpose": True},
    f"summed the mass over the queries instead of averaging it {H2}": {"reduce": "sum"},
    f"returned 0 where no query's token occurred before; that mean over no query is nan "
    f"(np.full(H, np.nan)) {H3}": {"empty": "zero"},
}

INDUCTION_REGIMES = {
    "no-copy": f"no token occurs twice, so no query qualifies: the score is nan for every head {H3}",
    "few-queries": f"only some queries have an earlier copy of their token: average over those "
                   f"alone {H2}",
    "one-head": f"the map has a single head {H2}",
}


def induction_cases() -> list[Case]:
    rng = np.random.default_rng(7)
    cases = []
    for H, T, vocab in ((3, 20, 5), (2, 12, 4)):
        logits = rng.normal(size=(H, T, T)) * 2
        mask = np.tril(np.ones((T, T), dtype=bool), k=-1)
        w = np.where(mask, np.exp(logits), 0.0)
        w[:, 1:] /= w[:, 1:].sum(-1, keepdims=True)
        cases.append(Case(w, rng.integers(0, vocab, size=T), regime="few-queries",
                          why=f"{H} heads, random weights, {vocab} token ids"))
    ids = np.array([3, 1, 2, 0, 3, 1, 2, 0, 3, 1])  # a perfect induction head, then a uniform one
    w = np.zeros((2, 10, 10))
    for t in range(1, 10):
        w[1, t, :t] = 1.0 / t
        if t >= 4:
            w[0, t, t - 4] = 1.0
        else:
            w[0, t, :t] = 1.0 / t
    cases.append(Case(w, ids, regime="few-queries", why="a perfect induction head (1.0) and a uniform one"))
    u = np.zeros((1, 5, 5))
    for t in range(1, 5):
        u[0, t, :t] = 1.0 / t
    cases.append(Case(u, np.array([4, 0, 3, 1, 2]), regime=("no-copy", "one-head"),
                      why="no token occurs twice: no query qualifies"))
    cases.append(Case(u, np.array([2, 2, 2, 2, 2]), regime="one-head",
                      why="one token repeated: every t ≥ 1 qualifies"))
    return cases


@notebook_check
def check_induction_score(induction_score: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
    """Exercise 7.1: per-head induction score of a mosaic's (H, T, T) retrieval map."""
    compare(
        CHAPTER,
        "induction_score",
        induction_score,
        reference_induction_score,
        induction_cases(),
        mistakes={
            d: (lambda w, x, f=f: _induction_variant(w, x, **f)) for d, f in INDUCTION_MISTAKES.items()
        },
        arg_names=("weights", "ids"),
        regimes=INDUCTION_REGIMES,
        rebuild="ch07.induction_cases()[{k}]",
        hint=f"For each head: mass[t] = Σ_{{s<t, ids[s] == ids[t]}} weights[h, t, s]; average it over the "
        f"t that have such an s {H2}.",
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
    use_scale="multiply",
    eps_where="inside",
):
    source = residual if sigma_of == "residual" else component
    var = source.var(-1, unbiased=unbiased)
    sigma = {"inside": torch.sqrt(var + eps), "outside": torch.sqrt(var) + eps,
             "none": torch.sqrt(var)}[eps_where]
    c = component - component.mean(-1, keepdim=True) if centre else component
    g = gain if use_gain else torch.ones_like(gain)
    factor = {"multiply": scale, "none": 1.0, "divide": 1.0 / scale}[use_scale]
    return (c * g * unembed).sum(-1) * factor / sigma


DLA_MISTAKES: dict[str, dict] = {
    f"did not centre the component: the LayerNorm subtracts the mean over features, and the "
    f"residual's mean is the sum of the components' means, so subtract component.mean(-1) {H2}":
        {"centre": False},
    f"divided by the component's own standard deviation; σ is the residual's (the LayerNorm sees "
    f"the sum of all components), held fixed {H2}": {"sigma_of": "component"},
    f"used the unbiased variance (n - 1); LayerNorm divides by n (unbiased=False) {H3}": {"unbiased": True},
    f"left out the LayerNorm's gain g {H2}": {"use_gain": False},
    f"left out the head's scale (the mosaic multiplies by 1/√d before the tied head) {H2}":
        {"use_scale": "none"},
    f"divided by the head's scale; it multiplies (scale is 1/√d already) {H2}": {"use_scale": "divide"},
    f"left out ε: σ = sqrt(var + ε), which matters when the residual's variance is as small as ε {H3}":
        {"eps_where": "none"},
    f"added ε outside the square root; LayerNorm uses σ = sqrt(var + ε) {H3}": {"eps_where": "outside"},
}

DLA_REGIMES = {
    "tiny-variance": f"some residual has a variance no larger than ε, so where ε goes decides σ {H3}",
    "large-eps": f"ε is large (0.5), so leaving it out or moving it outside the square root shows {H3}",
    "scale-not-one": f"the scale is not 1, so multiplying and dividing by it differ {H2}",
}


def dla_cases() -> list[Case]:
    g = torch.Generator().manual_seed(11)
    cases = []
    for N, d, scale, eps, noise, regime, why in (
            (6, 16, 0.25, 1e-5, 2.0, ("scale-not-one",), "a mosaic's scale 1/√16"),
            (4, 8, 1.0, 1e-5, 2.0, (), "scale 1"),
            (5, 12, 12**-0.5, 1e-5, 1e-3, ("tiny-variance", "scale-not-one"),
             "residuals of variance about 1e-6, below ε = 1e-5"),
            (3, 8, 0.5, 0.5, 0.3, ("large-eps", "tiny-variance", "scale-not-one"), "ε = 0.5")):
        comp = torch.randn(N, d, generator=g) * min(1.0, 10 * noise) + 0.7  # a clear mean: centring matters
        resid = comp * min(1.0, noise) + noise * torch.randn(N, d, generator=g)
        gain = 1.0 + 0.5 * torch.randn(d, generator=g)
        unembed = torch.randn(N, d, generator=g)
        cases.append(Case(comp, resid, gain, unembed, scale, eps, regime=regime, why=why))
    return cases


@notebook_check
def check_direct_logit_attribution(direct_logit_attribution: Callable[..., torch.Tensor]) -> None:
    """Exercise 7.2: one component's direct share of the target logit, per position."""
    compare(
        CHAPTER,
        "direct_logit_attribution",
        direct_logit_attribution,
        reference_direct_logit_attribution,
        dla_cases(),
        mistakes={d: (lambda *a, f=f: _dla_variant(*a, **f)) for d, f in DLA_MISTAKES.items()},
        arg_names=("component", "residual", "gain", "unembed", "scale", "eps"),
        regimes=DLA_REGIMES,
        rebuild="ch07.dla_cases()[{k}]",
        hint=f"share = Σ_features (component - its mean) · gain · unembed · scale / "
        f"sqrt(var(residual) + eps), with the biased variance {H2}.",
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
    model, idx, targets, layer, head, is_name, *, sign=1.0, swap=False, pooled=False, which=None,
    per_sequence=False,
):
    if which == "swapped":
        layer, head = head, layer
    ablate = [(layer, "cmem", None if which == "memory" else head)]
    full = inspection.per_token_loss(model, idx, targets)
    diff = sign * (inspection.per_token_loss(model, idx, targets, ablate=ablate) - full)
    if pooled:
        m = float(diff.mean())
        return m, m
    if per_sequence:  # the mean of each sequence's mean: equal to the pooled mean only for equal groups
        rows = range(len(diff))
        return (float(np.mean([float(diff[b][is_name[b]].mean()) for b in rows])),
                float(np.mean([float(diff[b][~is_name[b]].mean()) for b in rows])))
    a, b = float(diff[is_name].mean()), float(diff[~is_name].mean())
    return (b, a) if swap else (a, b)


LOSS_CHANGE_MISTAKES: dict[str, dict] = {
    f"returned intact minus ablated; the change is ablated minus intact (a head that helps gives a "
    f"positive change) {H2}": {"sign": -1.0},
    f"returned the two groups in the wrong order: (names, others) {H2}": {"swap": True},
    f"averaged over every target instead of per group {H2}": {"pooled": True},
    f"zeroed the whole contextual memory of the block instead of one head {H3}": {"which": "memory"},
    f"swapped layer and head in the ablation {H3}": {"which": "swapped"},
    f"averaged the sequences' means: with sequences holding different numbers of name targets, the "
    f"mean over all the name targets together is not the mean of per-sequence means {H2}":
        {"per_sequence": True},
}

LOSS_CHANGE_REGIMES = {
    "unequal-groups": f"the sequences hold different numbers of name targets, so a mean of "
                      f"per-sequence means differs from the mean over all targets {H2}",
    "equal-groups": f"every sequence holds the same number of name targets {H2}",
}


def loss_change_cases() -> list[Case]:
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
    uneven = is_name.clone()
    uneven[1, 11:19] = False  # the second sequence: 3 name targets, the first: 11
    return [Case(model, idx, targets, 1, 0, is_name, regime="equal-groups", why="block 1, head 0"),
            Case(model, idx, targets, 0, 1, is_name, regime="equal-groups", why="block 0, head 1"),
            Case(model, idx, targets, 1, 1, uneven, regime="unequal-groups",
                 why="block 1, head 1; 11 name targets in one sequence, 3 in the other")]


@notebook_check
def check_loss_change(loss_change: Callable[..., tuple[float, float]]) -> None:
    """Exercise 7.3: ablate one contextual-memory head; mean loss change on names and on the rest."""
    compare(
        CHAPTER,
        "loss_change",
        loss_change,
        reference_loss_change,
        loss_change_cases(),
        mistakes={
            d: (lambda *a, f=f: _loss_change_variant(*a, **f)) for d, f in LOSS_CHANGE_MISTAKES.items()
        },
        arg_names=("model", "idx", "targets", "layer", "head", "is_name"),
        regimes=LOSS_CHANGE_REGIMES,
        rebuild="ch07.loss_change_cases()[{k}]",
        items=("the change on names", "the change on the others"),
        float32_probe=False,
        atol=1e-5,  # two float32 losses of ~3 nats subtracted: the order of the sums shows at 1e-6
        hint=f"Use inspection.per_token_loss with and without ablate=[(layer, 'cmem', head)]; return "
        f"(mean of the difference where is_name, mean where not) {H2}.",
    )
