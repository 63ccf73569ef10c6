"""``python -m mosaics_edu.train --model mosaic-v2``: a few steps train, the checkpoint loads and
resumes (tiny sizes; the CLI runs in-process)."""

from __future__ import annotations

import pytest
import torch

from mosaics_edu import training as tr
from mosaics_edu.data import prepare_stories
from mosaics_edu.models.v2 import MemoryMosaicV2LM
from mosaics_edu.training import checkpoint, cli

TINY = ["--n-layer", "1", "--n-embd", "32", "--n-head", "2", "--block-size", "32",
        "--short-window", "8", "--delay-min", "2", "--delay-max", "8", "--delay", "2"]  # fmt: skip


def test_cli_mosaic_v2_trains_loads_and_resumes(tmp_path):
    data = tmp_path / "data"
    prepare_stories(data, tokenizer="char", n_train=40, n_valid=6, seed=0)
    out = tmp_path / "run"
    common = ["--model", "mosaic-v2", "--preset", "cpu-tiny", "--data", str(data), "--out-dir",
              str(out), "--max-steps", "6", "--batch-size", "4", "--eval-batches", "1",
              "--eval-interval", "3", "--threads", "1", "--no-progress", *TINY]  # fmt: skip
    first = cli.main([*common, "--stop-after", "3"])
    assert first["model"] == "mosaic-v2" and first["step"] == 3
    model, _, ckpt = checkpoint.load_model(out / "ckpt.pt")
    assert isinstance(model, MemoryMosaicV2LM) and ckpt["step"] == 3
    assert (model.config.short_window, model.config.delay_min, model.config.delay) == (8, 2, 2)
    second = cli.main([*common, "--resume"])
    assert second["step"] == 6
    model, tok, ckpt = checkpoint.load_model(out / "ckpt.pt")
    evals = [h["val_loss"] for h in ckpt["history"] if h["kind"] == "eval"]
    assert len(evals) >= 2 and evals[-1] < evals[0], f"validation loss should fall: {evals}"
    text = model.generate(torch.tensor([tok.encode("Once")]), 8, temperature=0,
                          vocab_limit=tok.vocab_size)
    assert text.shape == (1, 12)


def test_cli_refuses_v2_options_for_other_models(tmp_path):
    with pytest.raises(SystemExit, match="--short-window: mosaic-v2 options"):
        cli.main(["--model", "gpt", "--short-window", "8", "--out-dir", str(tmp_path)])
    with pytest.raises(SystemExit, match="--no-long-term: mosaic-v2 options"):
        cli.main(["--model", "mosaic", "--no-long-term", "--out-dir", str(tmp_path)])


def test_resume_equals_uninterrupted_with_the_random_delay(tmp_path):
    """The training delay m is a function of (seed, step), so a resumed run draws the same m."""
    data = prepare_stories(tmp_path / "data", tokenizer="char", n_train=30, n_valid=5, seed=0)
    cfg = dict(model="mosaic-v2", batch_size=2, max_steps=5, warmup_steps=1, eval_interval=2,
               eval_batches=1, threads=1,
               model_overrides=dict(n_layer=1, n_embd=16, n_head=2, block_size=24,
                                    short_window=6, delay_min=1, delay_max=6, delay=2))
    full = tr.train(tr.TrainConfig.from_preset("cpu-tiny", out_dir=str(tmp_path / "a"), **cfg),
                    data=data, progress=False)
    tr.train(tr.TrainConfig.from_preset("cpu-tiny", out_dir=str(tmp_path / "b"), **cfg),
             data=data, progress=False, until=3)
    resumed = tr.train(tr.TrainConfig.from_preset("cpu-tiny", out_dir=str(tmp_path / "b"), **cfg),
                       data=data, progress=False, resume=tmp_path / "b")
    for (name, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values(),
                            strict=True):
        assert torch.equal(a, b), f"{name} differs after resume"
