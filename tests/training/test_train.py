"""The trainer: schedule, parameter groups, checkpoints, resume (with a real kill), the CLI."""

from __future__ import annotations

import dataclasses
import importlib
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from mosaics_edu import training as tr
from mosaics_edu.course.widgets import LiveLossPlot
from mosaics_edu.data import prepare_stories
from mosaics_edu.models import flops, registry
from mosaics_edu.training import checkpoint, cli

ROOT = Path(__file__).resolve().parents[2]
HANG_S = 3600  # subprocess limits are hang protection only: a busy machine must never trip them

# A throwaway language model with the package models' interface (config.preset, forward ->
# (logits, loss)), small enough that a training step takes milliseconds. Dropout > 0 so that
# resuming must restore the random state too.
TINY_LM = textwrap.dedent('''
    from dataclasses import dataclass
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    @dataclass
    class TinyConfig:
        vocab_size: int = 64
        block_size: int = 32
        n_layer: int = 1
        n_head: int = 2
        n_embd: int = 16
        dropout: float = 0.1

        @classmethod
        def preset(cls, name, **overrides):
            return cls(**overrides)

    class TinyLM(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.config = config
            self.emb = nn.Embedding(config.vocab_size, config.n_embd)
            self.pos = nn.Parameter(torch.zeros(config.block_size, config.n_embd))
            self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd)
            self.norm = nn.LayerNorm(config.n_embd)
            self.drop = nn.Dropout(config.dropout)
            self.head = nn.Linear(config.n_embd, config.vocab_size, bias=False)

        def forward(self, idx, targets=None):
            B, T = idx.shape
            x = self.emb(idx) + self.pos[:T]
            q, k, v = self.qkv(x).chunk(3, dim=-1)
            x = x + self.drop(F.scaled_dot_product_attention(q, k, v, is_causal=True))
            logits = self.head(self.norm(x))
            loss = None
            if targets is not None:
                loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
            return logits, loss
''')


@pytest.fixture()
def tiny(tmp_path, monkeypatch):
    """Register the tiny model as --model tiny, and prepare a small char-level story dataset."""
    (tmp_path / "tiny_lm.py").write_text(TINY_LM)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("tiny_lm", None)
    tiny_lm = importlib.import_module("tiny_lm")
    monkeypatch.setitem(registry.MODEL_KINDS, "tiny", (tiny_lm.TinyLM, tiny_lm.TinyConfig))
    data = prepare_stories(tmp_path / "data", tokenizer="char", n_train=60, n_valid=10, seed=0)
    return tmp_path, data


def _tiny_config(tmp_path, **kw):
    base = dict(model="tiny", batch_size=4, max_steps=12, warmup_steps=3, lr=3e-3, min_lr=1e-4,
                eval_interval=6, eval_batches=2, log_interval=3, out_dir=str(tmp_path / "run"),
                threads=1)  # fmt: skip
    base.update(kw)
    return tr.TrainConfig.from_preset("cpu-tiny", **base)


# ---- pure pieces -----------------------------------------------------------------------------


def test_lr_schedule_values():
    kw = dict(max_lr=1.0, min_lr=0.1, warmup_steps=10, max_steps=110)
    assert tr.lr_at(0, **kw) == pytest.approx(0.1)  # (0+1)/10 of the peak
    assert tr.lr_at(4, **kw) == pytest.approx(0.5)
    assert tr.lr_at(9, **kw) == pytest.approx(1.0)  # peak at the end of warm-up
    assert tr.lr_at(10, **kw) == pytest.approx(1.0)
    assert tr.lr_at(60, **kw) == pytest.approx(0.55)  # half way down the cosine
    assert tr.lr_at(35, **kw) == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi / 4)) / 2)
    assert tr.lr_at(110, **kw) == pytest.approx(0.1)
    assert tr.lr_at(500, **kw) == pytest.approx(0.1)
    values = [tr.lr_at(s, **kw) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))  # monotone decay
    # the paper's recipe: 5e-3 peak after 2k steps, 1e-4 at 80k
    paper = dict(max_lr=5e-3, min_lr=1e-4, warmup_steps=2000, max_steps=80_000)
    assert tr.lr_at(1999, **paper) == pytest.approx(5e-3)
    assert tr.lr_at(80_000, **paper) == pytest.approx(1e-4)
    with pytest.raises(ValueError, match="min_lr"):
        tr.lr_at(0, max_lr=0.1, min_lr=1.0, warmup_steps=0, max_steps=10)
    with pytest.raises(ValueError, match="warmup_steps"):
        tr.lr_at(0, max_lr=1.0, min_lr=0.0, warmup_steps=20, max_steps=10)
    with pytest.raises(ValueError, match="step must be"):
        tr.lr_at(-1, **kw)


def test_param_groups_decay_matrices_only(tiny):
    tiny_lm = importlib.import_module("tiny_lm")
    model = tiny_lm.TinyLM(tiny_lm.TinyConfig())
    groups = tr.param_groups(model, 0.1)
    decay, no_decay = groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"])
    assert all(p.dim() < 2 for p in no_decay["params"])
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())  # each exactly once
    assert len(no_decay["params"]) == 3  # qkv bias, norm weight and bias
    with pytest.raises(ValueError, match="weight_decay"):
        tr.param_groups(model, -1.0)
    with pytest.raises(TypeError, match="nn.Module"):
        tr.param_groups("model", 0.1)


def test_presets_and_config_validation():
    paper = tr.TrainConfig.from_preset("paper-gpt2-small")
    assert paper.batch_size * paper.grad_accum == 512  # global batch of the paper
    assert (paper.lr, paper.min_lr, paper.warmup_steps, paper.max_steps) == (5e-3, 1e-4, 2000,
                                                                              80_000)
    assert (paper.weight_decay, paper.grad_clip, paper.beta1, paper.beta2) == (0.1, 1.0, 0.9,
                                                                               0.95)
    assert paper.tokenizer == "gpt2" and paper.data == "babistories"
    with pytest.raises(ValueError, match="unknown preset"):
        tr.TrainConfig.from_preset("huge")
    # validated on construction: an invalid config cannot exist (nor come out of replace)
    with pytest.raises(ValueError, match="batch_size"):
        tr.TrainConfig(batch_size=0)
    with pytest.raises(ValueError, match="warmup_steps"):
        tr.TrainConfig(warmup_steps=500, max_steps=10)
    with pytest.raises(ValueError, match="model must be one of"):
        dataclasses.replace(tr.TrainConfig(), model="transformer")
    with pytest.raises(ValueError, match="min_lr"):
        tr.TrainConfig.from_preset("cpu-tiny", min_lr=1.0)
    config = tr.TrainConfig()
    config.max_steps = 0  # a field changed afterwards: validate() says so
    with pytest.raises(ValueError, match="max_steps"):
        config.validate()
    assert flops.training_flops_per_token(100, 2, 8, 16) == 6 * 100 + 12 * 2 * 8 * 16


# ---- training in-process -----------------------------------------------------------------------


def test_training_lowers_loss_and_logs(tiny):
    tmp_path, data = tiny
    events = []
    plot = LiveLossPlot()
    cfg = _tiny_config(tmp_path, max_steps=30, eval_interval=10, lr=1e-2)
    result = tr.train(cfg, callbacks=[events.append, plot], data=data, progress=False)
    evals = [e for e in result.history if e["kind"] == "eval"]
    assert [e["step"] for e in evals] == [0, 10, 20, 30]
    assert evals[-1]["val_loss"] < evals[0]["val_loss"] - 0.5
    assert events == result.history and len(plot.evals) == 4
    run = tmp_path / "run"
    rows = (run / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("kind,step,loss") and len(rows) == 1 + len(result.history)
    summary = result.summary
    assert summary["step"] == 30 and summary["tokens_per_s"] > 0 and 0 < summary["mfu"] < 1
    assert (run / "summary.json").is_file()
    fig = plot.figure()
    assert len(fig.axes[0].lines) == 3


def test_the_vocabulary_is_padded_unless_the_config_names_its_size(tiny):
    tmp_path, data = tiny
    padded = tr.train(_tiny_config(tmp_path, max_steps=4, out_dir=None), data=data, progress=False)
    assert padded.model.config.vocab_size == tr.padded_vocab_size(data.vocab_size) > data.vocab_size
    own = _tiny_config(tmp_path, max_steps=4, out_dir=None,
                       model_overrides={"vocab_size": data.vocab_size})
    assert tr.train(own, data=data, progress=False).model.config.vocab_size == data.vocab_size
    small = _tiny_config(tmp_path, max_steps=4, out_dir=None,
                         model_overrides={"vocab_size": data.vocab_size - 1})
    with pytest.raises(ValueError, match="vocab_size"):
        tr.train(small, data=data, progress=False)


def test_grad_accumulation_matches_a_bigger_batch(tiny):
    """2 micro-batches of 4 = one batch of 8 (same windows, no dropout): same gradients."""
    tmp_path, data = tiny
    runs = []
    for bs, accum in ((8, 1), (4, 2)):
        cfg = _tiny_config(tmp_path, batch_size=bs, grad_accum=accum, max_steps=1, out_dir=None,
                           warmup_steps=0, grad_clip=0.0)
        torch.manual_seed(0)
        model, mcfg = tr.build_model("tiny", "cpu-tiny", 64, dropout=0.0)
        trainer = tr.Trainer(model, data, cfg, model_config=mcfg, progress=False)
        trainer.sampler.next_batch = _split_batches(trainer.sampler, bs)
        grads = _record_grads_before_step(trainer.optimizer, model)
        info = trainer.train_step()
        runs.append((info["loss"], grads))
    (loss_a, grads_a), (loss_b, grads_b) = runs
    assert loss_a == pytest.approx(loss_b, rel=1e-6)
    assert len(grads_a) == len(grads_b) > 0
    for a, b in zip(grads_a, grads_b, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-7)


def _record_grads_before_step(optimizer, model) -> list:
    """Wrap ``optimizer.step`` so it first copies every gradient into the returned list."""
    grads: list = []
    step = optimizer.step

    def recording_step(*args, **kwargs):
        grads.extend(p.grad.clone() for p in model.parameters())
        return step(*args, **kwargs)

    optimizer.step = recording_step
    return grads


def _split_batches(sampler, bs):
    """Make the sampler return one batch of 8 windows, split into ``accum`` micro-batches."""
    from mosaics_edu.data import get_batch

    x, y = get_batch(sampler.tokens, 8, sampler.block_size, torch.Generator().manual_seed(7))
    parts = iter(zip(x.split(bs), y.split(bs), strict=True))
    return lambda: next(parts)


def test_resume_in_process_equals_uninterrupted(tiny):
    tmp_path, data = tiny
    full = tr.train(_tiny_config(tmp_path, out_dir=str(tmp_path / "full")), data=data,
                    progress=False)
    # stop after 6 steps (a checkpoint is written at the evaluation), then resume to 12
    part_cfg = _tiny_config(tmp_path, out_dir=str(tmp_path / "part"))
    torch.manual_seed(part_cfg.seed)
    model, mcfg = tr.build_model("tiny", "cpu-tiny", 64)
    trainer = tr.Trainer(model, data, part_cfg, model_config=mcfg, progress=False)
    trainer.fit(until=8)  # "interrupted" after step 8; the last checkpoint is from step 6
    assert checkpoint.load_checkpoint(tmp_path / "part" / "ckpt.pt")["step"] == 6
    resumed = tr.train(_tiny_config(tmp_path, out_dir=str(tmp_path / "part")), data=data,
                       resume=tmp_path / "part", progress=False)
    for (name, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values(),
                            strict=True):
        assert torch.equal(a, b), f"{name} differs after resume"


def test_checkpoint_is_weights_only_and_corruption_refused(tiny):
    tmp_path, data = tiny
    tr.train(_tiny_config(tmp_path, max_steps=6), data=data, progress=False)
    path = tmp_path / "run" / "ckpt.pt"
    raw = torch.load(path, weights_only=True)  # only tensors and primitive containers
    assert raw["format"] == "mosaics_edu.checkpoint" and raw["step"] == 6
    assert not list(path.parent.glob("*.tmp"))
    model, tok, ck = checkpoint.load_model(path)
    assert tok is not None and tok.kind == "char" and ck["model_kind"] == "tiny"
    assert not model.training
    for name, tensor in model.state_dict().items():  # the rebuilt model holds the saved weights
        assert torch.equal(tensor, raw["model"][name]), name

    good = path.read_bytes()
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0xFF  # a silent bit flip inside the tensor data
    path.write_bytes(bytes(flipped))
    with pytest.raises(checkpoint.CheckpointError, match="corrupt"):
        checkpoint.load_checkpoint(path)
    path.write_bytes(good[: len(good) // 3])  # truncated
    with pytest.raises(checkpoint.CheckpointError, match="corrupt or truncated"):
        checkpoint.load_checkpoint(path)
    torch.save({"weights": torch.zeros(2)}, path)  # someone else's file
    with pytest.raises(checkpoint.CheckpointError, match="not a mosaics_edu training checkpoint"):
        checkpoint.load_checkpoint(path)
    with pytest.raises(checkpoint.CheckpointError, match="no checkpoint at"):
        checkpoint.load_checkpoint(tmp_path / "missing.pt")


# ---- the command line in a subprocess, killed and resumed -------------------------------------

RUNNER = textwrap.dedent('''
    import sys
    sys.path.insert(0, sys.argv[1])
    from mosaics_edu.models import registry
    from mosaics_edu.training import cli
    from tiny_lm import TinyConfig, TinyLM
    registry.MODEL_KINDS["tiny"] = (TinyLM, TinyConfig)
    cli.main(sys.argv[2:])
''')


def _cli(tmp_path, out, *extra):
    args = ["--model", "tiny", "--data", str(tmp_path / "data"), "--out-dir", str(out),
            "--max-steps", "400", "--batch-size", "4", "--eval-interval", "200",
            "--eval-batches", "2", "--ckpt-interval", "20", "--log-interval", "50",
            "--warmup-steps", "20", "--threads", "1", "--no-progress", *extra]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return [sys.executable, str(tmp_path / "runner.py"), str(tmp_path), *args], env


def test_cli_killed_then_resumed_matches_uninterrupted(tiny):
    tmp_path, _ = tiny
    (tmp_path / "runner.py").write_text(RUNNER)
    cmd, env = _cli(tmp_path, tmp_path / "full")
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=HANG_S)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "parameters" in done.stdout and "tokens/s" in done.stdout and "MFU" in done.stdout

    cmd, env = _cli(tmp_path, tmp_path / "killed")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ckpt = tmp_path / "killed" / "ckpt.pt"
    deadline = time.monotonic() + HANG_S
    while not ckpt.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    assert ckpt.exists(), "the run never wrote a checkpoint"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (tmp_path / "killed" / "summary.json").exists()
    killed_at = checkpoint.load_checkpoint(ckpt)["step"]
    assert 0 < killed_at < 400

    cmd, env = _cli(tmp_path, tmp_path / "killed", "--resume")
    resumed = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=HANG_S)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming" in resumed.stdout
    a = checkpoint.load_checkpoint(tmp_path / "full" / "ckpt.pt")
    b = checkpoint.load_checkpoint(ckpt)
    assert a["step"] == b["step"] == 400
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), f"{name} differs (killed at {killed_at})"
    # the metrics log has no duplicated steps after the resume
    steps = [r.split(",")[1] for r in (tmp_path / "killed" / "metrics.csv").read_text().split()
             [1:] if r.startswith("train")]
    assert len(steps) == len(set(steps)) == 8


def test_cli_corrupt_checkpoint_refused(tiny):
    tmp_path, _ = tiny
    (tmp_path / "runner.py").write_text(RUNNER)
    out = tmp_path / "bad"
    out.mkdir()
    (out / "ckpt.pt").write_bytes(b"not a checkpoint at all")
    cmd, env = _cli(tmp_path, out, "--resume")
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=HANG_S)
    assert res.returncode != 0
    assert "corrupt or truncated" in res.stderr and "without --resume" in res.stderr


def _torchrun_failure(res: subprocess.CompletedProcess) -> str:
    """What a failed torchrun printed: first every line in which a process names an error (a
    process killed by a signal says why only there, before torchrun's own report), then the tails."""
    said = [line for line in (res.stdout + res.stderr).splitlines()
            if any(w in line for w in ("terminate called", "what()", "Error", "Exception", "Abort"))]
    return "\n".join(said[:40]) + "\n---\n" + res.stdout[-1500:] + res.stderr[-1500:]


@pytest.mark.slow
def test_ddp_two_processes_gloo_resume_matches(tiny):
    """torchrun with 2 CPU processes (gloo): trains, and a stopped + resumed run ends equal."""
    tmp_path, _ = tiny
    (tmp_path / "runner.py").write_text(RUNNER)

    def launch(out, *extra):
        cmd, env = _cli(tmp_path, out, "--max-steps", "8", "--ckpt-interval", "4", "--warmup-steps", "2",
                        "--grad-accum", "2", "--backend", "gloo", *extra)
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node=2", *cmd[1:]]  # fmt: skip
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=HANG_S)
        assert res.returncode == 0, _torchrun_failure(res)
        return res.stdout

    out = launch(tmp_path / "ddp")
    assert "2 process(es), DDP gloo" in out
    launch(tmp_path / "ddp2", "--stop-after", "4")
    assert checkpoint.load_checkpoint(tmp_path / "ddp2" / "ckpt.pt")["step"] == 4
    launch(tmp_path / "ddp2", "--resume")
    a = checkpoint.load_checkpoint(tmp_path / "ddp" / "ckpt.pt")
    b = checkpoint.load_checkpoint(tmp_path / "ddp2" / "ckpt.pt")
    assert len(a["samplers"]) == 2 and a["step"] == b["step"] == 8
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), f"{name} differs after a DDP resume"


# ---- the package's own models ----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["mosaic", "gpt"])
def test_cli_trains_cpu_tiny_for_both_models(kind, tmp_path):
    """``python -m mosaics_edu.train --preset cpu-tiny`` on the generated corpus, a few steps."""
    data = tmp_path / "data"
    prepare_stories(data, tokenizer="char", n_train=80, n_valid=10, seed=0)
    cmd = [sys.executable, "-m", "mosaics_edu.train", "--model", kind, "--preset", "cpu-tiny",
           "--data", str(data), "--out-dir", str(tmp_path / "run"), "--max-steps", "6",
           "--batch-size", "4", "--eval-batches", "1", "--log-interval", "3", "--threads", "1",
           "--no-progress"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=HANG_S, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-2000:]
    assert f"model {kind}:" in res.stdout and "tokens/s" in res.stdout and "MFU" in res.stdout
    model, tok, ckpt = checkpoint.load_model(tmp_path / "run" / "ckpt.pt")
    assert ckpt["step"] == 6 and ckpt["model_kind"] == kind and tok.kind == "char"
    evals = [h for h in ckpt["history"] if h["kind"] == "eval"]
    assert evals[-1]["val_loss"] < evals[0]["val_loss"], "six steps should already help"
    assert evals[0]["val_loss"] == pytest.approx(math.log(64), abs=0.5)  # ~uniform at start
    # the rebuilt model samples text: the same seed gives the same characters, and never an id
    # of the padded vocabulary rows (64 here) that the tokenizer cannot decode
    prompt = torch.tensor([tok.encode("Once")])  # (1, 4)
    outs = [model.generate(prompt, 20, temperature=0.8, top_k=20, vocab_limit=tok.vocab_size,
                           generator=torch.Generator().manual_seed(1)) for _ in range(2)]
    assert torch.equal(*outs) and outs[0].shape == (1, 24)
    assert int(outs[0].max()) < tok.vocab_size < model.config.vocab_size
    assert len(tok.decode(outs[0][0, 4:].tolist())) == 20


def test_cli_pmem_size_sets_the_mosaic_table_and_is_refused_for_gpt(tmp_path):
    data = tmp_path / "data"
    prepare_stories(data, tokenizer="char", n_train=20, n_valid=4, seed=0)
    common = ["--preset", "cpu-tiny", "--data", str(data), "--max-steps", "1", "--batch-size", "2",
              "--eval-batches", "1", "--threads", "1", "--no-progress", "--pmem-size", "100"]
    cli.main(["--model", "mosaic", "--out-dir", str(tmp_path / "m"), *common])
    model, _, _ = checkpoint.load_model(tmp_path / "m" / "ckpt.pt")
    assert model.config.pmem_size == 100
    with pytest.raises(SystemExit, match="--pmem-size applies to --model mosaic only"):
        cli.main(["--model", "gpt", "--out-dir", str(tmp_path / "g"), *common])


@pytest.mark.parametrize("kind", ["mosaic", "gpt"])
def test_resume_equals_uninterrupted_for_both_models(kind, tmp_path):
    data = prepare_stories(tmp_path / "data", tokenizer="char", n_train=40, n_valid=5, seed=0)
    cfg = dict(model=kind, batch_size=2, max_steps=6, warmup_steps=2, eval_interval=3,
               eval_batches=1, threads=1, model_overrides={"dropout": 0.1, "block_size": 32})
    full = tr.train(tr.TrainConfig.from_preset("cpu-tiny", out_dir=str(tmp_path / "a"), **cfg),
                    data=data, progress=False)
    tr.train(tr.TrainConfig.from_preset("cpu-tiny", out_dir=str(tmp_path / "b"), **cfg),
             data=data, progress=False, until=4)
    resumed = tr.train(tr.TrainConfig.from_preset("cpu-tiny", out_dir=str(tmp_path / "b"), **cfg),
                       data=data, progress=False, resume=tmp_path / "b")
    for (name, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values(),
                            strict=True):
        assert torch.equal(a, b), f"{kind}: {name} differs after resume"


def test_generation_samples_within_vocab_limit():
    """``vocab_limit`` keeps sampled and greedy ids below it; bad limits are refused by name."""
    torch.manual_seed(0)
    model, _ = tr.build_model("gpt", "cpu-tiny", 64, n_layer=1, n_embd=16, n_head=2, block_size=16)
    with torch.no_grad():
        model.lm_head.weight[40:] *= 50  # make the "padding" rows the likeliest by far
    prompt = torch.zeros(4, 3, dtype=torch.long)  # (4, 3)
    free = model.generate(prompt, 12, temperature=1.0, generator=torch.Generator().manual_seed(0))
    assert int(free[:, 3:].max()) >= 40, "the test model should favour the rows above 40"
    for temperature, top_k in ((1.0, None), (2.0, 5), (0.0, None)):
        out = model.generate(prompt, 12, temperature=temperature, top_k=top_k, vocab_limit=40,
                             generator=torch.Generator().manual_seed(0))
        assert int(out[:, 3:].max()) < 40, (temperature, top_k)
    for bad in (0, 65, 2.5):
        with pytest.raises(ValueError, match="vocab_limit"):
            model.generate(prompt, 2, vocab_limit=bad)


def test_trainer_names_missing_config_fields(tiny):
    tmp_path, data = tiny
    model, _ = tr.build_model("tiny", "cpu-tiny", 64)
    with pytest.raises(TypeError, match=r"lacks \['n_layer', 'n_embd'\]"):
        tr.Trainer(model, data, _tiny_config(tmp_path), model_config=_OnlyBlockSize(), progress=False)
    with pytest.raises(ValueError, match="model must be one of"):
        tr.build_model("transformer", "cpu-tiny", 64)


class _OnlyBlockSize:
    block_size = 32


def test_load_model_refuses_an_unknown_model_kind(tiny, monkeypatch):
    tmp_path, data = tiny
    tr.train(_tiny_config(tmp_path, max_steps=2, warmup_steps=0, eval_interval=2), data=data,
             progress=False)
    monkeypatch.delitem(registry.MODEL_KINDS, "tiny")
    with pytest.raises(checkpoint.CheckpointError, match="'tiny' model, which this package does not"):
        checkpoint.load_model(tmp_path / "run" / "ckpt.pt")


def test_bf16_autocast_path_on_cpu(tiny):
    """The autocast code path (bf16) runs on CPU too; fp16 is refused off-GPU."""
    tmp_path, data = tiny
    res = tr.train(_tiny_config(tmp_path, dtype="bfloat16", max_steps=4, out_dir=None,
                                warmup_steps=0),
                   data=data, progress=False)
    assert res.summary["dtype"] == "bfloat16" and math.isfinite(res.summary["val_loss"])
    assert next(res.model.parameters()).dtype == torch.float32  # master weights stay fp32
    with pytest.raises(ValueError, match="float16 needs a CUDA GPU"):
        tr.train(_tiny_config(tmp_path, dtype="float16", max_steps=4, out_dir=None,
                              warmup_steps=0), data=data, progress=False)


# ---- GPU paths (run where a CUDA device exists; skipped elsewhere) ------------------------------

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@needs_cuda
@pytest.mark.parametrize("kind", ["mosaic", "gpt"])
@pytest.mark.parametrize("dtype,compile_", [("bfloat16", False), ("float16", False),
                                            ("bfloat16", True)])
def test_gpu_autocast_and_compile(kind, dtype, compile_, tmp_path):
    data = prepare_stories(tmp_path / "data", tokenizer="char", n_train=200, n_valid=20, seed=0)
    cfg = tr.TrainConfig.from_preset("cpu-tiny", model=kind, device="cuda", dtype=dtype,
                                     compile=compile_, max_steps=20, warmup_steps=2,
                                     eval_interval=20, eval_batches=2, out_dir=str(tmp_path / "r"))
    res = tr.train(cfg, data=data, progress=False)
    evals = [h for h in res.history if h["kind"] == "eval"]
    assert evals[-1]["val_loss"] < evals[0]["val_loss"]
    ck = checkpoint.load_checkpoint(tmp_path / "r" / "ckpt.pt")  # compiled models save plain keys
    assert not any(k.startswith("_orig_mod.") for k in ck["model"])
    assert bool(ck["scaler"]) == (dtype == "float16")


@needs_cuda
def test_gpu_fused_attention_kernels_accept_the_models():
    from torch.nn.attention import SDPBackend, sdpa_kernel

    for kind in ("mosaic", "gpt"):
        model, _ = tr.build_model(kind, "gpu-small", 512)
        model = model.cuda()
        x = torch.randint(0, 512, (2, 256), device="cuda")
        with sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION,
                          SDPBackend.CUDNN_ATTENTION]), torch.autocast("cuda", torch.bfloat16):
            _, loss = model(x, x)  # raises if only the math fallback could run
        assert torch.isfinite(loss)


@needs_cuda
def test_gpu_torchrun_nccl_single_process(tmp_path):
    data = tmp_path / "data"
    prepare_stories(data, tokenizer="char", n_train=200, n_valid=20, seed=0)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1",
           "-m", "mosaics_edu.train", "--model", "mosaic", "--data", str(data), "--out-dir",
           str(tmp_path / "run"), "--max-steps", "10", "--backend", "nccl", "--no-progress"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=HANG_S, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "cuda" in res.stdout and "DDP nccl" in res.stdout and "compiled no" in res.stdout
