"""Keys from the past, values from the future: the feature extractors of a memory unit.

Keys are a *leaky average* of projected inputs, ``k̄_t = k̃_t + λ k̄_{t-1}`` (recent past,
weighted by recency; λ, the ``decay``, is the fraction of the past kept per step), then
L2-normalised and scaled. Values mix the projected input of now and of the next step,
``v̄_t = γ ṽ_t + (1-γ) ṽ_{t+1}`` (a one-step peek into the future), then L2-normalised and
scaled. The leaky average is computed three ways that agree:

- ``"recurrent"``: the paper's recursion, one step at a time (clear, slow);
- ``"matrix"``: one (T, T) lower-triangular matrix ``C[t, s] = λ^(t-s)`` (clear, O(T²) memory);
- ``"scan"``: a chunked scan, O(T) time and memory (the default, used by the models).

Per-head scalars use the papers' "×10" parameterisation: the raw parameter θ is stored at a tenth
of its effective log-value so that Adam moves the effective value ten times faster.
Input validation lives in :mod:`mosaics_edu.core.validation`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from . import validation as check
from .validation import LEAKY_METHODS

__all__ = [
    "leaky_average",
    "KeyExtractor",
    "ValueExtractor",
    "scaled_unit",
    "value_scale",
    "alpha_logit_init",
    "EXP_SCALING",
    "MAX_LOG_SCALE",
]

EXP_SCALING = 10.0  # effective log-value = 10 × raw parameter
MAX_LOG_SCALE = 5.0  # clamp of the key's log-scale: logits ≤ e^10 ≈ 22,026 < fp16 max 65,504
_HALF = (torch.float16, torch.bfloat16)


def leaky_average(
    x: Any,
    decay: Any,
    method: str = "scan",
    dim: int = -2,
) -> Any:
    """Leaky average along time: ``out_t = x_t + decay * out_{t-1}`` (``out_{-1} = 0``).

    Args:
        x: (..., T, d) torch tensor (or numpy array, answered in numpy); time on axis ``dim``.
        decay: λ in [0, 1], the fraction of the past kept per step; a number, or a tensor
            broadcastable to the leading dimensions of ``x`` (the dimensions before time and
            features), e.g. one per head.
        method: ``"scan"`` (O(T), default), ``"matrix"`` (T×T) or ``"recurrent"`` (a loop).
        dim: the time axis of ``x`` (the feature axis is the last one).

    Returns:
        The leaky averages, same shape and kind as ``x``. Half-precision inputs are averaged in
        float32 (outside autocast) and returned in their own dtype.
    """
    x, from_numpy, dim = check.leaky_average_input(x, method, dim)
    xt = x.movedim(dim, -2)  # (..., T, d)
    decay = check.decay_tensor(decay, xt.float() if xt.dtype in _HALF else xt)  # (..., 1, 1)
    out = _leaky(xt, decay, method).movedim(-2, dim)
    return out.numpy() if from_numpy else out


def value_scale(alpha_logit: torch.Tensor) -> torch.Tensor:
    """α_h = exp(10 θ^v_h), the norm of every value (and the output scale of a persistent
    memory). θ^v starts at -0.05 (:func:`alpha_logit_init`), α = e^-0.5 ≈ 0.607. Shape (H,)."""
    return torch.exp(EXP_SCALING * alpha_logit)


def scaled_unit(
    x: torch.Tensor, scale: torch.Tensor | None = None, head_dim: int = 1
) -> torch.Tensor:
    """scale_h · x/‖x‖ over the last axis (an all-zero x stays zero). x: (B, H, T, hs) (or heads
    on axis ``head_dim``), scale: (H,) or None -> the shape of x."""
    inv_norm = x.norm(dim=-1, keepdim=True).clamp_min(1e-12).reciprocal()  # (B, H, T, 1)
    if scale is not None:
        inv_norm = inv_norm * _per_head(scale, x, head_dim)
    return x * inv_norm


# --------------------------------------------------------------------------------------------
# key and value extractors
# --------------------------------------------------------------------------------------------


class KeyExtractor(nn.Module):
    """Keys ``k_t = s_h · k̄_t / ‖k̄_t‖`` with ``k̄_t = W_φ x_t + λ_h k̄_{t-1}``, per head h.

    Parameters (per head): ``decay_logit`` θ with rate ``r_h = 10|θ_h|`` and decay
    ``λ_h = exp(-r_h)`` (init θ = linspace(0.5, 5, H)/10, so λ spans e^-0.5 … e^-5), and
    ``beta_logit`` θ^β with scale ``s_h = exp(min(10 θ^β_h, 5))`` (init 0.1, s = e). Two keys
    both carrying ``s_h`` give logits ``β_h k̂·k̂'`` with ``β_h = s_h²`` (e² ≈ 7.39).
    Checkpoints written when θ was called ``leak_logit`` load unchanged (renamed on load).
    """

    def __init__(self, n_embd: int, n_head: int) -> None:
        super().__init__()
        check.check_heads(n_embd, n_head)
        self.n_embd, self.n_head, self.head_size = n_embd, n_head, n_embd // n_head
        self.proj = nn.Linear(n_embd, n_embd, bias=False)  # W_φ
        self.decay_logit = nn.Parameter(torch.linspace(0.5, 5.0, n_head) / EXP_SCALING)
        self.beta_logit = nn.Parameter(torch.full((n_head,), 1.0 / EXP_SCALING))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        old = prefix + "leak_logit"  # the name of decay_logit in checkpoints before the rename
        if old in state_dict and prefix + "decay_logit" not in state_dict:
            state_dict[prefix + "decay_logit"] = state_dict.pop(old)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # effective per-head quantities -----------------------------------------------------------
    @property
    def rate(self) -> torch.Tensor:
        """r_h = 10 |θ_h| ≥ 0, so the decay λ_h = exp(-r_h) stays in (0, 1]. Shape (H,)."""
        return EXP_SCALING * self.decay_logit.abs()

    @property
    def decay(self) -> torch.Tensor:
        """λ_h, the fraction of the past the key's leaky average keeps per step. Shape (H,)."""
        return torch.exp(-self.rate)

    @property
    def scale(self) -> torch.Tensor:
        """s_h = exp(min(10 θ^β_h, 5)), the norm of every key of head h. Shape (H,)."""
        return torch.exp((EXP_SCALING * self.beta_logit).clamp(max=MAX_LOG_SCALE))

    @property
    def beta(self) -> torch.Tensor:
        """β_h = s_h², the multiplier of k̂_t · k̂_s in the retrieval logits. Shape (H,)."""
        return self.scale**2

    # computation ----------------------------------------------------------------------------
    def project(self, x: torch.Tensor) -> torch.Tensor:
        """k̃ = W_φ x split into heads. x: (B, T, d) -> (B, H, T, head_size)."""
        B, T, _ = x.shape
        return self.proj(x).view(B, T, self.n_head, self.head_size).transpose(1, 2)

    def leaky_keys(self, x: torch.Tensor, method: str = "scan") -> torch.Tensor:
        """k̄ (before normalisation). x: (B, T, d) -> (B, H, T, head_size)."""
        check.check_input(x, self.n_embd, type(self).__name__)
        if method != "scan":  # the teaching forms, (B, H, T, hs) layout
            return _leaky(self.project(x), self.decay[:, None, None], method)
        B, T, _ = x.shape
        k_tilde = self.proj(x).view(B, T, self.n_head, self.head_size)  # (B, T, H, hs)
        k_bar = _leaky(k_tilde, self.decay, heads_layout=True)  # (B, T, H, hs)
        return k_bar.transpose(1, 2)  # (B, H, T, hs), a view

    def unit(
        self, k_bar: torch.Tensor, scale: torch.Tensor | None = None, head_dim: int = 1
    ) -> torch.Tensor:
        """k̂ = k̄ / ‖k̄‖, times ``scale`` (H,) if given (an all-zero k̄ stays zero)."""
        return scaled_unit(k_bar, scale, head_dim)

    def forward(self, x: torch.Tensor, method: str = "scan") -> torch.Tensor:
        """Scaled unit keys ``s_h k̂_t``. x: (B, T, d) -> (B, H, T, head_size)."""
        if method == "scan":
            return self.scaled_keys(x, self.scale)
        return self.unit(self.leaky_keys(x, method), self.scale)  # (B, H, T, hs)

    def scaled_keys(
        self, x: torch.Tensor, scale: torch.Tensor, heads_first: bool = False
    ) -> torch.Tensor:
        """``scale_h · k̂_t`` for a per-head ``scale`` (H,): the keys (scale s_h) or the persistent
        memory's queries (β_h). x: (B, T, d) -> (B, H, T, head_size).

        The same numbers as ``unit(leaky_keys(x), scale)``. On the CPU in float32/float64 (no
        autocast, not compiling) the leaky average and the scaled normalisation run as one
        autograd node with a hand-written backward (:class:`_ScaledLeakyUnit`): the forward
        runs the same operations, the backward needs a dozen operations instead of autograd's
        three dozen small ones. ``heads_first`` asks for (H, B, T, hs) memory under the
        (B, H, T, hs) shape where that path runs (the persistent memory reads its table with the
        B·T queries of a head side by side), saving a copy; the numbers are the same.
        """
        check.check_input(x, self.n_embd, type(self).__name__)
        B, T, _ = x.shape
        k_tilde = self.proj(x).view(B, T, self.n_head, self.head_size)  # (B, T, H, hs)
        if _fused_ok(k_tilde):
            return _ScaledLeakyUnit.apply(k_tilde, self.decay, scale, heads_first).transpose(1, 2)
        k_bar = _leaky(k_tilde, self.decay, heads_layout=True).transpose(1, 2)  # (B, H, T, hs)
        return self.unit(k_bar, scale)

    def step(
        self, x_t: torch.Tensor, state: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One step of the recursion for generation.

        x_t: (B, 1, d); state k̄_{t-1}: (B, H, 1, hs) or None -> (unit key k̂_t, new state k̄_t).
        """
        k_tilde = self.project(x_t)  # (B, H, 1, hs)
        k_bar = k_tilde if state is None else k_tilde + self.decay.to(k_tilde.dtype)[
            :, None, None
        ] * state
        return self.unit(k_bar), k_bar


class ValueExtractor(nn.Module):
    """Values ``v_t = α_h · v̄_t/‖v̄_t‖`` with ``v̄_t = γ_h ṽ_t + (1-γ_h) ṽ_{t+1}``, ``ṽ = W_ψ x``.

    The value of position t peeks one step into the future; past the window ``ṽ`` is 0.
    Parameters (per head): ``gamma`` γ_h ~ U(0, 1) used as is, and ``alpha_logit`` θ^v with
    ``α_h = exp(10 θ^v_h)`` (init -0.05, α = e^-0.5 ≈ 0.607; :func:`value_scale`).
    """

    def __init__(self, n_embd: int, n_head: int) -> None:
        super().__init__()
        check.check_heads(n_embd, n_head)
        self.n_embd, self.n_head, self.head_size = n_embd, n_head, n_embd // n_head
        self.proj = nn.Linear(n_embd, n_embd, bias=False)  # W_ψ
        self.gamma = nn.Parameter(torch.rand(n_head))
        self.alpha_logit = nn.Parameter(alpha_logit_init(n_head))

    @property
    def alpha(self) -> torch.Tensor:
        """α_h = exp(10 θ^v_h), the norm of every value of head h. Shape (H,)."""
        return value_scale(self.alpha_logit)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """ṽ = W_ψ x split into heads. x: (B, T, d) -> (B, H, T, head_size)."""
        B, T, _ = x.shape
        return self.proj(x).view(B, T, self.n_head, self.head_size).transpose(1, 2)

    def combine(self, v_now: torch.Tensor, v_next: torch.Tensor, head_dim: int = 1) -> torch.Tensor:
        """v = α · normalise(γ ṽ_t + (1-γ) ṽ_{t+1}).

        Both (B, H, T, hs) (or (B, T, H, hs) with ``head_dim=2``) -> the same shape.
        """
        g = _per_head(self.gamma, v_now, head_dim)  # (H, 1, 1) or (H, 1)
        v_bar = torch.lerp(v_next, v_now, g)  # = γ ṽ_t + (1-γ) ṽ_{t+1}, in one pass
        return scaled_unit(v_bar, self.alpha, head_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Values with the one-step peek. x: (B, T, d) -> (B, H, T, head_size)."""
        check.check_input(x, self.n_embd, type(self).__name__)
        B, T, _ = x.shape
        v_tilde = self.proj(x).view(B, T, self.n_head, self.head_size)  # (B, T, H, hs)
        if _fused_ok(v_tilde):  # same numbers, one autograd node (_PeekUnit)
            return _PeekUnit.apply(v_tilde, self.gamma, self.alpha).transpose(1, 2)
        v_next = F.pad(v_tilde[:, 1:], (0, 0, 0, 0, 0, 1))  # (B, T, H, hs): ṽ_{t+1}, 0 at the end
        return self.combine(v_tilde, v_next, head_dim=2).transpose(1, 2)  # (B, H, T, hs)


def alpha_logit_init(n_head: int) -> torch.Tensor:
    """θ^v = -0.5/10 per head, so α = e^-0.5 at init. Shape (H,)."""
    return torch.full((n_head,), -0.5 / EXP_SCALING)


def _per_head(p: torch.Tensor, x: torch.Tensor, head_dim: int = 1) -> torch.Tensor:
    """A per-head vector (H,) shaped to broadcast along axis ``head_dim`` of x."""
    return p.to(x.dtype).view(-1, *([1] * (x.dim() - 1 - head_dim)))




# --------------------------------------------------------------------------------------------
# the training hot path: keys and values as single autograd nodes (CPU, float32/float64)
# --------------------------------------------------------------------------------------------


def _fused_ok(x: torch.Tensor) -> bool:
    """Whether the hand-written backwards apply: a CPU tensor in float32 or float64, outside
    autocast and torch.compile (which see the plain operations instead)."""
    return (
        x.device.type == "cpu"
        and x.dtype in (torch.float32, torch.float64)
        and not torch.is_autocast_enabled("cpu")
        and not torch.compiler.is_compiling()
    )


def _unit_backward(
    grad: torch.Tensor, x: torch.Tensor, inv_norm: torch.Tensor, scale: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Backward of ``y = scale_h · x · inv_norm`` with ``inv_norm = 1/max(‖x‖, 1e-12)``, heads on
    axis 2: x, grad (B, T, H, hs), inv_norm (B, T, H, 1), scale (H,) -> (grad of x, of scale).

    ∂y/∂x is ``scale · inv_norm · (g - x̂ (x̂·g))`` (no projection where the norm was clamped).
    """
    x_hat = x * inv_norm  # (B, T, H, hs)
    dot = (grad * x_hat).sum(-1, keepdim=True)  # (B, T, H, 1)
    grad_scale = dot.sum((0, 1)).view(-1)  # (H,)
    dot = dot.masked_fill(inv_norm >= 1e12, 0.0)  # clamped norm: a constant, no projection
    grad_x = (grad - x_hat * dot) * (inv_norm * scale.view(-1, 1))
    return grad_x, grad_scale


class _ScaledLeakyUnit(torch.autograd.Function):
    """``scale_h · k̄/‖k̄‖`` with ``k̄ = leaky(k̃, λ_h)``, as one autograd node.

    k̃: (B, T, H, hs), decay λ and scale: (H,) -> (B, T, H, hs). The forward is the operations of
    ``_leaky(..., heads_layout=True)`` then :func:`scaled_unit`, in the same order (the same
    numbers). Backward: the normalisation's Jacobian, then the leaky average's adjoint, itself
    a leaky average running backwards in time (``a_t = g_t + λ a_{t+1}``), and
    ``∂L/∂λ = Σ_t a_t · k̄_{t-1}``. With ``heads_first`` the answer's memory is (H, B, T, hs).
    """

    @staticmethod
    def forward(ctx, k_tilde: torch.Tensor, decay: torch.Tensor, scale: torch.Tensor,  # noqa: ANN001, ANN205
                heads_first: bool = False):
        k_bar = _leaky_heads_scan(k_tilde, decay.to(k_tilde.dtype))  # (B, T, H, hs)
        inv_norm = k_bar.norm(dim=-1, keepdim=True).clamp_min(1e-12).reciprocal()  # (B,T,H,1)
        factor = inv_norm * scale.to(k_bar.dtype).view(-1, 1)  # (B, T, H, 1)
        ctx.save_for_backward(k_bar, inv_norm, decay, scale)
        if not heads_first:
            return k_bar * factor
        B, T, H, hs = k_bar.shape
        out = k_bar.new_empty(H, B, T, hs).permute(1, 2, 0, 3)  # (B, T, H, hs) shape
        return torch.mul(k_bar, factor, out=out)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: ANN001, ANN205
        k_bar, inv_norm, decay, scale = ctx.saved_tensors
        d = decay.to(k_bar.dtype)
        grad_bar, grad_scale = _unit_backward(grad, k_bar, inv_norm, scale.to(k_bar.dtype))
        grad_tilde = _leaky_heads_scan(grad_bar.flip(1), d).flip(1)  # (B, T, H, hs)
        grad_decay = None
        if ctx.needs_input_grad[1]:
            grad_decay = (grad_tilde[:, 1:] * k_bar[:, :-1]).sum((0, 1, 3))  # (H,)
        return grad_tilde, grad_decay, grad_scale, None


class _PeekUnit(torch.autograd.Function):
    """The values ``α_h · v̄/‖v̄‖`` with ``v̄_t = γ_h ṽ_t + (1-γ_h) ṽ_{t+1}`` (ṽ_T = 0), as one
    autograd node. ṽ: (B, T, H, hs), γ, α: (H,) -> (B, T, H, hs); the forward is the operations
    of :meth:`ValueExtractor.forward` (the same numbers)."""

    @staticmethod
    def forward(ctx, v_tilde: torch.Tensor, gamma: torch.Tensor, alpha: torch.Tensor):  # noqa: ANN001, ANN205
        v_next = F.pad(v_tilde[:, 1:], (0, 0, 0, 0, 0, 1))  # (B, T, H, hs): ṽ_{t+1}
        g = gamma.to(v_tilde.dtype).view(-1, 1)  # (H, 1)
        v_bar = torch.lerp(v_next, v_tilde, g)
        inv_norm = v_bar.norm(dim=-1, keepdim=True).clamp_min(1e-12).reciprocal()
        out = v_bar * (inv_norm * alpha.to(v_bar.dtype).view(-1, 1))
        ctx.save_for_backward(v_tilde, v_bar, inv_norm, gamma, alpha)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: ANN001, ANN205
        v_tilde, v_bar, inv_norm, gamma, alpha = ctx.saved_tensors
        g = gamma.to(v_bar.dtype).view(-1, 1)  # (H, 1)
        grad_bar, grad_alpha = _unit_backward(grad, v_bar, inv_norm, alpha.to(v_bar.dtype))
        grad_tilde = grad_bar * g  # the γ ṽ_t tap ...
        grad_tilde[:, 1:] += grad_bar[:, :-1] * (1.0 - g)  # ... and the (1-γ) ṽ_{t+1} tap of t-1
        grad_gamma = None
        if ctx.needs_input_grad[1]:  # ∂v̄/∂γ = ṽ_t - ṽ_{t+1}
            diff = v_tilde.clone()
            diff[:, :-1] -= v_tilde[:, 1:]
            grad_gamma = (grad_bar * diff).sum((0, 1, 3))  # (H,)
        return grad_tilde, grad_gamma, grad_alpha


# --------------------------------------------------------------------------------------------
# the leaky average, three ways (leaky_average validates, then calls _leaky)
# --------------------------------------------------------------------------------------------


def _leaky_recurrent(x: torch.Tensor, decay: torch.Tensor) -> torch.Tensor:
    """k̄_t = x_t + λ k̄_{t-1}, one step at a time. x: (..., T, d)."""
    state = torch.zeros_like(x[..., 0:1, :])  # (..., 1, d)
    out = []
    for t in range(x.shape[-2]):
        state = x[..., t : t + 1, :] + decay * state  # (..., 1, d)
        out.append(state)
    return torch.cat(out, dim=-2)  # (..., T, d)


def _decay_matrix(decay: torch.Tensor, size: int) -> torch.Tensor:
    """C[t, s] = λ^(t-s) for s ≤ t, else 0. decay: (..., 1, 1) -> (..., size, size)."""
    t = torch.arange(size, device=decay.device)
    lags = t[:, None] - t[None, :]  # (size, size): t - s
    causal = lags >= 0
    powers = decay ** lags.clamp_min(0).to(decay.dtype)  # (..., size, size); clamp keeps grads finite
    return torch.where(causal, powers, torch.zeros_like(powers))


def _leaky_matrix(x: torch.Tensor, decay: torch.Tensor) -> torch.Tensor:
    """All steps at once with the (T, T) lower-triangular decay matrix. x: (..., T, d)."""
    return _decay_matrix(decay, x.shape[-2]) @ x  # (..., T, T) @ (..., T, d) -> (..., T, d)


def _chunk_size(T: int) -> int:
    """About √T (a power of two, 16…128): balances the chunk matrix and the chunk-to-chunk carry."""
    return int(min(128, max(16, 2 ** round(math.log2(max(T, 1)) / 2))))


def _leaky_scan(x: torch.Tensor, decay: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
    """Chunked scan, O(T) time and memory for chunk ≈ √T.

    Split time into chunks of length L. Inside a chunk, the (L, L) decay matrix does the work.
    Between chunks, the state at the end of each chunk is itself a leaky average with decay λ^L
    over the chunk index (a small (T/L, T/L) matrix), and it reaches position i of the next chunk
    multiplied by λ^(i+1). No λ^(-t) factors, so nothing overflows.
    """
    *lead, T, d = x.shape
    L = chunk or _chunk_size(T)
    n_chunks = -(-T // L)
    pad = n_chunks * L - T
    if pad:  # zeros appended at the end never influence earlier positions
        x = F.pad(x, (0, 0, 0, pad))
    xc = x.reshape(*lead, n_chunks, L, d)  # (..., N, L, d)
    decay_c = decay[..., None]  # (..., 1, 1, 1): broadcasts over (N, L, d)
    local = _decay_matrix(decay, L).unsqueeze(-3) @ xc  # (..., N, L, d): leaky average inside chunks
    if n_chunks > 1:
        ends = local[..., :, L - 1, :]  # (..., N, d): each chunk's own final state
        carried = _decay_matrix(decay ** L, n_chunks) @ ends  # (..., N, d): full state at chunk ends
        prev = F.pad(carried[..., :-1, :], (0, 0, 1, 0))  # (..., N, d): state entering each chunk
        steps = torch.arange(1, L + 1, device=x.device, dtype=x.dtype)  # (L,)
        inflow = decay_c ** steps[:, None]  # (..., 1, L, 1): λ^(i+1)
        local = local + inflow * prev.unsqueeze(-2)  # (..., N, L, d)
    out = local.reshape(*lead, n_chunks * L, d)  # (..., T_padded, d)
    return out[..., :T, :]  # (..., T, d)


def _leaky_heads_scan(x: torch.Tensor, decay: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
    """The chunked scan of :func:`_leaky_scan` in the layout a projection produces.

    x: (B, T, H, hs), time on axis 1 and one decay per head, decay: (H,) -> (B, T, H, hs).
    Same algorithm; keeping heads next to features lets each chunk product be one large matrix
    product per head (an einsum) instead of many tiny ones, and avoids a transposing copy.
    """
    B, T, H, hs = x.shape
    L = chunk or _chunk_size(T)
    n_chunks = -(-T // L)
    pad = n_chunks * L - T
    if pad:
        x = F.pad(x, (0, 0, 0, 0, 0, pad))
    xc = x.reshape(B, n_chunks, L, H, hs)  # (B, N, L, H, hs)
    decay3 = decay.view(H, 1, 1)
    local = torch.einsum("hij,bnjhd->bnihd", _decay_matrix(decay3, L), xc)  # (B, N, L, H, hs)
    if n_chunks > 1:
        ends = local[:, :, L - 1]  # (B, N, H, hs): each chunk's own final state
        carried = torch.einsum("hnm,bmhd->bnhd", _decay_matrix(decay3**L, n_chunks), ends)
        prev = F.pad(carried[:, :-1], (0, 0, 0, 0, 1, 0))  # (B, N, H, hs): state entering
        steps = torch.arange(1, L + 1, device=x.device, dtype=x.dtype)  # (L,)
        inflow = decay.view(1, H) ** steps.view(L, 1)  # (L, H): λ_h^(i+1)
        local = local + inflow[:, :, None] * prev[:, :, None]  # (B, N, L, H, hs)
    return local.reshape(B, n_chunks * L, H, hs)[:, :T]  # (B, T, H, hs)




def _leaky(
    x: torch.Tensor, decay: torch.Tensor, method: str = "scan", heads_layout: bool = False
) -> torch.Tensor:
    """Dispatch without validation (the layers call this). x: (..., T, d), decay: (..., 1, 1);
    or, with ``heads_layout``, x: (B, T, H, hs) and decay: (H,)."""
    out_dtype = x.dtype
    work = x.float() if x.dtype in _HALF else x
    with torch.autocast(device_type=work.device.type, enabled=False):
        decay = decay.to(work.dtype)
        if heads_layout:
            out = _leaky_heads_scan(work, decay)
        elif method == "scan":
            out = _leaky_scan(work, decay)
        elif method == "matrix":
            out = _leaky_matrix(work, decay)
        elif method == "recurrent":
            out = _leaky_recurrent(work, decay)
        else:
            raise ValueError(f"method must be one of {LEAKY_METHODS}, got {method!r}")
    return out.to(out_dtype)
