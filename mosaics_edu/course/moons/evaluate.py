"""Three moons: measuring what a trained memory layer does.

- :func:`generate`: autoregressive generation, the simple way (recompute on the grown sequence).
  Once a generated point exists, it is the *value* of the position before it: recomputing the keys
  and values of the whole sequence fills that value in, which a cache that stores values only
  when a prompt is read would miss.
- :func:`generation_error`: the paper's measure, "generation error over 25 steps vs context
  length": from every prefix of c observed points, generate 25 points and take the mean absolute
  error against x_c … x_{c+24}. Computed for all prefixes at once, exactly as :func:`generate` would.
- :func:`position_loss` / :func:`position_error`: teacher-forced loss and error at every position.
- :func:`moon_shares`, :func:`is_clean_split`: which moon each unit reads, from its key map W_φ.
- :func:`crossing_point`: the context length after which an error curve stays below a threshold.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ...core.memory import softmax_attention
from .data import VALID_TRIPLE, sample_windows
from .model import MoonMemory, block_magnitudes
from .subnormal import flush_subnormals

__all__ = [
    "generate", "generation_error", "position_loss", "position_error", "moon_shares",
    "is_clean_split", "crossing_point", "clipped_squared_error", "attention_by_lag",
    "CLEAN_SHARE", "validation_windows", "persistence_error", "persistence_generation_error",
]

CLEAN_SHARE = 0.8  # a unit is "on one moon" when ≥ 80 % of its W_φ block mass is on that moon


def clipped_squared_error(pred: torch.Tensor, target: torch.Tensor, clip: float = 0.5) -> torch.Tensor:
    """The training loss per element: (clip(pred - target, -clip, clip))², same shape as pred."""
    if pred.shape != target.shape:
        raise ValueError(f"clipped_squared_error: pred {tuple(pred.shape)} and target "
                         f"{tuple(target.shape)} must have the same shape.")
    return (pred - target).clamp(-clip, clip) ** 2


def _check_model(model: MoonMemory, fn: str) -> None:
    if not isinstance(model, MoonMemory):
        raise TypeError(f"{fn}(model): pass a MoonMemory, got {type(model).__name__}.")


@torch.no_grad()
@flush_subnormals()
def generate(model: MoonMemory, prefix: torch.Tensor, n_steps: int) -> torch.Tensor:
    """Continue ``prefix`` (B, c, 6) by ``n_steps`` predicted points -> (B, n_steps, 6).

    Each step runs the model on everything so far and appends its prediction at the last
    position; the value of the previous position (W_ψ of the point just generated) is thereby
    filled in before the next step reads the memory.
    """
    _check_model(model, "generate")
    if prefix.dim() != 3 or prefix.shape[1] < 1:
        raise ValueError(f"generate(prefix): expected (batch, c ≥ 1, 6), got {tuple(prefix.shape)}.")
    if n_steps < 1:
        raise ValueError(f"generate(n_steps={n_steps}): generate at least one step.")
    seq = prefix
    out = []
    for _ in range(n_steps):
        nxt = model(seq)[:, -1:]  # (B, 1, 6): the prediction of the point after seq
        out.append(nxt)
        seq = torch.cat([seq, nxt], dim=1)  # (B, c+j+1, 6)
    return torch.cat(out, dim=1)  # (B, n_steps, 6)


@torch.no_grad()
@flush_subnormals()
def generation_error(
    model: MoonMemory,
    x: torch.Tensor,
    contexts: Sequence[int],
    horizon: int = 25,
    chunk: int = 16,
) -> np.ndarray:
    """Mean |generated - true| over ``horizon`` steps, for every prefix length in ``contexts``.

    x: (W, L, 6) true windows; a prefix of length c is x[:, :c], and the j-th generated point is
    compared with x[:, c + j]. Returns (len(contexts),) averaged over windows, steps and dims.
    Equal to running :func:`generate` from each prefix, but all prefixes advance together.
    """
    _check_model(model, "generation_error")
    cs = torch.as_tensor(list(contexts), dtype=torch.long)
    if x.dim() != 3 or x.shape[-1] != 6:
        raise ValueError(f"generation_error(x): expected (windows, time, 6), got {tuple(x.shape)}.")
    if cs.numel() == 0 or cs.min() < 1 or cs.max() + horizon > x.shape[1]:
        raise ValueError(f"generation_error(contexts): every c must satisfy 1 ≤ c and "
                         f"c + horizon ≤ {x.shape[1]} (the window length).")
    m = model.maps()
    H, beta = model.n_units, model.beta
    W, L, d = x.shape
    hd = d // H
    C = cs.numel()

    def per_unit(z: torch.Tensor) -> torch.Tensor:  # (..., 6) -> (..., H, hd)
        return z.reshape(*z.shape[:-1], H, hd)

    total = torch.zeros(C, dtype=torch.float64)
    # True pair s stores value W_ψ x_{s+1}; a prefix of length c holds pairs s ≤ c - 2, so the
    # longest prefix reads the first n = max(c) - 1 pairs and no prefix reads any later one. Each
    # prefix then adds one generated pair per step: its memory is the n true pairs (masked to its
    # own) followed by its own generated ones, one memory per prefix, read by one query.
    n = int(cs.max()) - 1
    past = torch.arange(n)[None, :] <= (cs[:, None] - 2)  # (C, n)
    for lo in range(0, W, chunk):
        xc = x[lo:lo + chunk]  # (w, L, 6)
        w = xc.shape[0]
        keys = per_unit(xc @ m["phi"].T).permute(0, 2, 1, 3)  # (w, H, L, hd)
        vals = per_unit(xc @ m["psi"].T).permute(0, 2, 1, 3)  # (w, H, L, hd): W_ψ x_s
        mem_keys = keys.new_zeros(w, H, C, n + horizon, hd)  # (w, H, C, n + horizon, hd)
        mem_vals = torch.zeros_like(mem_keys)
        mem_keys[..., :n, :] = keys[:, :, None, :n]
        mem_vals[..., :n, :] = vals[:, :, None, 1:n + 1]
        query = keys[:, :, cs - 1]  # (w, H, C, hd): key of the last observed point
        for j in range(horizon):
            readable = torch.cat([past, past.new_ones(C, j)], dim=-1)[:, None]  # (C, 1, n + j)
            y = softmax_attention(mem_keys[..., :n + j, :], mem_vals[..., :n + j, :], query[..., None, :],
                                  beta, readable)[..., 0, :]  # (w, H, C, hd); an empty memory gives 0
            pred = y.permute(0, 2, 1, 3).reshape(w, C, d) @ m["z"].T  # (w, C, 6): x̂_{c+j}
            truth = xc[:, cs + j]  # (w, C, 6)
            total += (pred - truth).abs().mean(-1).sum(0).double()
            # The pair of the query position is now complete: its value is the new point.
            mem_keys[..., n + j, :] = query
            mem_vals[..., n + j, :] = per_unit(pred @ m["psi"].T).permute(0, 2, 1, 3)  # (w, H, C, hd)
            query = per_unit(pred @ m["phi"].T).permute(0, 2, 1, 3)  # (w, H, C, hd)
    return (total / (W * horizon)).numpy()


@torch.no_grad()
@flush_subnormals()
def position_loss(model: MoonMemory, x: torch.Tensor, clip: float = 0.5) -> np.ndarray:
    """Teacher-forced training loss at every position: x (W, T+1, 6) -> (T,) averaged over W, dims.

    The area under this curve (its mean) is the training loss: the "steamroller" picture.
    """
    _check_model(model, "position_loss")
    pred = model(x[:, :-1])  # (W, T, 6)
    return clipped_squared_error(pred, x[:, 1:], clip).mean(dim=(0, 2)).numpy()


@torch.no_grad()
@flush_subnormals()
def position_error(model: MoonMemory, x: torch.Tensor) -> np.ndarray:
    """Teacher-forced mean |x̂_{t+1} - x_{t+1}| at every position t: x (W, T+1, 6) -> (T,)."""
    _check_model(model, "position_error")
    pred = model(x[:, :-1])  # (W, T, 6)
    return (pred - x[:, 1:]).abs().mean(dim=(0, 2)).numpy()


def persistence_error(x: torch.Tensor) -> np.ndarray:
    """Teacher-forced error of the "nothing moves" predictor x̂_{t+1} = x_t, per position.

    x: (W, T+1, 6) -> (T,). The baseline an in-context learner has to beat: it needs no memory.
    """
    if x.dim() != 3 or x.shape[1] < 2:
        raise ValueError(f"persistence_error(x): expected (windows, time ≥ 2, 6), got "
                         f"{tuple(x.shape)}.")
    return (x[:, 1:] - x[:, :-1]).abs().mean(dim=(0, 2)).numpy()


def persistence_generation_error(x: torch.Tensor, contexts: Sequence[int],
                                 horizon: int = 25) -> np.ndarray:
    """:func:`generation_error` of the predictor that repeats the last observed point."""
    cs = torch.as_tensor(list(contexts), dtype=torch.long)
    if cs.numel() == 0 or cs.min() < 1 or cs.max() + horizon > x.shape[1]:
        raise ValueError("persistence_generation_error(contexts): need 1 ≤ c ≤ len - horizon.")
    last = x[:, cs - 1]  # (W, C, 6)
    future = torch.stack([x[:, cs + j] for j in range(horizon)], dim=2)  # (W, C, horizon, 6)
    return (future - last[:, :, None]).abs().mean(dim=(0, 2, 3)).numpy()


def moon_shares(w_phi: torch.Tensor, n_units: int = 3) -> np.ndarray:
    """Share of each unit's key-map block mass on each moon: (6, 6) W_φ -> (n_units, 3), rows sum to 1.

    Block (h, m) of W_φ (unit h's key rows, moon m's (sin, cos) columns) has magnitude |a + ib|.
    For one 6-d unit the three block rows are pooled.
    """
    if n_units not in (1, 3):
        raise ValueError(f"moon_shares(n_units={n_units}): use 3 or 1.")
    mag = block_magnitudes(w_phi).double()  # (3 key pairs, 3 moons)
    per_unit = mag.reshape(n_units, 3 // n_units, 3).sum(1)  # (n_units, 3)
    total = per_unit.sum(-1, keepdim=True).clamp_min(1e-12)
    return (per_unit / total).numpy()


def is_clean_split(shares: np.ndarray, threshold: float = CLEAN_SHARE) -> bool:
    """True when every unit has ≥ ``threshold`` of its mass on one moon, and no two share a moon."""
    shares = np.asarray(shares)
    if shares.ndim != 2 or shares.shape[1] != 3:
        raise ValueError(f"is_clean_split(shares): expected (units, 3), got {shares.shape}.")
    top = shares.argmax(1)
    return bool((shares.max(1) >= threshold).all() and len(set(top.tolist())) == shares.shape[0])


def crossing_point(contexts: Sequence[int], error: Sequence[float], threshold: float) -> int | None:
    """The smallest context c such that the error stays below ``threshold`` for every c' ≥ c.

    None when the last point is above the threshold.
    """
    cs, err = np.asarray(contexts), np.asarray(error)
    if cs.shape != err.shape or cs.ndim != 1:
        raise ValueError("crossing_point: contexts and error must be 1-d and the same length.")
    above = np.nonzero(err >= threshold)[0]
    if len(above) == 0:
        return int(cs[0])
    if above[-1] == len(cs) - 1:
        return None
    return int(cs[above[-1] + 1])


@torch.no_grad()
@flush_subnormals()
def attention_by_lag(
    model: MoonMemory, x: torch.Tensor, rows: tuple[int, int] = (300, 500)
) -> np.ndarray:
    """Mean retrieval weight of each unit at lag t - s, over query rows t in ``rows``.

    x: (W, T, 6) -> (H, T) with entry [h, lag]: where in the past unit h looks.
    """
    _check_model(model, "attention_by_lag")
    lo, hi = rows
    T = x.shape[1]
    if not 0 < lo < hi <= T:
        raise ValueError(f"attention_by_lag(rows={rows}): need 0 < lo < hi ≤ {T}.")
    att = model.attention(x)[:, :, lo:hi]  # (W, H, hi-lo, T)
    out = torch.zeros(model.n_units, T)
    for i, t in enumerate(range(lo, hi)):
        out[:, : t + 1] += att[:, :, i, : t + 1].flip(-1).mean(0)  # (H, t+1) by lag 0..t
    return (out / (hi - lo)).numpy()


def validation_windows(n: int, seed: int, triple: tuple[float, float, float] = VALID_TRIPLE,
                       length: int = 800) -> torch.Tensor:
    """``n`` reproducible windows of one triple: (n, length, 6)."""
    g = torch.Generator().manual_seed(seed)
    x, _ = sample_windows(n, [triple], g, length=length)
    return x
