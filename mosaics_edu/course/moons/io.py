"""Three moons: saving and loading a run (weights + metrics), atomically and safely.

A run is two small files with the same stem: ``<stem>.pt`` (the state dict, loaded with
``weights_only=True``) and ``<stem>.json`` (config, seed, training history, metrics). Both are
written atomically (:mod:`mosaics_edu.core.atomic`), so an interrupted write never leaves a
half-written file under the final name.
"""

from __future__ import annotations

import io
import json
import os
import pickle
from importlib import resources
from pathlib import Path

import torch

from ...core.atomic import atomic_write_bytes
from .model import MoonMemory
from .train import MoonsConfig

__all__ = ["save_run", "load_run", "assets_dir"]


def assets_dir() -> Path:
    """Where the package ships its three-moons results (``mosaics_edu/assets``)."""
    return Path(str(resources.files("mosaics_edu") / "assets"))


def save_run(out_dir: str | os.PathLike, model: MoonMemory, config: MoonsConfig,
             record: dict) -> Path:
    """Write ``<out_dir>/<config.name>.pt`` and ``.json``; returns the json path."""
    if not isinstance(model, MoonMemory) or not isinstance(config, MoonsConfig):
        raise TypeError("save_run(out_dir, model, config, record): pass a MoonMemory and a "
                        "MoonsConfig.")
    out = Path(out_dir)
    buf = io.BytesIO()
    torch.save({k: v.detach().clone() for k, v in model.state_dict().items()}, buf)
    atomic_write_bytes(out / f"{config.name}.pt", buf.getvalue())
    full = {"config": config.to_dict(), "seed": config.seed, **record}
    text = json.dumps(full, separators=(",", ":"))
    atomic_write_bytes(out / f"{config.name}.json", text.encode())
    return out / f"{config.name}.json"


def load_run(stem: str, folder: str | os.PathLike | None = None) -> tuple[MoonMemory, dict]:
    """Load a saved run by stem (e.g. ``"moons_standard_3u_seed0"``) -> (model, record).

    ``folder`` defaults to the shipped assets. Missing or corrupt files raise a clear error.
    """
    folder = assets_dir() if folder is None else Path(folder)
    pt, js = folder / f"{stem}.pt", folder / f"{stem}.json"
    for p in (pt, js):
        if not p.is_file():
            raise FileNotFoundError(f"load_run: {p} does not exist; train it with "
                                    f"`python -m mosaics_edu.moons train --out {folder}` "
                                    "or pass the folder that holds it.")
    try:
        record = json.loads(js.read_text())
        saved = dict(record["config"])
        if "bandwidth" in saved:  # runs saved before β was called beta everywhere
            saved["beta"] = saved.pop("bandwidth")
        config = MoonsConfig(**{**saved, "snapshot_steps": tuple(saved["snapshot_steps"])})
        state = torch.load(pt, weights_only=True, map_location="cpu")
        model = MoonMemory(config.n_units, config.beta)
        model.load_state_dict(state)
    except (json.JSONDecodeError, KeyError, TypeError, RuntimeError, EOFError, ValueError,
            pickle.UnpicklingError) as err:
        raise ValueError(f"load_run: {stem} in {folder} is corrupt or from an incompatible "
                         f"version ({type(err).__name__}: {err}); retrain it.") from err
    model.eval()
    return model, record
