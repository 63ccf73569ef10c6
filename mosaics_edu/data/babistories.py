"""BabiStories, the papers' corpus, for GPU users: download, verify, cache, tokenize.

Source. BabiStories (Zhang et al., "Memory Mosaics", ICLR 2025, Section 7 / Table 1: 2.2 M
stories, 474,704,907 GPT-2 tokens of training text, 4,749,107 of validation text) is
distributed inside the papers' code repository, ``BABISTORIES_REPO``, folder
``BabiStories/data/``, as a 7z archive split into five parts ``babistories-dataset.7z.001 …
.005``. The archive holds ``traindataset.txt`` and ``valdataset.txt``: one story per line, each
line a JSON-encoded string.

Pipeline (``prepare_babistories``), every step cached under ``out_dir``:

1. download each part (``fetch``: ``urllib`` by default; injectable so tests never touch the
   network) into ``out_dir/raw/``; verify its SHA-256 against ``source.sha256``. A part whose
   checksum is not pinned yet is hashed on first download and the hash recorded in
   ``raw/checksums.json`` — later runs refuse a cached file that no longer matches it.
2. join the parts and extract the archive (``py7zr`` if installed, else the ``7z`` program);
3. tokenize every story, append the end-of-text token (GPT-2's 50256; for the char/BPE
   tokenizers the package's ``STORY_SEPARATOR``), and write ``train.bin`` / ``valid.bin`` /
   ``meta.json`` (uint16 token memmaps, see ``mosaics_edu.data.batches``).

Offline, step 1 fails at once with ``DatasetUnavailableError`` saying what to do: connect, or
place the files by hand in ``raw/``, or train on the generated stories (``--data stories``).

``write_babistories_like_files`` writes a small corpus in the same line format from the
package's own story generator; the tests feed it through the same pipeline with file:// URLs.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.atomic import atomic_path, atomic_write_bytes
from .batches import TokenDataset, default_data_dir, load_if_prepared_from, save_token_dataset
from .stories import STORY_SEPARATOR, generate_stories
from .tokenizers import TOKENIZER_KINDS, CharTokenizer, Tokenizer, make_tokenizer

__all__ = [
    "BABISTORIES_REPO",
    "BABISTORIES_BASE_URL",
    "BABISTORIES_PARTS",
    "BABISTORIES_SHA256",
    "BabiStoriesSource",
    "ChecksumError",
    "DatasetUnavailableError",
    "download_file",
    "prepare_babistories",
    "read_story_lines",
    "sha256_file",
    "write_babistories_like_files",
]

BABISTORIES_REPO = "https://github.com/facebookresearch/MemoryMosaics"
BABISTORIES_BASE_URL = (
    "https://github.com/facebookresearch/MemoryMosaics/raw/main/BabiStories/data/"
)
BABISTORIES_PARTS = tuple(f"babistories-dataset.7z.{i:03d}" for i in range(1, 6))
# SHA-256 of each part. Not pinned yet (this package was written offline): ``None`` means
# "record the hash on first download and verify against that record afterwards". Whoever first
# downloads the parts should paste the printed hashes here.
BABISTORIES_SHA256: dict[str, str | None] = {part: None for part in BABISTORIES_PARTS}
# Token counts of Table 1 (GPT-2 tokenizer, one end-of-text token per story).
BABISTORIES_GPT2_TOKENS = {"train": 474_704_907, "valid": 4_749_107}
_SPLIT_FILES = {"train": ("traindataset.txt",), "valid": ("valdataset.txt", "testdataset.txt")}


class DatasetUnavailableError(RuntimeError):
    """The data could not be fetched (offline, URL gone); the message says what to do."""


class ChecksumError(ValueError):
    """A downloaded or cached file does not have the expected SHA-256."""


@dataclass
class BabiStoriesSource:
    """Where the files come from: ``urls[name]`` for each file, optional pinned SHA-256s, and
    whether the files are parts of a 7z archive (else they are the two text files)."""

    urls: dict[str, str]
    sha256: dict[str, str | None] = field(default_factory=dict)
    archive: bool = True

    def describe(self) -> dict:
        return {"urls": dict(self.urls), "archive": self.archive}


def official_source() -> BabiStoriesSource:
    """The five archive parts in the papers' code repository."""
    return BabiStoriesSource(
        urls={p: BABISTORIES_BASE_URL + p for p in BABISTORIES_PARTS},
        sha256=dict(BABISTORIES_SHA256),
        archive=True,
    )


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _urllib_fetch(url: str, dest: Path) -> None:
    """Stream ``url`` into ``dest`` (raises ``urllib.error.URLError``/``OSError`` on failure)."""
    with urllib.request.urlopen(url, timeout=30) as response, open(dest, "wb") as f:
        shutil.copyfileobj(response, f, length=1 << 20)


def _offline_message(name: str, url: str, reason: str, raw_dir: Path) -> str:
    return (
        f"could not download {name} from {url} ({reason}). Are you offline? BabiStories is "
        f"distributed with the papers' code at {BABISTORIES_REPO} (folder BabiStories/data). "
        f"Either connect to the internet and run again; or download the files by hand into "
        f"{raw_dir} and run again (checksums are still verified); or train on the package's "
        "generated stories instead, which need no network: --data stories "
        "(prepare_stories() in Python)."
    )


def download_file(
    url: str,
    dest: str | os.PathLike,
    sha256: str | None = None,
    fetch: Callable[[str, Path], None] | None = None,
) -> str:
    """Download ``url`` to ``dest`` atomically and return its SHA-256.

    With ``sha256`` given, a mismatch deletes the download and raises ``ChecksumError``.
    Network failures raise ``DatasetUnavailableError``. ``fetch(url, path)`` replaces urllib.
    """
    dest = Path(dest)
    fetch = fetch or _urllib_fetch
    with atomic_path(dest, suffix=".part") as tmp:  # an error below deletes the partial file
        try:
            fetch(url, tmp)
        except (urllib.error.URLError, OSError, TimeoutError) as err:
            reason = getattr(err, "reason", None) or err
            raise DatasetUnavailableError(
                _offline_message(dest.name, url, f"{type(err).__name__}: {reason}", dest.parent)
            ) from None
        digest = sha256_file(tmp)
        if sha256 is not None and digest != sha256.lower():
            raise ChecksumError(
                f"{dest.name} downloaded from {url} has SHA-256 {digest}, expected {sha256}: the "
                "download is corrupt or the file changed upstream. Run again to retry; if it "
                "persists, check the source and update the pinned checksum."
            )
    return digest


def _verified_files(
    source: BabiStoriesSource, raw_dir: Path, fetch: Callable[[str, Path], None] | None
) -> list[Path]:
    """Make sure every file of ``source`` is in ``raw_dir`` with a verified checksum."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    record_path = raw_dir / "checksums.json"
    record: dict[str, str] = {}
    if record_path.is_file():
        record = json.loads(record_path.read_text(encoding="utf-8"))
    paths = []
    for name, url in source.urls.items():
        path = raw_dir / name
        expected = source.sha256.get(name) or record.get(name)
        if path.is_file():
            digest = sha256_file(path)
            if expected is not None and digest != expected:
                raise ChecksumError(
                    f"cached file {path} has SHA-256 {digest}, expected {expected}: it is "
                    f"corrupt or was replaced. Delete it and run again to download it afresh."
                )
        else:
            digest = download_file(url, path, sha256=source.sha256.get(name), fetch=fetch)
        if expected is None:
            warnings.warn(
                f"{name}: no pinned SHA-256; recorded {digest} in {record_path} "
                "(later runs verify against it). Pin it in BABISTORIES_SHA256.",
                stacklevel=3,
            )
        record[name] = digest
        paths.append(path)
    atomic_write_bytes(record_path, json.dumps(record, indent=1).encode("utf-8"))
    return paths


def _extract_7z(parts: list[Path], dest: Path) -> None:
    """Join a split 7z archive and extract it with py7zr or the 7z program."""
    joined = dest / "babistories-dataset.7z"
    with open(joined, "wb") as out:
        for part in parts:
            with open(part, "rb") as f:
                shutil.copyfileobj(f, out, length=1 << 20)
    try:
        import py7zr  # type: ignore[import-not-found]

        with py7zr.SevenZipFile(joined, mode="r") as archive:
            archive.extractall(path=dest)
    except ImportError:
        exe = shutil.which("7z") or shutil.which("7za") or shutil.which("7zz")
        if exe is None:
            raise RuntimeError(
                "BabiStories is a 7z archive and neither py7zr nor the 7z program is installed: "
                "pip install py7zr (or apt install p7zip-full / brew install p7zip), then run "
                "again; the downloaded parts are kept."
            ) from None
        subprocess.run([exe, "x", "-y", f"-o{dest}", str(joined)], check=True)
    finally:
        joined.unlink(missing_ok=True)


def _find_split_file(root: Path, split: str) -> Path:
    for name in _SPLIT_FILES[split]:
        hits = sorted(root.rglob(name))
        if hits:
            return hits[0]
    raise ValueError(
        f"no {' or '.join(_SPLIT_FILES[split])} under {root}: the archive does not have the "
        "expected layout; delete the folder and prepare again"
    )


def read_story_lines(path: str | os.PathLike, max_stories: int | None = None) -> Iterator[str]:
    """The stories of a BabiStories text file: one JSON-encoded string per non-empty line."""
    with open(path, encoding="utf-8") as f:
        count = 0
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                story = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{lineno} is not a JSON string ({err})") from None
            if not isinstance(story, str):
                raise ValueError(f"{path}:{lineno} holds a {type(story).__name__}, not a string")
            yield story
            count += 1
            if max_stories is not None and count >= max_stories:
                return


def _token_chunks(
    path: Path, tok: Tokenizer, max_stories: int | None, batch: int = 2048
) -> Iterator[np.ndarray]:
    end = [tok.eot_id] if tok.eot_id is not None else tok.encode(STORY_SEPARATOR)
    stories: list[str] = []

    def flush() -> np.ndarray:
        ids: list[int] = []
        for story in stories:
            ids.extend(tok.encode(story))
            ids.extend(end)
        stories.clear()
        return np.asarray(ids, dtype=np.int64)

    for story in read_story_lines(path, max_stories):
        stories.append(story)
        if len(stories) >= batch:
            yield flush()
    if stories:
        yield flush()


def write_babistories_like_files(
    out_dir: str | os.PathLike, n_train: int = 200, n_valid: int = 20, seed: int = 0
) -> dict[str, Path]:
    """Write ``traindataset.txt`` / ``valdataset.txt`` in BabiStories' line format (one JSON
    string per story), from the package's own generated stories. For tests and demos."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, n, name in (("train", n_train, "traindataset.txt"), ("valid", n_valid,
                                                                    "valdataset.txt")):
        stories = generate_stories(n, seed=seed, split=split)
        path = out / name
        path.write_text("".join(json.dumps(s.text) + "\n" for s in stories), encoding="utf-8")
        paths[split] = path
    return paths


def prepare_babistories(
    out_dir: str | os.PathLike | None = None,
    tokenizer: str = "gpt2",
    source: BabiStoriesSource | None = None,
    fetch: Callable[[str, Path], None] | None = None,
    max_stories: int | None = None,
    bpe_vocab_size: int = 4096,
) -> TokenDataset:
    """Download (if needed), verify, extract and tokenize BabiStories into a token dataset.

    ``tokenizer``: ``gpt2`` as in the papers (needs tiktoken), or ``char`` / ``bpe`` trained
    here. ``max_stories`` keeps only the first stories of each split (a quick look).
    A second call with the same settings reopens the cached folder without touching the network.
    """
    if tokenizer not in TOKENIZER_KINDS:
        raise ValueError(f"tokenizer must be one of {TOKENIZER_KINDS}, got {tokenizer!r}")
    if max_stories is not None and (not isinstance(max_stories, int) or max_stories < 1):
        raise ValueError(f"max_stories must be a positive int or None, got {max_stories!r}")
    source = source or official_source()
    if not source.urls:
        raise ValueError("source.urls is empty: name at least one file to download")
    out = Path(out_dir) if out_dir is not None else default_data_dir() / f"babistories-{tokenizer}"
    settings = {
        "name": "babistories",
        "source": source.describe(),
        "tokenizer": tokenizer,
        "max_stories": max_stories,
        "bpe_vocab_size": bpe_vocab_size if tokenizer == "bpe" else None,
    }
    ds = load_if_prepared_from(out, settings)
    if ds is not None:
        return ds
    raw_dir = out / "raw"
    files = _verified_files(source, raw_dir, fetch)
    if source.archive:
        text_dir = raw_dir / "extracted"
        text_dir.mkdir(exist_ok=True)
        try:
            split_paths = {s: _find_split_file(text_dir, s) for s in ("train", "valid")}
        except ValueError:
            _extract_7z(files, text_dir)
            split_paths = {s: _find_split_file(text_dir, s) for s in ("train", "valid")}
    else:
        split_paths = {s: _find_split_file(raw_dir, s) for s in ("train", "valid")}

    if tokenizer == "gpt2":
        tok = make_tokenizer("gpt2")
    elif tokenizer == "char":
        chars = set(STORY_SEPARATOR)
        for split in ("train", "valid"):
            for story in read_story_lines(split_paths[split], max_stories):
                chars.update(story)
        tok = CharTokenizer(sorted(chars))
    else:  # bpe: learn merges from the first ~2 MB of training text
        sample, size = [], 0
        for story in read_story_lines(split_paths["train"], max_stories):
            sample.append(story)
            size += len(story)
            if size > 2_000_000:
                break
        tok = make_tokenizer("bpe", STORY_SEPARATOR.join(sample), vocab_size=bpe_vocab_size)

    ds = save_token_dataset(
        out,
        _token_chunks(split_paths["train"], tok, max_stories),
        _token_chunks(split_paths["valid"], tok, max_stories),
        tok,
        source=settings,
    )
    if tokenizer == "gpt2" and max_stories is None and source.archive:
        got = {"train": len(ds.train), "valid": len(ds.valid)}
        if got != BABISTORIES_GPT2_TOKENS:
            warnings.warn(
                f"token counts {got} differ from the paper's Table 1 {BABISTORIES_GPT2_TOKENS}",
                stacklevel=2,
            )
    return ds
