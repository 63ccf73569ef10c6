"""Ship the two story models trained by tools/train_story_models.sh into mosaics_edu/assets/stories/.

    python tools/ship_story_models.py [RUN_DIR]      # RUN_DIR defaults to runs/stories

For each of ``mosaic`` and ``gpt`` it writes

- ``<kind>.pt``: a checkpoint (mosaics_edu.checkpoint format) with the weights in float16 and
  what rebuilds the model (kind, config, tokenizer, training config, step); no optimizer state,
  so it is small and cannot be resumed (retrain with the script instead);
- ``<kind>.json``: the command, the training and model configs, the parameter count, the logged
  curve (``history``: every evaluation and training log line), the final logged losses, the
  validation loss of the shipped float16 weights measured exactly as the trainer measures it
  (``val_loss_shipped``: same 10 batches of 16 windows, generator seed 1234), and the run's CPU
  and wall time from ``/usr/bin/time``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from mosaics_edu.checkpoint import load_checkpoint, load_model, save_checkpoint
from mosaics_edu.data import get_batch, story_corpus
from mosaics_edu.models import count_parameters

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


def ship(run_dir: Path, kind: str) -> dict:
    ckpt = load_checkpoint(run_dir / kind / "ckpt.pt")
    tc = ckpt["train_config"]
    if ckpt["step"] != tc["max_steps"]:
        raise SystemExit(f"{run_dir / kind} stopped at step {ckpt['step']} of {tc['max_steps']}")
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
    user, system, wall = (float(v) for v in (run_dir / kind / "cpu_time.txt").read_text().split()[-3:])
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
        "cpu_time_s": round(user + system, 1),
        "wall_time_s": round(wall, 1),
        "threads": tc["threads"],
        "note": "CPU and wall time of one training run with one thread on a shared 2-core machine "
        "(load 2-14 while they ran: the wall time is inflated, the CPU time is the run's own)",
        "history": [{k: v for k, v in h.items() if v is not None} for h in history],
    }
    (ASSETS / f"{kind}.json").write_text(json.dumps(info, indent=1) + "\n")
    return info


def main() -> None:
    run_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "runs" / "stories"
    torch.set_num_threads(1)
    for kind in ("mosaic", "gpt"):
        info = ship(run_dir, kind)
        print(
            f"{kind}: {info['n_params']:,} parameters, step {info['step']}, val loss logged "
            f"{info['val_loss_logged']:.4f}, shipped fp16 {info['val_loss_shipped']:.4f}, "
            f"CPU {info['cpu_time_s']:.0f} s, wall {info['wall_time_s']:.0f} s"
        )


if __name__ == "__main__":
    main()
