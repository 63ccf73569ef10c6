"""Looking inside a trained language model: what each memory retrieved, and what it is for.

Pure functions over a :class:`~mosaics_edu.models.MemoryMosaicLM` or its
:class:`~mosaics_edu.models.GPT` twin (chapter 08). Named ``inspection`` so that a notebook's
``import inspect`` (the standard library) is never shadowed.

- :func:`trace`: one forward pass that keeps what the model's own forward throws away: the
  residual stream's components (embedding, each block's contextual and persistent memory, or
  attention and MLP), each head's contribution, and every head's (T, T) retrieval map
  (attention map for the GPT). It can *ablate*: zero one head, or one memory kind of one block.
  The mosaic's retrieval is :func:`mosaics_edu.core.memory.causal_retrieval` itself (its explicit
  weights path), so the map is the one the model computes, not a re-derivation.
- :func:`head_scores`: per head, on held-out text: induction score, same-token mass,
  previous-token mass and recency (mean distance t - s). :func:`head_parameters`: the learned
  decay λ, β and γ of every contextual-memory head next to their initial values.
- :func:`top_pairs` and :func:`explorer_view`: the stored pairs that answered one position.
- :func:`logit_attribution` / :func:`head_logit_attribution`: direct logit attribution of the
  correct next token to every residual component (through the final LayerNorm's scale, held
  fixed, and the tied head).
- :func:`pmem_logit_lens`: which vocabulary items each persistent-memory table row writes.
- :func:`per_token_loss`: the loss at every position, with or without an ablation;
  :func:`ablation_loss_change`: what zeroing one head or memory costs on two groups of targets.

Conventions: ``maps[b, h, t, s]`` is the weight that query position t gives the stored pair s.
A mosaic's value at s peeks at the token at s + 1 (its ``value_offset`` is 1); a GPT's value at
s is made from position s itself (``value_offset`` 0). Position 0 of a mosaic reads an empty
memory (its row is all zero).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core.features import EXP_SCALING
from ..core.memory import attention_weights, causal_retrieval
from ..core.validation import check_positive_int
from ..models.lm import GPT, MemoryMosaicLM

__all__ = [
    "Trace",
    "trace",
    "value_offset",
    "component_names",
    "head_scores",
    "SCORE_NAMES",
    "head_parameters",
    "top_pairs",
    "explorer_view",
    "logit_attribution",
    "head_logit_attribution",
    "pmem_logit_lens",
    "per_token_loss",
    "ablation_loss_change",
    "token_strings",
    "repeated_name_mask",
]

Ablation = tuple[int, str, "int | None"]  # (block, kind, head or None for the whole memory)
SCORE_NAMES = ("induction", "same_token", "previous_token", "recency")


# --------------------------------------------------------------------------------------------
# one traced forward pass
# --------------------------------------------------------------------------------------------


@dataclass
class Trace:
    """What one traced forward pass keeps (B sequences of T tokens, width d, H heads).

    ``components`` maps a name (``"embed"``, ``"block0.cmem"``, ``"block0.pmem"``, … or, for the
    GPT, ``"block0.attn"``, ``"block0.mlp"``) to its (B, T, d) addition to the residual stream;
    they sum to ``residual``, the (B, T, d) input of the final LayerNorm. ``heads[l]`` is block
    l's (B, H, T, d): each contextual-memory (attention) head's share of that block's output
    (through W_o, so they sum to the component). ``maps[l]`` is (B, H, T, T).
    """

    logits: torch.Tensor
    residual: torch.Tensor
    components: dict[str, torch.Tensor] = field(default_factory=dict)
    heads: list[torch.Tensor] = field(default_factory=list)
    maps: list[torch.Tensor] = field(default_factory=list)


def value_offset(model: nn.Module) -> int:
    """Which token a stored pair's value brings: s + 1 for a mosaic (the one-step peek), s for a
    GPT. Returns 1 or 0."""
    if isinstance(model, MemoryMosaicLM):
        return 1
    if isinstance(model, GPT):
        return 0
    raise TypeError(f"model must be a MemoryMosaicLM or a GPT, got {type(model).__name__}")


def component_names(model: nn.Module) -> list[str]:
    """The names of the residual components :func:`trace` records, in order."""
    kinds = ("cmem", "pmem") if isinstance(model, MemoryMosaicLM) else ("attn", "mlp")
    value_offset(model)  # validates the model
    return ["embed"] + [f"block{i}.{k}" for i in range(model.config.n_layer) for k in kinds]


def _check_ablations(model: nn.Module, ablate: Iterable[Ablation] | None) -> list[Ablation]:
    kinds = ("cmem", "pmem") if isinstance(model, MemoryMosaicLM) else ("attn", "mlp")
    out = []
    for item in ablate or ():
        if not (isinstance(item, tuple) and len(item) == 3):
            raise ValueError(f"ablate must hold (block, kind, head) triples, got {item!r}")
        layer, kind, head = item
        if not isinstance(layer, int) or not 0 <= layer < model.config.n_layer:
            raise ValueError(f"ablation {item!r}: block must be in [0, {model.config.n_layer - 1}]")
        if kind not in kinds:
            raise ValueError(f"ablation {item!r}: kind must be one of {kinds} for this model")
        if head is not None:
            if kind != kinds[0]:
                raise ValueError(
                    f"ablation {item!r}: single heads can be ablated in '{kinds[0]}' only;"
                    " use head=None to zero the whole memory"
                )
            if not isinstance(head, int) or not 0 <= head < model.config.n_head:
                raise ValueError(f"ablation {item!r}: head must be in [0, {model.config.n_head - 1}] or None")
        out.append((layer, kind, head))
    return out


def _per_head_out(y: torch.Tensor, c_proj: nn.Linear) -> torch.Tensor:
    """Each head's share of W_o(concat heads). y: (B, H, T, hs) -> (B, H, T, d)."""
    B, H, T, hs = y.shape
    w = c_proj.weight.view(c_proj.out_features, H, hs)  # (d, H, hs)
    return torch.einsum("bhtk,dhk->bhtd", y, w)


def _keep(H: int, layer: int, kind: str, ablate: list[Ablation], like: torch.Tensor) -> torch.Tensor:
    """(1, H, 1, 1) mask: 0 for the heads of (layer, kind) that are ablated, else 1."""
    keep = torch.ones(1, H, 1, 1, dtype=like.dtype, device=like.device)
    for a_layer, a_kind, a_head in ablate:
        if a_layer == layer and a_kind == kind:
            if a_head is None:
                keep.zero_()
            else:
                keep[0, a_head] = 0.0
    return keep


def _mosaic_cmem(cmem: nn.Module, x: torch.Tensor, keep: torch.Tensor):
    """The contextual memory with per-head outputs: its keys and values, then the retrieval of
    :func:`causal_retrieval` with weights written out. x: (B, T, d) (after LayerNorm)."""
    k = cmem.keys(x)  # (B, H, T, hs)
    v = cmem.values(x)  # (B, H, T, hs)
    y, w = causal_retrieval(k, v, return_weights=True)  # (B, H, T, hs), (B, H, T, T)
    heads = _per_head_out(y * keep, cmem.c_proj)  # (B, H, T, d)
    return heads, w


def _gpt_attn(attn: nn.Module, x: torch.Tensor, keep: torch.Tensor):
    """The GPT's attention with per-head outputs: softmax(q·k/√hs) over s ≤ t. x: (B, T, d)."""
    q, k, v = attn.qkv(x)  # (B, H, T, hs) each
    T, hs = q.shape[-2], q.shape[-1]
    causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()  # s ≤ t
    w = attention_weights(k, q, 1.0 / math.sqrt(hs), mask=causal)  # softmax(β q·k), β = 1/√hs
    heads = _per_head_out((w @ v) * keep, attn.c_proj)  # (B, H, T, d)
    return heads, w


@torch.no_grad()
def trace(model: nn.Module, idx: torch.Tensor, ablate: Iterable[Ablation] | None = None) -> Trace:
    """Run ``model`` on ``idx`` (B, T) in eval mode, keeping every component, head and map.

    ``ablate``: (block, kind, head) triples; kind ``"cmem"``/``"pmem"`` (mosaic) or
    ``"attn"``/``"mlp"`` (GPT); head an int (contextual memory / attention only) or None for
    the whole memory. An ablated head's output is zeroed before W_o (its map is still recorded).
    Without ablation the logits are the model's own (tests check it).
    """
    value_offset(model)
    model.check_idx(idx)
    ablations = _check_ablations(model, ablate)
    was_training = model.training
    model.eval()
    try:
        mosaic = isinstance(model, MemoryMosaicLM)
        x = model.wte(idx)  # (B, T, d)
        if not mosaic:
            x = x + model.wpe(torch.arange(idx.shape[1], device=idx.device))
        out = Trace(logits=x, residual=x, components={"embed": x})
        H = model.config.n_head
        for i, block in enumerate(model.blocks):
            first, second = ("cmem", "pmem") if mosaic else ("attn", "mlp")
            keep = _keep(H, i, first, ablations, x)
            if mosaic:
                heads, w = _mosaic_cmem(block.cmem, block.ln_1(x), keep)
            else:
                heads, w = _gpt_attn(block.attn, block.ln_1(x), keep)
            c = heads.sum(dim=1)  # (B, T, d)
            x = x + c
            second_mod = block.pmem if mosaic else block.mlp
            p = second_mod(block.ln_2(x)) * _keep(1, i, second, ablations, x)[0, 0]  # (B, T, d)
            x = x + p
            out.components[f"block{i}.{first}"] = c
            out.components[f"block{i}.{second}"] = p
            out.heads.append(heads)
            out.maps.append(w)
        out.residual = x
        out.logits = model.unembed(x)  # (B, T, V)
    finally:
        model.train(was_training)
    return out


@torch.no_grad()
def per_token_loss(
    model: nn.Module,
    idx: torch.Tensor,
    targets: torch.Tensor,
    ablate: Iterable[Ablation] | None = None,
) -> torch.Tensor:
    """Cross-entropy at every position (B, T) (nan where a target is -1), optionally ablated."""
    if targets.shape != idx.shape:
        raise ValueError(f"targets must have the shape of idx {tuple(idx.shape)}, got {tuple(targets.shape)}")
    logits = trace(model, idx, ablate).logits.float()  # (B, T, V)
    loss = F.cross_entropy(logits.transpose(1, 2), targets.clamp_min(0), reduction="none")
    return loss.masked_fill(targets < 0, float("nan"))


def ablation_loss_change(
    model: nn.Module,
    idx: torch.Tensor,
    targets: torch.Tensor,
    ablation: Ablation,
    mask: torch.Tensor,
    intact: torch.Tensor | None = None,
) -> tuple[float, float]:
    """Zero one head or one memory (``ablation``, as in :func:`trace`) and return the mean loss
    change, ablated minus intact, on the targets where ``mask`` (B, T) is True and on the others.

    ``intact``: the model's own :func:`per_token_loss` on these targets, if already computed.
    A positive change means the ablated part was helping there.
    """
    if mask.shape != idx.shape or mask.dtype != torch.bool:
        raise ValueError(
            f"mask must be a bool tensor of the shape of idx {tuple(idx.shape)}, got "
            f"{mask.dtype} {tuple(mask.shape)}"
        )
    full = per_token_loss(model, idx, targets) if intact is None else intact
    diff = per_token_loss(model, idx, targets, ablate=[ablation]) - full  # (B, T)
    return float(diff[mask].nanmean()), float(diff[~mask].nanmean())


# --------------------------------------------------------------------------------------------
# head scores from retrieval maps
# --------------------------------------------------------------------------------------------


def _maps_and_ids(maps: Any, ids: Any) -> tuple[np.ndarray, np.ndarray]:
    m = np.asarray(maps.detach().cpu().float() if isinstance(maps, torch.Tensor) else maps, dtype=np.float64)
    x = np.asarray(ids.cpu() if isinstance(ids, torch.Tensor) else ids)
    if m.ndim == 3:
        m = m[None]
    if x.ndim == 1:
        x = x[None]
    if m.ndim != 4 or m.shape[-1] != m.shape[-2] or x.ndim != 2 or x.shape != (m.shape[0], m.shape[-1]):
        raise ValueError(
            f"maps must be (B, H, T, T) (or (H, T, T)) and ids (B, T) (or (T,)) with the "
            f"same B and T; got maps {m.shape} and ids {x.shape}"
        )
    return m, x


def head_scores(maps: Any, ids: Any, offset: int) -> dict[str, np.ndarray]:
    """What each head retrieves, measured on texts: four scores per head, each (H,).

    Args:
        maps: (B, H, T, T) retrieval (attention) weights, ``maps[b, h, t, s]``; or (H, T, T).
        ids: (B, T) (or (T,)) the token ids of the texts.
        offset: :func:`value_offset` of the model (1 mosaic, 0 GPT).

    Returns ``induction``: mass on the pairs whose value brings the token that followed an
    earlier occurrence of the current token (mosaic: x_s = x_t with s < t; GPT: x_{s-1} = x_t),
    averaged over the queries that have such a pair; ``same_token``: mass on s < t with
    x_s = x_t, same averaging; ``previous_token``: mass on s = t - 1; ``recency``: mean
    distance Σ_s w_ts (t - s) (queries t ≥ 1, each row normalised by its own mass). For a mosaic
    ``induction`` and ``same_token`` are the same number by construction: its value at s already
    peeks at s + 1, so matching the current token *is* the induction step.
    """
    if offset not in (0, 1):
        raise ValueError(f"offset must be 1 (mosaic: a value peeks at s + 1) or 0 (GPT), got {offset!r}")
    m, x = _maps_and_ids(maps, ids)
    B, H, T, _ = m.shape
    t_idx, s_idx = np.arange(T)[:, None], np.arange(T)[None, :]
    past = s_idx < t_idx  # (T, T)
    same = (x[:, :, None] == x[:, None, :]) & past  # (B, T, T): x_s = x_t, s < t
    src = s_idx - 1 + offset  # the position whose successor the value at s brings
    valid = (src >= 0) & (src < t_idx) & (s_idx <= t_idx)  # (T, T)
    shifted = np.take(x, np.clip(src, 0, T - 1)[0], axis=1)  # (B, T): token at src(s)
    induct = (shifted[:, None, :] == x[:, :, None]) & valid  # (B, T, T)

    def masked_mean(cond: np.ndarray) -> np.ndarray:
        mass = (m * cond[:, None]).sum(-1)  # (B, H, T)
        rows = cond.any(-1)  # (B, T)
        n = rows.sum()
        if n == 0:
            return np.full(H, np.nan)
        return (mass * rows[:, None]).sum(axis=(0, 2)) / n  # (H,)

    rows = np.arange(T) >= 1
    prev = np.array([m[:, :, t, t - 1] for t in range(1, T)]).transpose(1, 2, 0)  # (B, H, T-1)
    dist = (m * (t_idx - s_idx).clip(min=0)).sum(-1)  # (B, H, T)
    total = m.sum(-1)  # (B, H, T)
    with np.errstate(invalid="ignore", divide="ignore"):
        rec = np.where(total > 0, dist / np.where(total > 0, total, 1), np.nan)[:, :, rows]
    return {
        "induction": masked_mean(induct),
        "same_token": masked_mean(same),
        "previous_token": prev.mean(axis=(0, 2)),
        "recency": np.nanmean(rec, axis=(0, 2)),
    }


def head_parameters(model: MemoryMosaicLM) -> list[dict[str, np.ndarray]]:
    """Per block, the contextual memory's learned λ (decay), β and γ per head, each (H,), next to
    the values every model starts from: ``decay_init`` = exp(-linspace(0.5, 5, H)), ``beta_init``
    = e² (γ starts uniform at random, so it has no fixed initial value)."""
    if not isinstance(model, MemoryMosaicLM):
        raise TypeError(f"model must be a MemoryMosaicLM, got {type(model).__name__}")
    H = model.config.n_head
    decay_init = np.exp(-np.linspace(0.5, 5.0, H))
    beta_init = np.full(H, math.exp(2 * 0.1 * EXP_SCALING))
    out = []
    for block in model.blocks:
        c = block.cmem
        out.append(
            {
                "decay": c.decay.detach().float().numpy(),
                "decay_init": decay_init,
                "beta": c.beta.detach().float().numpy(),
                "beta_init": beta_init,
                "gamma": c.gamma.detach().float().numpy(),
            }
        )
    return out


# --------------------------------------------------------------------------------------------
# one position: the pairs that answered
# --------------------------------------------------------------------------------------------


def token_strings(tokenizer: Any, ids: Sequence[int]) -> list[str]:
    """The text each token stands for (a byte-pair token may be part of a character: shown as its
    replacement character)."""
    return [tokenizer.decode([int(i)]) for i in ids]


def top_pairs(weights_row: Any, ids: Sequence[int], offset: int, k: int = 5) -> list[dict[str, Any]]:
    """The ``k`` stored pairs with the largest weight in one retrieval row.

    weights_row: (T,) the weights of query t over s; ids: (T,) the text. Returns dicts with
    ``s``, ``weight``, ``token`` (id at s) and ``peeked`` (the id the value at s brings: at
    s + offset, None past the end), largest weight first; pairs of weight 0 are left out.
    """
    w = np.asarray(
        weights_row.detach().cpu().float() if isinstance(weights_row, torch.Tensor) else weights_row,
        dtype=np.float64,
    )
    ids = [int(i) for i in ids]
    if w.ndim != 1 or len(w) != len(ids):
        raise ValueError(f"weights_row must be (T,) with T = len(ids) = {len(ids)}, got {w.shape}")
    check_positive_int("k", k)
    order = [int(s) for s in np.argsort(-w, kind="stable")[:k] if w[s] > 0]
    return [
        {
            "s": s,
            "weight": float(w[s]),
            "token": ids[s],
            "peeked": ids[s + offset] if s + offset < len(ids) else None,
        }
        for s in order
    ]


@torch.no_grad()
def explorer_view(
    model: nn.Module,
    tokenizer: Any,
    text: str,
    position: int,
    layer: int,
    head: int,
    k: int = 5,
    around: int = 3,
) -> dict[str, Any]:
    """Everything the retrieval explorer draws for one text, query position, block and head.

    ``position`` is clipped into [1, T - 1] (a new text may be shorter than the slider).
    Returns ``tokens`` (T strings), ``position`` (the one used), ``row`` (T,) the head's
    weights for that query, ``map`` (T, T) the head's whole retrieval map, ``top``: the
    :func:`top_pairs` with ``context`` (the text around s) and ``peeked_text`` added, ``vote``:
    the head's weight summed per peeked token (what this head alone would predict, largest first),
    ``prediction``: the model's 5 likeliest next tokens with their probabilities, ``next``: the
    true next token if the text has one.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("text must be a non-empty string: type a few sentences")
    ids = tokenizer.encode(text)[: model.config.block_size]
    T = len(ids)
    if T < 2:
        raise ValueError(f"text gives {T} token; type at least two")
    if not isinstance(layer, int) or not 0 <= layer < model.config.n_layer:
        raise ValueError(f"layer must be an int in [0, {model.config.n_layer - 1}], got {layer!r}")
    if not isinstance(head, int) or not 0 <= head < model.config.n_head:
        raise ValueError(f"head must be an int in [0, {model.config.n_head - 1}], got {head!r}")
    position = int(min(max(int(position), 1), T - 1))
    offset = value_offset(model)
    tr = trace(model, torch.tensor([ids]))
    hmap = tr.maps[layer][0, head].float().numpy()  # (T, T)
    tokens = token_strings(tokenizer, ids)
    top = top_pairs(hmap[position], ids, offset, k)
    for p in top:
        s = p["s"]
        p["context"] = (
            "".join(tokens[max(0, s - around) : s])
            + "["
            + tokens[s]
            + "]"
            + "".join(tokens[s + 1 : s + 1 + around])
        )
        p["peeked_text"] = None if p["peeked"] is None else tokens[s + offset]
    vote: dict[str, float] = {}
    for s in range(T):
        if hmap[position, s] > 0 and s + offset < T:
            key = tokens[s + offset]
            vote[key] = vote.get(key, 0.0) + float(hmap[position, s])
    # a padded vocabulary's extra rows stand for no text: the tokenizer's ids only
    probs = torch.softmax(tr.logits[0, position, : tokenizer.vocab_size].float(), dim=-1)
    pv, pi = probs.topk(min(5, probs.numel()))
    return {
        "tokens": tokens,
        "ids": ids,
        "position": position,
        "layer": layer,
        "head": head,
        "row": hmap[position],
        "map": hmap,
        "top": top,
        "vote": sorted(vote.items(), key=lambda kv: -kv[1]),
        "prediction": [(tokenizer.decode([int(i)]), float(p)) for p, i in zip(pv, pi, strict=True)],
        "next": tokens[position + 1] if position + 1 < T else None,
    }


# --------------------------------------------------------------------------------------------
# direct logit attribution and the logit lens
# --------------------------------------------------------------------------------------------


def _head_scale(model: nn.Module) -> float:
    """The factor between LN_f's output and the tied head's input: 1/√d (mosaic), 1 (GPT)."""
    return 1.0 / math.sqrt(model.config.n_embd) if isinstance(model, MemoryMosaicLM) else 1.0


def _attribute(parts: torch.Tensor, tr: Trace, model: nn.Module, targets: torch.Tensor) -> torch.Tensor:
    """parts (..., B, T, d) -> (..., B, T): each part's direct share of the target's logit."""
    h = tr.residual  # (B, T, d)
    ln = model.ln_f
    sigma = torch.sqrt(h.var(dim=-1, unbiased=False, keepdim=True) + ln.eps)  # (B, T, 1)
    u = model.lm_head.weight[targets.clamp_min(0)] * ln.weight * _head_scale(model)  # (B, T, d)
    centred = parts - parts.mean(dim=-1, keepdim=True)
    return (centred * u).sum(-1) / sigma[..., 0]


@torch.no_grad()
def logit_attribution(model: nn.Module, idx: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
    """Direct logit attribution of the target token at every position, per residual component.

    The final LayerNorm is ``g ⊙ (h - mean h)/σ(h)`` and the residual ``h`` is a sum of
    components c_i, so with σ(h) **held at its value on the full forward** the target's logit
    splits exactly: ``logit = Σ_i (W_e[y] ⊙ g)·(c_i - mean c_i) / σ(h) · scale`` (scale 1/√d
    for the mosaic's head, 1 for the GPT's). The approximation: a component's share is its
    *direct* effect only — it ignores that removing it would change σ and every later block's
    input. Returns ``{name: (B, T)}`` for :func:`component_names` plus ``"logit"`` (B, T), the
    model's logit of the target (the shares sum to it up to rounding).
    """
    tr = trace(model, idx)
    names = list(tr.components)
    parts = torch.stack([tr.components[n] for n in names])  # (C, B, T, d)
    shares = _attribute(parts, tr, model, targets)  # (C, B, T)
    out = {n: shares[i] for i, n in enumerate(names)}
    out["logit"] = tr.logits.gather(-1, targets.clamp_min(0)[..., None])[..., 0]
    return out


@torch.no_grad()
def head_logit_attribution(model: nn.Module, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Direct logit attribution per contextual-memory (attention) head: (n_layer, H, B, T).

    Block l's heads sum to its ``block{l}.cmem`` (``.attn``) share in :func:`logit_attribution`.
    """
    tr = trace(model, idx)
    heads = torch.stack([h.transpose(0, 1) for h in tr.heads])  # (L, H, B, T, d)
    return _attribute(heads, tr, model, targets)


@torch.no_grad()
def pmem_logit_lens(
    model: MemoryMosaicLM, layer: int, head: int, k: int = 5
) -> tuple[np.ndarray, np.ndarray]:
    """What each row of a persistent-memory table writes, read in vocabulary space.

    Row p of head h adds ``W_o[:, h] (α_h M_v[h, p])`` to the residual when it is retrieved
    alone. Through the final LayerNorm's centring and gain and the tied head (the LayerNorm's
    1/σ is a positive number per position, so it changes no ranking and is left out) that gives
    a logit for every token. Returns the ``k`` top token ids per row (P, k) and their logits
    (P, k), highest first.
    """
    if not isinstance(model, MemoryMosaicLM):
        raise TypeError(f"model must be a MemoryMosaicLM, got {type(model).__name__}")
    if not isinstance(layer, int) or not 0 <= layer < model.config.n_layer:
        raise ValueError(f"layer must be in [0, {model.config.n_layer - 1}], got {layer!r}")
    if not isinstance(head, int) or not 0 <= head < model.config.n_head:
        raise ValueError(f"head must be in [0, {model.config.n_head - 1}], got {head!r}")
    pm = model.blocks[layer].pmem
    hs = pm.head_size
    rows = pm.table_values[head] * pm.alpha[head]  # (P, hs)
    w_o = pm.c_proj.weight[:, head * hs : (head + 1) * hs]  # (d, hs)
    written = rows @ w_o.T  # (P, d)
    written = (written - written.mean(-1, keepdim=True)) * model.ln_f.weight
    logits = written @ model.lm_head.weight.T * _head_scale(model)  # (P, V)
    val, ind = logits.topk(min(k, logits.shape[-1]), dim=-1)
    return ind.detach().numpy(), val.detach().float().numpy()


# --------------------------------------------------------------------------------------------
# which target tokens the context can supply
# --------------------------------------------------------------------------------------------


def repeated_name_mask(tokenizer: Any, ids: Sequence[int], spans: Iterable[Any]) -> np.ndarray:
    """(T,) bool: True at position t when the token at t + 1 (the target) overlaps a repeated name.

    ``spans``: :func:`mosaics_edu.data.name_spans` of the decoded text (character offsets);
    those with ``repeated`` set are names that occurred earlier, which the context can supply.
    """
    pieces = token_strings(tokenizer, ids)
    starts = np.cumsum([0] + [len(p) for p in pieces])  # (T + 1,) character offsets
    is_name = np.zeros(len(pieces), dtype=bool)
    for sp in spans:
        if sp.repeated:
            is_name |= (starts[:-1] < sp.end) & (starts[1:] > sp.start)
    out = np.zeros(len(pieces), dtype=bool)
    out[:-1] = is_name[1:]
    return out
