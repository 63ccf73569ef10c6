"""Execute a notebook from a test, with hang protection only: no limit that a busy machine can trip.

nbclient's own defaults are short (60 s for a kernel to start, 4 s for the last output of a cell,
after which it *drops* that output with a mere log line): on a loaded 2-core laptop either can
happen without anything being wrong. Here every wait is of the order of an hour, so only a hang
reaches it, and late output is waited for instead of lost.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

HANG_S = 3600  # longest cell of the course: well under a minute idle; an hour means it has hung


def execute(
    nb: nbformat.NotebookNode,
    cwd: str | os.PathLike,
    *,
    allow_errors: bool = False,
    sockets: str | os.PathLike | None = None,
    env: dict[str, str] | None = None,
) -> nbformat.NotebookNode:
    """Run every cell of ``nb`` in place in a fresh ``python3`` kernel started in ``cwd``.

    ``allow_errors=False`` stops at the first failing cell (raising ``CellExecutionError``), as
    "Run All" in JupyterLab does; cells after it keep no outputs. ``sockets``: a folder for the
    kernel's unix sockets, so that no TCP port can clash with a kernel of another test worker.
    ``env``: the kernel's environment (default: this process's).
    """
    km_args: dict = {"kernel_name": "python3"}
    if sockets is not None:
        km_args.update(transport="ipc", ip=str(Path(sockets) / "kernel"))
    client = NotebookClient(
        nb, km=KernelManager(**km_args), timeout=HANG_S, startup_timeout=HANG_S,
        iopub_timeout=HANG_S, raise_on_iopub_timeout=True, allow_errors=allow_errors,
        resources={"metadata": {"path": str(cwd)}},
    )
    client.execute(**({"env": env} if env is not None else {}))
    return nb
