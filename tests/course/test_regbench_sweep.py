"""The shipped RegBench-mini sweep: its files load into today's code and score like their results
(the mosaic and the GPT at N = 100 and N = 10,000), :func:`sweep_table` and :func:`ship` do what
they say, and (slow) a retrained run follows the shipped one step for step.
"""

from __future__ import annotations

import json

import pytest
import torch

from mosaics_edu.course.regbench import evaluate, test_automata
from mosaics_edu.course.regbench.datasets import TRAINING_SIZES
from mosaics_edu.course.regbench.matched import MODEL_NAMES
from mosaics_edu.course.regbench.shipped import (
    PAPER_NUMBERS,
    SHIPPED_MODELS,
    SHIPPED_N,
    load_shipped_model,
    load_sweep,
    ship,
    shipped_result,
    shipped_run_dir,
    sweep_table,
)
from mosaics_edu.course.regbench.sweep import LEARNING_RATES, SWEEP_N, main_configs, run_dir, sweep_configs
from mosaics_edu.course.regbench.train import RunConfig, train_run

# ---- the shipped files (fast) ----------------------------------------------------------------


def test_shipped_sweep_has_every_learning_rate_run_and_a_chosen_rate_per_model():
    record = load_sweep()
    assert set(record["chosen_learning_rates"]) == set(MODEL_NAMES)
    assert all(lr in LEARNING_RATES for lr in record["chosen_learning_rates"].values())
    phase1 = {(r["config"]["model"], r["config"]["lr"]) for r in record["runs"] if r["config"]["seed"] == 0
              and r["config"]["n_automata"] == SWEEP_N}  # fmt: skip
    assert phase1 >= {(m, lr) for m in MODEL_NAMES for lr in LEARNING_RATES}
    for model, lr in record["chosen_learning_rates"].items():  # the rate is the best validation TVD
        tvds = {r["config"]["lr"]: r["validation"]["tvd"] for r in record["runs"]
                if r["config"]["model"] == model and r["config"]["n_automata"] == SWEEP_N
                and r["config"]["seed"] == 0}  # fmt: skip
        assert tvds[lr] == min(tvds.values())
    names = {run_dir("", RunConfig.from_dict(r["config"])).name for r in record["runs"]}
    assert not names & set(record["missing"])  # a run is either shipped or listed as missing


def test_sweep_table_of_the_shipped_record():
    table = sweep_table(load_sweep())
    for model in MODEL_NAMES:
        assert SWEEP_N in table[model] and set(table[model]) <= set(TRAINING_SIZES)
        for row in table[model].values():
            for metric in ("accuracy", "tvd"):
                assert row["min"][metric] <= row["mean"][metric] <= row["max"][metric]
                assert 0 <= row["mean"][metric] <= 1 and len(row[metric]) == len(row["seeds"])


@pytest.fixture(scope="module")
def shipped_scores():
    """Every shipped model, by (model, N), loaded and scored on the first 50 test automata."""
    automata, out, threads = test_automata()[:50], {}, torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for model in SHIPPED_MODELS:
            for n in SHIPPED_N:
                net = load_shipped_model(model, n)
                out[model, n] = (net.training, evaluate(net, automata))
    finally:
        torch.set_num_threads(threads)
    return out


def test_shipped_models_load_and_score_near_their_results(shipped_scores):
    """Scored on the first 50 of the 500 test automata (≈ 4,300 positions), each shipped model (both
    models, at N = 100 and N = 10,000) must land within 0.1 of its shipped test accuracy and TVD.
    Why 0.1: the score of 50 automata is a sample of the full test set's (per-automaton scores
    spread by ≈ 0.2, so one standard error is ≈ 0.03), and the shipped weights are the fp16 copy of
    the ones that were scored (the chapter scores all 500 and checks them to 0.01). A model that
    failed to load — random weights, the wrong architecture — scores ≈ 0.2 accuracy / ≈ 0.9 TVD,
    far outside."""
    assert SHIPPED_N == (100, 10_000) and shipped_result("mosaic") == shipped_result("mosaic", 100)
    for (model, n), (training, scores) in shipped_scores.items():
        result = shipped_result(model, n)
        assert result["config"]["model"] == model and result["config"]["n_automata"] == n
        assert result["config"]["seed"] == 0 and not training  # loaded in eval mode
        assert shipped_run_dir(model, n).name == f"{model}_N{n}_seed0"
        assert scores.n_samples == 50
        assert abs(scores.accuracy - result["test"]["accuracy"]) < 0.1, (model, n, scores, result["test"])
        assert abs(scores.tvd - result["test"]["tvd"]) < 0.1, (model, n, scores, result["test"])


def test_more_training_languages_learn_in_context(shipped_scores):
    """The shipped record: trained on 10,000 languages instead of 100, for the same 1,000 steps, both
    models score better on the 500 test languages, which they never saw (mosaic accuracy 0.40 ->
    0.82, TVD 0.74 -> 0.46; GPT 0.31 -> 0.55, TVD 0.80 -> 0.63): they have learned to read a new
    language in context instead of recalling their training ones. The same holds on the 50 test
    automata scored here (measured: mosaic accuracy 0.39 -> 0.81, TVD 0.75 -> 0.47; GPT 0.29 ->
    0.55, TVD 0.82 -> 0.65), by far more than their standard error (≈ 0.03), and at N = 10,000 the
    mosaic is ahead of the GPT (0.81 against 0.55)."""
    for model in SHIPPED_MODELS:
        small, large = (shipped_result(model, n)["test"] for n in SHIPPED_N)
        assert large["accuracy"] > small["accuracy"] + 0.2 and large["tvd"] < small["tvd"] - 0.1
        small, large = (shipped_scores[model, n][1] for n in SHIPPED_N)
        assert large.accuracy > small.accuracy + 0.2 and large.tvd < small.tvd - 0.1, (model, small, large)
    assert shipped_scores["mosaic", 10_000][1].accuracy > shipped_scores["gpt", 10_000][1].accuracy + 0.1


@pytest.mark.parametrize("n_automata", [500, 2_500, 0, 10_000.0, True, "100"])
def test_shipped_n_automata_must_be_a_shipped_n(n_automata):
    for fn in (shipped_run_dir, shipped_result, load_shipped_model):
        with pytest.raises(ValueError, match=r"n_automata must be one of \(100, 10000\)"):
            fn("mosaic", n_automata)


def test_paper_numbers_are_the_digitised_figure():
    assert PAPER_NUMBERS["mosaic"][100] == (0.92, 0.57) and PAPER_NUMBERS["gpt"][100] == (0.52, 0.69)
    for by_n in PAPER_NUMBERS.values():
        assert all(0 < a < 1 and 0 < t < 1 for a, t in by_n.values())


# ---- sweep_table and ship on a made-up sweep (fast) ------------------------------------------


def _fake_result(config: RunConfig, acc: float, tvd: float) -> dict:
    return {"config": config.to_dict(), "parameters": 1, "loss_log": [[50, 1.0]],
            "validation": {"accuracy": acc, "tvd": tvd, "n_positions": 1, "n_samples": 1},
            "test": {"accuracy": acc, "tvd": tvd, "n_positions": 1, "n_samples": 1},
            "versions": {"torch": torch.__version__}}  # fmt: skip


def test_ship_and_sweep_table_on_a_made_up_sweep(tmp_path):
    root, dest = tmp_path / "sweep", tmp_path / "assets"
    best = {"mosaic": 2e-3, "gpt": 1e-3, "lstm": 4e-3}
    for c in sweep_configs():
        d = run_dir(root, c)
        d.mkdir(parents=True)
        tvd = 0.5 if c.lr == best[c.model] else 0.8
        (d / "result.json").write_text(json.dumps(_fake_result(c, 0.7, tvd)))
        torch.save({"w": torch.zeros(2, dtype=torch.float16)}, d / "model_fp16.pt")
    seeds_done = {c: 0.6 + 0.1 * c.seed for c in main_configs(best) if c.n_automata == 10_000}
    for c, acc in seeds_done.items():
        d = run_dir(root, c)
        d.mkdir(parents=True)
        (d / "result.json").write_text(json.dumps(_fake_result(c, acc, 1 - acc)))
        if c.seed == 0 and c.model in SHIPPED_MODELS:  # shipped with their weights
            torch.save({"w": torch.zeros(2, dtype=torch.float16)}, d / "model_fp16.pt")
    missing = run_dir(root, RunConfig("gpt", 10_000, seed=0, lr=best["gpt"], steps=1000)) / "model_fp16.pt"
    missing.rename(missing.with_suffix(".away"))
    with pytest.raises(FileNotFoundError, match="gpt_N10000_seed0_lr0.001 has no model_fp16.pt"):
        ship(root, dest)
    assert not list(dest.glob("*_seed0"))  # nothing half shipped
    missing.with_suffix(".away").rename(missing)
    record = ship(root, dest)
    assert record["chosen_learning_rates"] == best
    assert sorted(p.name for p in dest.glob("*_seed0")) == [
        "gpt_N10000_seed0",
        "gpt_N100_seed0",
        "mosaic_N10000_seed0",
        "mosaic_N100_seed0",
    ]
    assert (dest / "mosaic_N100_seed0" / "model_fp16.pt").is_file()
    assert json.loads((dest / "gpt_N100_seed0" / "result.json").read_text())["config"]["lr"] == 1e-3
    shipped = json.loads((dest / "mosaic_N10000_seed0" / "result.json").read_text())
    assert shipped["config"]["n_automata"] == 10_000 and shipped["test"]["accuracy"] == pytest.approx(0.6)
    assert "mosaic_N100_seed1_lr0.002" in record["missing"]
    table = sweep_table(load_sweep(dest / "sweep.json"))
    assert set(table["gpt"]) == {100, 10_000}  # the runs at rates not chosen are left out
    row = table["lstm"][10_000]
    assert row["seeds"] == [0, 1] and row["accuracy"] == pytest.approx([0.6, 0.7])
    assert row["mean"]["accuracy"] == pytest.approx(0.65) and row["max"]["tvd"] == pytest.approx(0.4)
    assert table["mosaic"][100]["tvd"] == [0.5]
    with pytest.raises(ValueError, match="split"):
        sweep_table(record, split="train")
    with pytest.raises(FileNotFoundError, match="ship"):
        load_sweep(tmp_path / "nothing.json")


# ---- retraining (slow) -----------------------------------------------------------------------

RETRAIN_STEPS = 100


@pytest.mark.slow
@pytest.mark.parametrize("model", SHIPPED_MODELS)
def test_retraining_follows_the_shipped_loss_log(tmp_path, model):
    """Retrain the shipped N = 100, seed-0 run with its own config, in one thread like the sweep, for its
    first 100 of 1,000 steps, and compare the mean training losses logged every 50 steps with the
    shipped ``loss_log``: each within 1e-4 (relative).

    Why a prefix: the whole run costs ~4 CPU-minutes for the mosaic and ~2 for the GPT, above the suite's
    90-second budget for a slow test; 150 steps of both cost ≈ 65 CPU-seconds (measured at load ~10; less on
    an idle machine), 100 steps two thirds of that. Why this still tests the shipped result: a run is a
    deterministic function of its config on CPU (fixed data, initial weights and batch order; see
    ``mosaics_edu.course.regbench.train``), so the logs agree to rounding. Measured: identical to the last bit
    with the same torch and one thread; with two threads (another summation order, as another CPU's kernels
    would give) 2e-8 apart after 150 steps. On another CPU the mosaic's losses were 5e-9 apart (relative) at
    step 50 and 1.3e-7 at step 100, but 3e-3 at step 150: there the loss falls fastest (2.49 -> 1.93 -> 1.42
    at steps 100, 150, 200), and a rounding difference moves the moment of the fall; hence 100 steps. 1e-4
    leaves room for rounding; a change to the data, the model, its initialisation, the batch order, the
    schedule or the optimiser moves the loss by far more (the mosaic's falls from 2.88 to 2.49 between steps
    50 and 100). The end of the run, the test accuracy and TVD, is checked by the fast test above on the
    shipped weights.
    """
    shipped = shipped_result(model)
    config = RunConfig.from_dict(shipped["config"])
    threads = torch.get_num_threads()
    torch.set_num_threads(int(shipped["threads"]))
    try:
        assert train_run(config, tmp_path, progress=False, stop_at=RETRAIN_STEPS) is None
    finally:
        torch.set_num_threads(threads)
    got = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["loss_log"]
    want = [row for row in shipped["loss_log"] if row[0] <= RETRAIN_STEPS]
    assert [s for s, _ in got] == [s for s, _ in want] == list(range(50, RETRAIN_STEPS + 1, 50))
    for (step, g), (_, w) in zip(got, want, strict=True):
        assert g == pytest.approx(w, rel=1e-4), (model, step, g, w)
