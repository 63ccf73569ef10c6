"""The pure functions behind chapters 04–05's widget and comparisons."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mosaics_edu import models
from mosaics_edu.course.compare import (
    char_loss_view,
    median_time,
    name_copy_losses,
    retrieval_view,
    same_token_mass,
    summarise_runs,
)
from mosaics_edu.data import CharTokenizer, generate_stories


@pytest.fixture(scope="module")
def tiny():
    stories = generate_stories(6, seed=0, split="valid")
    tok = CharTokenizer.train("".join(s.text for s in stories))
    torch.manual_seed(0)
    model = models.MemoryMosaicLM(models.MosaicConfig(
        vocab_size=tok.vocab_size, block_size=128, n_layer=1, n_head=4, n_embd=32))
    return model, tok, stories


def test_same_token_mass_counts_only_the_past_copies():
    ids = np.array([0, 1, 0, 1])
    w = np.zeros((1, 4, 4))
    w[0, 2, 0] = 1.0  # t=2 ('0') reads s=0 ('0'): all on a copy
    w[0, 3, 2] = 1.0  # t=3 ('1') reads s=2 ('0'): none on a copy
    assert np.allclose(same_token_mass(w, ids), [0.5])
    with pytest.raises(ValueError, match="repeats"):
        same_token_mass(np.zeros((1, 3, 3)), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="T = len"):
        same_token_mass(np.zeros((1, 3, 3)), np.array([0, 1]))


def test_retrieval_view_rows_are_distributions_over_the_past(tiny):
    model, tok, stories = tiny
    text = stories[0].text[:100]
    view = retrieval_view(model, tok.encode(text), list(text), position=60, head=1, window=20)
    assert view["weights"].shape == (20,) and view["all_heads"].shape == (4, 20)
    assert abs(view["row_sum"] - 1) < 1e-5
    assert (view["top"] < 60).all()
    assert view["positions"][-1] == 59
    # the least leaky head looks for the current character
    mass = view["same_token_mass"]
    assert mass[np.argmin(view["decay"])] > mass[np.argmax(view["decay"])]


def test_retrieval_view_validates(tiny):
    model, tok, stories = tiny
    text = stories[0].text[:50]
    ids, chars = tok.encode(text), list(text)
    for bad in ({"position": 0}, {"position": 50}, {"head": 4}, {"layer": 1}, {"window": 0}):
        kw = {"position": 10, "head": 0, **bad}
        with pytest.raises(ValueError):
            retrieval_view(model, ids, chars, **kw)
    with pytest.raises(ValueError, match="one per token"):
        retrieval_view(model, ids, chars[:-1], position=10, head=0)
    with pytest.raises(TypeError, match="MemoryMosaicLM"):
        retrieval_view(torch.nn.Linear(2, 2), ids, chars, position=10, head=0)


def test_median_time_and_its_validation():
    assert median_time(lambda: None, repeats=3) >= 0
    with pytest.raises(TypeError):
        median_time(3)
    with pytest.raises(ValueError):
        median_time(lambda: None, repeats=0)


def test_summarise_runs():
    hist = [{"kind": "eval", "step": 0, "train_loss": 3.0, "val_loss": 3.1},
            {"kind": "train", "step": 5, "loss": 2.0},
            {"kind": "eval", "step": 10, "train_loss": 1.0, "val_loss": 1.2}]
    s = summarise_runs({"m": hist})["m"]
    assert s["steps"] == [0, 10] and s["final_val"] == 1.2 and s["best_val"] == 1.2
    with pytest.raises(ValueError):
        summarise_runs({"m": [{"kind": "train", "step": 1, "loss": 1.0}]})
    with pytest.raises(ValueError):
        summarise_runs({})


def test_name_copy_losses_on_an_untrained_model(tiny):
    model, tok, stories = tiny
    out = name_copy_losses(model, tok, stories, 128)
    assert out["n_first"] > 0 and out["n_repeated"] > 0
    assert all(np.isfinite(out[k]) for k in ("first", "repeated", "other"))
    # untrained: no copying yet, every character about log(vocab) nats
    assert abs(out["repeated"] - out["first"]) < 0.5
    with pytest.raises(ValueError, match="longer"):
        name_copy_losses(model, tok, stories, 10_000)


def test_char_loss_view(tiny):
    model, tok, stories = tiny
    view = char_loss_view({"a": model, "b": model}, tok, stories, story=0, start=40, width=30)
    assert view["losses"]["a"].shape == (30,) and len(view["labels"]) == 30
    assert np.allclose(view["losses"]["a"], view["losses"]["b"])
    assert view["repeated"].dtype == bool
    with pytest.raises(ValueError, match="start"):
        char_loss_view({"a": model}, tok, stories, story=0, start=120, width=30)
    with pytest.raises(ValueError, match="story"):
        char_loss_view({"a": model}, tok, stories, story=99, start=0)
    with pytest.raises(ValueError, match="empty"):
        char_loss_view({}, tok, stories, story=0, start=0)
