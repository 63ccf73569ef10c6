"""Gated, input-dependent keys (Memory Mosaics v2): a leaky average whose gate and decay depend
on the input at every step.

v1's key is a leaky average with one fixed decay per head, so "tom-and-jerry" and
"tom---and---jerry" get different keys: the filler tokens decay the memory of "tom". v2 lets the
input decide, per head and per step, how much of the new token enters (the gate g_t) and how much
of the past is kept (the decay λ_t):

    k̃_t = W_φ x_t,   k̄_t = g_t k̃_t + λ_t k̄_{t-1},   k_t = k̄_t / ‖k̄_t‖,
    g_t = exp(w_gᵀ x_t) > 0,   λ_t = exp(-|w_λᵀ x_t|) ∈ (0, 1]

(one scalar gate and one scalar decay per head and step). The recurrence only *builds keys*: the
memory still stores every pair, it is not a compressive state.

Numerical safety. The gates can be huge or tiny and products of decays underflow long before
T = 2048 (λ = e^-20 per step gives e^-40960 after 2048 steps). So everything is computed in log
space: with ``log_gate`` b_t = w_gᵀx_t and ``log_decay`` a_t = -|w_λᵀx_t| ≤ 0, a leaky key is
returned as a pair ``(u_t, M_t)`` with ``k̄_t = exp(M_t) · u_t`` and every exponent that is
actually evaluated ≤ 0. The unit key needs only u_t (the scale cancels in the normalisation).

Two forms that agree (tests: ≤ 1e-5 at T = 2048 with strong and weak decays and large gates):

- :func:`gated_leaky_recurrent`: the step-by-step recursion, carrying the log-scale
  ``M_t = max(b_t, a_t + M_{t-1})`` (the reference; also one step of cached generation);
- :func:`gated_leaky_scan`: a chunked form, O(T·L·d) time and O(T·L) memory for chunk length L
  (default 16), vectorised. Within a chunk, position i receives k̃_j with log-weight
  ``b_j + Σ_{r=j+1..i} a_r`` (an (L, L) matrix per chunk); the chunks' final states form a gated
  recursion of their own, one step per chunk, solved by the same scan on T/L steps; each chunk
  then adds the state entering it. The sums over a range are *segment sums*: each adds
  exactly the terms r = j+1..i (a product with a fixed 0/1 selection matrix), so no difference
  of two large prefix sums is ever taken (which would lose every digit once the prefix sums
  reach 1e5).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "gated_leaky_plain",
    "gated_leaky_recurrent",
    "gated_leaky_scan",
    "gated_leaky_step",
    "GatedKeyExtractor",
    "DEFAULT_CHUNK",
]

DEFAULT_CHUNK = 16


def _check_gated_input(k_tilde: torch.Tensor, log_gate: torch.Tensor, log_decay: torch.Tensor) -> None:
    if not isinstance(k_tilde, torch.Tensor) or k_tilde.dim() < 2:
        raise ValueError("k_tilde must be a tensor of shape (..., T, d) (time on axis -2)")
    for name, t in (("log_gate", log_gate), ("log_decay", log_decay)):
        if not isinstance(t, torch.Tensor) or t.shape != k_tilde.shape[:-1]:
            raise ValueError(
                f"{name} must be a tensor of shape {tuple(k_tilde.shape[:-1])} (k_tilde without its "
                f"feature axis: one scalar per step), got "
                f"{tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__}"
            )
    if not torch.compiler.is_compiling() and bool((log_decay > 0).any()):
        raise ValueError(
            "log_decay must be <= 0 (a decay λ = exp(log_decay) in (0, 1]); pass -|w_λᵀx|"
        )


def gated_leaky_plain(
    k_tilde: torch.Tensor, log_gate: torch.Tensor, log_decay: torch.Tensor
) -> torch.Tensor:
    """The textbook recursion ``k̄_t = g_t k̃_t + λ_t k̄_{t-1}`` with ``g = e^b``, ``λ = e^a``.

    k_tilde: (..., T, d), log_gate, log_decay: (..., T) -> k̄ (..., T, d). Overflows and
    underflows like the formula does (use it in float64 on moderate inputs, to check the others).
    """
    _check_gated_input(k_tilde, log_gate, log_decay)
    g, decay = log_gate.exp()[..., None], log_decay.exp()[..., None]  # (..., T, 1)
    state = torch.zeros_like(k_tilde[..., 0, :])
    out = []
    for t in range(k_tilde.shape[-2]):
        state = g[..., t, :] * k_tilde[..., t, :] + decay[..., t, :] * state
        out.append(state)
    return torch.stack(out, dim=-2)


def gated_leaky_step(
    k_tilde_t: torch.Tensor,
    log_gate_t: torch.Tensor,
    log_decay_t: torch.Tensor,
    state: tuple[torch.Tensor, torch.Tensor] | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of the log-scaled recursion.

    k_tilde_t: (..., d), log_gate_t, log_decay_t: (...), state ``(u_{t-1} (..., d),
    M_{t-1} (...))`` or None (nothing before) -> ``(u_t, M_t)`` with ``k̄_t = e^{M_t} u_t``:

        M_t = max(b_t, a_t + M_{t-1}),  u_t = e^{b_t - M_t} k̃_t + e^{a_t + M_{t-1} - M_t} u_{t-1}

    Both exponents are ≤ 0, so nothing overflows, and the larger of the two terms keeps weight 1.
    """
    if state is None:
        return k_tilde_t, log_gate_t
    u_prev, m_prev = state
    carried = log_decay_t + m_prev  # (...): log-size of the kept past
    m = torch.maximum(log_gate_t, carried)
    u = (log_gate_t - m).exp()[..., None] * k_tilde_t + (carried - m).exp()[..., None] * u_prev
    return u, m


def gated_leaky_recurrent(
    k_tilde: torch.Tensor, log_gate: torch.Tensor, log_decay: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference: :func:`gated_leaky_step` for t = 0 … T-1.

    k_tilde: (..., T, d), log_gate, log_decay: (..., T) -> ``(u (..., T, d), M (..., T))`` with
    ``k̄_t = exp(M_t) u_t``.
    """
    _check_gated_input(k_tilde, log_gate, log_decay)
    state = None
    us, ms = [], []
    for t in range(k_tilde.shape[-2]):
        state = gated_leaky_step(k_tilde[..., t, :], log_gate[..., t], log_decay[..., t], state)
        us.append(state[0])
        ms.append(state[1])
    return torch.stack(us, dim=-2), torch.stack(ms, dim=-1)


def _chunk_log_weights(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """W[..., i, j] = b_j + Σ_{r=j+1..i} a_r for j ≤ i, -inf above the diagonal: the log-weight
    of k̃_j at position i of a chunk.

    a, b: (..., L) -> (..., L, L). Every entry is a sum of the terms it needs and no other (a
    0/1 matrix selects them), so a tiny sum after a huge one keeps its digits: no difference of
    two prefix sums is taken. All L² sums of a chunk are one product ``[a, b] @ S`` with the
    fixed selection matrix S (2L, L²), which runs as a single matrix multiplication where the
    masked cumulative sum it replaces took four passes over an (..., L, L) tensor.
    """
    L = a.shape[-1]
    select, above = _selection(L, a.dtype, a.device)  # (2L, L*L), (L, L)
    sums = torch.cat([a, b], dim=-1) @ select  # (..., L*L)
    return sums.view(*a.shape, L) + above  # (..., L, L)


_SELECTIONS: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


def _selection(L: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The 0/1 matrix of :func:`_chunk_log_weights` and its (L, L) mask (0 on and below the
    diagonal, -inf above), built once per chunk length, dtype and device."""
    key = (L, dtype, device)
    if key not in _SELECTIONS:
        pos = torch.arange(L, device=device)
        r, i, j = pos.view(L, 1, 1), pos.view(1, L, 1), pos.view(1, 1, L)
        decays = (r > j) & (r <= i)  # a_r enters W[i, j] when j < r ≤ i
        gates = (r == j) & (j <= i)  # b_r enters W[i, j] when r = j ≤ i
        select = torch.cat([decays, gates]).to(dtype).view(2 * L, L * L)
        above = torch.zeros(L, L, dtype=dtype, device=device).masked_fill(
            torch.ones(L, L, dtype=torch.bool, device=device).triu(1), float("-inf"))
        _SELECTIONS[key] = (select, above)
    return _SELECTIONS[key]


def gated_leaky_scan(
    k_tilde: torch.Tensor,
    log_gate: torch.Tensor,
    log_decay: torch.Tensor,
    chunk: int = DEFAULT_CHUNK,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The chunked form of :func:`gated_leaky_recurrent` (same ``(u, M)`` up to rounding).

    k_tilde: (..., T, d), log_gate, log_decay: (..., T) -> ``(u (..., T, d), M (..., T))``.
    Cost O(T·L·d) (the chunks, then the same scan over the T/L chunk ends); memory O(T·L).
    """
    _check_gated_input(k_tilde, log_gate, log_decay)
    if not isinstance(chunk, int) or isinstance(chunk, bool) or chunk < 2:
        raise ValueError(f"chunk must be an integer >= 2 (a chunk length), got {chunk!r}")
    *lead, T, d = k_tilde.shape
    L = min(chunk, T)
    N = -(-T // L)
    pad = N * L - T
    if pad:  # steps appended at the end never reach earlier positions
        k_tilde = F.pad(k_tilde, (0, 0, 0, pad))
        log_gate = F.pad(log_gate, (0, pad))
        log_decay = F.pad(log_decay, (0, pad))
    kc = k_tilde.reshape(*lead, N, L, d)  # (..., N, L, d)
    b = log_gate.reshape(*lead, N, L)  # (..., N, L)
    a = log_decay.reshape(*lead, N, L)  # (..., N, L)

    # inside each chunk: log-weight of k̃_j at position i = b_j + Σ_{r=j+1..i} a_r
    log_w = _chunk_log_weights(a, b)  # (..., N, L, L), -inf above the diagonal
    r = log_w.amax(dim=-1)  # (..., N, L): finite (the diagonal b_i is always there)
    local = torch.exp(log_w - r[..., None]) @ kc  # (..., N, L, d): k̄ (own chunk only) = e^r local
    if N == 1:
        return local.reshape(*lead, L, d)[..., :T, :], r.reshape(*lead, L)[..., :T]

    # across chunks: the chunk ends form a gated leaky recursion of their own, one step per chunk,
    # F_n = e^{A_n} F_{n-1} + E_n (A_n the chunk's summed log-decay, E_n = e^ρ_n · end_n its own
    # final state): the same scan on N = T/L steps, so the whole is O(T·L)
    ends = local[..., -1, :].clone()  # (..., N, d); a copy: `local` is updated in place below
    full_ends, big_r = gated_leaky_scan(ends, r[..., -1], a.sum(dim=-1), chunk)

    # the state entering chunk n (none for chunk 0) reaches its position i times e^{Σ_{r≤i} a_r}
    prev = F.pad(full_ends[..., :-1, :], (0, 0, 1, 0))  # (..., N, d)
    prev_r = F.pad(big_r[..., :-1], (1, 0), value=float("-inf"))  # (..., N)
    inflow_log = a.cumsum(dim=-1) + prev_r[..., None]  # (..., N, L), -inf in chunk 0
    m = torch.maximum(r, inflow_log)  # (..., N, L)
    # u = e^{r-m} local + e^{inflow-m} prev, in place: no (..., T, d) temporaries (twice as fast)
    u = local.mul_(torch.exp(r - m)[..., None]).addcmul_(
        torch.exp(inflow_log - m)[..., None], prev[..., None, :]
    )  # (..., N, L, d)
    return u.reshape(*lead, N * L, d)[..., :T, :], m.reshape(*lead, N * L)[..., :T]


class GatedKeyExtractor(nn.Module):
    """v2 keys: ``k_t = Norm(k̄_t)``, ``k̄_t = g_t W_φ x_t + λ_t k̄_{t-1}``, per head.

    Parameters: ``proj`` W_φ (d -> d, no bias), ``gate`` w_g (d -> n_head, no bias) and
    ``decay_proj`` w_λ (d -> n_head, no bias): one gate g_t = exp(w_gᵀx_t) and one decay
    λ_t = exp(-|w_λᵀx_t|) per head and step. No key scale: the adaptive bandwidth β(n) plays
    that role in v2.
    """

    def __init__(self, n_embd: int, n_head: int, chunk: int = DEFAULT_CHUNK) -> None:
        super().__init__()
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (n_embd, n_head)):
            raise ValueError(f"n_embd and n_head must be positive integers, got {n_embd!r}, {n_head!r}")
        if n_embd % n_head:
            raise ValueError(
                f"n_embd={n_embd} is not divisible by n_head={n_head}: each head gets "
                "n_embd/n_head features, so pick n_head among the divisors of n_embd"
            )
        self.n_embd, self.n_head, self.head_size, self.chunk = n_embd, n_head, n_embd // n_head, chunk
        self.proj = nn.Linear(n_embd, n_embd, bias=False)  # W_φ
        self.gate = nn.Linear(n_embd, n_head, bias=False)  # w_g, one row per head
        self.decay_proj = nn.Linear(n_embd, n_head, bias=False)  # w_λ, one row per head

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """k̃ = W_φ x split into heads. x: (B, T, d) -> (B, H, T, head_size)."""
        B, T, _ = x.shape
        return self.proj(x).view(B, T, self.n_head, self.head_size).transpose(1, 2)

    def log_gates(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (B, T, d) -> (log g = w_gᵀx, log λ = -|w_λᵀx|), each (B, H, T)."""
        return self.gate(x).transpose(1, 2), -self.decay_proj(x).abs().transpose(1, 2)

    def decay(self, x: torch.Tensor) -> torch.Tensor:
        """λ_t per head and step, the fraction of the past kept. x: (B, T, d) -> (B, H, T)."""
        return self.log_gates(x)[1].exp()

    def leaky_keys(self, x: torch.Tensor, method: str = "scan") -> tuple[torch.Tensor, torch.Tensor]:
        """k̄ in log-scaled form ``(u (B, H, T, hs), M (B, H, T))``, ``k̄ = e^M u``.

        ``method``: ``"scan"`` (chunked, the default) or ``"recurrent"`` (the reference loop).
        Half-precision inputs are computed in float32 and returned in their dtype.
        """
        if method not in ("scan", "recurrent"):
            raise ValueError(f"method must be 'scan' or 'recurrent', got {method!r}")
        k_tilde = self.project(x)
        b, a = self.log_gates(x)
        dtype = k_tilde.dtype
        if dtype in (torch.float16, torch.bfloat16):
            k_tilde, b, a = k_tilde.float(), b.float(), a.float()
        with torch.autocast(device_type=k_tilde.device.type, enabled=False):
            if method == "scan":
                u, m = gated_leaky_scan(k_tilde, b, a, self.chunk)
            else:
                u, m = gated_leaky_recurrent(k_tilde, b, a)
        return u.to(dtype), m

    def forward(self, x: torch.Tensor, method: str = "scan") -> torch.Tensor:
        """Unit keys k_t. x: (B, T, d) -> (B, H, T, head_size)."""
        u, _ = self.leaky_keys(x, method)
        return u * u.norm(dim=-1, keepdim=True).clamp_min(1e-12).reciprocal()

    def step(
        self, x_t: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """One position for generation. x_t: (B, 1, d), state ``(u (B, H, hs), M (B, H))`` or
        None -> (unit key (B, H, 1, hs), new state)."""
        k_tilde = self.project(x_t)[:, :, 0]  # (B, H, hs)
        b, a = self.log_gates(x_t)  # (B, H, 1) each
        u, m = gated_leaky_step(k_tilde, b[..., 0], a[..., 0], state)
        k = u * u.norm(dim=-1, keepdim=True).clamp_min(1e-12).reciprocal()
        return k[:, :, None], (u, m)
