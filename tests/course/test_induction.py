"""mosaics_edu.course.induction: the one-layer induction-head experiment of chapter 02."""

from __future__ import annotations

import pytest
import torch

from mosaics_edu.course import induction


def test_periodic_tokens_repeat_with_their_period():
    x, p = induction.periodic_tokens(20, length=30, vocab=16, min_period=3, max_period=8, seed=1)
    assert x.shape == (20, 30) and x.dtype == torch.int64
    for row, period in zip(x, p, strict=True):
        period = int(period)
        assert torch.equal(row[period:], row[:-period])
        assert len(set(row[:period].tolist())) == period  # distinct tokens in a block


def test_periodic_tokens_validates():
    with pytest.raises(ValueError):
        induction.periodic_tokens(4, vocab=8, min_period=4, max_period=10)


def test_memory_unit_is_causal_without_positions():
    torch.manual_seed(0)
    model = induction.MemoryUnitLM(16, n_embd=16).eval()
    x, _ = induction.periodic_tokens(2, length=20, vocab=16, seed=0)
    y = x.clone()
    y[:, 11:] = (y[:, 11:] + 1) % 16
    with torch.no_grad():
        a, b = model(x), model(y)
    assert torch.allclose(a[:, :11], b[:, :11])  # outputs up to t = 10 ignore tokens after 10
    assert not torch.allclose(a[:, 11:], b[:, 11:])


def test_attention_model_checks_length_and_tokens():
    model = induction.AttentionOnlyLM(8, n_embd=8, block_size=10)
    with pytest.raises(ValueError, match="block_size"):
        model(torch.zeros(1, 11, dtype=torch.int64))
    with pytest.raises(ValueError, match="tokens"):
        model(torch.full((1, 5), 9, dtype=torch.int64))
    with pytest.raises(TypeError):
        model(torch.zeros(1, 5))


def test_short_training_memory_unit_learns_induction():
    torch.manual_seed(0)
    model = induction.MemoryUnitLM(16, n_embd=32)
    losses = induction.train_lm(model, steps=120, batch=16, lr=3e-3, length=32, max_period=10)
    x, p = induction.periodic_tokens(200, length=32, vocab=16, max_period=10, seed=5)
    assert losses[-1] < losses[0]
    assert induction.induction_accuracy(model, x, p) > 0.9
