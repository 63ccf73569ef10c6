"""A one-layer induction head: one memory unit against a one-layer attention-only transformer.

The task (chapter 02): each sequence repeats a block of ``period`` distinct random tokens,
``x_t = block[t mod period]``, with a period drawn per sequence. From position ``t = period`` on,
the next token is determined: it is the token that followed the previous occurrence of ``x_t``
(``[… a b … a] → b``), an *induction* step. Because the period changes from sequence to sequence,
no fixed positional offset solves it.

- :class:`MemoryUnitLM`: token embedding → one memory unit (leaky-average keys, values that peek
  one token ahead, retrieval from pairs s < t only) → unembedding. No positional encoding. The
  key of the previous ``a`` matches the current key (both mostly "a"), and its value holds the
  next token ``b``: one layer suffices.
- :class:`AttentionOnlyLM`: token + learned position embeddings → ``n_layer`` causal
  self-attention layers (W_q, W_k, W_v, W_o) → unembedding. In one layer a key sees only its own
  token and position, so it cannot say "the token *before* me was a": induction needs two layers.

Both are trained by :func:`train_lm` with the same budget and measured by
:func:`induction_accuracy` on held-out sequences.
"""

from __future__ import annotations

import hashlib
import math

import torch
import torch.nn.functional as F
from torch import nn

from ..core.features import KeyExtractor, ValueExtractor
from ..core.memory import softmax_attention
from ..training import run_cache
from ..training.step import optimizer_step

__all__ = ["periodic_tokens", "MemoryUnitLM", "AttentionOnlyLM", "train_lm", "induction_accuracy"]


def periodic_tokens(
    n_seqs: int, length: int = 48, vocab: int = 32, min_period: int = 4, max_period: int = 16,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sequences ``x_t = block[t mod period]``, each block of distinct random tokens.

    Returns tokens (n_seqs, length) int64 and periods (n_seqs,) int64.
    """
    if not 2 <= min_period <= max_period <= vocab:
        raise ValueError(f"need 2 <= min_period <= max_period <= vocab (blocks hold distinct "
                         f"tokens); got {min_period}, {max_period}, {vocab}")
    if n_seqs < 1 or length < 2:
        raise ValueError(f"need n_seqs >= 1 and length >= 2, got {n_seqs}, {length}")
    g = torch.Generator().manual_seed(seed)
    periods = torch.randint(min_period, max_period + 1, (n_seqs,), generator=g)  # (N,)
    blocks = torch.argsort(torch.rand(n_seqs, vocab, generator=g), dim=1)  # (N, V) permutations
    idx = torch.arange(length)[None, :] % periods[:, None]  # (N, T)
    return torch.gather(blocks, 1, idx), periods  # (N, T), (N,)


class MemoryUnitLM(nn.Module):
    """Embedding → one memory unit (keys from the past, values peeking one token ahead) → logits."""

    def __init__(self, vocab: int, n_embd: int = 64) -> None:
        super().__init__()
        if vocab < 2 or n_embd < 1:
            raise ValueError(f"need vocab >= 2 and n_embd >= 1, got {vocab}, {n_embd}")
        self.vocab = vocab
        self.embed = nn.Embedding(vocab, n_embd)
        self.keys = KeyExtractor(n_embd, n_head=1)
        self.values = ValueExtractor(n_embd, n_head=1)
        self.proj = nn.Linear(n_embd, n_embd, bias=False)  # W_o
        self.ln = nn.LayerNorm(n_embd)
        self.unembed = nn.Linear(n_embd, vocab, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, T) -> logits (B, T, vocab) for the next token at every position."""
        _check_tokens(tokens, self.vocab)
        B, T = tokens.shape
        x = self.embed(tokens)  # (B, T, d)
        k = self.keys(x)  # (B, 1, T, d): scaled unit keys s·k̂, so (s k̂)·(s k̂') = β k̂·k̂'
        v = self.values(x)  # (B, 1, T, d): values peek at x_{t+1}
        mask = torch.ones(T, T, dtype=torch.bool, device=tokens.device).tril(-1)  # (T, T): s < t
        y = softmax_attention(k, v, k, 1.0, mask=mask)  # (B, 1, T, d); row 0 is exactly 0
        h = x + self.proj(y[:, 0])  # (B, T, d)
        return self.unembed(self.ln(h))  # (B, T, vocab)


class AttentionOnlyLM(nn.Module):
    """Token + position embeddings → ``n_layer`` causal single-head attention layers → logits."""

    def __init__(self, vocab: int, n_embd: int = 64, block_size: int = 64, n_layer: int = 1) -> None:
        super().__init__()
        if vocab < 2 or n_embd < 1 or block_size < 1 or n_layer < 1:
            raise ValueError("vocab >= 2, n_embd >= 1, block_size >= 1 and n_layer >= 1 required")
        self.vocab, self.block_size = vocab, block_size
        self.embed = nn.Embedding(vocab, n_embd)
        self.pos = nn.Embedding(block_size, n_embd)
        self.qkv = nn.ModuleList(nn.Linear(n_embd, 3 * n_embd, bias=False) for _ in range(n_layer))
        self.proj = nn.ModuleList(nn.Linear(n_embd, n_embd, bias=False) for _ in range(n_layer))
        self.ln = nn.LayerNorm(n_embd)
        self.unembed = nn.Linear(n_embd, vocab, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, T) -> logits (B, T, vocab)."""
        _check_tokens(tokens, self.vocab)
        B, T = tokens.shape
        if T > self.block_size:
            raise ValueError(f"sequence length {T} exceeds block_size {self.block_size}")
        h = self.embed(tokens) + self.pos(torch.arange(T, device=tokens.device))  # (B, T, d)
        for qkv, proj in zip(self.qkv, self.proj, strict=True):
            q, k, v = qkv(h).chunk(3, dim=-1)  # 3 × (B, T, d)
            h = h + proj(F.scaled_dot_product_attention(q, k, v, is_causal=True))  # (B, T, d)
        return self.unembed(self.ln(h))  # (B, T, vocab)


def _check_tokens(tokens: torch.Tensor, vocab: int) -> None:
    if not isinstance(tokens, torch.Tensor) or tokens.dtype != torch.int64 or tokens.dim() != 2:
        raise TypeError("tokens must be an int64 tensor of shape (batch, time)")
    if tokens.numel() and (tokens.min() < 0 or tokens.max() >= vocab):
        raise ValueError(f"tokens must lie in [0, {vocab}), got [{tokens.min()}, {tokens.max()}]")


def train_lm(
    model: nn.Module, steps: int = 300, batch: int = 32, lr: float = 3e-3, length: int = 48,
    min_period: int = 4, max_period: int = 16, seed: int = 0,
) -> list[float]:
    """Train ``model`` on fresh periodic token sequences with Adam; return the loss per step.

    Every step draws a new batch (seeded), so both models see exactly the same data. In a test
    session a run with the same model, starting weights and arguments is trained once and then
    loaded: weights, losses and the random state after training
    (:func:`mosaics_edu.training.run_cache.result`).
    """
    if steps < 1 or batch < 1 or not lr > 0:
        raise ValueError(f"need steps >= 1, batch >= 1, lr > 0; got {steps}, {batch}, {lr}")
    weights = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        weights.update(name.encode())
        weights.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    inputs = {"model": repr(model), "weights": weights.hexdigest(), "steps": steps, "batch": batch,
              "lr": lr, "length": length, "periods": [min_period, max_period], "seed": seed}

    def fit() -> dict:
        losses = _fit(model, steps, batch, lr, length, min_period, max_period, seed)
        return {"losses": losses, "rng": torch.get_rng_state(),
                "weights": {k: v.detach().clone() for k, v in model.state_dict().items()}}

    done = run_cache.result("train_lm", inputs, fit)
    model.load_state_dict(done["weights"])  # the same weights when just trained
    torch.set_rng_state(done["rng"])
    model.eval()
    return list(done["losses"])


def _fit(model: nn.Module, steps: int, batch: int, lr: float, length: int, min_period: int,
         max_period: int, seed: int) -> list[float]:
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    vocab = model.vocab
    losses = []
    model.train()
    for step in range(steps):
        x, _ = periodic_tokens(batch, length, vocab, min_period, max_period, seed=10_000 * seed + step)
        logits = model(x[:, :-1])  # (B, T-1, V)
        loss = F.cross_entropy(logits.reshape(-1, vocab), x[:, 1:].reshape(-1))
        losses.append(optimizer_step(model, opt, loss))
        if not math.isfinite(losses[-1]):
            raise FloatingPointError(f"loss became {losses[-1]} at step {step}; lower lr")
    model.eval()
    return losses


@torch.no_grad()
def induction_accuracy(model: nn.Module, tokens: torch.Tensor, periods: torch.Tensor) -> float:
    """Next-token accuracy at the positions where induction determines the answer (t ≥ period)."""
    logits = model(tokens[:, :-1])  # (N, T-1, V)
    hit = logits.argmax(-1) == tokens[:, 1:]  # (N, T-1)
    t = torch.arange(tokens.shape[1] - 1)[None, :]  # (1, T-1)
    determined = t >= periods[:, None]  # (N, T-1): x_t occurred at t - period, followed by x_{t+1}
    return float(hit[determined].float().mean())
