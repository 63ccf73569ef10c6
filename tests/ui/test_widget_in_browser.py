"""A real learner's flow: JupyterLab in Chromium runs chapter 00, and moving the β slider redraws.

Needs Debian's Chromium (`apt-get install chromium`) and the `playwright` package; skipped
without them. `.ci/run` installs both. No browser is downloaded.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "ui-test-token"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = pytest.mark.ui

KERNEL_IDLE = """() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  return !!(w && w.sessionContext && w.sessionContext.isReady && w.sessionContext.session
            && w.sessionContext.session.kernel && w.sessionContext.session.kernel.status === 'idle'); }"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab-root")
    shutil.copy(ROOT / "chapters" / "solutions" / "00_start_here.ipynb", root / "00_start_here.ipynb")
    port = _free_port()
    log = open(root / "lab.log", "w")  # noqa: SIM115 - closed below
    settings = root / "settings"
    # Render every cell (no virtual scrolling) and skip the news pop-up.
    for name, value in [("notebook-extension/tracker", {"windowingMode": "none"}),
                        ("apputils-extension/notification", {"fetchNews": "false"})]:
        path = settings / "@jupyterlab" / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(root / "cfg"), "JUPYTER_RUNTIME_DIR": str(root / "rt"),
           "JUPYTERLAB_SETTINGS_DIR": str(settings)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root",
         "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
         f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}",
         "--LabApp.expose_app_in_browser=True",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        stdout=log, stderr=subprocess.STDOUT, env=env)
    base, deadline = f"http://127.0.0.1:{port}", time.time() + 90
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=2)
            break
        except OSError:
            if time.time() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError((root / "lab.log").read_text()[-2000:]) from None
            time.sleep(0.5)
    yield lambda path: f"{base}/{path}?token={TOKEN}"
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run"])
        yield b
        b.close()


def test_moving_the_beta_slider_redraws_the_figure(lab, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(lab("lab/tree/00_start_here.ipynb"))
        page.wait_for_function(KERNEL_IDLE, timeout=120_000)
        page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
        figure = page.locator(".widget-output img").first
        figure.wait_for(state="attached", timeout=30_000)
        figure.scroll_into_view_if_needed()
        before = figure.get_attribute("src")
        assert before and before.startswith("data:image/png")
        page.locator(".widget-slider .noUi-handle").first.focus()
        for _ in range(5):
            page.keyboard.press("ArrowRight")
        page.wait_for_function(
            """(old) => { const img = document.querySelector('.widget-output img');
                          return !!img && img.getAttribute('src') !== old; }""",
            arg=before, timeout=60_000)
        readout = page.locator(".widget-readout").first.inner_text()
        assert float(readout) > 1.0, f"the beta slider should have moved up from 1.0, reads {readout}"
    except Exception:
        print(f"sliders: {page.locator('.widget-slider').count()}, "
              f"widget outputs: {page.locator('.widget-output').count()}", file=sys.stderr)
        for text in page.locator(".jp-OutputArea-output").all_inner_texts():
            print("cell output:", text[:200].replace("\n", " | "), file=sys.stderr)
        page.screenshot(path=str(ROOT / "ui-failure.png"))
        raise
    finally:
        page.close()
