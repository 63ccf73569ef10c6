"""mosaics_edu.course.regbench.factors (the N = 100 protocol-factor table) and the sweep's job machinery it
reuses: the list of runs, the command line of a run, the table of made-up finished runs. Nothing
here trains more than a tiny run in this process."""

from __future__ import annotations

import json
from dataclasses import fields

import pytest

from mosaics_edu.course.regbench import factors as rf
from mosaics_edu.course.regbench.cli import _parser, main
from mosaics_edu.course.regbench.shipped import load_sweep
from mosaics_edu.course.regbench.sweep import (
    SWEEP_STEPS,
    main_configs,
    read_result,
    run_dir,
    run_jobs,
    train_command,
)
from mosaics_edu.course.regbench.train import RunConfig, train_run

RATES = {"mosaic": 2e-3, "gpt": 4e-3}


def _differing(a: RunConfig, b: RunConfig) -> set[str]:
    return {f.name for f in fields(RunConfig) if getattr(a, f.name) != getattr(b, f.name)}


def test_paper_steps_follow_the_benchmark_formula():
    """⌈N / 32⌉ · 200 (the last partial batch of an epoch is a step): the course notes' 6,400,
    15,800 and 250,000 steps at N = 1,000, 2,500 and 40,000, and 800 at N = 100."""
    assert [rf.paper_steps(n) for n in (100, 1_000, 2_500, 40_000)] == [800, 6_400, 15_800, 250_000]
    assert rf.paper_steps(32) == 200 and rf.paper_steps(33) == 400
    with pytest.raises(ValueError, match="n_automata must be a positive integer"):
        rf.paper_steps(0)


def test_each_factor_changes_the_baseline_in_its_own_fields_only():
    runs = rf.factor_configs(RATES)
    assert len(runs) == len(rf.FACTORS) * len(rf.FACTOR_MODELS) * len(rf.FACTOR_SEEDS) == 16
    assert [f for f, _ in runs[:8]] == [f for f in rf.FACTORS for _ in rf.FACTOR_MODELS]  # seed 0 first
    assert [c.seed for _, c in runs] == [0] * 8 + [1] * 8
    baseline = {(c.model, c.seed): c for f, c in runs if f == "baseline"}
    changes = rf.factor_changes()
    assert changes["paper_steps"] == {"steps": 800} and changes["paper_sizes"] == {"sizes": "paper"}
    assert changes["width128"] == {"n_embd": 128, "n_head": 8}  # one factor: head size 16 kept
    for factor, config in runs:
        base = baseline[config.model, config.seed]
        assert _differing(config, base) == set(changes[factor]), factor
        assert all(getattr(config, k) == v for k, v in changes[factor].items())
        assert config.eval_every == rf.EVAL_EVERY and config.lr == RATES[config.model]
    # the baseline is the shipped sweep's N = 100 run at the chosen rate, plus the periodic validation
    sweep = {(c.model, c.seed): c for c in main_configs(RATES | {"lstm": 1e-3}) if c.n_automata == 100}
    for (model, seed), config in baseline.items():
        assert _differing(config, sweep[model, seed]) == {"eval_every"}
        assert config.steps == SWEEP_STEPS and config.n_automata == rf.FACTOR_N
    folders = {rf.factor_run_dir("r", f, c) for f, c in runs}
    assert len(folders) == 16
    assert str(rf.factor_run_dir("r", "width128", runs[4][1])) == "r/width128/mosaic_N100_seed0_lr0.002"
    with pytest.raises(ValueError, match="rates must give a learning rate"):
        rf.factor_configs({"mosaic": 1e-3})
    with pytest.raises(ValueError, match="seeds"):
        rf.factor_configs(RATES, seeds=(0, 0))
    with pytest.raises(ValueError, match="factor must be one of"):
        rf.factor_run_dir("r", "dropout", runs[0][1])


def test_the_cost_estimate_covers_every_run_and_is_the_docstrings():
    cost = rf.estimated_cpu_seconds()
    names = {f"{f}/{c.model}_seed{c.seed}" for f, c in rf.factor_configs(RATES)}
    assert set(cost) == names | {"total"} and cost["total"] == pytest.approx(sum(cost[n] for n in names))
    assert round(cost["total"], -2) == 3_800 and "about 3,800 CPU-seconds" in rf.__doc__
    # a baseline mosaic run: 1,000 steps, 20 validations every 50 steps, then 2 more and 2 test scorings
    step, validation, test = rf.STEP_CPU_SECONDS["baseline"]["mosaic"]
    assert cost["baseline/mosaic_seed0"] == pytest.approx(1000 * step + 22 * validation + 2 * test)


def test_the_table_uses_the_shipped_chosen_rates():
    rates = load_sweep()["chosen_learning_rates"]
    runs = rf.factor_configs({m: rates[m] for m in rf.FACTOR_MODELS})
    assert {c.model: c.lr for _, c in runs} == {"mosaic": rates["mosaic"], "gpt": rates["gpt"]}


def _fake_result(config: RunConfig, best: tuple[float, float], last: tuple[float, float], step: int) -> dict:
    def scores(acc: float, tvd: float) -> dict:
        return {"accuracy": acc, "tvd": tvd, "n_positions": 1, "n_samples": 1}

    return {"config": config.to_dict(), "test": scores(*last), "test_last": scores(*last),
            "test_best": scores(*best), "best_step": step, "versions": {}}  # fmt: skip


def _write(root, factor: str, config: RunConfig, result: dict) -> None:
    d = rf.factor_run_dir(root, factor, config)
    d.mkdir(parents=True)
    (d / "result.json").write_text(json.dumps(result))


def test_collect_factors_on_made_up_finished_runs(tmp_path, capsys):
    root = tmp_path / "factors"
    for factor, c in rf.factor_configs(RATES):
        if factor == "paper_steps" and c.model == "gpt":
            continue  # not finished
        if factor == "width128" and c.seed == 1:
            continue  # only seed 0 finished
        shift = 0.1 * c.seed + (0.05 if c.model == "gpt" else 0.0)
        _write(root, factor, c, _fake_result(c, (0.6 + shift, 0.5 - shift), (0.4 + shift, 0.7), 100 + c.seed))
    table = rf.collect_factors(root, tmp_path / "table.json", rates=RATES)
    assert json.loads((tmp_path / "table.json").read_text()) == table
    assert list(table["factors"]) == list(rf.FACTORS) and table["chosen_learning_rates"] == RATES
    assert table["paper"] == {"mosaic": [0.92, 0.57], "gpt": [0.52, 0.69]}  # accuracy, TVD at N = 100
    row = table["factors"]["baseline"]["models"]["mosaic"]
    assert row["seeds"] == [0, 1] and row["best_step"] == [100, 101]
    assert row["best"]["accuracy"]["values"] == pytest.approx([0.6, 0.7])
    assert row["best"]["accuracy"]["mean"] == pytest.approx(0.65)
    assert row["best"]["tvd"]["min"] == pytest.approx(0.4) and row["best"]["tvd"]["max"] == pytest.approx(0.5)
    assert row["last"]["accuracy"]["mean"] == pytest.approx(0.45) and row["last"]["tvd"]["mean"] == 0.7
    gpt = table["factors"]["paper_sizes"]["models"]["gpt"]
    assert gpt["best"]["accuracy"]["mean"] == pytest.approx(0.7)
    assert table["factors"]["width128"]["models"]["gpt"]["seeds"] == [0]
    assert table["factors"]["width128"]["changes"] == {"n_embd": 128, "n_head": 8}
    assert set(table["factors"]["paper_steps"]["models"]) == {"mosaic"}
    assert sorted(table["missing"]) == [
        "paper_steps/gpt_N100_seed0_lr0.004",
        "paper_steps/gpt_N100_seed1_lr0.004",
        "width128/gpt_N100_seed1_lr0.004",
        "width128/mosaic_N100_seed1_lr0.002",
    ]
    # the command line collects without training (rates from the shipped sweep: mosaic 2e-3, GPT 4e-3)
    assert load_sweep()["chosen_learning_rates"]["gpt"] == RATES["gpt"]
    assert main(["factors", "--root", str(root), "--collect"]) == 0
    assert "missing" in capsys.readouterr().out
    assert json.loads((root / "factors.json").read_text())["factors"] == table["factors"]
    # a run folder that holds another configuration is refused, not averaged in
    factor, c = rf.factor_configs(RATES)[0]
    (rf.factor_run_dir(root, factor, c) / "result.json").write_text(
        json.dumps(_fake_result(RunConfig.from_dict(c.to_dict() | {"steps": 700}), (0, 0), (0, 0), 1))
    )
    with pytest.raises(ValueError, match="holds another run"):
        rf.collect_factors(root, tmp_path / "table.json", rates=RATES)
    assert main(["factors", "--root", str(root), "--collect"]) == 2


def test_run_jobs_skips_finished_runs_and_checks_jobs(tmp_path, capsys):
    config = rf.factor_configs(RATES)[0][1]
    out = tmp_path / "done"
    out.mkdir()
    (out / "result.json").write_text(json.dumps({"config": config.to_dict()}))
    run_jobs([(out, config)], jobs=2)  # no process is started for a finished run
    assert f"done {tmp_path.name}/done" in capsys.readouterr().out and not (tmp_path / "done.log").exists()
    assert read_result(out) == {"config": config.to_dict()} and read_result(tmp_path / "none") is None
    with pytest.raises(ValueError, match="jobs must be a positive integer"):
        run_jobs([(out, config)], jobs=0)


@pytest.mark.parametrize(
    "config",
    [
        RunConfig(model="gpt", n_automata=100, seed=1, lr=4e-3, steps=1000),  # a sweep run
        RunConfig(model="mosaic", n_automata=100, lr=2e-3, steps=1000, eval_every=50, sizes="paper"),
        RunConfig(model="mosaic", n_automata=100, steps=800, eval_every=50, n_embd=128, n_head=8),
    ],
)
def test_the_command_line_of_a_run_gives_back_its_config(config, tmp_path):
    args = train_command(config, tmp_path / "run")
    assert args[args.index("--out") + 1] == str(tmp_path / "run") and args[args.index("--threads") + 1] == "1"
    parsed = _parser().parse_args(args[args.index("train") :])
    values = {f.name: getattr(parsed, f.name) for f in fields(RunConfig)}
    assert RunConfig(**values) == config
    if config.eval_every is None:  # the sweep's runs: the same command as before the new fields
        assert (
            "--eval-every" not in args
            and "--sizes" not in args
            and run_dir("r", config).name.endswith("lr0.004")
        )


def test_command_line_train_with_eval_every_and_paper_sizes(tmp_path, capsys):
    args = ["train", "--model", "gpt", "--n-automata", "12", "--steps", "2", "--warmup", "1",
            "--batch-size", "4", "--n-embd", "16", "--n-layer", "1", "--n-head", "2", "--n-eval", "3",
            "--eval-every", "1", "--sizes", "paper", "--threads", "1", "--no-progress",
            "--out", str(tmp_path)]  # fmt: skip
    assert main(args) == 0
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["config"]["sizes"] == "paper" and result["config"]["eval_every"] == 1
    assert [row[0] for row in result["validation_log"]] == [1, 2] and result["best_step"] in (1, 2)
    config = RunConfig.from_dict(result["config"])
    assert train_run(config, tmp_path, progress=False) == result  # finished: read back
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["train", "--model", "gpt", "--n-automata", "5", "--sizes", "huge"])
    assert "invalid choice" in capsys.readouterr().err
    assert (
        main(
            [
                "train",
                "--model",
                "gpt",
                "--n-automata",
                "5",
                "--eval-every",
                "0",
                "--out",
                str(tmp_path / "x"),
            ]
        )
        == 2
    )
    assert "eval_every must be None" in capsys.readouterr().err


def test_the_table_can_run_at_the_fair_fights_chosen_settings(tmp_path, capsys):
    """``--tuning FILE``: the chosen lr and dropout of a tuning.json (regbench tune); a dropout run
    gets its own folder, so it never resumes or reads a dropout-free run of the same rate."""
    chosen = {"mosaic": {"lr": 4e-3, "dropout": 0.0}, "gpt": {"lr": 8e-3, "dropout": 0.1}}
    path = tmp_path / "tuning.json"
    path.write_text(json.dumps({"chosen": chosen}))
    rates, dropouts = rf.tuned_settings(path)
    assert rates == {"mosaic": 4e-3, "gpt": 8e-3} and dropouts == {"mosaic": 0.0, "gpt": 0.1}
    runs = rf.factor_configs(rates, (0,), dropouts=dropouts)
    assert {(c.model, c.dropout) for _, c in runs} == {("mosaic", 0.0), ("gpt", 0.1)}
    gpt = next(c for f, c in runs if f == "width128" and c.model == "gpt")
    assert rf.factor_run_dir(tmp_path, "width128", gpt).name == "gpt_N100_seed0_lr0.008_drop0.1"
    with pytest.raises(ValueError, match="dropouts must give a dropout for each of"):
        rf.factor_configs(rates, (0,), dropouts={"gpt": 0.1})
    assert main(["factors", "--root", str(tmp_path / "t"), "--collect", "--tuning", str(path)]) == 0
    table = json.loads((tmp_path / "t" / "factors.json").read_text())
    assert table["chosen_learning_rates"] == rates and table["dropouts"] == dropouts
    assert "gpt_N100_seed0_lr0.008_drop0.1" in " ".join(table["missing"])
    assert main(["factors", "--root", str(tmp_path), "--collect", "--tuning", str(tmp_path / "no")]) == 2
    assert "not found" in capsys.readouterr().err


def test_the_shipped_table_is_complete_and_starts_from_the_fair_fights_runs():
    """The shipped ``factors.json``: every run of the table finished, at the fair fight's chosen
    settings, and its baseline row is the fight's own runs (same test scores, seed by seed): the
    table changes one thing at a time from what chapter 07 reports above it."""
    from mosaics_edu.course.regbench import load_factors, load_tuning

    table, fight = load_factors(), load_tuning()
    assert table["missing"] == []
    assert list(table["factors"]) == list(rf.FACTORS) and table["protocol"]["seeds"]
    chosen = fight["chosen"]
    assert table["chosen_learning_rates"] == {m: chosen[m]["lr"] for m in rf.FACTOR_MODELS}
    assert table["dropouts"] == {m: chosen[m]["dropout"] for m in rf.FACTOR_MODELS}
    for factor, row in table["factors"].items():
        assert set(row["models"]) == set(rf.FACTOR_MODELS), factor
        for m, r in row["models"].items():
            assert r["seeds"] == table["protocol"]["seeds"], (factor, m)
    for m in rf.FACTOR_MODELS:
        runs = {r["seed"]: r for r in fight["runs"] if r["model"] == m
                and r["lr"] == chosen[m]["lr"] and r["dropout"] == chosen[m]["dropout"]}
        base = table["factors"]["baseline"]["models"][m]
        for which in ("best", "last"):
            for metric in ("accuracy", "tvd"):
                expected = [runs[s][f"test_{which}"][metric] for s in base["seeds"]]
                assert base[which][metric]["values"] == pytest.approx(expected, abs=1e-12)
