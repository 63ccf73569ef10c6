"""Measure the lost wake-up behind the suite's old hangs: run a widget notebook many times and
count the cells whose reply the client saw only when its timeout expired.

    python tools/stress_widget_client.py plain 40      # nbclient as the suite used it before
    python tools/stress_widget_client.py guarded 40    # tools/kernel_guard.GuardedClient

Each run executes 8 cells that display an interactive figure (the widget test's cell) with a
20-second cell timeout. A cell whose kernel answered in a second or two but whose client waited
the full 20 s is a *stall*: the reply was in the socket, its wake-up lost, and only the poll that
ZeroMQ's asyncio layer makes when the timeout fires found it (the suite's one-hour timeout made that
a one-hour hang). Run it on a busy machine (the stalls appear under load). Prints one line per stall
and a JSON summary.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from pathlib import Path

import nbformat
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kernel_guard import GuardedClient  # noqa: E402

SETUP = ("import ipywidgets as widgets\n"
         "from mosaics_edu.course.softmax import DEMO_SCORES, beta_softmax, draw_beta_softmax\n"
         "from mosaics_edu.course.widgets import interactive_figure\n"
         "def controls():\n"
         "    return {'scores': DEMO_SCORES, 'beta': widgets.FloatSlider(value=1.0, min=0, max=5)}")
CALL = "interactive_figure(beta_softmax, draw_beta_softmax, controls())"
TIMEOUT_S = 20


def timed(base):
    class Timed(base):
        """Records how long the client waited for each cell."""

        async def async_execute_cell(self, cell, cell_index, *args, **kwargs):
            start = time.monotonic()
            out = await super().async_execute_cell(cell, cell_index, *args, **kwargs)
            self.waits.append((cell_index, time.monotonic() - start))
            return out

    return Timed


def kernel_seconds(cell) -> float:
    """How long the kernel itself took: from its execute_input to its execute_reply timestamps."""
    ex = cell.metadata.get("execution", {})
    try:
        a, b = (datetime.fromisoformat(ex[k].replace("Z", "+00:00"))
                for k in ("iopub.execute_input", "shell.execute_reply"))
    except KeyError:
        return float("nan")
    return (b - a).total_seconds()


def main() -> int:
    mode, runs = sys.argv[1], int(sys.argv[2])
    if mode not in ("plain", "guarded"):
        raise SystemExit("usage: stress_widget_client.py plain|guarded RUNS")
    cls = timed(NotebookClient if mode == "plain" else GuardedClient)
    stalls, worst = 0, 0.0
    for run in range(runs):
        cells = [nbformat.v4.new_code_cell(SETUP)]
        cells += [nbformat.v4.new_code_cell(CALL + (";" if j % 2 else "")) for j in range(8)]
        nb = nbformat.v4.new_notebook(cells=cells)
        client = cls(nb, timeout=TIMEOUT_S, startup_timeout=120, kernel_name="python3",
                     record_timing=True, kernel_manager_class=AsyncKernelManager)
        client.waits = []
        client.execute()
        for index, waited in client.waits:
            worst = max(worst, waited)
            if waited >= TIMEOUT_S - 1:
                stalls += 1
                print(f"{mode} run {run} cell {index}: the client waited {waited:.1f} s, the kernel "
                      f"took {kernel_seconds(nb.cells[index]):.2f} s  STALL", flush=True)
    print(json.dumps({"mode": mode, "runs": runs, "cells": 8 * runs, "stalls": stalls,
                      "worst_wait_s": round(worst, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
