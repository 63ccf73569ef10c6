"""Hang protection for every notebook the project executes: a kernel that has stopped working is
caught in minutes; a kernel that works, however slowly, is never stopped.

What hangs, and why it cannot last here:

- **Missed wake-ups.** A client reading a kernel's replies through ``zmq.asyncio`` (nbclient, and
  so the website build) waits on the socket's file descriptor, which ZeroMQ signals on *edges*
  only. When that edge is lost the message sits in the socket, already received, while the client
  sleeps until its timeout; a zero-timeout poll at that moment finds it at once. The suite saw it
  as a widget cell "hanging" on an idle, connected kernel for exactly its one-hour timeout, then
  passing. :class:`GuardedClient` therefore reads its channels in slices of ``POLL_S`` seconds:
  every slice ends with such a poll, so a lost edge costs seconds.
- **A kernel that stops.** A watchdog thread follows the kernel's process tree. A cell whose kernel
  has done no work and sent no message for ``IDLE_LIMIT_S`` seconds while
  the client waits is hung (``WORK_SHARE`` of a core over that time, 0.5 CPU-s in 150 s, counts as
  working): the kernel is killed, the notebook re-run once from the start in a fresh kernel, and a
  second hang fails with :class:`KernelHang`, which names the cell. A cell that computes uses CPU,
  so a slow or busy machine never trips it.
- **Leaks.** Every kernel started here is shut down when its run ends, whatever happened.

:func:`run_watched` gives a subprocess (``pytest --nbval`` on a saved notebook) the same watchdog,
over the whole process tree.
"""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from queue import Empty

import nbformat
import psutil
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError
from traitlets.config import Config

IDLE_LIMIT_S = float(os.environ.get("MOSAICS_IDLE_LIMIT_S", "150"))  # no CPU, no message: hung
# A tree that used at least this share of one core over the idle window is working: 0.5 CPU-s in
# 150 s. An idle kernel uses about a tenth of it (measured: 0.01 CPU-s in 30 s); a computing one,
# even at load 14 on 2 cores, some forty times more.
WORK_SHARE = 0.5 / 150
WATCH_S = float(os.environ.get("MOSAICS_WATCH_S", "2"))  # how often the watchdog looks
POLL_S = 2.0  # longest single wait on a kernel channel (see the module docstring)
BACKSTOP_S = 3 * 3600  # nbclient's own per-cell limit: only reached if the watchdog itself fails


class KernelHang(RuntimeError):
    """A notebook's kernel stopped working twice in a row (see the module docstring)."""


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and all its descendants (0 for a process gone)."""
    total = 0.0
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return total
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.NoSuchProcess:
            pass
    return total


def kill_tree(pid: int) -> None:
    """SIGKILL a process and all its descendants; processes already gone are skipped."""
    try:
        root = psutil.Process(pid)
        procs = [*root.children(recursive=True), root]
    except psutil.NoSuchProcess:
        return
    for p in procs:
        try:
            p.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=10)


class IdleClock:
    """How long a process tree has done nothing: less than ``WORK_SHARE`` of a core over the last
    ``limit_s`` seconds, and no new activity.

    ``activity`` returns a value that changes whenever something happens that the CPU time does not
    show (a message received); ``idle_s()`` is 0 while the tree works.
    """

    def __init__(self, pid: Callable[[], int | None], limit_s: float,
                 activity: Callable[[], object] = lambda: None):
        self._pid, self._activity = pid, activity
        self._work_cpu_s = WORK_SHARE * limit_s
        self._start = time.monotonic()
        self._cpu = self._read_cpu()
        self._seen = activity()

    def _read_cpu(self) -> float:
        pid = self._pid()
        return tree_cpu_seconds(pid) if pid else 0.0

    def idle_s(self) -> float:
        cpu, seen = self._read_cpu(), self._activity()
        if cpu - self._cpu >= self._work_cpu_s or seen != self._seen:
            self._start, self._cpu, self._seen = time.monotonic(), cpu, seen
        return time.monotonic() - self._start


@dataclass
class Hang:
    """What the watchdog saw when it declared a hang."""

    cell_index: int
    source: str
    idle_s: float
    last_message: str

    def describe(self) -> str:
        first = self.source.strip().splitlines()[0][:80] if self.source.strip() else ""
        return (f"cell {self.cell_index} (`{first}`): its kernel used no CPU and sent no message for "
                f"{self.idle_s:.0f} s while the client waited (last message: {self.last_message})")


def _sliced(get_msg, on_message):
    """Wrap a channel's async ``get_msg`` so that no single wait exceeds ``POLL_S`` seconds."""

    async def get(timeout: float | None = None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise Empty
            try:
                msg = await get_msg(timeout=POLL_S if left is None else min(POLL_S, left))
            except Empty:
                continue
            on_message(msg)
            return msg

    return get


class GuardedClient(NotebookClient):
    """nbclient's ``NotebookClient`` with sliced channel reads and a watchdog (module docstring).

    It owns its kernel (started from ``kernel_name`` with ``AsyncKernelManager``), so nbclient shuts
    it down at the end of ``execute()``; :func:`execute` makes sure of it.
    """

    def __init__(self, nb, **kw):
        super().__init__(nb, **kw)
        self.cell_index: int | None = None
        self.messages = 0
        self.last_message = "none yet"
        self.hang: Hang | None = None

    def _on_message(self, msg: dict) -> None:
        self.messages += 1
        self.last_message = msg.get("msg_type", "?")

    async def async_start_new_kernel_client(self):
        kc = await super().async_start_new_kernel_client()
        for channel in (kc.shell_channel, kc.iopub_channel):
            channel.get_msg = _sliced(channel.get_msg, self._on_message)
        return kc

    async def async_execute_cell(self, cell, cell_index, *args, **kwargs):
        self.cell_index = cell_index
        try:
            return await super().async_execute_cell(cell, cell_index, *args, **kwargs)
        finally:
            self.cell_index = None

    def kernel_pid(self) -> int | None:
        process = getattr(getattr(self.km, "provisioner", None), "process", None)
        return getattr(process, "pid", None)

    def watch(self, stop: threading.Event, limit_s: float) -> None:
        """Watchdog loop (run in a thread): kill the kernel if a cell waits on an idle kernel."""
        clock = IdleClock(self.kernel_pid, limit_s, lambda: (self.messages, self.cell_index))
        while not stop.wait(min(WATCH_S, limit_s / 4)):
            idle = clock.idle_s()
            index, pid = self.cell_index, self.kernel_pid()
            if index is not None and pid and idle >= limit_s:
                self.hang = Hang(index, self.nb.cells[index].source, idle, self.last_message)
                kill_tree(pid)  # nbclient notices within a second and raises DeadKernelError
                return


def _config(sockets: str | os.PathLike | None) -> Config:
    if sockets is None:
        return Config()
    # unix sockets in a folder of the caller's: no TCP port can clash with another test worker's
    return Config({"KernelManager": {"transport": "ipc", "ip": str(Path(sockets) / "kernel")}})


def _client(nb, cwd, *, allow_errors, sockets) -> GuardedClient:
    return GuardedClient(
        nb, kernel_name="python3", kernel_manager_class=AsyncKernelManager,
        config=_config(sockets), timeout=BACKSTOP_S, startup_timeout=600,
        iopub_timeout=BACKSTOP_S, raise_on_iopub_timeout=True, allow_errors=allow_errors,
        resources={"metadata": {"path": str(cwd)}},
    )


def _run_watched_client(client: GuardedClient, env: dict[str, str] | None, limit_s: float) -> None:
    """``client.execute()`` with the watchdog beside it; the kernel is gone when this returns."""
    stop = threading.Event()
    watchdog = threading.Thread(target=client.watch, args=(stop, limit_s), daemon=True)
    watchdog.start()
    try:
        client.execute(**({"env": env} if env is not None else {}))
    finally:
        stop.set()
        watchdog.join()
        pid = client.kernel_pid()
        if pid and psutil.pid_exists(pid):  # nbclient's own shutdown did not happen or failed
            kill_tree(pid)


def execute(
    nb: nbformat.NotebookNode,
    cwd: str | os.PathLike,
    *,
    allow_errors: bool = False,
    sockets: str | os.PathLike | None = None,
    env: dict[str, str] | None = None,
    limit_s: float = IDLE_LIMIT_S,
) -> nbformat.NotebookNode:
    """Run every cell of ``nb`` in place in a fresh ``python3`` kernel started in ``cwd``.

    ``allow_errors=False`` stops at the first failing cell (raising ``CellExecutionError``), as
    "Run All" in JupyterLab does; cells after it keep no outputs. ``sockets``: a folder for the
    kernel's unix sockets. ``env``: the kernel's environment (default: this process's).
    A hung kernel (module docstring) is killed and the whole notebook run again once, in a fresh
    kernel; a second hang raises :class:`KernelHang` naming the cell. A kernel that dies on its own
    (``DeadKernelError``) is retried once too.
    """
    original = copy.deepcopy(nb.cells)
    hangs: list[Hang] = []
    for attempt in (1, 2):
        nb.cells = copy.deepcopy(original)
        sub = None
        if sockets is not None:
            sub = Path(sockets) / f"run{attempt}"
            sub.mkdir(parents=True, exist_ok=True)
        client = _client(nb, cwd, allow_errors=allow_errors, sockets=sub)
        try:
            _run_watched_client(client, env, limit_s)
            return nb
        except DeadKernelError:
            if client.hang is not None:
                hangs.append(client.hang)
            if attempt == 2:
                if hangs:
                    raise KernelHang(
                        "the kernel stopped working: "
                        + "; then, on the re-run in a fresh kernel, ".join(h.describe() for h in hangs)
                        + ". Likely causes: a deadlock in the cell (threads, a subprocess waiting on "
                        "input), or messages lost between kernel and client (widget comms)."
                    ) from None
                raise
    raise AssertionError("unreachable")


def run_watched(
    cmd: list[str], *, cwd: str | os.PathLike, env: dict[str, str] | None = None,
    limit_s: float = IDLE_LIMIT_S, attempts: int = 2,
) -> subprocess.CompletedProcess:
    """Run ``cmd`` (e.g. ``pytest --nbval`` on a saved notebook) with the watchdog on its process
    tree: if the whole tree does no work (``IdleClock``) for ``limit_s`` seconds it is killed and
    the command run again (``attempts`` in all); a command still hanging raises :class:`KernelHang`.
    stdout and stderr are captured as text."""
    for _ in range(attempts):
        with _spooled() as out, _spooled() as err:
            proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err, text=True)
            clock = IdleClock(lambda pid=proc.pid: pid, limit_s)
            hung = False
            while proc.poll() is None:
                time.sleep(min(WATCH_S, limit_s / 4))
                if proc.poll() is None and clock.idle_s() >= limit_s:
                    kill_tree(proc.pid)
                    hung = True
            proc.wait()
            out.seek(0)
            err.seek(0)
            result = subprocess.CompletedProcess(cmd, proc.returncode, out.read(), err.read())
        if not hung:
            return result
    raise KernelHang(f"`{' '.join(map(str, cmd))}` used no CPU for {limit_s:.0f} s, {attempts} times "
                     f"in a row; its last output:\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}")


def wait_watched(check: Callable[[], object], pid: int, what: str, limit_s: float = IDLE_LIMIT_S):
    """Call ``check()`` until it returns something truthy, and return that. Each call may block for
    a while itself (e.g. a browser waiting for a page condition for a few seconds) and return
    ``None`` when it gave up. Meanwhile the watchdog follows the process tree of ``pid`` (a
    JupyterLab server and its kernels): ``limit_s`` seconds without work there raise
    :class:`KernelHang`, saying what was awaited. There is no other limit."""
    clock = IdleClock(lambda: pid, limit_s)
    while True:
        result = check()
        if result:
            return result
        idle = clock.idle_s()
        if idle >= limit_s:
            raise KernelHang(f"waited for {what}, but the server and its kernels used no CPU for "
                             f"{idle:.0f} s")


def _spooled():
    return tempfile.TemporaryFile("w+", encoding="utf-8")
