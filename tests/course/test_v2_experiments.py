"""Chapter 09's experiments: the β(n) toy, gated keys against fillers, and length extrapolation
(pure pieces fast; one slow test retrains a prefix of a shipped run)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mosaics_edu.course import extrapolation as ex
from mosaics_edu.course import v2_experiments as xp


def test_bandwidth_toy_best_beta_grows_and_the_learned_exponent_is_near_it():
    r = xp.bandwidth_toy(sizes=(8, 32, 128, 512), n_memories=12, steps=60)
    assert np.all(np.diff(r["best_beta"][1:]) >= 0), "the best β should grow with n"
    assert 0.2 < r["fitted_exponent"] < 0.7 and r["optimal_exponent"] == pytest.approx(0.4)
    assert 0.15 < r["learned"]["alpha"] < 0.8
    assert np.all(np.diff(r["learned_beta"]) > 0)
    # β(n) is at least as good as the best single β, summed over sizes (log scale)
    assert np.log(r["mse_learned"]).sum() <= np.log(r["mse_fixed"]).sum() + 0.05


def test_beta_growth_exponent_recovers_a_known_power_and_refuses_bad_input():
    sizes, betas = np.array([4.0, 16, 64, 256, 1024]), np.logspace(-2, 4, 601)  # a fine grid
    grid = (np.log(betas)[None, :] - 0.5 - 0.3 * np.log(sizes)[:, None]) ** 2  # valley at β = e^0.5 n^0.3
    best, slope = xp.beta_growth_exponent(sizes, betas, grid, n_min=16)
    assert best.shape == (5,) and slope == pytest.approx(0.3, abs=0.01)
    with pytest.raises(ValueError, match="mse_grid must have shape"):
        xp.beta_growth_exponent(sizes, betas, grid.T, n_min=16)
    with pytest.raises(ValueError, match="lower n_min"):
        xp.beta_growth_exponent(sizes, betas, grid, n_min=1000)
    with pytest.raises(ValueError, match="positive"):
        xp.beta_growth_exponent(sizes - 4, betas, grid, n_min=16)


def test_retrieval_mse_limits():
    g = torch.Generator().manual_seed(0)
    keys, values, queries, targets = xp.circle_memories(2, 50, 5, 0.0, g)
    flat = xp.retrieval_mse(keys, values, queries, targets, 0.0)  # β = 0: the mean of the values
    mean = values.mean(dim=1, keepdim=True).expand_as(targets)
    assert float(flat) == pytest.approx(float(((mean - targets) ** 2).mean()), rel=1e-5)


def test_filler_sequences_layout_and_errors():
    t = torch.tensor([[3, 4, 5]])
    assert xp.filler_sequences(t, 0).tolist() == [[3, 4, 5]]
    assert xp.filler_sequences(t, 2, torch.tensor([[7]])).tolist() == [[7, 3, 0, 0, 4, 0, 0, 5]]
    with pytest.raises(ValueError, match="triples must have shape"):
        xp.filler_sequences(torch.tensor([1, 2, 3]), 1)
    with pytest.raises(ValueError, match="fillers must be an integer >= 0"):
        xp.filler_sequences(t, -1)


def test_gated_keys_see_past_fillers_better_than_a_fixed_decay():
    r = xp.filler_key_similarity()
    assert r["v2"]["same"] > r["v1"]["same"] + 0.03
    assert r["v2"]["found"] > r["v1"]["found"] + 0.2
    for name in ("v1", "v2"):
        assert abs(r[name]["other"]) < 0.2, "different triples should get unrelated keys"
    # v2 learned to shut the gate on the filler and to keep the past across it
    assert max(r["decays"]["v2_gate_filler"]) < min(r["decays"]["v2_gate_words"])
    assert min(r["decays"]["v2_filler"]) > max(r["decays"]["v2_words"])


def test_recall_documents_bind_each_key_to_one_digit_per_document():
    docs = ex.recall_documents(3, 200, seed=0)
    tok = ex.recall_tokenizer()
    assert docs.shape == (3, 400) and tok.vocab_size == 36
    for doc in docs:
        text = tok.decode(doc.tolist())
        pairs = {}
        for k, v in zip(text[0::2], text[1::2], strict=True):
            assert k.isalpha() and v.isdigit()
            assert pairs.setdefault(k, v) == v
    assert not np.array_equal(ex.recall_documents(1, 50, 0), ex.recall_documents(1, 50, 1))
    with pytest.raises(ValueError, match="n_pairs must be a positive integer"):
        ex.recall_documents(1, 0, 0)


def test_curriculum_documents_use_their_own_letters():
    tok = ex.recall_tokenizer()
    docs = ex.recall_documents(6, 300, seed=4, n_keys=4)
    letter_sets = []
    for doc in docs:
        text = tok.decode(doc.tolist())
        letters = set(text[0::2])
        assert len(letters) == 4, "300 pairs over 4 letters use all 4"
        pairs = {}
        for k, v in zip(text[0::2], text[1::2], strict=True):
            assert pairs.setdefault(k, v) == v
        letter_sets.append(frozenset(letters))
    assert len(set(letter_sets)) > 1, "each document draws its own letters"
    # the full task is the default, draw for draw
    assert np.array_equal(ex.recall_documents(2, 50, 1, n_keys=26), ex.recall_documents(2, 50, 1))
    for bad in (0, 27):
        with pytest.raises(ValueError, match="n_keys"):
            ex.recall_documents(1, 10, 0, n_keys=bad)


def _tiny_config(tmp_path, **overrides):
    from mosaics_edu.training import TrainConfig

    settings = dict(model="gpt", model_overrides={"block_size": 32}, batch_size=4, max_steps=12,
                    lr=1e-3, min_lr=1e-4, warmup_steps=2, eval_interval=4, eval_batches=1,
                    log_interval=4, seed=3, threads=1, device="cpu", dtype="float32")
    return TrainConfig.from_preset("cpu-tiny", **{**settings, **overrides})


def test_curriculum_stages_hand_over_without_losing_a_step(tmp_path):
    """The stages stop and resume through checkpoints: with every stage on the same data the
    curriculum is exactly one uninterrupted run (weights and logged losses)."""
    from mosaics_edu.training import train

    torch.set_num_threads(1)
    data = ex.make_recall_dataset(tmp_path / "data", n_train_docs=2, n_valid_docs=1)
    staged = ex.train_curriculum(_tiny_config(tmp_path, out_dir=str(tmp_path / "staged")),
                                 {k: data for _, k in ex.CURRICULUM})
    plain = train(_tiny_config(tmp_path), data=data, progress=False)
    for a, b in zip(staged.model.state_dict().values(), plain.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    evals = [(h["step"], h["val_loss"]) for h in staged.history if h["kind"] == "eval"]
    assert evals == [(h["step"], h["val_loss"]) for h in plain.history if h["kind"] == "eval"]
    assert [s for s, _ in evals] == [0, 4, 8, 12]
    with pytest.raises(ValueError, match="out_dir"):
        ex.train_curriculum(_tiny_config(tmp_path), {k: data for _, k in ex.CURRICULUM})


def test_curriculum_stages_train_on_their_own_documents(tmp_path, monkeypatch):
    from mosaics_edu.training import trainer as tr

    seen = []
    real_train = tr.train

    def spy(config, data=None, until=None, **kw):
        seen.append((data.meta["source"]["n_keys"], until))
        return real_train(config, data=data, until=until, **kw)

    monkeypatch.setattr(tr, "train", spy)
    stages = {k: ex.make_recall_dataset(tmp_path / f"k{k}", 2, 1, n_keys=k) for _, k in ex.CURRICULUM}
    ex.train_curriculum(_tiny_config(tmp_path, out_dir=str(tmp_path / "run")), stages)
    assert seen == [(4, 2), (8, 4), (16, 6), (26, None)], "stage starts at 0, 1/6, 2/6, 1/2 of 12 steps"


def test_the_grid_choice_is_the_lowest_validation_loss_and_then_the_other_seeds_run(tmp_path):
    def write(name, settings, seed, val_loss):
        path = ex._job_path(tmp_path, name, settings, seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"settings": settings, "seed": seed, "val_loss": val_loss}))

    todo = ex.pending_jobs(tmp_path)
    assert len(todo) == len(ex.GRID["gpt"]) + 3 * (len(ex.MODELS) - 1)  # mosaics: one point each
    assert ex.chosen_settings(tmp_path, "gpt") is None
    losses = [2.7 - 0.1 * ((3 * i) % 5) for i in range(len(ex.GRID["gpt"]))]
    for settings, loss in zip(ex.GRID["gpt"], losses, strict=True):
        write("gpt", settings, 0, loss)
    best = ex.GRID["gpt"][int(np.argmin(losses))]
    assert ex.chosen_settings(tmp_path, "gpt") == best
    gpt_left = [j for j in ex.pending_jobs(tmp_path) if j[0] == "gpt"]
    assert gpt_left == [("gpt", best, 1), ("gpt", best, 2)]
    assert ex.chosen_settings(tmp_path, "v1") == ex.GRID["v1"][0]


def test_recall_scores_of_an_oracle_and_of_a_constant():
    idx = torch.from_numpy(ex.recall_documents(4, 300, seed=3))
    V = 36
    oracle = torch.nn.functional.one_hot(torch.roll(idx, -1, dims=1), V).float()
    s = ex.recall_scores(oracle, idx, context=128)
    assert s["all"] == s["near"] == s["far"] == 1.0 and s["n_far"] > 0
    # the number of scored keys: every repeated letter, less a last-position one
    assert s["n_near"] + s["n_far"] <= 4 * 300 - 4 * 26
    constant = torch.zeros(4, 600, V)
    constant[..., 0] = 1  # always "0"
    assert ex.recall_scores(constant, idx, 128)["all"] == pytest.approx(0.1, abs=0.04)
    with pytest.raises(ValueError, match="must match idx"):
        ex.recall_scores(oracle[:, :-1], idx, 128)


class _Window(torch.nn.Module):
    """Logits that say which window made them: (first token of the window, window length)."""

    def forward(self, idx):
        B, T = idx.shape
        out = torch.zeros(B, T, 3)
        out[..., 0] = idx[:, :1].float()
        out[..., 1] = T
        out[..., 2] = torch.arange(T).float()  # position inside the window
        return out, None


def test_sliding_logits_give_every_position_half_a_context_or_more():
    idx = torch.arange(100)[None]
    out = ex.sliding_logits(_Window(), idx, context=16)
    start, inside = out[0, :, 0], out[0, :, 2]
    assert torch.equal(start + inside, idx[0].float()), "each position's own window logits"
    assert (inside[8:] >= 8).all() and (inside < 16).all()
    assert torch.equal(ex.sliding_logits(_Window(), idx[:, :16], 16), _Window()(idx[:, :16])[0])


def test_shipped_extrapolation_results_follow_the_protocol():
    """Every model at every seed and scale; the GPT's grid complete and its choice the lowest
    validation loss; the shipped scores the mean of the seeds."""
    r = json.loads(ex.SHIPPED.read_text())
    assert set(r["runs"]) == set(ex.MODELS) and r["context"] == ex.CONTEXT
    assert r["seeds"] == list(ex.SEEDS) and r["curriculum"] == [list(c) for c in ex.CURRICULUM]
    for name, run in r["runs"].items():
        assert [g["settings"] for g in run["grid"]] == ex.GRID[name]
        assert run["settings"] == min(run["grid"], key=lambda g: g["val_loss"])["settings"]
        assert sorted(run["per_seed"]) == [str(s) for s in ex.SEEDS]
        for scale in (f"{s}x" for s in ex.SCALES):
            accs = [run["per_seed"][str(s)]["scores"][scale]["all"] for s in ex.SEEDS]
            assert all(0 <= a <= 1 for a in accs)
            assert run["scores"][scale]["all"] == pytest.approx(np.mean(accs))
            assert run["scores"][scale]["all_min"] == min(accs)


@pytest.mark.slow
def test_retraining_a_prefix_of_the_v1_run_reproduces_the_shipped_losses(tmp_path):
    """v1 seed 0 for 300 of its 6,000 steps (its first curriculum stage, ~20 s CPU): the
    validation losses logged up to step 300 match the shipped run within 2 % (same code; BLAS
    builds may round differently)."""
    torch.set_num_threads(1)
    shipped = json.loads(ex.SHIPPED.read_text())["runs"]["v1"]
    stages = ex.curriculum_data(tmp_path / "data")
    config = ex.run_config("v1", shipped["settings"], 0, tmp_path / "run")
    result = ex.train_curriculum(config, stages, until=300)
    mine = {h["step"]: h["val_loss"] for h in result.history if h["kind"] == "eval" and h["step"] <= 300}
    ref = {e["step"]: e["val_loss"] for e in shipped["per_seed"]["0"]["evals"] if e["step"] <= 300}
    assert sorted(mine) == sorted(ref) == [0, 250]
    for step in ref:
        assert mine[step] == pytest.approx(ref[step], rel=0.02), f"val loss at step {step}"
