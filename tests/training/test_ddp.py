"""Data parallelism on CPU: 2 processes under ``torchrun`` (gloo) train exactly what 1 process
accumulating twice as many micro-batches trains — same global batch, same data order — for the GPT
baseline, the Memory Mosaic (v1) and Memory Mosaics v2 (with its random long-term delay).

Why the two must agree: every process holds the same seeded stream of micro-batches and trains on
its own slice of each step's (``Trainer.train_step``); DDP averages the processes' gradients, which
is the sum over all micro-batches divided by ``grad_accum``, as one process computes it. Only the
order of float additions differs, so the weights agree to rounding (here, exactly: see ATOL).
A run stopped by 1 process and resumed by 2 ends with the same weights too (one shared stream).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from mosaics_edu.data import RandomWindows, prepare_stories
from mosaics_edu.training import checkpoint, cli

ROOT = Path(__file__).resolve().parents[2]
HANG_S = 3600  # hang protection only: a busy machine must never trip it

# Float tolerance of the float32 weights after 4 AdamW steps. Measured here: 0.0 for all three
# models. With 2 processes of 1 micro-batch each, DDP computes (g1 + g2) / 2 and one process
# computes g1 / 2 + g2 / 2; halving is exact in binary floating point, so both are the same
# number. With more micro-batches per process, or other all-reduce algorithms (NCCL), the sums
# are associated differently and differ by rounding (~1e-7 relative, moving Adam's updates by
# ~1e-9): the tolerance allows that, and stays far below what a different batch changes (the
# control below, measured 1.6e-2).
ATOL = 1e-6
RTOL = 1e-5

KINDS = ("gpt", "mosaic", "mosaic-v2")
TINY = ["--n-layer", "1", "--n-embd", "32", "--n-head", "2", "--block-size", "32"]
V2 = ["--short-window", "8", "--delay-min", "2", "--delay-max", "8", "--delay", "2"]  # m random

# torchrun runs this: one process group, the three models trained one after another by the CLI,
# then a resume
RUNNER = textwrap.dedent('''
    import os, sys
    import torch
    import torch.distributed as dist
    from mosaics_edu.training import cli
    backend = os.environ["DDP_TEST_BACKEND"]
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group(backend)
    out, args = sys.argv[1], sys.argv[2:]
    for kind in ("gpt", "mosaic", "mosaic-v2"):
        extra = args[args.index("--v2") + 1:] if kind == "mosaic-v2" else []
        common = args[: args.index("--v2")]
        cli.main(["--model", kind, "--out-dir", f"{out}/{kind}", *common, *extra])
    # then resume, with 2 processes, a mosaic run that 1 process stopped half way
    cli.main(["--model", "mosaic", "--out-dir", f"{out}/../switch", *common, "--resume"])
    dist.destroy_process_group()
''')


def _args(data: Path, grad_accum: int) -> list[str]:
    return ["--preset", "cpu-tiny", "--data", str(data), "--batch-size", "4",
            "--grad-accum", str(grad_accum), "--max-steps", "4", "--warmup-steps", "1",
            "--eval-interval", "4", "--eval-batches", "3", "--log-interval", "2",
            "--dropout", "0", "--threads", "1", "--no-progress", *TINY]  # fmt: skip


def _max_diff(a: dict, b: dict) -> float:
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def test_skip_draws_what_next_batch_draws():
    tokens = np.arange(300, dtype=np.uint16)
    a, b = RandomWindows(tokens, 3, 8, seed=4), RandomWindows(tokens, 3, 8, seed=4)
    for _ in range(2):
        a.next_batch()
    b.skip(2)
    assert torch.equal(a.next_batch()[0], b.next_batch()[0]) and a.batches_drawn == b.batches_drawn
    b.skip(0)
    assert torch.equal(a.next_batch()[0], b.next_batch()[0])
    with pytest.raises(ValueError, match="n must be a non-negative int"):
        b.skip(-1)


def test_two_gloo_processes_equal_one_process_with_twice_the_accumulation(tmp_path):
    diffs, control = _one_vs_two_processes(tmp_path, "cpu", "gloo", ATOL)
    print(f"max |weight difference|, 2 processes vs 1: {diffs}; half batch: {control:.2e}")


needs_2_gpus = pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 CUDA GPUs")


@needs_2_gpus
def test_gpu_two_nccl_processes_equal_one_process_with_twice_the_accumulation(tmp_path):
    """The same on 2 GPUs with NCCL (float32 weights, TF32 matmuls as the trainer sets them).
    Not run on the development machine (no GPU); GPU kernels may add in a different order
    between calls, hence the looser tolerance."""
    diffs, control = _one_vs_two_processes(tmp_path, "cuda", "nccl", 1e-4)
    print(f"max |weight difference|, 2 GPUs vs 1: {diffs}; half batch: {control:.2e}")


def _one_vs_two_processes(tmp_path: Path, device: str, backend: str, atol: float):
    """Train GPT, mosaic and mosaic-v2 with 1 process (grad_accum 2) and with 2 processes under
    torchrun (grad_accum 2: one micro-batch each); assert equal weights and logged losses."""
    from mosaics_edu.core.v2.layers import draw_delay

    # v2's delay m really changes over the 4 steps (seed 0, its one layer, m in [2, 8])
    assert len({draw_delay(0, step, 0, 2, 8) for step in range(4)}) > 1
    data = tmp_path / "data"
    prepare_stories(data, tokenizer="char", n_train=60, n_valid=10, seed=0)

    # 1 process, grad_accum 2: two micro-batches of 4 per step, in this process
    for kind in KINDS:
        extra = V2 if kind == "mosaic-v2" else []
        cli.main(["--model", kind, "--out-dir", str(tmp_path / "one" / kind),
                  *_args(data, 2), "--device", device, *extra])  # fmt: skip
    # the control: 1 process, grad_accum 1 (half the global batch) must differ by far more
    cli.main(["--model", "mosaic", "--out-dir", str(tmp_path / "half"), *_args(data, 1),
              "--device", device])  # fmt: skip
    # 1 process stops after step 2; 2 processes resume it below (the number of processes changes)
    cli.main(["--model", "mosaic", "--out-dir", str(tmp_path / "switch"), *_args(data, 2),
              "--device", device, "--stop-after", "2"])  # fmt: skip
    assert checkpoint.load_checkpoint(tmp_path / "switch" / "ckpt.pt")["step"] == 2

    # 2 processes, grad_accum 2: one micro-batch of 4 per process per step
    (tmp_path / "runner.py").write_text(RUNNER)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           str(tmp_path / "runner.py"), str(tmp_path / "two"), *_args(data, 2), "--device", device,
           "--v2", *V2]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "DDP_TEST_BACKEND": backend}
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=HANG_S)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert res.stdout.count(f"2 process(es), DDP {backend}") == 4
    assert res.stdout.count("= 8 sequences of 32 tokens") == 4  # 4 x 1 per process x 2 processes
    assert "written by 1 process(es), this run has 2: the batches are those of an uninterrupted" \
        in res.stderr

    diffs = {}
    for kind in KINDS:
        one = checkpoint.load_checkpoint(tmp_path / "one" / kind / "ckpt.pt")
        two = checkpoint.load_checkpoint(tmp_path / "two" / kind / "ckpt.pt")
        assert one["step"] == two["step"] == 4 and len(two["samplers"]) == 2
        for name, tensor in one["model"].items():
            torch.testing.assert_close(two["model"][name], tensor, atol=atol, rtol=RTOL,
                                       msg=lambda m, kind=kind, name=name: f"{kind} {name}: {m}")
        diffs[kind] = _max_diff(one["model"], two["model"])
        # the logged losses are the global batch's: the same to rounding
        for a, b in zip(one["history"], two["history"], strict=True):
            assert a["step"] == b["step"] and a["kind"] == b["kind"]
            for key in ("loss", "train_loss", "val_loss"):
                if key in a:
                    assert b[key] == pytest.approx(a[key], rel=1e-5), (kind, a["step"], key)
    half = checkpoint.load_checkpoint(tmp_path / "half" / "ckpt.pt")
    one = checkpoint.load_checkpoint(tmp_path / "one" / "mosaic" / "ckpt.pt")
    switched = checkpoint.load_checkpoint(tmp_path / "switch" / "ckpt.pt")
    assert switched["step"] == 4 and len(switched["samplers"]) == 2
    for name, tensor in one["model"].items():  # 1 process then 2 = 1 process throughout
        torch.testing.assert_close(switched["model"][name], tensor, atol=atol, rtol=RTOL)
    diffs["mosaic, 1 then 2 processes"] = _max_diff(one["model"], switched["model"])
    control = _max_diff(one["model"], half["model"])
    assert control > 100 * atol, f"a different batch moved the weights by only {control:.2e}"
    return diffs, control


def test_check_script_stops_clearly_without_cuda(tmp_path):
    """tools/gpu_check.sh with no visible GPU: exit status 2, a message saying why, nothing run."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHON": sys.executable}
    res = subprocess.run(["bash", str(ROOT / "tools" / "gpu_check.sh"), str(tmp_path / "out")],
                         env=env, capture_output=True, text=True, timeout=HANG_S)  # fmt: skip
    assert res.returncode == 2, res.stdout + res.stderr
    assert "no CUDA GPU is usable here, so nothing was run" in res.stderr
    assert "torch.cuda.is_available() = False" in res.stderr
    assert not (tmp_path / "out" / "summary.md").exists()


def _chapter_commands() -> list[list[str]]:
    """Every training command the chapters show: comment lines of chapters/sources/*.py that
    start with ``python -m mosaics_edu.train`` or ``torchrun``, joined over trailing backslashes,
    split as a shell would (comments dropped)."""
    commands = []
    for path in sorted((ROOT / "chapters" / "sources").glob("*.py")):
        text = "\n".join(line[1:].strip() for line in path.read_text().splitlines()
                         if line.startswith("#"))  # fmt: skip
        for line in text.replace("\\\n", " ").splitlines():
            if line.startswith(("python -m mosaics_edu.train", "torchrun ")):
                commands.append(shlex.split(line, comments=True))
    return commands


def test_the_chapters_training_commands_parse_and_keep_the_papers_global_batch():
    """The CLI takes every flag the chapters' recipes use; under torchrun, grad_accum divides
    among the processes, and the papers' preset keeps 512 sequences x 512 tokens per step."""
    from torch.distributed.run import get_args_parser

    commands = _chapter_commands()
    assert len(commands) >= 4 and any(c[0] == "torchrun" for c in commands), commands
    for tokens in commands:
        if tokens[0] == "torchrun":
            launch = get_args_parser().parse_args(tokens[1:])  # torchrun's own flags, checked
            assert launch.module and launch.training_script == "mosaics_edu.train", tokens
            world = int(str(launch.nnodes).split(":")[-1]) * int(launch.nproc_per_node)
            config, _ = cli.parse_config(launch.training_script_args)
        else:
            world = 1
            config, _ = cli.parse_config(tokens[3:])
        assert config.grad_accum % world == 0, f"{shlex.join(tokens)}: grad_accum % {world}"
        if config.preset == "paper-gpt2-small":
            assert config.batch_size * config.grad_accum == 512, shlex.join(tokens)


def test_a_training_command_that_keeps_failing_is_reported_with_every_attempt(tmp_path):
    """scaling._train, as chapter 10's two-process proof uses it: a failed run is tried again from
    an empty folder (``attempts``), and a failure that comes back is raised with each output."""
    from mosaics_edu.course import scaling

    out = tmp_path / "run"
    out.mkdir()
    (out / "stale.txt").write_text("from an earlier attempt")
    marker = tmp_path / "count"
    cmd = [sys.executable, "-c", textwrap.dedent(f"""
        import pathlib, sys
        p = pathlib.Path({str(marker)!r}); n = int(p.read_text()) + 1 if p.exists() else 1
        p.write_text(str(n)); print(f"attempt {{n}} failed"); sys.exit(3)""")]
    with pytest.raises(RuntimeError, match="failed 2 time") as err:
        scaling._train(cmd, out, attempts=2)
    assert "attempt 1 failed" in str(err.value) and "attempt 2 failed" in str(err.value)
    assert marker.read_text() == "2" and not (out / "stale.txt").exists()
    with pytest.raises(RuntimeError, match="failed 1 time"):
        scaling._train(cmd, out)
