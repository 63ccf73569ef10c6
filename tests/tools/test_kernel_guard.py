"""The hang protection of every notebook run (tools/kernel_guard.py): a kernel that stops is caught
and the notebook re-run once, a kernel that works is left alone, and no kernel outlives its run."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from queue import Empty

import kernel_guard as kg
import nbformat
import psutil
import pytest
from nbclient.exceptions import CellExecutionError

LIMIT_S = 3.0  # a short idle limit, so that these tests take seconds


def _nb(*sources: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])


def _pids(nb) -> list[int]:
    return [int(o["text"]) for c in nb.cells for o in c.get("outputs", []) if o.get("name") == "stdout"
            and o["text"].strip().isdigit()]


def test_a_working_cell_is_never_stopped_and_the_kernel_is_shut_down(tmp_path):
    busy = ("import os, time\nprint(os.getpid())\nt = time.monotonic()\n"
            f"while time.monotonic() - t < {2 * LIMIT_S}: pass  # computes for twice the limit")
    nb = kg.execute(_nb(busy, "x = 1"), tmp_path, sockets=tmp_path, limit_s=LIMIT_S)
    assert nb.cells[1].execution_count == 2, "both cells ran"
    (pid,) = _pids(nb)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_a_hung_cell_is_retried_once_in_a_fresh_kernel(tmp_path):
    """The first run's cell 1 sleeps forever (no CPU, no message); the re-run finds the flag file
    and goes on: the notebook passes, with the re-run's outputs."""
    flag = tmp_path / "first-run"
    hang_once = (f"import os, pathlib, time\nprint(os.getpid())\nflag = pathlib.Path({str(flag)!r})\n"
                 "if not flag.exists():\n    flag.touch()\n    time.sleep(10**6)")
    nb = kg.execute(_nb("y = 2", hang_once, "print('done')"), tmp_path, sockets=tmp_path,
                    limit_s=LIMIT_S)
    assert flag.exists() and nb.cells[2].outputs[0]["text"] == "done\n"
    for pid in _pids(nb):
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_a_cell_that_hangs_twice_fails_naming_the_cell(tmp_path):
    with pytest.raises(kg.KernelHang, match=r"cell 1 \(`import time`\).*no CPU and sent no message"):
        kg.execute(_nb("z = 3", "import time\ntime.sleep(10**6)"), tmp_path, sockets=tmp_path,
                   limit_s=LIMIT_S)


def test_a_failing_cell_raises_and_still_shuts_the_kernel_down(tmp_path):
    nb = _nb("import os\nprint(os.getpid())", "1 / 0", "print('never')")
    with pytest.raises(CellExecutionError, match="ZeroDivisionError"):
        kg.execute(nb, tmp_path, sockets=tmp_path, limit_s=LIMIT_S)
    (pid,) = _pids(nb)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not nb.cells[2].outputs, "Run All stops at the first error"


def test_sliced_reads_never_wait_longer_than_a_slice_and_keep_the_deadline():
    waits, messages = [], []

    async def get_msg(timeout=None):  # a channel whose message arrives on the fourth poll
        waits.append(timeout)
        if len(waits) < 4:
            raise Empty
        return {"msg_type": "execute_reply"}

    get = kg._sliced(get_msg, messages.append)
    assert asyncio.run(get(timeout=None)) == {"msg_type": "execute_reply"}
    assert waits == [kg.POLL_S] * 4 and messages == [{"msg_type": "execute_reply"}]

    async def never(timeout=None):
        await asyncio.sleep(timeout)
        raise Empty

    with pytest.raises(Empty):
        asyncio.run(kg._sliced(never, messages.append)(timeout=0.05))


def test_run_watched_kills_an_idle_command_and_spares_a_busy_one():
    idle = [sys.executable, "-c", "import time; time.sleep(10**6)"]
    with pytest.raises(kg.KernelHang, match="used no CPU for 2 s, 2 times"):
        kg.run_watched(idle, cwd=".", limit_s=2)
    busy = [sys.executable, "-c",
            "import time\nt = time.monotonic()\nwhile time.monotonic() - t < 4: pass\nprint('ok')"]
    assert kg.run_watched(busy, cwd=".", limit_s=2).stdout == "ok\n"


LEAKY = """import subprocess, sys
def test_starts_a_process_and_forgets_it():
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)  # leaked-by-test"])
"""
TIDY = """import subprocess, sys
def test_starts_a_process_and_waits_for_it():
    subprocess.run([sys.executable, "-c", "pass"], check=True)
"""


@pytest.mark.parametrize("body, leaks, workers",
                         [(LEAKY, True, ["-n", "2"]), (TIDY, False, ["-p", "no:xdist"])],
                         ids=["leaky-under-xdist", "tidy"])
def test_a_session_that_leaves_a_process_running_fails(tmp_path, body, leaks, workers):
    """The root conftest.py's end-of-session check, on a tiny project that uses it: under the test
    command's xdist a leftover fails the session (after the workers are gone); a tidy one passes."""
    (tmp_path / "conftest.py").symlink_to(Path(__file__).resolve().parents[2] / "conftest.py")
    (tmp_path / "test_it.py").write_text(body)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *workers,
                          "test_it.py"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert "1 passed" in res.stdout, res.stdout[-2000:]
    if leaks:
        assert res.returncode == 1 and "were still running at its end" in res.stdout, res.stdout[-2000:]
        assert "leaked-by-test" in res.stdout
        still = [p for p in psutil.process_iter(["cmdline"]) if "leaked-by-test" in " ".join(
            p.info["cmdline"] or [])]
        assert not still, "the leftover was killed"
    else:
        assert res.returncode == 0, res.stdout[-2000:]
