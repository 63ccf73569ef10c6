"""mosaics_edu.course.formation (Olsson et al.'s repeated-token test) and compare.stream_loss, on small
untrained models whose numbers can be recomputed by hand."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mosaics_edu.course import formation, inspection
from mosaics_edu.course.compare import stream_loss
from mosaics_edu.models import GPT, GPTConfig, MemoryMosaicLM, MosaicConfig

V, T = 64, 40


def _models() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    shared = dict(vocab_size=V, block_size=T, n_layer=2, n_head=2, n_embd=16)
    return {"mosaic": MemoryMosaicLM(MosaicConfig(**shared)).eval(), "gpt": GPT(GPTConfig(**shared)).eval()}


def test_repeated_random_tokens_repeat_once_and_draw_from_the_pool():
    x = formation.repeated_random_tokens(5, 8, V, seed=3)
    assert x.shape == (5, 16) and x.dtype == torch.long
    assert torch.equal(x[:, :8], x[:, 8:]) and int(x.max()) < V
    assert torch.equal(x, formation.repeated_random_tokens(5, 8, V, seed=3))
    assert not torch.equal(x, formation.repeated_random_tokens(5, 8, V, seed=4))
    pool = [3, 9, 11]
    y = formation.repeated_random_tokens(50, 10, pool, seed=0)
    assert set(y.unique().tolist()) == set(pool)
    z = formation.repeated_random_tokens(50, 10, pool, weights=[0, 1, 0])  # only 9 has weight
    assert set(z.unique().tolist()) == {9}
    with pytest.raises(ValueError, match="weights"):
        formation.repeated_random_tokens(2, 4, pool, weights=[1, 1])
    with pytest.raises(ValueError, match="half"):
        formation.repeated_random_tokens(2, 1, V)


def test_repeated_text_repeats_stretches_of_the_stream():
    stream = list(range(100, 200))
    x = formation.repeated_text(stream, 4, 6, seed=0)
    assert x.shape == (4, 12) and torch.equal(x[:, :6], x[:, 6:])
    for row in x[:, :6].tolist():  # consecutive tokens of the stream
        assert row == list(range(row[0], row[0] + 6))
    with pytest.raises(ValueError, match="stream"):
        formation.repeated_text(stream[:5], 2, 6)


@pytest.mark.parametrize("kind", ["mosaic", "gpt"])
def test_repeat_scores_match_their_definitions(kind):
    model = _models()[kind]
    half = T // 2
    g = torch.Generator().manual_seed(0)
    first = torch.stack([torch.randperm(V, generator=g)[:half] for _ in range(6)])  # distinct tokens
    tokens = torch.cat([first, first], 1)  # (6, 2 half)
    s = formation.repeat_scores(model, tokens)
    idx, targets = tokens[:, :-1], tokens[:, 1:]
    with torch.no_grad():
        logits = model(idx)[0]
    loss = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")  # (6, 2 half - 1)
    assert s["loss_first"] == pytest.approx(float(loss[:, : half - 1].mean()), rel=1e-5)
    assert s["loss_second"] == pytest.approx(float(loss[:, half:].mean()), rel=1e-5)
    hits = (logits.argmax(-1) == targets).float()
    assert s["acc_second"] == pytest.approx(float(hits[:, half:].mean()))
    # with distinct tokens in the first copy, Olsson et al.'s prefix matching is the course's
    # induction score on these sequences: the queries with an earlier occurrence are exactly the
    # second copy's, and the pair that brings the token to copy is the only matching one
    maps = inspection.trace(model, idx).maps
    offset = inspection.value_offset(model)
    for layer, m in enumerate(maps):
        course = inspection.head_scores(m, idx, offset)["induction"]
        assert s["prefix"][layer].numpy() == pytest.approx(course, abs=1e-5)
    shares = inspection.head_logit_attribution(model, idx, targets)  # (L, H, 6, 2 half - 1)
    want = shares[..., half:].mean((-1, -2)) - shares[..., : half - 1].mean((-1, -2))
    assert torch.allclose(s["copying"], want, atol=1e-5)
    assert s["prefix"].shape == s["copying"].shape == (2, 2)


def test_repeat_scores_refuse_sequences_that_do_not_repeat():
    model = _models()["gpt"]
    x = formation.repeated_random_tokens(2, 8, V)
    x[0, -1] = (x[0, -1] + 1) % V
    with pytest.raises(ValueError, match="repeat"):
        formation.repeat_scores(model, x)
    with pytest.raises(ValueError, match="2L"):
        formation.repeat_scores(model, x[:, :-1])


def test_stream_loss_is_the_mean_loss_over_consecutive_windows():
    model = _models()["gpt"]
    stream = torch.randint(0, V, (3 * T + 7,), generator=torch.Generator().manual_seed(1))
    want = []
    for r in range(3):  # 3 full windows of T + 1 tokens overlapping by one; the tail is dropped
        w = stream[r * T : (r + 1) * T + 1]
        with torch.no_grad():
            want.append(F.cross_entropy(model(w[None, :-1])[0][0], w[1:], reduction="sum"))
    assert stream_loss(model, stream.numpy(), T, batch_size=2) == pytest.approx(
        float(sum(want)) / (3 * T), rel=1e-5)
    with pytest.raises(ValueError, match="fewer than"):
        stream_loss(model, stream[:T].numpy(), T)
    model.train()
    with pytest.raises(ValueError, match="training mode"):
        stream_loss(model, stream.numpy(), T)
