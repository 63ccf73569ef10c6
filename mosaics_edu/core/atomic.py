"""Atomic file writes: a file appears under its final name complete, or not at all.

Every file the package writes that a later run reads back (training checkpoints, token datasets,
downloads, three-moons runs) goes through :func:`atomic_path`: the content is written to a
temporary file in the same folder, flushed to disk, then moved onto the final name with
``os.replace`` (atomic on POSIX and Windows). A crash or an exception mid-write leaves the old
file, if any, and no half-written one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_bytes"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; write the file there.

    On a clean exit the temporary file is fsync'ed and moved onto ``path`` (then the folder is
    fsync'ed, so the rename itself survives a power cut); on an exception it is deleted and the
    exception propagates. The temporary name is unique (two processes writing the same file do
    not write into one temporary file) and ends with ``suffix``.

        with atomic_path(out / "ckpt.pt") as tmp:
            torch.save(state, tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:  # the writer may have closed its handle: flush via our own
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private (0o600); a data file is world-readable
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    with contextlib.suppress(OSError):  # make the rename durable (POSIX; not possible on Windows)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
