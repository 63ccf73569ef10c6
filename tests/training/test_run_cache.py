"""A run loaded from the test session's run cache is the run itself (mosaics_edu.training.run_cache).

The suite lets a notebook that trains the same model as an earlier notebook of the same session
load that run instead of training it again. That is only honest if a loaded run is
indistinguishable from training: the same weights, history, summary, random state afterwards,
train/eval mode, callback events and printed lines; if nothing is loaded when anything that decides
the run differs; and if nothing is read or written without the cache's environment variable.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from mosaics_edu import training as tr
from mosaics_edu.data import prepare_stories
from mosaics_edu.training import run_cache


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return prepare_stories(tmp_path_factory.mktemp("data"), tokenizer="char", n_train=40, n_valid=5,
                           seed=0)


def _config(**changes) -> tr.TrainConfig:
    cfg = dict(model="mosaic", batch_size=2, max_steps=6, warmup_steps=2, eval_interval=3,
               log_interval=2, eval_batches=1, threads=1,
               model_overrides={"dropout": 0.1, "block_size": 32})
    return tr.TrainConfig.from_preset("cpu-tiny", **{**cfg, **changes})


def _train(data, config, capsys) -> tuple[tr.TrainResult, list[dict], str, torch.Tensor]:
    events: list[dict] = []
    result = tr.train(config, data=data, callbacks=[events.append])
    shown = capsys.readouterr()
    return result, events, shown.out + shown.err, torch.get_rng_state()


def test_a_cached_run_replays_exactly_what_training_gave(data, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(run_cache.ENV, str(tmp_path / "cache"))
    trained, events, shown, rng = _train(data, _config(), capsys)
    assert len(list((tmp_path / "cache").glob("run-*.pt"))) == 1
    assert not (tmp_path / "cache" / run_cache.LOADED).exists()

    def no_training(self):
        raise AssertionError("a cached run must not train")

    monkeypatch.setattr(tr.Trainer, "train_step", no_training)
    torch.manual_seed(123)  # the random state before the call must not matter: the run's is restored
    loaded, replayed, shown_again, rng_again = _train(data, _config(), capsys)
    for (name, a), b in zip(trained.model.state_dict().items(), loaded.model.state_dict().values(),
                            strict=True):
        assert torch.equal(a, b), name
    assert loaded.history == trained.history and replayed == events and len(events) == 6
    assert loaded.summary == trained.summary
    assert len((tmp_path / "cache" / run_cache.LOADED).read_text().splitlines()) == 1
    assert torch.equal(rng, rng_again), "dropout after the run draws the same numbers"
    assert loaded.model.training == trained.model.training is False  # fit ends in an evaluation
    lines = [line for line in shown.splitlines() if line.startswith("step ")]
    assert lines == [line for line in shown_again.splitlines() if line.startswith("step ")]
    assert lines == [f"step {e['step']}: train {e['train_loss']:.4f}  val {e['val_loss']:.4f}"
                     for e in events if e["kind"] == "eval" and e["step"] > 0]


@pytest.mark.parametrize("change", [dict(seed=1), dict(lr=2e-3), dict(model="gpt"),
                                    dict(model_overrides={"dropout": 0.0, "block_size": 32})])
def test_any_change_to_the_run_trains_afresh(data, tmp_path, monkeypatch, change):
    monkeypatch.setenv(run_cache.ENV, str(tmp_path))
    tr.train(_config(), data=data, progress=False)
    calls = []
    real_step = tr.Trainer.train_step
    monkeypatch.setattr(tr.Trainer, "train_step", lambda self: calls.append(1) or real_step(self))
    tr.train(_config(**change), data=data, progress=False)
    assert len(calls) == 6 and len(list(tmp_path.glob("run-*.pt"))) == 2


def test_other_data_or_package_code_makes_another_key(data, tmp_path, monkeypatch):
    cfg = _config()
    model_config = tr.build_model("mosaic", "cpu-tiny", tr.padded_vocab_size(data.vocab_size),
                                  **cfg.model_overrides)[1]
    key = run_cache.run_key(cfg, model_config, data)
    assert run_cache.run_key(cfg, model_config, data) == key
    fewer = dataclasses.replace(data, valid=data.valid[:-1])
    assert run_cache.run_key(cfg, model_config, fewer) != key
    monkeypatch.setattr(run_cache, "_source_digest", "another version of the package")
    assert run_cache.run_key(cfg, model_config, data) != key


def test_nothing_is_cached_without_the_variable_or_for_runs_that_write_a_folder(data, tmp_path,
                                                                                 monkeypatch):
    monkeypatch.delenv(run_cache.ENV, raising=False)
    assert run_cache.folder() is None
    tr.train(_config(), data=data, progress=False)
    monkeypatch.setenv(run_cache.ENV, str(tmp_path / "cache"))
    tr.train(_config(out_dir=str(tmp_path / "run")), data=data, progress=False)
    tr.train(_config(), data=data, progress=False, until=3)
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())


def test_a_damaged_entry_is_not_trusted(data, tmp_path, monkeypatch):
    monkeypatch.setenv(run_cache.ENV, str(tmp_path))
    first = tr.train(_config(), data=data, progress=False)
    (entry,) = tmp_path.glob("run-*.pt")
    entry.write_bytes(entry.read_bytes()[:-100])
    calls = []
    real_step = tr.Trainer.train_step
    monkeypatch.setattr(tr.Trainer, "train_step", lambda self: calls.append(1) or real_step(self))
    again = tr.train(_config(), data=data, progress=False)
    assert len(calls) == 6 and again.history[-1]["val_loss"] == first.history[-1]["val_loss"]


# --- run_cache.result: any other value a chapter computes more than once per session ---------


def test_a_result_is_computed_once_per_session_and_then_loaded(tmp_path, monkeypatch):
    monkeypatch.setenv(run_cache.ENV, str(tmp_path))
    calls = []

    def compute():
        calls.append(1)
        return {"losses": [1.5, 0.25], "weights": torch.arange(4.0), "label": "one"}

    first = run_cache.result("demo", {"steps": 2}, compute)
    again = run_cache.result("demo", {"steps": 2}, compute)
    assert len(calls) == 1 and again["losses"] == first["losses"] and again["label"] == "one"
    assert torch.equal(again["weights"], first["weights"])
    assert (tmp_path / run_cache.LOADED).read_text().split()[1] == "demo"
    run_cache.result("demo", {"steps": 3}, compute)  # other inputs: computed again
    run_cache.result("other", {"steps": 2}, compute)  # another name: computed again
    assert len(calls) == 3


def test_a_result_is_neither_read_nor_written_without_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv(run_cache.ENV, raising=False)
    calls = []
    for _ in range(2):
        assert run_cache.result("demo", {}, lambda: calls.append(1) or 7) == 7
    assert len(calls) == 2 and not list(tmp_path.iterdir())


def test_a_damaged_result_is_computed_again(tmp_path, monkeypatch):
    monkeypatch.setenv(run_cache.ENV, str(tmp_path))
    run_cache.result("demo", {}, lambda: 1)
    (entry,) = tmp_path.glob("result-demo-*.pt")
    entry.write_bytes(b"not a torch file")
    assert run_cache.result("demo", {}, lambda: 2) == 2


def test_a_bad_name_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv(run_cache.ENV, str(tmp_path))
    with pytest.raises(ValueError, match="name"):
        run_cache.result("../escape", {}, lambda: 1)


def test_train_lm_loaded_is_train_lm_trained(tmp_path, monkeypatch):
    """Chapter 02's induction models: a loaded run gives the trained weights, losses, mode and the
    random state after training; a model with other starting weights trains afresh."""
    from mosaics_edu.course import induction

    def run(seed_weights: int):
        torch.manual_seed(seed_weights)
        model = induction.MemoryUnitLM(16, n_embd=16)
        losses = induction.train_lm(model, steps=5, batch=4, lr=3e-3, length=24, max_period=6)
        return model, losses, torch.rand(3)

    monkeypatch.delenv(run_cache.ENV, raising=False)
    plain, plain_losses, plain_next = run(0)
    monkeypatch.setenv(run_cache.ENV, str(tmp_path))
    for expect_loaded in (0, 1):
        model, losses, after = run(0)
        assert losses == plain_losses and torch.equal(after, plain_next) and not model.training
        for (k, a), b in zip(plain.state_dict().items(), model.state_dict().values(), strict=True):
            assert torch.equal(a, b), k
        loaded = (tmp_path / run_cache.LOADED)
        assert (loaded.exists() and len(loaded.read_text().splitlines())) == expect_loaded
    _, other_losses, _ = run(1)
    assert other_losses != plain_losses and len(loaded.read_text().splitlines()) == 1
