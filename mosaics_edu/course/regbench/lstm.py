"""An LSTM language model: the control that is *not* expected to learn in context.

Same interface as the package's models (:mod:`mosaics_edu.models`): a dataclass config and
``forward(idx, targets=None) -> (logits, loss)`` with targets of -1 ignored. Token embedding →
``n_layer`` LSTM layers of width ``n_embd`` → dropout → tied output head (the embedding matrix).
:meth:`LSTMConfig.for_budget` picks the width whose parameter count is closest to a budget, so
the LSTM can be the same size as the mosaic and the GPT it is compared with.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...core.validation import check_positive_int
from .vocab import VOCAB_SIZE

__all__ = ["LSTMConfig", "LSTMLM", "lstm_parameters"]


def lstm_parameters(n_embd: int, n_layer: int, vocab_size: int = VOCAB_SIZE) -> int:
    """Parameters of :class:`LSTMLM`: tied embedding V·d, and per layer 4 gates × (d·d input +
    d·d recurrent weights + 2 biases of d) = 8d² + 8d."""
    for name, v in (("n_embd", n_embd), ("n_layer", n_layer), ("vocab_size", vocab_size)):
        check_positive_int(name, v)
    return vocab_size * n_embd + n_layer * (8 * n_embd * n_embd + 8 * n_embd)


@dataclass
class LSTMConfig:
    """Hyper-parameters of an :class:`LSTMLM`."""

    vocab_size: int = VOCAB_SIZE
    n_embd: int = 128
    n_layer: int = 1
    dropout: float = 0.0

    def __post_init__(self) -> None:
        for name in ("vocab_size", "n_embd", "n_layer"):
            check_positive_int(name, getattr(self, name))
        if not isinstance(self.dropout, float | int) or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be a probability in [0, 1), got {self.dropout!r}")

    @classmethod
    def for_budget(cls, n_params: int, n_layer: int = 1, **overrides: Any) -> LSTMConfig:
        """The config whose parameter count is closest to ``n_params`` (ties: the smaller)."""
        check_positive_int("n_params", n_params)
        vocab = overrides.get("vocab_size", VOCAB_SIZE)
        d = 1
        while lstm_parameters(d + 1, n_layer, vocab) <= n_params:
            d += 1
        if abs(lstm_parameters(d + 1, n_layer, vocab) - n_params) < abs(
            lstm_parameters(d, n_layer, vocab) - n_params
        ):
            d += 1
        return cls(n_embd=d, n_layer=n_layer, **overrides)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class LSTMLM(nn.Module):
    """An LSTM language model: (B, T) ids -> (B, T, vocab) logits, and the loss if targets given."""

    def __init__(self, config: LSTMConfig) -> None:
        super().__init__()
        if not isinstance(config, LSTMConfig):
            raise TypeError(f"config must be an LSTMConfig, got {type(config).__name__}")
        self.config = c = config
        self.wte = nn.Embedding(c.vocab_size, c.n_embd)
        self.drop = nn.Dropout(c.dropout)
        self.lstm = nn.LSTM(
            c.n_embd,
            c.n_embd,
            num_layers=c.n_layer,
            batch_first=True,
            dropout=c.dropout if c.n_layer > 1 else 0.0,
        )
        self.lm_head = nn.Linear(c.n_embd, c.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied, as in the package's models
        nn.init.normal_(self.wte.weight, std=c.n_embd**-0.5)

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """idx: (B, T) token ids -> logits (B, T, vocab), and the mean cross-entropy against
        ``targets`` (B, T) if given (target -1 = ignored)."""
        if not isinstance(idx, torch.Tensor) or idx.dtype not in (torch.int64, torch.int32):
            raise TypeError("idx must be a torch tensor of integer token ids (torch.long)")
        if idx.dim() != 2 or idx.shape[1] == 0:
            raise ValueError(f"idx must have shape (batch, time) with time >= 1, got {tuple(idx.shape)}")
        if int(idx.min()) < 0 or int(idx.max()) >= self.config.vocab_size:
            raise ValueError(f"idx holds ids outside [0, vocab_size={self.config.vocab_size})")
        h, _ = self.lstm(self.drop(self.wte(idx)))  # (B, T, d)
        logits = self.lm_head(self.drop(h))  # (B, T, vocab)
        if targets is None:
            return logits, None
        if not isinstance(targets, torch.Tensor) or targets.shape != idx.shape:
            raise ValueError(f"targets must be a tensor of the shape of idx {tuple(idx.shape)}")
        loss = F.cross_entropy(
            logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1).long(), ignore_index=-1
        )
        return logits, loss
