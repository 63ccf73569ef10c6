"""mosaics_edu.regbench.train and ``python -m mosaics_edu.regbench``: tiny runs only (seconds)."""

from __future__ import annotations

import json

import pytest
import torch

from mosaics_edu.regbench import train as rt
from mosaics_edu.regbench.__main__ import main

TINY = dict(n_automata=12, steps=6, batch_size=8, warmup=2, n_embd=16, n_layer=1, n_head=2, n_eval=8,
            checkpoint_every=2)  # fmt: skip


def tiny(model: str = "mosaic", **changes) -> rt.RunConfig:
    return rt.RunConfig(model=model, **{**TINY, **changes})


def _comparable(result: dict) -> dict:
    return {k: v for k, v in result.items() if k not in ("train_seconds", "eval_seconds")}


def test_learning_rate_warms_up_then_decays_to_the_floor():
    c = tiny(steps=100, warmup=10, lr=1e-2, min_lr_ratio=0.1)
    lrs = [rt.learning_rate(s, c) for s in range(100)]
    assert lrs[0] == pytest.approx(1e-3) and lrs[9] == pytest.approx(1e-2)
    assert all(a >= b - 1e-15 for a, b in zip(lrs[9:], lrs[10:], strict=False))  # no rise after warm-up
    assert lrs[-1] == pytest.approx(1e-3)


def test_batch_indices_visit_every_sample_once_per_epoch():
    seen = [i for step in range(5) for i in rt.batch_indices(step, 10, 4, seed=0)]  # 2 epochs
    assert sorted(seen[:10]) == list(range(10)) and sorted(seen[10:20]) == list(range(10))
    assert seen[:10] != seen[10:20]  # a new order each epoch
    assert rt.batch_indices(3, 10, 4, seed=0) == rt.batch_indices(3, 10, 4, seed=0)
    assert rt.batch_indices(0, 10, 4, seed=1) != rt.batch_indices(0, 10, 4, seed=0)


@pytest.mark.parametrize("model", ["mosaic", "gpt", "lstm"])
def test_a_tiny_run_writes_its_result(tmp_path, model):
    result = rt.train_run(tiny(model), tmp_path, progress=False)
    on_disk = json.loads((tmp_path / "result.json").read_text())
    assert on_disk == result
    assert result["config"]["model"] == model and result["parameters"] > 0
    assert result["test"]["n_samples"] == 8 and 0 <= result["test"]["accuracy"] <= 1
    assert 0 < result["validation"]["tvd"] <= 1 and result["validation_loss"] > 0
    assert torch.isfinite(torch.tensor(result["train_loss_last_step"]))


def test_a_resumed_run_equals_an_uninterrupted_one(tmp_path):
    whole = rt.train_run(tiny(), tmp_path / "whole", progress=False)
    assert rt.train_run(tiny(), tmp_path / "cut", progress=False, stop_at=3) is None
    assert not (tmp_path / "cut" / "result.json").exists()
    assert torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)["step"] == 3
    resumed = rt.train_run(tiny(), tmp_path / "cut", progress=False)
    assert _comparable(resumed) == _comparable(whole)
    a = torch.load(tmp_path / "whole" / "checkpoint.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_finished_run_is_read_not_retrained_and_other_configs_are_refused(tmp_path):
    first = rt.train_run(tiny("lstm"), tmp_path, progress=False)
    stamp = (tmp_path / "result.json").stat().st_mtime_ns
    assert rt.train_run(tiny("lstm"), tmp_path, progress=False) == first
    assert (tmp_path / "result.json").stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match="another configuration"):
        rt.train_run(tiny("lstm", lr=1e-3), tmp_path, progress=False)
    (tmp_path / "result.json").unlink()
    with pytest.raises(ValueError, match="another configuration"):
        rt.train_run(tiny("lstm", lr=1e-3), tmp_path, progress=False)


def test_corrupt_checkpoints_and_results_are_refused_with_the_fix(tmp_path):
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="delete it"):
        rt.train_run(tiny(), tmp_path, progress=False)
    (tmp_path / "result.json").write_text("{half")
    with pytest.raises(ValueError, match="delete it"):
        rt.train_run(tiny(), tmp_path, progress=False)


def test_run_config_validates():
    with pytest.raises(ValueError, match="model must be"):
        tiny("rnn")
    with pytest.raises(ValueError, match="warmup"):
        tiny(warmup=6)
    with pytest.raises(ValueError, match="n_eval"):
        tiny(n_eval=501)
    with pytest.raises(ValueError, match="n_embd"):
        tiny(n_embd=15)  # not divisible by n_head = 2
    with pytest.raises(ValueError, match="stop_at"):
        rt.train_run(tiny(), stop_at=0)
    assert rt.RunConfig.from_dict(tiny().to_dict()) == tiny()
    assert str(rt.default_run_dir(tiny(seed=2))).endswith("mosaic_N12_seed2")


def test_command_line_train_and_baselines(tmp_path, capsys):
    args = ["train", "--model", "gpt", "--out", str(tmp_path), "--threads", "1", "--no-progress"]
    for k, v in TINY.items():
        args += ["--" + k.replace("_", "-"), str(v)]
    assert main(args) == 0
    assert "result.json" in capsys.readouterr().out
    assert json.loads((tmp_path / "result.json").read_text())["config"]["model"] == "gpt"
    assert main(["train", "--model", "gpt", "--n-automata", "0", "--out", str(tmp_path / "x")]) == 2
    assert "n_automata" in capsys.readouterr().err
    assert main(["baselines", "--n", "2", "--n-eval", "5"]) == 0
    assert "2-gram: accuracy" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["train", "--model", "rnn", "--n-automata", "5"])
