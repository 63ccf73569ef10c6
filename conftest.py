"""Root pytest hooks: notebook runs that a busy machine cannot fail, and a strict ``--nbval`` that
passes on a learner's own saved notebook.

No limit may trip because a machine is slow or busy. The limits here and in pyproject.toml's addopts
are hang protection: an hour per cell, ten minutes for a kernel to start or for a finished cell's
last output (the longest cell of the course takes well under a minute on an idle laptop).

``pytest --nbval chapters/NN_name.ipynb`` compares the outputs the learner saved with a fresh run's.
Two things legitimately differ between the runs, and are handled here so that the learner types no
extra flag:

- what varies from run to run in printed text (timings, memory addresses, ...): both sides are
  rewritten by the patterns of ``nbval_sanitize.cfg`` before they are compared;
- a cell that shows a widget: the widget draws into its own output area, which only a front end
  (JupyterLab, Colab) keeps apart from the cell's outputs; nbval has no front end, so the drawing
  would arrive as extra cell output. Such a cell still runs (an error fails it); its outputs are not
  compared.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

try:
    from nbval.plugin import IPyNbCell
except ImportError:  # pragma: no cover - nbval is a dependency
    IPyNbCell = None

# One math thread per process. The test command runs two workers on two cores, and each starts
# notebook kernels: with the libraries' default of one thread per core, threads outnumber cores and
# OpenBLAS's spinning threads make the small matrix products of the chapters 11-20 times slower on
# a busy machine (measured: chapter 02's solutions took 520 s at load 4 with 2 threads, 26 s with
# one). Set before numpy or torch is imported here, and inherited by every kernel and subprocess;
# a value the caller set wins.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

SANITIZE = Path(__file__).resolve().parent / "nbval_sanitize.cfg"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


# Every process this test session starts (xdist workers, notebook kernels, nbval subprocesses,
# JupyterLab, the browser) inherits this mark; when the session ends, any process still carrying it
# has leaked: it is killed and the session fails (see pytest_sessionfinish below).
SESSION_MARK = "MOSAICS_TEST_SESSION"


def pytest_configure(config):
    if not hasattr(config, "workerinput"):  # the controlling process (or a run without xdist)
        os.environ[SESSION_MARK] = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    # nbval opens the file relative to the current folder; an absolute path works from anywhere
    # (the repository root, chapters/). A file given on the command line wins.
    if hasattr(config.option, "nbval_sanitize_with") and config.option.nbval_sanitize_with is None:
        config.option.nbval_sanitize_with = str(SANITIZE)


def _shows_a_widget(cell) -> bool:
    return any(WIDGET_VIEW in out.get("data", {}) for out in cell.get("outputs", []))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    for item in items:
        if IPyNbCell is not None and isinstance(item, IPyNbCell):
            # nbval waits only 5 s for output after a cell finishes; a busy machine can take
            # longer, a hung kernel takes forever: wait long enough that only a hang trips it.
            item.output_timeout = 600
            if _shows_a_widget(item.cell):
                item.options["check"] = False
    items.sort(key=_longest_first_rank)  # stable: the order within each rank is kept


# The few tests that take many CPU-minutes each start first, one per worker, so the rest of the
# suite fills the other worker around them instead of waiting behind them at the end (under
# ``--dist loadgroup`` work is handed out in collection order). Measured on 2 cores: chapter 03's
# retrain trains two models for ~13 CPU-minutes each; the browser module runs every chapter.
LONGEST_FIRST = (
    "tests/course/test_moons.py::test_chapter_assertions_hold_on_models_retrained_from_scratch",
    "tests/ui/",
    "tests/course/test_checks_ch11.py",  # one worker trains the capstone's reference pair, then checks it
)


def _longest_first_rank(item) -> int:
    for rank, prefix in enumerate(LONGEST_FIRST):
        if item.nodeid.startswith(prefix):
            return rank
    return len(LONGEST_FIRST)


# Tests that must run on one worker: the browser tests share one JupyterLab server and one browser,
# the ipywidgets-7 tests one install, the capstone-check tests one training of the reference pair
# (about 100 CPU-s, made once per process). Their modules carry `xdist_group` marks, but with pytest 9.2
# pytest-xdist 3.8 can no longer add the group to a test's id (it writes a field pytest no longer
# reads: pytest-dev/pytest-xdist#1386), so `--dist loadgroup` handed each test out alone: the
# browser tests ran on both workers at once, two servers, two browsers, two idle kernels. The
# scheduler below takes the group from these path prefixes when the id carries none
# (tests/tools/test_worker_groups.py keeps them and the marks in step).
WORKER_GROUPS = {"tests/ui/": "browser", "tests/tools/test_ipywidgets7.py": "ipywidgets7",
                 "tests/course/test_checks_ch11.py": "capstone_pair"}


def worker_group(nodeid: str) -> str | None:
    """The group a test id belongs to: its ``@group`` suffix, else its path's (None: no group)."""
    if nodeid.rfind("@") > nodeid.rfind("]"):
        return nodeid.rsplit("@", 1)[1]
    return next((g for prefix, g in WORKER_GROUPS.items() if nodeid.startswith(prefix)), None)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    # hand the work out in LONGEST_FIRST's order (xdist would put the groups with most tests first)
    config.option.loadscopereorder = False

    class _Grouped(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return worker_group(nodeid) or nodeid

    return _Grouped(config, log)



def _leftovers(mark: str) -> list:
    """Processes other than this one that carry ``mark`` in their environment and still run."""
    import psutil

    found = []
    for p in psutil.process_iter(["pid", "cmdline", "status"]):
        if p.pid == os.getpid() or p.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        try:
            if p.environ().get(SESSION_MARK) == mark:
                found.append(p)
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            pass
    return found


@pytest.hookimpl(hookwrapper=True)
def pytest_sessionfinish(session):
    """After everything else has finished (xdist's workers included): no process this session
    started may still be alive. A leaked kernel holds hundreds of MB; on a laptop a few of them make
    the test command swap. Leftovers are killed, listed, and fail the session."""
    yield
    mark = os.environ.get(SESSION_MARK)
    if hasattr(session.config, "workerinput") or not mark:
        return
    import psutil

    leftovers = _leftovers(mark)
    if not leftovers:
        return
    _, alive = psutil.wait_procs(leftovers, timeout=5)  # processes on their way out
    if not alive:
        return
    lines = []
    for p in alive:
        try:
            lines.append(f"  pid {p.pid}: {' '.join(p.cmdline())[:160]}")
            p.kill()
        except psutil.NoSuchProcess:
            pass
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    message = (f"\n{len(lines)} process(es) started by this test session were still running at its end "
               "(a kernel or server not shut down by its test); they were killed:\n" + "\n".join(lines))
    if reporter is not None:
        reporter.write_line(message, red=True, bold=True)
    else:
        print(message)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
