"""Record, or compare against a recording, every number the four training loops produce.

    python tools/step_bit_identity.py record DIR     # on the commit before a change to the loops
    python tools/step_bit_identity.py compare DIR    # after it: exit status 1 unless bit-identical

The loops: ``basic_train_step`` (3 steps, clipping and not), three-moons' ``train_moons`` (40
steps), RegBench's ``train_run`` (a short run with periodic validation, the mosaic and the GPT)
and the LM ``Trainer`` (20 steps of a small mosaic, GPT and v2, one of them with gradient
accumulation and no clipping). Every loss is compared with ``==`` and every tensor with
``torch.equal``. One thread, so both runs add in the same order; compare runs made on the same
machine with the same torch.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import torch


def _basic_train_step() -> dict:
    from mosaics_edu import models, training

    out = {}
    for clip in (0.0, 0.05):
        torch.manual_seed(0)
        model = models.MemoryMosaicLM(models.MosaicConfig(vocab_size=24, block_size=12, n_layer=1,
                                                          n_head=2, n_embd=16))  # fmt: skip
        opt = torch.optim.AdamW(training.param_groups(model, 0.1), lr=1e-2)
        gen = torch.Generator().manual_seed(1)
        losses = []
        for _ in range(3):
            x = torch.randint(0, 24, (3, 12), generator=gen)
            y = torch.randint(0, 24, (3, 12), generator=gen)
            losses.append(training.basic_train_step(model, opt, x, y, clip))
        out[f"clip{clip}"] = {"losses": losses, "state": model.state_dict(),
                              "opt": opt.state_dict()["state"]}  # fmt: skip
    return out


def _moons() -> dict:
    from mosaics_edu.course.moons.train import MoonsConfig, train_moons

    model, history = train_moons(MoonsConfig(n_units=3, seed=0, steps=40), progress=False)
    return {"losses": history["loss"], "snapshots": history["snapshots"], "state": model.state_dict()}


def _regbench() -> dict:
    from mosaics_edu.course.regbench.train import RunConfig, train_run

    out = {}
    for model in ("mosaic", "gpt"):
        config = RunConfig(model=model, n_automata=20, seed=1, steps=30, batch_size=8, warmup=5,
                           checkpoint_every=10, n_eval=10, eval_every=10, dropout=0.1)  # fmt: skip
        with tempfile.TemporaryDirectory() as tmp:
            result = train_run(config, out_dir=tmp, progress=False)
            for key in ("train_seconds", "eval_seconds", "validation_seconds"):
                result.pop(key, None)
            weights = torch.load(Path(tmp) / "model_fp16.pt", weights_only=True)
            best = torch.load(Path(tmp) / "model_best_fp16.pt", weights_only=True)
            ckpt = torch.load(Path(tmp) / "checkpoint.pt", weights_only=True)
        out[model] = {"result": json.dumps(result, sort_keys=True), "weights": weights, "best": best,
                      "ckpt_model": ckpt["model"], "ckpt_opt": ckpt["optimizer"]["state"]}  # fmt: skip
    return out


def _trainer() -> dict:
    from mosaics_edu import training
    from mosaics_edu.data import prepare_stories

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = prepare_stories(Path(tmp) / "data", tokenizer="char", n_train=60, n_valid=10, seed=0)
        runs = {
            "mosaic": dict(model="mosaic", model_overrides={"n_layer": 1, "n_embd": 32, "n_head": 2,
                                                            "block_size": 32, "dropout": 0.1}),
            "gpt-accum-noclip": dict(model="gpt", grad_accum=2, grad_clip=0.0,
                                     model_overrides={"n_layer": 1, "n_embd": 32, "n_head": 2,
                                                      "block_size": 32, "dropout": 0.1}),
            "mosaic-v2": dict(model="mosaic-v2", model_overrides={"n_layer": 1, "n_embd": 32,
                                                                  "n_head": 2, "block_size": 32}),
        }  # fmt: skip
        for name, kw in runs.items():
            config = training.TrainConfig.from_preset(
                "cpu-tiny", batch_size=4, max_steps=20, warmup_steps=3, eval_interval=10,
                eval_batches=2, log_interval=5, threads=1, out_dir=None, **kw,
            )  # fmt: skip
            result = training.train(config, data=data, progress=False)
            history = [{k: v for k, v in h.items() if k not in ("elapsed_s", "tokens_per_s", "mfu")}
                       for h in result.history]  # fmt: skip
            out[name] = {"history": history, "state": result.model.state_dict()}
    return out


def record_all() -> dict:
    torch.set_num_threads(1)
    return {"basic_train_step": _basic_train_step(), "moons": _moons(), "regbench": _regbench(),
            "trainer": _trainer()}  # fmt: skip


def _compare(a, b, where: str, problems: list[str], counts: dict) -> None:
    if isinstance(a, torch.Tensor):
        counts["tensors"] += 1
        if not (isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)):
            problems.append(f"{where}: tensors differ")
    elif isinstance(a, dict):
        if not isinstance(b, dict) or set(a) != set(b):
            problems.append(f"{where}: keys differ")
            return
        for k in a:
            _compare(a[k], b[k], f"{where}.{k}", problems, counts)
    elif isinstance(a, list | tuple):
        if not isinstance(b, list | tuple) or len(a) != len(b):
            problems.append(f"{where}: lengths differ")
            return
        for i, (u, v) in enumerate(zip(a, b, strict=True)):
            _compare(u, v, f"{where}[{i}]", problems, counts)
    else:
        counts["floats" if isinstance(a, float) else "other"] += 1
        same = a == b or (isinstance(a, float) and a != a and b != b)  # NaN == NaN here
        if not same:
            problems.append(f"{where}: {a!r} != {b!r}")


def main() -> int:
    mode, folder = sys.argv[1], Path(sys.argv[2])
    now = record_all()
    if mode == "record":
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(now, folder / "step_bit_identity.pt")
        print(f"recorded to {folder / 'step_bit_identity.pt'}")
        return 0
    before = torch.load(folder / "step_bit_identity.pt", weights_only=False)
    problems: list[str] = []
    counts = {"tensors": 0, "floats": 0, "other": 0}
    for part in before:
        n0 = len(problems)
        c0 = dict(counts)
        _compare(before[part], now[part], part, problems, counts)
        status = "identical" if len(problems) == n0 else f"{len(problems) - n0} DIFFERENCES"
        print(f"{part}: {status} ({counts['tensors'] - c0['tensors']} tensors, "
              f"{counts['floats'] - c0['floats']} floats, {counts['other'] - c0['other']} other values)")
    for p in problems[:30]:
        print("  ", p)
    print("BIT-IDENTICAL" if not problems else f"{len(problems)} differences")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
