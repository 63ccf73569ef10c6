"""Token datasets on disk and random training windows, as in the papers' code.

On disk a prepared dataset is a folder:

    train.bin   the training stream: every story's token ids, concatenated, uint16
    valid.bin   the validation stream, same format
    meta.json   {"format": "mosaics_edu.tokens", "version": 1, "n_train": ..., "n_valid": ...,
                 "vocab_size": ..., "tokenizer": <tokenizer.to_dict()>, "source": {...}}

``meta.json`` is written last, so a folder without it is an interrupted preparation and is
rebuilt. Training reads the ``.bin`` files through ``numpy.memmap``: a 1 GB stream costs no RAM.

A batch is ``batch_size`` windows of ``block_size + 1`` consecutive tokens starting at uniformly
random offsets (drawn with replacement, so windows cross story boundaries, exactly like the
papers' ``RandomSampler``); inputs are the first ``block_size`` tokens, targets the last
``block_size``. The offsets come from a ``torch.Generator`` whose state is saved in checkpoints,
so a resumed run sees the same batches as an uninterrupted one.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.atomic import atomic_path, atomic_write_bytes
from ..core.validation import check_positive_int
from .stories import story_corpus
from .tokenizers import TOKENIZER_KINDS, Tokenizer, load_tokenizer, make_tokenizer

__all__ = [
    "TokenDataset",
    "RandomWindows",
    "default_data_dir",
    "get_batch",
    "load_token_dataset",
    "prepare_stories",
    "save_token_dataset",
]

TOKENS_FORMAT = "mosaics_edu.tokens"
MAX_UINT16_VOCAB = 65_536


def default_data_dir() -> Path:
    """Where prepared data lives: ``$MOSAICS_EDU_DATA`` or ``~/.cache/mosaics_edu``."""
    env = os.environ.get("MOSAICS_EDU_DATA")
    return Path(env) if env else Path.home() / ".cache" / "mosaics_edu"


def _write_bin(path: Path, ids: Any, vocab_size: int) -> int:
    """Write token ids (one array/list, or an iterable of 1-D chunks) as uint16, atomically."""
    chunks = [ids] if isinstance(ids, (np.ndarray, list, tuple)) else ids
    n = 0
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        for chunk in chunks:
            arr = np.asarray(chunk, dtype=np.int64)
            if arr.ndim != 1:
                raise ValueError(f"token ids must be 1-D, got shape {arr.shape}")
            if arr.size and (arr.min() < 0 or arr.max() >= vocab_size):
                raise ValueError(
                    f"token ids must lie in [0, {vocab_size}); got [{arr.min()}, {arr.max()}]"
                )
            f.write(arr.astype(np.uint16).tobytes())
            n += int(arr.size)
    return n


@dataclass
class TokenDataset:
    """A prepared dataset: two read-only uint16 token streams and the tokenizer that made them."""

    train: np.ndarray  # (n_train,) uint16 memmap
    valid: np.ndarray  # (n_valid,) uint16 memmap
    tokenizer: Tokenizer
    meta: dict
    path: Path | None = None

    @property
    def vocab_size(self) -> int:
        return int(self.meta["vocab_size"])


def save_token_dataset(
    out_dir: str | os.PathLike,
    train_ids: Any,
    valid_ids: Any,
    tokenizer: Tokenizer,
    source: dict | None = None,
) -> TokenDataset:
    """Write ``train.bin``, ``valid.bin``, then ``meta.json`` into ``out_dir``; return it loaded.

    ``train_ids`` / ``valid_ids``: a 1-D array or list of ids, or an iterable of 1-D chunks
    (streamed to disk, for corpora that do not fit in memory).
    """
    if not isinstance(tokenizer, Tokenizer):
        raise TypeError(f"tokenizer must be a Tokenizer, got {type(tokenizer).__name__}")
    if tokenizer.vocab_size > MAX_UINT16_VOCAB:
        raise ValueError(
            f"vocab_size {tokenizer.vocab_size} does not fit uint16 token files (max 65536)"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta_path = out / "meta.json"
    if meta_path.exists():
        meta_path.unlink()  # the folder is incomplete until the new meta.json lands
    n_train = _write_bin(out / "train.bin", train_ids, tokenizer.vocab_size)
    n_valid = _write_bin(out / "valid.bin", valid_ids, tokenizer.vocab_size)
    meta = {
        "format": TOKENS_FORMAT,
        "version": 1,
        "n_train": n_train,
        "n_valid": n_valid,
        "vocab_size": tokenizer.vocab_size,
        "tokenizer": tokenizer.to_dict(),
        "source": source or {},
    }
    atomic_write_bytes(meta_path, json.dumps(meta, indent=1).encode("utf-8"))
    return load_token_dataset(out)


def load_if_prepared_from(out_dir: Path, source: dict) -> TokenDataset | None:
    """The dataset in ``out_dir`` if one was prepared there from ``source`` (the same settings),
    else None: a missing, incomplete or different dataset is prepared afresh by the caller."""
    if not (out_dir / "meta.json").is_file():
        return None
    try:
        ds = load_token_dataset(out_dir)
    except ValueError:  # incomplete or corrupt: prepare again
        return None
    return ds if ds.meta.get("source") == source else None


def load_token_dataset(path: str | os.PathLike) -> TokenDataset:
    """Open a folder written by ``save_token_dataset`` (memmaps; checks sizes against meta)."""
    path = Path(path)
    meta_path = path / "meta.json"
    if not meta_path.is_file():
        raise ValueError(
            f"{path} holds no prepared token dataset (no meta.json): prepare it with "
            "prepare_stories(...) or prepare_babistories(...)"
        )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{meta_path} is corrupt ({err}): delete {path} and prepare again") from None
    if meta.get("format") != TOKENS_FORMAT:
        raise ValueError(f"{meta_path} is not a {TOKENS_FORMAT} file: delete it and prepare again")
    arrays = {}
    for split in ("train", "valid"):
        bin_path = path / f"{split}.bin"
        n = int(meta[f"n_{split}"])
        size = bin_path.stat().st_size if bin_path.is_file() else -1
        if size != 2 * n:
            raise ValueError(
                f"{bin_path} has {size} bytes, meta.json expects {2 * n} (uint16 x {n}): "
                f"the dataset is incomplete or corrupt; delete {path} and prepare again"
            )
        arrays[split] = np.memmap(bin_path, dtype=np.uint16, mode="r", shape=(n,))
    return TokenDataset(
        train=arrays["train"],
        valid=arrays["valid"],
        tokenizer=load_tokenizer(meta["tokenizer"]),
        meta=meta,
        path=path,
    )


def prepare_stories(
    out_dir: str | os.PathLike | None = None,
    tokenizer: str = "char",
    n_train: int = 4000,
    n_valid: int = 400,
    seed: int = 0,
    bpe_vocab_size: int = 1024,
) -> TokenDataset:
    """Generate the package's story corpus, tokenize it and save it (cached by its settings).

    The tokenizer (``char``, ``bpe`` or ``gpt2``) is trained on the training split only
    (``bpe``: on its first 2 MB).
    A second call with the same settings just reopens the folder.
    """
    if tokenizer not in TOKENIZER_KINDS:
        raise ValueError(f"tokenizer must be one of {TOKENIZER_KINDS}, got {tokenizer!r}")
    source = {
        "name": "stories",
        "n_train": n_train,
        "n_valid": n_valid,
        "seed": seed,
        "tokenizer": tokenizer,
        "bpe_vocab_size": bpe_vocab_size if tokenizer == "bpe" else None,
    }
    if out_dir is None:
        tag = f"{tokenizer}{bpe_vocab_size if tokenizer == 'bpe' else ''}"
        out_dir = default_data_dir() / f"stories-{n_train}-{n_valid}-s{seed}-{tag}"
    out = Path(out_dir)
    ds = load_if_prepared_from(out, source)
    if ds is not None:
        return ds
    texts = story_corpus(n_train=n_train, n_valid=n_valid, seed=seed)
    # BPE learns its merges from the first ~2 MB (a bigger sample changes little, costs memory)
    sample = texts["train"] if tokenizer != "bpe" else texts["train"][:2_000_000]
    tok = make_tokenizer(tokenizer, sample, vocab_size=bpe_vocab_size)
    return save_token_dataset(
        out, tok.encode(texts["train"]), tok.encode(texts["valid"]), tok, source=source
    )


def get_batch(
    tokens: np.ndarray,
    batch_size: int,
    block_size: int,
    generator: torch.Generator,
    device: str | torch.device = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_size`` random windows: inputs ``(B, T)`` and next-token targets ``(B, T)``, int64."""
    check_positive_int("batch_size", batch_size)
    check_positive_int("block_size", block_size)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    n = len(tokens)
    if n < block_size + 1:
        raise ValueError(
            f"the token stream has {n} tokens, fewer than block_size + 1 = {block_size + 1}: "
            "use a smaller block_size or more data"
        )
    starts = torch.randint(0, n - block_size, (batch_size,), generator=generator)  # (B,)
    windows = np.stack([np.asarray(tokens[s : s + block_size + 1]) for s in starts.tolist()])
    w = torch.from_numpy(windows.astype(np.int64))  # (B, T+1)
    x, y = w[:, :-1], w[:, 1:]  # (B, T), (B, T)
    if torch.device(device).type == "cuda":
        return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(
            device, non_blocking=True
        )
    return x.contiguous().to(device), y.contiguous().to(device)


class RandomWindows:
    """An endless, seeded stream of random-window batches whose position can be saved.

    ``state_dict()`` holds only a uint8 tensor and ints, so it fits in a
    ``torch.load(weights_only=True)`` checkpoint.
    """

    def __init__(
        self,
        tokens: np.ndarray,
        batch_size: int,
        block_size: int,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ):
        if len(tokens) < block_size + 1:
            raise ValueError(
                f"tokens has {len(tokens)} entries, fewer than block_size + 1 = {block_size + 1}"
            )
        self.tokens = tokens
        self.batch_size = batch_size
        self.block_size = block_size
        self.device = device
        self.generator = torch.Generator().manual_seed(int(seed))
        self.batches_drawn = 0

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        self.batches_drawn += 1
        return get_batch(
            self.tokens, self.batch_size, self.block_size, self.generator, self.device
        )

    def skip(self, n: int = 1) -> None:
        """Advance the stream past ``n`` batches without building them: the generator makes
        exactly the draws of ``n`` ``next_batch`` calls (the windows' start positions), so the
        next batch is the one ``n + 1`` calls would have returned. Under DDP every process holds
        the same stream and skips the micro-batches that belong to the other processes."""
        if not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be a non-negative int, got {n!r}")
        for _ in range(n):  # the same draw as get_batch's
            torch.randint(0, len(self.tokens) - self.block_size, (self.batch_size,),
                          generator=self.generator)  # fmt: skip
        self.batches_drawn += n

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "batches_drawn": self.batches_drawn}

    def load_state_dict(self, state: dict) -> None:
        if not isinstance(state, dict) or "generator" not in state:
            raise ValueError("state must come from RandomWindows.state_dict()")
        self.generator.set_state(state["generator"])
        self.batches_drawn = int(state.get("batches_drawn", 0))
