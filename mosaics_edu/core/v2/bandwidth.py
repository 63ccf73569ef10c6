"""Adaptive bandwidth (Memory Mosaics v2): β grows with the number of pairs the memory holds.

A kernel regressor's best bandwidth depends on how many examples it averages: with few pairs a
broad kernel (small β) averages away the noise, with many pairs a narrow kernel (large β) removes
the bias. The asymptotically MISE-optimal width shrinks like n^(-1/(p+4)), so v2 schedules, per
head,

    β(n) = β₁ · n^α + β₀,   β₀ ≥ 0, β₁ > 0, 0 < α < 1,

where n is the number of key–value pairs the memory holds *at that position* (it differs from
row to row: a short-term memory holds min(t, h-1) pairs at position t). β multiplies k_t·k_s of
the unit keys in the retrieval logits, like v1's β_h.

Parameterisation and init (the v2 paper's Table 6): ``β₀ = exp(min(θ₀, 10))`` and
``β₁ = exp(min(θ₁, 10))`` with θ₀ = θ₁ = 1.5 at init (β₀ = β₁ ≈ 4.48), and ``α = min(|θ_α|, 1)``
with θ_α = 1/3 at init. So β₀ > 0 and β₁ > 0 always (exp); α lies in [0, 1] — the closed ends are
reached only at θ_α = 0 (a single point) or by the clamp at |θ_α| ≥ 1 (where α stops learning).
β itself is capped at e^10 ≈ 22,026, v1's cap, so that logits stay finite in float16.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..features import MAX_LOG_SCALE
from ..validation import check_positive_int

__all__ = ["AdaptiveBandwidth", "MAX_BETA"]

MAX_LOG_BETA_PART = 10.0  # clamp of log β₀ and log β₁ (Table 6)
MAX_BETA = math.exp(2 * MAX_LOG_SCALE)  # e^10: v1's largest β, logits below the float16 maximum


class AdaptiveBandwidth(nn.Module):
    """β(n) = β₁ n^α + β₀, one (β₀, β₁, α) per head.

    ``forward(n)``: n, the pair counts (any shape, integer or float, ≥ 0) -> β of shape
    ``(n_head, *n.shape)``. A count of 0 (an empty memory, whose answer is 0 anyway) is treated
    as 1 so that the gradient of n^α with respect to α stays finite (d/dα n^α = n^α ln n).
    """

    def __init__(self, n_head: int) -> None:
        super().__init__()
        check_positive_int("n_head", n_head)
        self.n_head = n_head
        self.log_beta0 = nn.Parameter(torch.full((n_head,), 1.5))  # θ₀
        self.log_beta1 = nn.Parameter(torch.full((n_head,), 1.5))  # θ₁
        self.alpha_param = nn.Parameter(torch.full((n_head,), 1.0 / 3.0))  # θ_α

    @property
    def beta0(self) -> torch.Tensor:
        """β₀ = exp(min(θ₀, 10)) > 0, the bandwidth of a (nearly) empty memory. Shape (H,)."""
        return self.log_beta0.clamp(max=MAX_LOG_BETA_PART).exp()

    @property
    def beta1(self) -> torch.Tensor:
        """β₁ = exp(min(θ₁, 10)) > 0, the coefficient of n^α. Shape (H,)."""
        return self.log_beta1.clamp(max=MAX_LOG_BETA_PART).exp()

    @property
    def alpha(self) -> torch.Tensor:
        """α = min(|θ_α|, 1) ∈ [0, 1], how fast β grows with n. Shape (H,)."""
        return self.alpha_param.abs().clamp(max=1.0)

    def forward(self, n: torch.Tensor) -> torch.Tensor:
        """n: pair counts (...) -> β(n) (H, ...)."""
        if not isinstance(n, torch.Tensor):
            raise TypeError(f"n must be a tensor of pair counts, got {type(n).__name__}")
        if not torch.compiler.is_compiling() and n.numel() and bool((n < 0).any()):
            raise ValueError("n (the number of stored pairs) must be >= 0")
        shape = (self.n_head,) + (1,) * n.dim()
        n = n.to(self.log_beta0.dtype).clamp_min(1.0)  # (...)
        beta = self.beta1.view(shape) * n ** self.alpha.view(shape) + self.beta0.view(shape)
        return beta.clamp(max=MAX_BETA)  # (H, ...)
