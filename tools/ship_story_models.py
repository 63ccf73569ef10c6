"""Ship the two story models into mosaics_edu/assets/stories/.

    python tools/ship_story_models.py                # the tuned sweep's seed-0 runs (below)
    python tools/ship_story_models.py RUN_DIR        # RUN_DIR/mosaic, RUN_DIR/gpt of
                                                     # tools/train_story_models.sh

By default it ships the runs of ``tools/sweep_stories.py --comparison stories`` at each model's
chosen setting (``mosaics_edu/assets/stories/tuning.json``) with seed 0: the same runs
``tools/train_story_models.sh`` makes (same flags; the slow test checks it), trained once.

For each of ``mosaic`` and ``gpt`` it writes

- ``<kind>.pt``: a checkpoint (mosaics_edu.training.checkpoint format) with the weights in float16 and
  what rebuilds the model (kind, config, tokenizer, training config, step); no optimizer state,
  so it is small and cannot be resumed (retrain with the script instead);
- ``<kind>.json``: the command, the training and model configs, the parameter count, the logged
  curve (``history``: every evaluation and training log line), the final logged losses, the
  validation loss of the shipped float16 weights measured exactly as the trainer measures it
  (``val_loss_shipped``: same 10 batches of 16 windows, generator seed 1234), and the run's CPU
  time (``/usr/bin/time`` of the script, or the sweep's ``progress.json``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from mosaics_edu.course import tuning
from mosaics_edu.data import get_batch, story_corpus
from mosaics_edu.models import count_parameters
from mosaics_edu.training.checkpoint import load_checkpoint, load_model, save_checkpoint

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "mosaics_edu" / "assets" / "stories"
COMMAND = "bash tools/train_story_models.sh"


def shipped_val_loss(model: torch.nn.Module, tokenizer, batch_size: int, eval_batches: int) -> float:
    """The trainer's validation loss (Trainer.evaluate) for ``model`` on the story corpus."""
    valid = torch.tensor(tokenizer.encode(story_corpus()["valid"]), dtype=torch.int64)
    g = torch.Generator().manual_seed(1234)
    block = model.config.block_size
    total = 0.0
    with torch.no_grad():
        for _ in range(eval_batches):
            x, y = get_batch(valid.numpy(), batch_size, block, g)
            total += float(model(x, y)[1])
    return float(torch.tensor(total / eval_batches))  # float32 rounding, as logged


def sweep_run(kind: str) -> Path:
    """The tuned sweep's run of ``kind`` at its chosen setting, seed 0."""
    chosen = tuning.load(ASSETS / "tuning.json")["chosen"][kind]
    return ROOT / "runs" / "sweeps" / "stories" / f"{kind}_lr{chosen['lr']:g}_do{chosen['dropout']:g}_s0"


def ship(run: Path, kind: str) -> dict:
    ckpt = load_checkpoint(run / "ckpt.pt")
    tc = ckpt["train_config"]
    if ckpt["step"] != tc["max_steps"]:
        raise SystemExit(f"{run} stopped at step {ckpt['step']} of {tc['max_steps']}")
    ASSETS.mkdir(parents=True, exist_ok=True)
    out = ASSETS / f"{kind}.pt"
    state = {k: v.half() if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    save_checkpoint(
        {
            "model": state,
            "model_kind": ckpt["model_kind"],
            "model_config": ckpt["model_config"],
            "train_config": tc,
            "step": ckpt["step"],
            "tokenizer": ckpt["tokenizer"],
        },
        out,
    )
    model, tok, _ = load_model(out)
    model = model.float().eval()
    if (run / "cpu_time.txt").exists():  # tools/train_story_models.sh: /usr/bin/time's user, sys, wall
        user, system, _wall = (float(v) for v in (run / "cpu_time.txt").read_text().split()[-3:])
        cpu = round(user + system, 1)
    else:  # tools/sweep_stories.py: the run's CPU seconds, summed over its processes
        cpu = round(json.loads((run / "progress.json").read_text())["cpu_s"], 1)
    history = ckpt["history"]
    evals = [h for h in history if h["kind"] == "eval"]
    info = {
        "kind": kind,
        "command": COMMAND,
        "train_config": tc,
        "model_config": ckpt["model_config"],
        "n_params": count_parameters(model),
        "step": ckpt["step"],
        "train_loss_logged": evals[-1]["train_loss"],
        "val_loss_logged": evals[-1]["val_loss"],
        "val_loss_shipped": shipped_val_loss(model, tok, tc["batch_size"], tc["eval_batches"]),
        "cpu_time_s": cpu,
        "threads": tc["threads"],
        "note": "CPU time of one training run with one thread on a shared 2-core machine (the "
        "run's own user + system seconds; its wall time depends on the load and is not recorded)",
        "history": [{k: v for k, v in h.items() if v is not None} for h in history],
    }
    (ASSETS / f"{kind}.json").write_text(json.dumps(info, indent=1) + "\n")
    return info


def main() -> None:
    torch.set_num_threads(1)
    for kind in ("mosaic", "gpt"):
        run = Path(sys.argv[1]) / kind if len(sys.argv) > 1 else sweep_run(kind)
        info = ship(run, kind)
        print(
            f"{kind}: {info['n_params']:,} parameters, step {info['step']}, val loss logged "
            f"{info['val_loss_logged']:.4f}, shipped fp16 {info['val_loss_shipped']:.4f}, "
            f"CPU {info['cpu_time_s']:.0f} s ({run})"
        )


if __name__ == "__main__":
    main()
