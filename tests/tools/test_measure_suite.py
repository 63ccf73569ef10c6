"""tools/measure_suite.py names each process of the test command by its command line."""

from __future__ import annotations

import pytest
from measure_suite import kind_of

VENV = "/work/main/.venv/bin/python"


@pytest.mark.parametrize("cmdline, kind", [
    (f"{VENV} -u -c import sys;exec(eval(sys.stdin.readline()))", "pytest worker"),  # an xdist worker
    ("python -m pytest -n 2 --dist loadgroup", "pytest"),
    (f"{VENV} -m pytest --nbval -p no:cacheprovider chapters/05_training.ipynb", "nbval"),
    (f"{VENV} -m ipykernel_launcher -f /tmp/tmpkcof53kn.json --HistoryManager.hist_file=:memory:", "kernel"),
    (f"{VENV}3 {VENV[:-6]}jupyter-lab --no-browser --allow-root --ServerApp.ip=127.0.0.1", "jupyterlab"),
    ("/usr/lib/chromium/chromium --type=renderer --crashpad-handler-pid=0", "browser"),
    (f"{VENV[:-10]}lib/python3.11/site-packages/playwright/driver/node cli.js run-driver",
     "playwright driver"),
    ("bash -c . .venv/bin/activate && python -m pytest -n 2", "pytest"),
    ("/bin/sh -c git status", "other"),
])
def test_each_process_of_the_test_command_gets_its_kind(cmdline, kind):
    assert kind_of(cmdline) == kind
