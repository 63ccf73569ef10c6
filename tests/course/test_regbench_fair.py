"""mosaics_edu.course.regbench.fair (the RegBench-mini fair fight): run folders shared with the factor
table, the choice on validation, the grid's extension past an edge, the seeds, and a tuning.json
that the rules of mosaics_edu.course.tuning accept, all on made-up finished runs (nothing is trained)."""

from __future__ import annotations

import json

import pytest

from mosaics_edu.course import tuning
from mosaics_edu.course.regbench import factors as rf
from mosaics_edu.course.regbench import fair
from mosaics_edu.course.regbench.cli import main
from mosaics_edu.course.regbench.train import RunConfig


def _write(root, config: RunConfig, val_tvd: float, last_tvd: float | None = None) -> None:
    d = fair.tuning_run_dir(root, config)
    d.mkdir(parents=True)
    best = {"accuracy": 1 - val_tvd, "tvd": val_tvd, "n_positions": 1, "n_samples": 1}
    last = dict(best, tvd=val_tvd if last_tvd is None else last_tvd)
    (d / "result.json").write_text(json.dumps({
        "config": config.to_dict(), "validation_best": best, "validation": last, "best_step": 500,
        "test_best": dict(best, accuracy=0.9), "test_last": dict(last, accuracy=0.8),
        "train_seconds": 100.0, "validation_seconds": 6.0, "eval_seconds": 3.0, "versions": {},
    }))  # fmt: skip


def _score(model: str, lr: float, dropout: float, seed: int = 0) -> float:
    """A made-up validation TVD: the mosaic best at 2e-3, the GPT at 4e-3 with dropout 0.1."""
    best = 2e-3 if model == "mosaic" else 4e-3
    bonus = 0.02 if (model == "gpt" and dropout) else -0.02 if dropout else 0.0
    return 0.5 + abs(lr - best) * 10 - bonus + 0.001 * seed


def test_a_dropout_free_run_shares_the_factor_tables_baseline_folder(tmp_path):
    c = fair.tuning_config("gpt", 4e-3, 0.0, seed=1)
    (_, baseline), = [(f, b) for f, b in rf.factor_configs({"mosaic": 2e-3, "gpt": 4e-3}, (1,))
                      if f == "baseline" and b.model == "gpt"]  # fmt: skip
    assert c == baseline  # the same run: trained once, used twice
    assert fair.tuning_run_dir(tmp_path, c) == rf.factor_run_dir(tmp_path, "baseline", baseline)
    d = fair.tuning_run_dir(tmp_path, fair.tuning_config("gpt", 4e-3, 0.1))
    assert d.name == "gpt_N100_seed0_lr0.004_drop0.1"
    assert c.eval_every == rf.EVAL_EVERY and c.steps == 1000 and c.n_automata == 100


def test_choice_is_the_best_mean_validation_score_and_the_file_passes_the_rules(tmp_path):
    for m in fair.TUNING_MODELS:
        for lr in fair.TUNING_LRS:
            for d in fair.TUNING_DROPOUTS:
                _write(tmp_path, fair.tuning_config(m, lr, d), _score(m, lr, d))
    records = fair._results(tmp_path)
    assert len(records) == 16 and {r["val"] for r in records} >= {0.5}
    chosen = fair.chosen_settings(records)
    assert chosen == {"mosaic": {"lr": 2e-3, "dropout": 0.0}, "gpt": {"lr": 4e-3, "dropout": 0.1}}
    # a run of another protocol in the same folder (here: another N) is not a tuning run
    other = RunConfig(model="gpt", n_automata=500, lr=4e-3, steps=1000, eval_every=50)
    _write(tmp_path, other, 0.01)
    assert len(fair._results(tmp_path)) == 16
    # one seed only: the rules ask for three at the chosen setting
    data = fair.collect_tuning(tmp_path)
    assert any("1 seed(s)" in p for p in tuning.problems(data))
    for c in fair.seed_configs(chosen):
        if c.seed:
            _write(tmp_path, c, _score(c.model, c.lr, c.dropout, c.seed))
    data = fair.collect_tuning(tmp_path, tmp_path / "out" / "tuning.json")
    assert json.loads((tmp_path / "out" / "tuning.json").read_text()) == data
    assert tuning.problems(data) == []
    assert data["chosen"] == chosen and data["comparison"] == "regbench" and not data["higher_is_better"]
    assert data["wall_seconds"] == pytest.approx(20 * 109.0)
    assert tuning.summary(data)["gpt"]["values"] == pytest.approx([0.48, 0.481, 0.482])
    assert {r["test_best"]["accuracy"] for r in data["runs"]} == {0.9}  # reported, not chosen on


def test_a_best_rate_at_the_edge_asks_for_the_next_rate(tmp_path):
    for lr in fair.TUNING_LRS:
        for d in fair.TUNING_DROPOUTS:
            _write(tmp_path, fair.tuning_config("gpt", lr, d), 1.0 - lr * 10)  # the larger, the better
            _write(tmp_path, fair.tuning_config("mosaic", lr, d), 0.5 + lr * 10)  # the smaller, the better
    records = fair._results(tmp_path)
    chosen = fair.chosen_settings(records)
    assert fair._edge_rate(records, "gpt", chosen["gpt"]["lr"]) == pytest.approx(1.6e-2)
    assert fair._edge_rate(records, "mosaic", chosen["mosaic"]["lr"]) == pytest.approx(5e-4)
    assert fair._edge_rate(records, "mosaic", 2e-3) is None
    assert fair._next_rate(records, "mosaic", 2e-3) == pytest.approx(5e-4)  # 1e-3 is the nearer edge
    assert fair._next_rate(records, "mosaic", 4e-3) == pytest.approx(1.6e-2)
    data = fair.collect_tuning(tmp_path)
    assert any("at the edge of the grid" in p for p in tuning.problems(data))


def test_the_command_line_collects_or_says_what_to_run(tmp_path, capsys):
    assert main(["tune", "--root", str(tmp_path), "--collect"]) == 2
    assert "regbench tune --root" in capsys.readouterr().err
    _write(tmp_path, fair.tuning_config("mosaic", 2e-3, 0.0), 0.4)
    assert main(["tune", "--root", str(tmp_path), "--collect"]) == 0
    assert (tmp_path / "tuning.json").is_file() and "chosen" in capsys.readouterr().out


def test_run_tuning_extends_the_grid_then_seeds_until_the_best_setting_has_its_seeds(tmp_path, monkeypatch):
    """The whole procedure with a made-up trainer: the GPT's best rate lies past the grid (3e-2,
    reached after two extensions), and the mosaic's seed-0 winner (2e-3) loses its lead once seeded
    (seeds 1 and 2 are bad there), so the runner-up (4e-3) is seeded as well and chosen."""
    trained = []

    def made_up_score(c: RunConfig) -> float:
        if c.model == "gpt":
            return 0.5 + abs(c.lr - 3e-2) * 10 + 0.01 * c.dropout + 0.001 * c.seed
        return {2e-3: 0.40, 4e-3: 0.42}.get(c.lr, 0.6) + (0.1 if (c.lr == 2e-3 and c.seed) else 0) + c.dropout

    def fake_jobs(runs, jobs):
        assert jobs == 2
        for path, c in runs:
            if not (path / "result.json").is_file():
                trained.append(c)
                _write(tmp_path, c, made_up_score(c))

    monkeypatch.setattr(fair, "run_jobs", fake_jobs)
    data = fair.run_tuning(tmp_path, jobs=2)
    assert data["chosen"] == {"mosaic": {"lr": 4e-3, "dropout": 0.0}, "gpt": {"lr": 3.2e-2, "dropout": 0.0}}
    gpt_rates = [1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2, 3.2e-2, 6.4e-2]
    assert fair.grid_rates(data["runs"], "gpt") == pytest.approx(gpt_rates)
    # the mosaic got as many rates: past the edge nearer its best (2e-3 is one step from 1e-3)
    mosaic_rates = [2.5e-4, 5e-4, 1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2]
    assert fair.grid_rates(data["runs"], "mosaic") == pytest.approx(mosaic_rates)
    assert tuning.problems(data) == []
    assert len(trained) == len({(c.model, c.lr, c.dropout, c.seed) for c in trained})  # none twice
    mosaic_seeded = {(c.lr, c.seed) for c in trained if c.model == "mosaic" and c.seed}
    assert mosaic_seeded == {(2e-3, 1), (2e-3, 2), (4e-3, 1), (4e-3, 2)}


def test_the_shipped_evidence_loaders_say_what_to_run_when_a_file_is_missing_or_wrong(tmp_path):
    from mosaics_edu.course.regbench import load_factors, load_tuning

    with pytest.raises(FileNotFoundError, match="regbench factors --root"):
        load_factors(tmp_path / "factors.json")
    (tmp_path / "factors.json").write_text(json.dumps({"factors": {}}))
    with pytest.raises(ValueError, match="not a factor table"):
        load_factors(tmp_path / "factors.json")
    with pytest.raises(FileNotFoundError, match="tuning file"):
        load_tuning(tmp_path / "tuning.json")


def test_the_shipped_fair_fight_is_what_the_procedure_gives_on_its_runs():
    """assets/regbench/tuning.json: every run is a run of the fight's protocol (N = 100, 1,000 steps,
    validation every 50 steps), the chosen settings are the procedure's choice on those runs, every
    model tried the same number of rates, and the grids start from the fight's four rates."""
    from mosaics_edu.course.regbench import load_tuning

    data = load_tuning()
    assert data["comparison"] == "regbench" and tuning.problems(data) == []
    assert data["chosen"] == fair.chosen_settings(data["runs"])
    for r in data["runs"]:
        assert r["steps"] == 1000 and r["model"] in fair.TUNING_MODELS
        assert r["test_best"].keys() == r["test_last"].keys() == {"accuracy", "tvd"}
    rates = {m: fair.grid_rates(data["runs"], m) for m in fair.TUNING_MODELS}
    assert len(rates["mosaic"]) == len(rates["gpt"])
    assert all(set(fair.TUNING_LRS) <= set(r) for r in rates.values())
    assert data["grid"]["extended"] == rates
