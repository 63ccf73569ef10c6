"""The long-term memory's random training delay m is a function of (seed, step, layer), not of
torch's global generator: DDP processes agree on m and a resumed run draws what an uninterrupted
one would."""

from __future__ import annotations

import pytest
import torch

from mosaics_edu import training as tr
from mosaics_edu.core.v2.layers import LongTermMemory, draw_delay
from mosaics_edu.data import prepare_stories
from mosaics_edu.models.v2 import MemoryMosaicV2LM, MosaicV2Config


def test_draw_delay_is_pure_uniform_and_spans_the_range():
    draws = [draw_delay(3, step, 0, 8, 32) for step in range(2000)]
    assert draws == [draw_delay(3, step, 0, 8, 32) for step in range(2000)]
    assert set(draws) == set(range(8, 33)), "every m in [8, 32] should be drawn"
    counts = torch.bincount(torch.tensor(draws) - 8).float()
    assert counts.min() > 0.5 * counts.mean() and counts.max() < 1.5 * counts.mean()
    assert draws != [draw_delay(4, step, 0, 8, 32) for step in range(2000)], "seed must matter"
    assert draws != [draw_delay(3, step, 1, 8, 32) for step in range(2000)], "layer must matter"
    assert draw_delay(0, 5, 0, 7, 7) == 7
    with pytest.raises(ValueError, match="delay_min <= delay_max"):
        draw_delay(0, 0, 0, 9, 8)


def test_the_training_delay_ignores_the_global_generator():
    mem = LongTermMemory(16, 2, delay_min=2, delay_max=12, delay=3, layer=1).train()
    mem.set_delay_step(17, seed=5)
    torch.manual_seed(0)
    a = mem.current_delay()
    torch.manual_seed(123)
    state = torch.get_rng_state()
    b = mem.current_delay()
    assert a == b == draw_delay(5, 17, 1, 2, 12)
    assert torch.equal(state, torch.get_rng_state()), "the draw must not consume torch's generator"
    assert mem.eval().current_delay() == 3
    with pytest.raises(ValueError, match="step must be an integer >= 0"):
        mem.set_delay_step(-1)


def test_without_a_step_each_forward_draws_afresh_and_repeatably():
    def draws() -> list[int]:
        mem = LongTermMemory(16, 2, delay_min=1, delay_max=30, delay=3).train()
        return [mem.current_delay() for _ in range(20)]

    assert draws() == draws() and len(set(draws())) > 5


def test_model_sets_every_layer_and_trainer_sets_the_step(tmp_path):
    cfg = MosaicV2Config.preset("cpu-tiny", n_layer=2, n_embd=16, n_head=2, block_size=24,
                                short_window=6, delay_min=1, delay_max=6, delay=2)  # fmt: skip
    model = MemoryMosaicV2LM(cfg)
    model.set_delay_step(9, seed=4)
    assert [b.long.delay_step for b in model.blocks] == [9, 9]
    data = prepare_stories(tmp_path / "data", tokenizer="char", n_train=30, n_valid=5, seed=0)
    seen: list[tuple[int, int]] = []
    original = LongTermMemory.current_delay

    def spy(self: LongTermMemory) -> int:
        m = original(self)
        if self.training:
            seen.append((self.delay_step, m))
        return m

    LongTermMemory.current_delay = spy
    try:
        tr.train(tr.TrainConfig.from_preset(
            "cpu-tiny", model="mosaic-v2", batch_size=2, grad_accum=2, max_steps=4, warmup_steps=1,
            eval_interval=4, eval_batches=1, threads=1, seed=7,
            model_overrides=dict(n_layer=1, n_embd=16, n_head=2, block_size=24, short_window=6,
                                 delay_min=1, delay_max=6, delay=2)), data=data, progress=False)  # fmt: skip
    finally:
        LongTermMemory.current_delay = original
    # two micro-batches per step, one layer: steps 0, 0, 1, 1, ... each with the (7, step, 0) draw
    assert seen == [(s, draw_delay(7, s, 0, 1, 6)) for s in (0, 0, 1, 1, 2, 2, 3, 3)]


@pytest.mark.parametrize("training", [True, False])
def test_the_long_term_fast_path_is_the_masked_retrieval(training):
    """The long-term memory reads s <= t - m through delayed causal attention; the weights
    path writes the window's mask out. Same answers, same gradients, one delay drawn per
    forward on both paths."""
    torch.manual_seed(0)
    mem = LongTermMemory(16, 2, delay_min=2, delay_max=12, delay=3, layer=1).train(training)
    x = torch.randn(3, 20, 16, dtype=torch.float64, requires_grad=True)
    mem.double()
    for step in range(4):
        mem.set_delay_step(step, seed=5)
        y = mem(x)
        y_w, w = mem(x, return_weights=True)
        torch.testing.assert_close(y, y_w)
        m = mem.current_delay()
        assert torch.all(w[..., :m, :] == 0) and torch.all(w.triu(1 - m) == 0)
        g = torch.randn_like(y)
        for a, b in zip(torch.autograd.grad((y * g).sum(), [x, *mem.parameters()]),
                        torch.autograd.grad((y_w * g).sum(), [x, *mem.parameters()]), strict=True):
            torch.testing.assert_close(a, b)
