"""Fingerprints of what the models compute, to show that a refactoring changed no number.

    python tools/model_fingerprint.py > before.txt     # on the commit before the change
    python tools/model_fingerprint.py > after.txt      # on the commit after it
    diff before.txt after.txt                          # no output: bit-identical

One line per quantity, a short sha256 of its bytes: the logits, the cached and uncached greedy
generations and the state dict of seeded fresh v1, v2 and GPT models (``cpu-tiny``), the logits
of chapter 08's traced forward (v1 and GPT), and the logits of the shipped story and RegBench
models on fixed token ids. One thread, so the two runs add in the same order; compare runs made
on the same machine with the same torch.
"""

from __future__ import annotations

import hashlib

import torch

from mosaics_edu import models
from mosaics_edu.course import icl, inspection
from mosaics_edu.course.regbench import load_shipped_model
from mosaics_edu.models.v2 import MemoryMosaicV2LM, MosaicV2Config


def digest(t: torch.Tensor) -> str:
    """A short sha256 of a tensor's bytes."""
    return hashlib.sha256(t.detach().contiguous().cpu().numpy().tobytes()).hexdigest()[:16]


def fingerprints() -> dict[str, str]:
    """Every fingerprint, by name (see the module docstring)."""
    torch.set_num_threads(1)
    out: dict[str, str] = {}
    g = torch.Generator().manual_seed(0)
    idx = torch.randint(0, 256, (2, 64), generator=g)  # (B, T) token ids
    built = [
        ("mosaic", models.MemoryMosaicLM, models.MosaicConfig.preset("cpu-tiny")),
        ("gpt", models.GPT, models.GPTConfig.preset("cpu-tiny")),
        ("v2", MemoryMosaicV2LM, MosaicV2Config.preset("cpu-tiny")),
    ]
    for name, cls, config in built:
        torch.manual_seed(0)
        model = cls(config).eval()
        out[name] = digest(model(idx)[0])
        out[f"{name}_generate"] = digest(model.generate(idx[:, :8], 8, temperature=0))
        out[f"{name}_generate_nocache"] = digest(
            model.generate(idx[:, :8], 8, temperature=0, use_cache=False))
        out[f"{name}_state"] = hashlib.sha256(
            b"".join(v.numpy().tobytes() for v in model.state_dict().values())).hexdigest()[:16]
        if name != "v2":  # chapter 08 inspects v1 and the GPT
            out[f"{name}_trace"] = digest(inspection.trace(model, idx[:, :32]).logits)
    for kind in icl.STORY_MODEL_KINDS:
        model, tokenizer = icl.load_story_model(kind)
        ids = torch.randint(0, tokenizer.vocab_size, (2, min(64, model.config.block_size)), generator=g)
        out[f"story_{kind}"] = digest(model(ids)[0])
    for kind in ("mosaic", "gpt"):
        model = load_shipped_model(kind)
        ids = torch.randint(0, model.config.vocab_size, (2, 32), generator=g)
        out[f"regbench_{kind}"] = digest(model(ids)[0])
    return out


if __name__ == "__main__":
    for key, value in fingerprints().items():
        print(key, value)
