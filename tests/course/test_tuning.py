"""The tuning discipline (mosaics_edu.course.tuning): its rules catch unfair fights, and every shipped
comparison follows them."""

from __future__ import annotations

import copy
import json

import pytest

from mosaics_edu.course import tuning

# Every comparison the course ships has its evidence (issue "fair fights"): the folder under
# mosaics_edu/assets/ that holds its runs.
COMPARISONS = tuning.REQUIRED_COMPARISONS


def _fair() -> dict:
    """A made-up fair fight: 4 lrs x 2 dropouts per model, 3 seeds at each chosen setting."""
    runs = []
    for model, best in (("mosaic", 0.004), ("gpt", 0.002)):
        for lr in (0.001, 0.002, 0.004, 0.008):
            for dropout in (0.0, 0.1):
                val = 1.0 + abs(lr - best) * 100 + dropout
                seeds = (0, 1, 2) if (lr, dropout) == (best, 0.0) else (0,)
                runs += [{"model": model, "lr": lr, "dropout": dropout, "seed": s,
                          "val": val + 0.001 * s, "steps": 100} for s in seeds]
    return {"comparison": "toy", "metric": "validation loss", "higher_is_better": False,
            "setting_keys": ["lr", "dropout"], "commands": ["python make_toy.py"],
            "cpu_seconds": 1.0, "runs": runs,
            "chosen": {"mosaic": {"lr": 0.004, "dropout": 0.0}, "gpt": {"lr": 0.002, "dropout": 0.0}}}


def test_a_fair_fight_has_no_problems_and_its_summary_is_over_seeds():
    data = _fair()
    assert tuning.problems(data) == []
    s = tuning.summary(data)
    assert s["gpt"]["n_seeds"] == 3 and s["gpt"]["values"] == [1.0, 1.001, 1.002]
    assert s["gpt"]["mean"] == pytest.approx(1.001) and s["gpt"]["std"] == pytest.approx(0.001)


def test_grid_table_shows_the_seed_0_grid_and_the_chosen_setting():
    data = _fair()
    data["runs"] = [r for r in data["runs"]
                    if not (r["model"] == "gpt" and r["lr"] == 0.008 and r["dropout"])]
    lines = tuning.grid_table(data, "gpt", "nats", lrs=[0.001, 0.002, 0.004, 0.008, 0.016]).splitlines()
    assert lines[0] == "gpt: validation loss at seed 0 (nats)"
    assert lines[1].split()[3:] == ["0.001", "0.002", "0.004", "0.008", "0.016"]
    assert lines[2].split() == ["0", "1.100", "1.000", "1.200", "1.600"]  # seed 0 only; 0.016 blank
    assert lines[3].split() == ["0.1", "1.200", "1.100", "1.300"]  # the run left out: blank, not shifted
    assert lines[3].index("1.300") == lines[2].index("1.200")
    assert lines[4] == ("  chosen: lr 0.002, dropout 0; over its 3 seeds 1.001 ± 0.001 "
                        "(mean ± standard deviation)")
    assert tuning.grid_table(data, "mosaic", "nats").splitlines()[1].split()[3:] == [
        "0.001", "0.002", "0.004", "0.008"]  # default columns: the model's own rates


def _broken(edit) -> list[str]:
    data = copy.deepcopy(_fair())
    edit(data)
    return tuning.problems(data)


def test_a_choice_that_is_not_the_best_on_validation_is_caught():
    def choose_worse(d):
        d["chosen"]["gpt"] = {"lr": 0.004, "dropout": 0.0}
        d["runs"] += [{"model": "gpt", "lr": 0.004, "dropout": 0.0, "seed": s, "val": 2.0,
                       "steps": 100} for s in (1, 2)]
    assert any("better mean" in p for p in _broken(choose_worse))

    def higher_is_better(d):  # the same numbers read as accuracies: the choice is now the worst
        d["higher_is_better"] = True
    assert any("better mean" in p for p in _broken(higher_is_better))


def test_an_lr_at_the_edge_of_the_grid_or_too_few_lrs_is_caught():
    def drop_top(d):
        d["runs"] = [r for r in d["runs"] if not (r["model"] == "mosaic" and r["lr"] == 0.008)]
    found = _broken(drop_top)
    assert any("edge of the grid" in p for p in found) and any("only 3 learning rates" in p for p in found)


def test_too_few_seeds_is_caught():
    def one_seed(d):
        d["runs"] = [r for r in d["runs"] if not (r["model"] == "gpt" and r["seed"] > 0)]
    assert any("1 seed(s)" in p for p in _broken(one_seed))


def test_unequal_dropout_or_budget_is_caught():
    def no_dropout_for_gpt(d):
        d["runs"] = [r for r in d["runs"] if not (r["model"] == "gpt" and r["dropout"] == 0.1)]
    found = _broken(no_dropout_for_gpt)
    assert any("dropout [0.1] never tried" in p for p in found)
    assert any("unequal tuning budgets" in p for p in found)


def test_missing_fields_and_non_finite_scores_are_caught():
    assert tuning.problems({"runs": []})[0].startswith("missing field")

    def nan(d):
        d["runs"][0]["val"] = float("nan")
    assert any("non-finite" in p for p in _broken(nan))


def test_load_refuses_missing_and_corrupt_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="tuning file"):
        tuning.load(tmp_path / "nope.json")
    bad = tmp_path / "tuning.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        tuning.load(bad)
    bad.write_text(json.dumps(_fair()))
    assert tuning.load(bad)["comparison"] == "toy"


@pytest.mark.parametrize("path", tuning.shipped_files(), ids=lambda p: p.parent.name)
def test_every_shipped_comparison_is_a_fair_fight(path):
    data = tuning.load(path)
    assert data["comparison"] == path.parent.name
    assert tuning.problems(data) == []


def test_every_comparison_ships_its_tuning_file():
    shipped = {p.parent.name for p in tuning.shipped_files()}
    missing = [c for c in COMPARISONS if c not in shipped]
    assert not missing, f"comparisons without their tuning.json: {missing}"


def test_grid_table_of_a_sweep_without_dropout_has_one_row():
    data = _fair()
    data["setting_keys"] = ["lr"]
    data["runs"] = [{k: v for k, v in r.items() if k != "dropout"} for r in data["runs"] if r["dropout"] == 0]
    data["chosen"] = {m: {"lr": c["lr"]} for m, c in data["chosen"].items()}
    assert tuning.problems(data) == []
    lines = tuning.grid_table(data, "gpt", "nats").splitlines()
    assert lines[1].split() == ["lr", "0.001", "0.002", "0.004", "0.008"]
    assert lines[2].split() == ["val", "1.100", "1.000", "1.200", "1.600"]
    assert lines[3] == "  chosen: lr 0.002; over its 3 seeds 1.001 ± 0.001 (mean ± standard deviation)"
    assert len(lines) == 4
