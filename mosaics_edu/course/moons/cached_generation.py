"""Three moons: cached generation, and the three pieces it is built from (chapter 03's exercise).

A generation loop that stores keys and values (instead of recomputing the whole sequence each
step) must remember one thing: the value of a position is W_ψ of the *next* point, so the pair of
the last observed position is incomplete until a point has been generated after it. Each step
therefore (1) reads the memory with the key of the last position, (2) fills in that position's
value with the point just predicted, (3) stores the key of the new point.

The pieces: :func:`moon_keys` and :func:`moon_values` (the pairs of each memory unit) and
:func:`read_memory` (one prediction from the stored pairs); :func:`generate_cached` puts them
together.
"""

from __future__ import annotations

import torch

from ...core.memory import retrieve
from .model import MoonMemory
from .subnormal import flush_subnormals

__all__ = ["moon_keys", "moon_values", "read_memory", "generate_cached"]


def _split(model: MoonMemory, z: torch.Tensor) -> torch.Tensor:
    B, T, d = z.shape
    H = model.n_units
    return z.view(B, T, H, d // H).transpose(1, 2)  # (B, H, T, hd)


def moon_keys(model: MoonMemory, x: torch.Tensor) -> torch.Tensor:
    """Keys W_φ x_t of every unit: x (B, T, 6) -> (B, H, T, hd)."""
    if x.dim() != 3 or x.shape[-1] != 6:
        raise ValueError(f"moon_keys(x): expected (batch, time, 6), got {tuple(x.shape)}.")
    return _split(model, x @ model.maps()["phi"].T)


def moon_values(model: MoonMemory, x_next: torch.Tensor) -> torch.Tensor:
    """Values W_ψ x per unit, for the points that *follow* the stored keys.

    x_next: (B, T, 6) -> (B, H, T, hd).
    """
    if x_next.dim() != 3 or x_next.shape[-1] != 6:
        raise ValueError(f"moon_values(x_next): expected (batch, time, 6), got "
                         f"{tuple(x_next.shape)}.")
    return _split(model, x_next @ model.maps()["psi"].T)


def read_memory(model: MoonMemory, query: torch.Tensor, keys: torch.Tensor,
                values: torch.Tensor) -> torch.Tensor:
    """One prediction from stored pairs: query (B, H, hd), keys/values (B, H, n, hd) -> (B, 6).

    Per unit softmax_s(β query·k_s) v_s, units concatenated, then W_z. An empty memory (n = 0)
    predicts 0.
    """
    if (keys.shape != values.shape or keys.dim() != 4 or query.dim() != 3
            or query.shape != keys.shape[:2] + keys.shape[3:]):
        raise ValueError(f"read_memory: query {tuple(query.shape)} must be (B, H, hd) and keys "
                         f"{tuple(keys.shape)} / values {tuple(values.shape)} (B, H, n, hd).")
    B, H, _, hd = keys.shape
    y = retrieve(keys, values, query[:, :, None], beta=model.beta)  # (B, H, 1, hd)
    return y.reshape(B, H * hd) @ model.maps()["z"].T  # (B, 6)


@torch.no_grad()
@flush_subnormals()
def generate_cached(model: MoonMemory, prefix: torch.Tensor, n_steps: int) -> torch.Tensor:
    """Cached generation with the value fill-in: prefix (B, c, 6) -> (B, n_steps, 6).

    Gives the same points as :func:`mosaics_edu.course.moons.generate` (which recomputes everything).
    """
    if prefix.dim() != 3 or prefix.shape[1] < 1 or n_steps < 1:
        raise ValueError("generate_cached: prefix must be (batch, c ≥ 1, 6) and n_steps ≥ 1.")
    keys = moon_keys(model, prefix)  # (B, H, c, hd)
    values = moon_values(model, prefix[:, 1:])  # (B, H, c-1, hd): pair s holds W_ψ x_{s+1}
    out = []
    for _ in range(n_steps):
        pred = read_memory(model, keys[:, :, -1], keys[:, :, :-1], values)  # (B, 6)
        out.append(pred)
        values = torch.cat([values, moon_values(model, pred[:, None])], dim=2)  # fill in
        keys = torch.cat([keys, moon_keys(model, pred[:, None])], dim=2)  # the new point's key
    return torch.stack(out, dim=1)  # (B, n_steps, 6)
