"""mosaics_edu.course.regbench.train and ``python -m mosaics_edu.regbench``: tiny runs only (seconds)."""

from __future__ import annotations

import json

import pytest
import torch

from mosaics_edu.course.regbench import train as rt
from mosaics_edu.course.regbench.cli import main
from mosaics_edu.course.regbench.datasets import CPU_SIZES, PAPER_SIZES, test_automata, training_set
from mosaics_edu.course.regbench.matched import build_model, matched_configs, parameter_count
from mosaics_edu.course.regbench.metrics import Scores, evaluate
from mosaics_edu.course.regbench.shipped import shipped_result
from mosaics_edu.training import lr_at

TINY = dict(n_automata=12, steps=6, batch_size=8, warmup=2, n_embd=16, n_layer=1, n_head=2, n_eval=8,
            checkpoint_every=2)  # fmt: skip


def tiny(model: str = "mosaic", **changes) -> rt.RunConfig:
    return rt.RunConfig(model=model, **{**TINY, **changes})


def _comparable(result: dict) -> dict:
    return {
        k: v for k, v in result.items() if k not in ("train_seconds", "eval_seconds", "validation_seconds")
    }


def test_learning_rate_warms_up_then_decays_to_the_floor():
    c = tiny(steps=100, warmup=10, lr=1e-2, min_lr_ratio=0.1)
    lrs = [rt.learning_rate(s, c) for s in range(100)]
    assert lrs[0] == pytest.approx(1e-3) and lrs[9] == pytest.approx(1e-2)
    assert all(a >= b - 1e-15 for a, b in zip(lrs[9:], lrs[10:], strict=False))  # no rise after warm-up
    assert lrs[-1] == pytest.approx(1e-3)
    # one schedule in the package: the trainer's, ending on the run's last (0-based) step
    assert lrs == [lr_at(s, 1e-2, 1e-3, 10, 99) for s in range(100)]


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


@pytest.mark.parametrize("eval_every", [None, 4])
def test_a_resumed_run_equals_an_uninterrupted_one(tmp_path, eval_every):
    """Cut at step 3 (between two checkpoints and, with eval_every = 4, before the evaluation at
    step 4 and the last one at step 6): the resumed run's result, weights and kept best weights are
    the uninterrupted run's."""
    config = tiny(eval_every=eval_every)
    whole = rt.train_run(config, tmp_path / "whole", progress=False)
    assert rt.train_run(config, tmp_path / "cut", progress=False, stop_at=3) is None
    assert not (tmp_path / "cut" / "result.json").exists()
    assert torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)["step"] == 3
    resumed = rt.train_run(config, tmp_path / "cut", progress=False)
    assert _comparable(resumed) == _comparable(whole)
    a = torch.load(tmp_path / "whole" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    if eval_every is None:
        assert "test_best" not in whole and "best_model" not in a
    else:
        assert [row[0] for row in whole["validation_log"]] == [4, 6]  # every 4 steps, and the last
        assert all(torch.equal(a["best_model"][k], b["best_model"][k]) for k in a["best_model"])


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


# ---- best-validation checkpoint and sample sizes ----------------------------------------------


class _ScriptedValidation:
    """Stands in for the periodic validation scorer: the i-th call returns the i-th TVD of
    ``tvds`` (accuracy 1 - TVD), and records the weights it was shown."""

    def __init__(self, tvds: list[float]) -> None:
        self.tvds, self.calls, self.weights = tvds, 0, []

    def __call__(self, model, samples):
        self.weights.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        tvd = self.tvds[self.calls]
        self.calls += 1
        return Scores(accuracy=1 - tvd, tvd=tvd, n_positions=10, n_samples=len(samples))


def test_eval_every_keeps_the_weights_of_the_best_validation_step(tmp_path, monkeypatch):
    """Validation TVDs 0.4 (step 2), 0.2 (step 4), 0.3 (step 6, the last): the run reports step 4,
    keeps step 4's weights (in the checkpoint, in model_best_fp16.pt) and scores them on the test
    automata, while ``test`` and ``test_last`` stay the last step's."""
    scripted = _ScriptedValidation([0.4, 0.2, 0.3])
    monkeypatch.setattr(rt, "evaluate_samples", scripted)
    result = rt.train_run(tiny(eval_every=2), tmp_path, progress=False)
    assert scripted.calls == 3 and result["config"]["eval_every"] == 2
    assert result["validation_log"] == [[2, 0.6, 0.4], [4, 0.8, 0.2], [6, 0.7, 0.3]]
    assert result["best_step"] == 4 and result["validation_best"]["tvd"] == 0.2
    assert result["test_last"] == result["test"] and result["test_best"] != result["test"]
    best = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["best_model"]
    assert all(torch.equal(best[k], scripted.weights[1][k]) for k in best)  # step 4's weights
    model = build_model("mosaic", seed=0, n_embd=16, n_layer=1, n_head=2)  # TINY's model
    model.load_state_dict(best)
    assert evaluate(model, test_automata()[:8]).to_dict() == result["test_best"]
    half = rt.load_run_model(tmp_path, best=True)  # the fp16 copy of the best weights
    assert all(torch.equal(p, best[k].half().float()) for k, p in half.state_dict().items())
    assert abs(evaluate(half, test_automata()[:8]).tvd - result["test_best"]["tvd"]) < 1e-3


def test_the_best_of_a_run_cut_before_its_best_step_survives_the_cut(tmp_path, monkeypatch):
    """Best at step 2, cut at step 3: the kept weights come back from the checkpoint."""
    results = []
    for folder, stops in (("whole", []), ("cut", [3, 5])):
        scripted = _ScriptedValidation([0.2, 0.5, 0.3])
        monkeypatch.setattr(rt, "evaluate_samples", scripted)
        for stop in stops:
            assert rt.train_run(tiny(eval_every=2), tmp_path / folder, progress=False, stop_at=stop) is None
        results.append(rt.train_run(tiny(eval_every=2), tmp_path / folder, progress=False))
        assert scripted.calls == 3  # steps 2, 4, 6: none repeated, none skipped
    whole, cut = results
    assert whole["best_step"] == 2 and _comparable(cut) == _comparable(whole)
    a, b = (torch.load(tmp_path / f / "model_best_fp16.pt", weights_only=True) for f in ("whole", "cut"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_periodic_validation_scores_like_evaluate_and_changes_nothing_else(tmp_path):
    """A real run with eval_every: its last evaluation is the final ``validation`` score (same
    samples, same weights), the best step is the log's lowest TVD, and every field a run without
    eval_every writes is identical (the evaluations touch no weight and no random state)."""
    plain = rt.train_run(tiny("gpt"), tmp_path / "plain", progress=False)
    tracked = rt.train_run(tiny("gpt", eval_every=2), tmp_path / "tracked", progress=False)
    assert [row[0] for row in tracked["validation_log"]] == [2, 4, 6]
    assert tracked["validation_log"][-1][1:] == [
        tracked["validation"]["accuracy"],
        tracked["validation"]["tvd"],
    ]
    lowest = min(tracked["validation_log"], key=lambda row: row[2])
    assert tracked["best_step"] == lowest[0] and tracked["validation_best"]["tvd"] == lowest[2]
    new = {"test_last", "test_best", "best_step", "validation_best", "validation_log", "validation_seconds"}
    assert set(tracked) == set(plain) | new and not set(plain) & new
    same = {k: v for k, v in _comparable(tracked).items() if k not in new and k != "config"}
    assert same == {k: v for k, v in _comparable(plain).items() if k != "config"}
    assert tracked["config"] == plain["config"] | {"eval_every": 2}


def test_runs_without_the_new_fields_keep_their_files(tmp_path):
    """eval_every = None and sizes = "cpu" are left out of the config dict, so the dicts in the
    files of earlier runs (the shipped ones here) still match their configs, and a finished run of
    earlier code is read back, not refused or retrained."""
    assert "eval_every" not in tiny().to_dict() and "sizes" not in tiny().to_dict()
    assert tiny(eval_every=3, sizes="paper").to_dict() == tiny().to_dict() | {
        "eval_every": 3,
        "sizes": "paper",
    }
    assert rt.RunConfig.from_dict(tiny(eval_every=3).to_dict()) == tiny(eval_every=3)
    for model in ("mosaic", "gpt"):
        shipped = shipped_result(model)
        assert rt.RunConfig.from_dict(shipped["config"]).to_dict() == shipped["config"]
    (tmp_path / "result.json").write_text(json.dumps(shipped))
    assert rt.train_run(rt.RunConfig.from_dict(shipped["config"]), tmp_path, progress=False) == shipped


def test_eval_every_and_sizes_are_validated():
    for bad in (0, -2, 2.0, True, "5"):
        with pytest.raises(ValueError, match="eval_every must be None"):
            tiny(eval_every=bad)
    for bad in ("CPU", "tiny", None, 1):
        with pytest.raises(ValueError, match=r"sizes must be one of \('cpu', 'paper'\)"):
            tiny(sizes=bad)
    assert tiny(sizes="paper").sample_sizes == rt.SAMPLE_SIZES["paper"] == PAPER_SIZES
    assert tiny().sample_sizes == CPU_SIZES


def test_paper_sizes_reach_training_validation_test_and_the_model(tmp_path):
    """sizes = "paper": the GPT's position table holds the longest paper-sized sample, and the
    validation and test samples are paper-sized (longer than the CPU-sized ones of the same
    automata)."""
    small = dict(steps=2, warmup=1, n_eval=4)
    cpu = rt.train_run(tiny("gpt", **small), tmp_path / "cpu", progress=False)
    paper = rt.train_run(
        tiny("gpt", sizes="paper", eval_every=1, **small), tmp_path / "paper", progress=False
    )
    assert paper["parameters"] > cpu["parameters"]
    assert rt.load_run_model(tmp_path / "paper").config.block_size == PAPER_SIZES.max_tokens - 1
    for split in ("validation", "test"):
        assert paper[split]["n_positions"] > 2 * cpu[split]["n_positions"]

    def uniform(x):
        return torch.zeros(*x.shape, 20)

    assert (
        paper["test"]["n_positions"] == evaluate(uniform, test_automata()[:4], sizes=PAPER_SIZES).n_positions
    )
    assert paper["validation_log"][-1][2] == paper["validation"]["tvd"]  # periodic: paper-sized too
    lengths = [len(s.tokens) for s in training_set(12, 0, PAPER_SIZES)]
    assert max(lengths) > CPU_SIZES.max_tokens  # the training samples are paper-sized too


@pytest.mark.parametrize("sizes", ["cpu", "paper"])
def test_width_128_with_8_heads_builds_both_models_at_equal_size(sizes):
    """The width factor (128, 8 heads, as in the Memory Mosaics RegBench config) matches the mosaic
    to the GPT as width 64 / 4 heads does: within 0.1 % (counted on the meta device, no weights)."""
    for width, heads in ((64, 4), (128, 8)):
        config = rt.RunConfig(model="mosaic", n_automata=100, n_embd=width, n_head=heads, sizes=sizes)
        configs = matched_configs(n_embd=width, n_head=heads, sizes=config.sample_sizes)
        counts = {m: parameter_count(c) for m, c in configs.items()}
        assert abs(counts["mosaic"] - counts["gpt"]) <= 0.001 * counts["gpt"], (width, sizes, counts)


def test_the_checkpoint_is_the_package_format_and_a_corrupted_one_is_refused(tmp_path):
    """checkpoint.pt is what the LM trainer writes (format tag, digest): a flipped byte inside a
    tensor is caught on resume instead of silently continuing from wrong weights."""
    from mosaics_edu.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

    config = tiny()
    assert rt.train_run(config, tmp_path, progress=False, stop_at=3) is None
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["step"] == 3 and state["model_kind"] == config.model
    assert state["train_config"] == config.to_dict()
    first = next(iter(state["model"]))
    state["model"][first].view(-1)[0] += 1.0  # a changed weight under the stored digest
    digest = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["digest"]
    torch.save({**state, "format": "mosaics_edu.checkpoint", "version": 1, "digest": digest},
               tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="corrupt"):
        rt.train_run(config, tmp_path, progress=False)
    save_checkpoint({k: v for k, v in state.items() if k != "torch_rng"}, tmp_path / "checkpoint.pt")
    with pytest.raises(ValueError, match="not a RegBench checkpoint"):
        rt.train_run(config, tmp_path, progress=False)
