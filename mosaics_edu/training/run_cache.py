"""Within one test session, a training run that was already done is loaded instead of repeated.

The test suite runs chapter 05 at least twice (in JupyterLab, then ``pytest --nbval`` of the saved
file; without a browser, with nbclient, its nbval check and its stub run), and each time the chapter
trains the same two models with the same config, seed and data: minutes of identical work. When the
environment variable ``MOSAICS_RUN_CACHE`` names a folder, :func:`mosaics_edu.train.train` stores
each finished run there (the trainer's whole state, as a checkpoint, and its summary) under a key
made of everything that decides the run: the training config, the model config, the data's tokens
and tokenizer, the torch version and the package's source. A later call with the same key restores
that state (weights, optimizer, history, random state after training) and shows what the run showed
(progress bar, evaluation lines, callback events) instead of training again.

The suite (``tests/conftest.py``) sets the variable to a folder it creates empty at the start of
each session and deletes at its end, so a loaded run was really trained earlier in the same
session. Without the variable (a learner's notebook, ``pytest --nbval``, the website build) nothing
is read or written. Runs that write a folder, resume, stop early or run under DDP are never cached.

Two other trainings that chapters repeat go through :func:`result`, the same cache for any
computation whose result is a value: chapter 02's three small induction models
(:func:`mosaics_edu.course.induction.train_lm`: the trained weights, the losses and the random
state after) and chapter 10's one-process-vs-two-processes training
(:func:`mosaics_edu.course.scaling.one_vs_two_processes`:
its summaries and weight differences, four Python processes started each time).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from ..core.atomic import atomic_path
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint

__all__ = ["ENV", "LOADED", "folder", "load", "result", "run_key", "store"]

ENV = "MOSAICS_RUN_CACHE"
LOADED = "loaded.log"  # in the folder: one line per run loaded instead of trained
PACKAGE = Path(__file__).resolve().parents[1]  # mosaics_edu/, whose every source file counts
T = TypeVar("T")
_source_digest: str | None = None


def folder() -> Path | None:
    """The cache folder the environment names, or None (caching off)."""
    value = os.environ.get(ENV, "").strip()
    return Path(value) if value else None


def _package_source() -> str:
    """SHA-256 over every Python file of the package (a code change makes every key new)."""
    global _source_digest
    if _source_digest is None:
        h = hashlib.sha256()
        for path in sorted(PACKAGE.rglob("*.py")):
            h.update(str(path.relative_to(PACKAGE)).encode())
            h.update(path.read_bytes())
        _source_digest = h.hexdigest()
    return _source_digest


def run_key(config: Any, model_config: Any, data: Any) -> str:
    """The key of one run: every input that decides its result (module docstring).

    config: a ``TrainConfig``; model_config: the model's config dataclass; data: a ``TokenDataset``.
    """
    described = {
        "train_config": dataclasses.asdict(config),
        "model_config": dataclasses.asdict(model_config) if dataclasses.is_dataclass(model_config) else
        repr(model_config),
        "tokenizer": data.tokenizer.to_dict(),
        "torch": torch.__version__,
        "package": _package_source(),
    }
    h = hashlib.sha256(json.dumps(described, sort_keys=True, default=repr).encode())
    for tokens in (data.train, data.valid):
        array = np.ascontiguousarray(tokens)
        h.update(f"{array.dtype}{array.shape}".encode())
        h.update(memoryview(array).cast("B"))
    return h.hexdigest()[:40]


def _path(where: Path, key: str) -> Path:
    return where / f"run-{key}.pt"


def load(where: Path, key: str) -> tuple[dict, dict] | None:
    """The stored (trainer state, summary) of run ``key``, or None if no run stored it."""
    path = _path(where, key)
    if not path.is_file():
        return None
    try:
        state = load_checkpoint(path)
    except CheckpointError:  # a damaged entry is not trusted: the caller trains instead
        return None
    if state.get("run_key") != key:
        return None
    with open(where / LOADED, "a") as log:  # one line per load: what the session saved
        log.write(f"{key} {state['model_kind']} {state['step']}\n")
    return state["trainer"], state["summary"]


def store(where: Path, key: str, trainer_state: dict, summary: dict) -> None:
    """Store a finished run under ``key`` (atomically: a reader sees the whole entry or none)."""
    required = {k: trainer_state[k] for k in ("model", "model_kind", "model_config", "train_config",
                                              "step")}
    save_checkpoint({**required, "trainer": trainer_state, "summary": summary, "run_key": key},
                    _path(where, key))


def result(name: str, inputs: Any, compute: Callable[[], T]) -> T:
    """``compute()``; within a test session (the variable set), the value an earlier call with the
    same ``name`` and ``inputs`` stored, under a key that also holds torch's version and the
    package's source. ``inputs``: everything ``compute`` depends on, as JSON-able values (others are
    keyed by their ``repr``). The value is stored with ``torch.save`` and read back with
    ``weights_only=True``: tensors, numbers, strings and lists, tuples and dicts of them."""
    where = folder()
    if where is None:
        return compute()
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"run_cache.result(name={name!r}): name a file prefix, letters, digits and _")
    described = {"name": name, "inputs": inputs, "torch": torch.__version__, "package": _package_source()}
    key = hashlib.sha256(json.dumps(described, sort_keys=True, default=repr).encode()).hexdigest()[:40]
    path = where / f"result-{name}-{key}.pt"
    if path.is_file():
        try:
            stored = torch.load(path, weights_only=True)
        except Exception:  # noqa: BLE001 - a damaged entry is not trusted: compute instead
            stored = None
        if isinstance(stored, dict) and stored.get("key") == key:
            with open(where / LOADED, "a") as log:
                log.write(f"{key} {name}\n")
            return stored["value"]
    value = compute()
    with atomic_path(path) as tmp:
        torch.save({"key": key, "value": value}, tmp)
    return value
