"""Three moons: one layer of associative memory units with complex-linear maps.

For unit h and position t (the paper's toy model, no embedding, no normalisation):

    k_t = W_φ x_t                  keys: what the present looks like
    v_t = W_ψ x_{t+1}              values: what came next (0 for the last position)
    y_t = W_z concat_h Σ_{s<t} softmax_s(β k_t·k_s) v_s      with a fixed β = 50

Retrieval reads only pairs s < t, whose values hold x_{s+1} with index s + 1 ≤ t: nothing from
the future leaks, and position 0 (an empty memory) predicts exactly 0. It is the same strictly
causal retrieval as the language model's contextual memory (:func:`mosaics_edu.core.memory.causal_retrieval`).

Every map is *complex-linear*: each 2×2 block is [[a, b], [-b, a]], a rotation times a scaling,
which acts on one moon's (sin, cos) pair as multiplication by a complex number. A unit that reads
one moon through such a block has keys of constant norm, so its retrieval is a clean kernel
smoother. The constraint is a projection re-applied at every call, as in the paper's code.

``MoonMemory(n_units=3)`` is the mosaic (3 units × 2 dims); ``MoonMemory(n_units=1)`` is one big
memory (1 unit × 6 dims). Both have 3 × 3 × 2 × 3 = 54 free numbers.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...core.memory import causal_retrieval

__all__ = ["to_complex_linear", "block_magnitudes", "MoonMemory", "N_MOONS", "BETA"]

N_MOONS = 3
BETA = 50.0  # β, fixed: the kernel is exp(β k·k_s)


def to_complex_linear(w: torch.Tensor) -> torch.Tensor:
    """Project a (..., 2m, 2n) matrix onto complex-linear form: every 2×2 block -> [[a, b], [-b, a]].

    Each block [[p, q], [r, s]] becomes a = (p + s)/2, b = (q - r)/2: the nearest matrix (in
    Frobenius norm) that multiplies a (sin, cos) pair by a complex number.
    """
    if not isinstance(w, torch.Tensor):
        raise TypeError("to_complex_linear(w): pass a torch.Tensor of shape (..., 2m, 2n).")
    if w.dim() < 2 or w.shape[-1] % 2 or w.shape[-2] % 2:
        raise ValueError(f"to_complex_linear(w): got shape {tuple(w.shape)}; both matrix "
                         "dimensions must be even so that the matrix splits into 2×2 blocks.")
    *lead, rows, cols = w.shape
    blocks = w.reshape(*lead, rows // 2, 2, cols // 2, 2)  # (..., m, 2, n, 2)
    a = (blocks[..., 0, :, 0] + blocks[..., 1, :, 1]) / 2  # (..., m, n)
    b = (blocks[..., 0, :, 1] - blocks[..., 1, :, 0]) / 2  # (..., m, n)
    out = torch.stack([torch.stack([a, b], -1), torch.stack([-b, a], -1)], -3)  # (..., m, 2, n, 2)
    return out.reshape(*lead, rows, cols)


def block_magnitudes(w: torch.Tensor) -> torch.Tensor:
    """|a + ib| of every 2×2 block of a complex-linear (2m, 2n) matrix -> (m, n)."""
    if w.dim() != 2 or w.shape[0] % 2 or w.shape[1] % 2:
        raise ValueError(f"block_magnitudes(w): expected a (2m, 2n) matrix, got {tuple(w.shape)}.")
    w = to_complex_linear(w.detach())
    a, b = w[0::2, 0::2], w[0::2, 1::2]  # (m, n) each
    return torch.sqrt(a**2 + b**2)


class MoonMemory(nn.Module):
    """One layer of ``n_units`` memory units over 6-d three-moon observations (see module doc)."""

    def __init__(self, n_units: int = 3, beta: float = BETA) -> None:
        super().__init__()
        if n_units not in (1, 3):
            raise ValueError(f"MoonMemory(n_units={n_units}): use 3 (three units of 2 dims, the "
                             "mosaic) or 1 (one unit of 6 dims).")
        if not beta > 0:
            raise ValueError(f"MoonMemory(beta={beta}): beta, the multiplier of k_t·k_s, must be "
                             "> 0.")
        self.n_units, self.beta = n_units, float(beta)
        d = 2 * N_MOONS
        bound = 1 / math.sqrt(d)  # the uniform init of a default linear layer
        self.w_phi = nn.Parameter(torch.empty(d, d).uniform_(-bound, bound))  # keys
        self.w_psi = nn.Parameter(torch.empty(d, d).uniform_(-bound, bound))  # values
        self.w_z = nn.Parameter(torch.empty(d, d).uniform_(-bound, bound))  # output

    def maps(self) -> dict[str, torch.Tensor]:
        """The three complex-linear maps actually used: W_φ, W_ψ, W_z, each (6, 6)."""
        return {"phi": to_complex_linear(self.w_phi), "psi": to_complex_linear(self.w_psi),
                "z": to_complex_linear(self.w_z)}

    def keys_values(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys W_φ x_t and values W_ψ x_{t+1} per unit: x (B, T, 6) -> two (B, H, T, 6/H).

        The value of the last position is 0: its next point is not known yet.
        """
        m = self.maps()
        B, T, d = x.shape
        H = self.n_units
        k = (x @ m["phi"].T).view(B, T, H, d // H).transpose(1, 2)  # (B, H, T, hd)
        nxt = F.pad(x[:, 1:], (0, 0, 0, 1))  # (B, T, 6): x_{t+1}, zeros at the end
        v = (nxt @ m["psi"].T).view(B, T, H, d // H).transpose(1, 2)  # (B, H, T, hd)
        return k, v

    def forward(self, x: torch.Tensor, return_units: bool = False) -> torch.Tensor:
        """Predict x_{t+1} from x_0..x_t at every position: x (B, T, 6) -> (B, T, 6).

        With ``return_units`` the per-unit retrievals (B, H, T, hd) are returned instead.
        """
        if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[-1] != 2 * N_MOONS:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"MoonMemory(x): expected a (batch, time, 6) tensor, got {shape}.")
        k, v = self.keys_values(x)
        y = causal_retrieval(k, v, beta=self.beta)  # (B, H, T, hd)
        if return_units:
            return y
        B, H, T, hd = y.shape
        y = y.transpose(1, 2).reshape(B, T, H * hd)  # (B, T, 6)
        return y @ self.maps()["z"].T

    @torch.no_grad()
    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """Retrieval weights of every unit: x (B, T, 6) -> (B, H, T, T), row t over s < t.

        For looking at, not for training (no gradient).
        """
        k, v = self.keys_values(x)
        _, weights = causal_retrieval(k, v, beta=self.beta, return_weights=True)
        return weights  # (B, H, T, T), row 0 all zero: it reads nothing
