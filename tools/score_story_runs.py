"""Score the tuned story runs of tools/sweep_stories.py for chapters 06 and 08.

    python tools/score_story_runs.py            # both files below
    python tools/score_story_runs.py --only induction

Reads ``runs/sweeps/stories`` (the sweep's runs: ``ckpt.pt`` and ``snapshots/step*.pt``) and the
chosen settings of ``mosaics_edu/assets/stories/tuning.json``; writes

- ``mosaics_edu/assets/stories/induction.json``: when do induction heads form? For the runs at
  each model's chosen setting (3 seeds, 1,500 steps) and the long GPT run (4x the steps, seed 0),
  at every saved step (every 100 steps, step 0 = untrained): Olsson et al.'s test
  (:mod:`mosaics_edu.course.formation`) on random tokens repeated once (drawn uniformly from the tokens
  that occur in the training text) and on held-out story text repeated once: loss and top-1
  accuracy on each copy, and per head the prefix-matching and copying scores; and per head the
  course's induction score on story text (chapter 08: prefix matching on held-out stories).
- ``mosaics_edu/assets/stories/seeds.json``: the chosen settings' 3 seeds of each model on the
  held-out story sets of chapter 06 (in distribution: test stories; out of distribution: held-out
  names, the question game, the walk): the mean loss over ranges of positions, the overall mean
  and the repeated-name probability, with the weights rounded to float16 as shipped (so seed 0
  is exactly the shipped model).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mosaics_edu.core.atomic import atomic_write_bytes  # noqa: E402
from mosaics_edu.course import formation, icl, inspection, tuning  # noqa: E402
from mosaics_edu.data import generate_stories, story_corpus  # noqa: E402
from mosaics_edu.data.stories import generate_ood_stories  # noqa: E402
from mosaics_edu.training.checkpoint import load_model  # noqa: E402

RUNS = ROOT / "runs" / "sweeps" / "stories"
ASSETS = ROOT / "mosaics_edu" / "assets" / "stories"
STEPS, LONG_STEPS = 1500, 6000
N_SEQ, HALF = 24, 128  # repeated sequences: 24 of 2 x 128 tokens (the model reads 255)
N_STORY_WINDOWS = 16  # held-out story windows for the course's induction score
# chapter 06's held-out sets and ranges of positions
N_WINDOWS = 96
EDGES = [0, 8, 32, 64, 128, 192, 256]
SETS = {
    "in distribution": lambda n: generate_stories(n, seed=0, split="test"),
    "held-out names": lambda n: generate_ood_stories(n, seed=0, mode="names"),
    "question game": lambda n: generate_ood_stories(n, seed=0, mode="game"),
    "walk": lambda n: generate_ood_stories(n, seed=0, mode="walk"),
}


def _name(model: str, lr: float, dropout: float, seed: int, steps: int) -> str:
    tail = "" if steps == STEPS else f"_steps{steps}"
    return f"{model}_lr{lr:g}_do{dropout:g}_s{seed}{tail}"


def _round(x, digits: int = 4):
    if isinstance(x, torch.Tensor | np.ndarray):
        x = x.tolist()
    if isinstance(x, list):
        return [_round(v, digits) for v in x]
    return round(float(x), digits)


def chosen_runs() -> list[dict]:
    """The runs to score: each model's chosen setting at every seed, and the long GPT run."""
    data = tuning.load(ASSETS / "tuning.json")
    out = []
    for model, c in data["chosen"].items():
        seeds = sorted({r["seed"] for r in data["runs"] if r["model"] == model
                        and (r["lr"], r["dropout"]) == (c["lr"], c["dropout"])})
        out += [{"model": model, **c, "seed": s, "steps": STEPS} for s in seeds]
    c = data["chosen"]["gpt"]
    out.append({"model": "gpt", **c, "seed": 0, "steps": LONG_STEPS})
    return out


def _test_inputs(tok) -> dict:
    train_ids = np.array(tok.encode(story_corpus()["train"]))
    seen = np.nonzero(np.bincount(train_ids, minlength=tok.vocab_size))[0]
    stories = generate_stories(60, seed=0, split="test")
    stream = [i for st in stories for i in tok.encode(st.text + "\n\n")]
    return {
        "random": formation.repeated_random_tokens(N_SEQ, HALF, seen.tolist(), seed=0),
        "text": formation.repeated_text(stream, N_SEQ, HALF, seed=0),
        "story_windows": icl.story_windows(tok, stories, 256, n_windows=N_STORY_WINDOWS)[:, :-1],
        "n_seen": len(seen),
        "pool": seen.tolist(),
    }


def score(model: torch.nn.Module, inputs: dict) -> dict:
    row = {}
    for test in ("random", "text"):
        s = formation.repeat_scores(model, inputs[test])
        row[test] = {k: _round(v) for k, v in s.items()}
    idx = inputs["story_windows"]
    offset = inspection.value_offset(model)
    maps = inspection.trace(model, idx).maps
    row["story_prefix"] = [_round(inspection.head_scores(m, idx, offset)["induction"]) for m in maps]
    return row


def induction() -> dict:
    runs = []
    inputs = None
    for spec in chosen_runs():
        d = RUNS / _name(**spec)
        model, tok, ckpt = load_model(d / "ckpt.pt")
        model.eval()
        inputs = inputs or _test_inputs(tok)
        vals = {h["step"]: h["val_loss"] for h in ckpt["history"] if h["kind"] == "eval"}
        curve = []
        for snap in sorted((d / "snapshots").glob("step*.pt")):
            step = int(snap.stem[4:])
            model.load_state_dict(torch.load(snap, weights_only=True))
            curve.append({"step": step, "val_logged": _round(vals[step]), **score(model, inputs)})
            print(f"{d.name} step {step}: second-copy accuracy random "
                  f"{curve[-1]['random']['acc_second']:.3f}, text {curve[-1]['text']['acc_second']:.3f}",
                  flush=True)
        runs.append({**spec, "curve": curve})
    return {
        "n_seq": N_SEQ, "half": HALF, "pool": inputs["pool"],
        "what": "Olsson et al. (2022)'s test over training (mosaics_edu.course.formation.repeat_scores) on "
        f"{N_SEQ} sequences of {HALF} tokens repeated once: 'random' draws them uniformly from the "
        f"{inputs['n_seen']} tokens that occur in the training text, 'text' takes stretches of held-out "
        "test stories; 'story_prefix' is the course's induction score (inspection.head_scores) on "
        f"{N_STORY_WINDOWS} windows of test stories. Per head: [block][head].",
        "commands": ["python tools/score_story_runs.py --only induction"],
        "runs": runs,
    }


def _fp16(model: torch.nn.Module) -> torch.nn.Module:
    """The model with its weights rounded to float16 and back, as shipped."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())
    return model


def seeds() -> dict:
    out = {"what": f"per seed at each model's chosen setting (weights rounded to float16, as shipped): "
           f"mean loss (nats per token) over the positions {EDGES} of {N_WINDOWS} windows per held-out "
           "set (icl.per_position_loss on icl.story_windows), its mean over all positions, and the "
           "mean probability of a name at its later mentions (icl.name_recall)",
           "edges": EDGES, "n_windows": N_WINDOWS,
           "commands": ["python tools/score_story_runs.py --only seeds"], "runs": []}
    held_out = {name: make(N_WINDOWS + 4) for name, make in SETS.items()}
    for spec in chosen_runs():
        if spec["steps"] != STEPS:
            continue
        model, tok, _ = load_model(RUNS / _name(**spec) / "ckpt.pt")
        model = _fp16(model.float()).eval()
        row = {**spec, "sets": {}}
        for name, stories in held_out.items():
            windows = icl.story_windows(tok, stories, 256, n_windows=N_WINDOWS)
            losses = icl.per_position_loss(model, windows)  # (N, 256)
            binned = [float(losses[:, a:b].mean()) for a, b in zip(EDGES[:-1], EDGES[1:], strict=True)]
            mentions = icl.name_recall(None, tok, stories, 256, losses=losses, n_windows=N_WINDOWS)
            later = [m.prob for m in mentions if not m.first]
            row["sets"][name] = {"binned": _round(binned), "mean": _round(losses.mean()),
                                 "repeat_prob": _round(np.mean(later)) if later else None}
        out["runs"].append(row)
        print(spec, {k: v["mean"] for k, v in row["sets"].items()}, flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", choices=("induction", "seeds"))
    args = p.parse_args()
    torch.set_num_threads(1)
    for what, make in (("induction", induction), ("seeds", seeds)):
        if args.only in (None, what):
            r0 = resource.getrusage(resource.RUSAGE_SELF)
            data = make()
            r1 = resource.getrusage(resource.RUSAGE_SELF)
            data["cpu_seconds"] = round(r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime, 1)
            out = ASSETS / f"{what}.json"
            atomic_write_bytes(out, (json.dumps(data, separators=(",", ":")) + "\n").encode())
            print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB, {data['cpu_seconds']:.0f} CPU-s)")


if __name__ == "__main__":
    main()
