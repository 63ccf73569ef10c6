"""The training checkpoint format: one file that a run can be resumed or a model rebuilt from.

A checkpoint is a ``torch.save`` dictionary of tensors and primitive containers only, so it is
read back with ``torch.load(weights_only=True)`` (no code is unpickled). It holds

- ``model``, ``model_kind`` (a key of :data:`mosaics_edu.models.registry.MODEL_KINDS`), ``model_config``
  (the config's fields): enough to rebuild the model (:func:`load_model`); RegBench's runs write the
  same format with their own model names (``lstm`` among them) and their own resume fields;
- ``train_config``, ``step``, ``optimizer``, ``scaler``, ``samplers``, ``rng``, ``history``:
  enough for ``Trainer.resume`` to continue exactly;
- ``tokenizer`` (its ``to_dict()``), ``format`` / ``version``, and ``digest``: a SHA-256 over
  everything else, so a silently corrupted file is refused (torch's zip container does not
  notice a flipped bit inside tensor data).

Files are written atomically (:mod:`mosaics_edu.core.atomic`): a crash never leaves half a checkpoint.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..core.atomic import atomic_path
from ..data import Tokenizer, load_tokenizer
from ..models.registry import MODEL_KINDS

__all__ = [
    "CHECKPOINT_FORMAT",
    "CheckpointError",
    "load_checkpoint",
    "load_model",
    "save_checkpoint",
]

CHECKPOINT_FORMAT = "mosaics_edu.checkpoint"
_REQUIRED_KEYS = ("model", "model_kind", "model_config", "train_config", "step")


class CheckpointError(ValueError):
    """A checkpoint file is missing, truncated, corrupt or not one of ours."""


def _digest(obj: Any, h: Any = None) -> str:
    """SHA-256 over a nested structure of tensors and primitives (detects silent corruption,
    which torch's zip container does not)."""
    top = h is None
    h = h or hashlib.sha256()
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(obj, dict):
        h.update(b"D")
        for key in sorted(obj, key=str):
            h.update(repr(key).encode())
            _digest(obj[key], h)
    elif isinstance(obj, (list, tuple)):
        h.update(f"L{len(obj)}".encode())
        for item in obj:
            _digest(item, h)
    else:
        h.update(repr(obj).encode())
    return h.hexdigest() if top else ""


def save_checkpoint(state: dict, path: str | os.PathLike) -> None:
    """Write ``state`` (tensors and primitive containers only) with its format tag and digest,
    atomically: a crash leaves the previous file."""
    payload = {**state, "format": CHECKPOINT_FORMAT, "version": 1}
    payload.pop("digest", None)
    payload["digest"] = _digest(payload)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Read and verify a checkpoint with ``torch.load(weights_only=True)``.

    Raises ``CheckpointError`` with what to do if the file is missing, truncated, corrupt
    (its digest does not match) or not a mosaics_edu checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"no checkpoint at {path}: train without --resume first, or point --resume at a "
            "checkpoint file or a run folder that holds ckpt.pt"
        )
    advice = (
        "delete it and resume from an earlier checkpoint, or start afresh without --resume"
    )
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # truncated zip, garbage bytes, unpickling refused ...
        raise CheckpointError(
            f"checkpoint {path} cannot be read ({type(err).__name__}: {str(err)[:160]}); it is "
            f"corrupt or truncated: {advice}"
        ) from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a mosaics_edu training checkpoint: {advice}")
    missing = [k for k in _REQUIRED_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {missing}: {advice}")
    stored = state.pop("digest", None)
    if stored != _digest(state):
        raise CheckpointError(
            f"checkpoint {path} is corrupt (its content digest does not match): {advice}"
        )
    return state


def load_model(
    path: str | os.PathLike, device: str | torch.device = "cpu"
) -> tuple[nn.Module, Tokenizer | None, dict]:
    """Rebuild the trained model (eval mode) and its tokenizer from a checkpoint file."""
    ckpt = load_checkpoint(path)
    kind = ckpt["model_kind"]
    if kind not in MODEL_KINDS:
        raise CheckpointError(
            f"checkpoint {path} holds a {kind!r} model, which this package does not know: "
            f"it knows {sorted(MODEL_KINDS)} (register the model in mosaics_edu.models.registry.MODEL_KINDS)"
        )
    model_cls, config_cls = MODEL_KINDS[kind]
    model = model_cls(config_cls(**ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    model.to(device).eval()
    tok = load_tokenizer(ckpt["tokenizer"]) if ckpt.get("tokenizer") else None
    return model, tok, ckpt
