"""The README's first command ends in `jupyter lab chapters/`: JupyterLab starts and serves chapter 00."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "mosaics-test-token"
# Hang protection only: a busy laptop may take a minute or more to start JupyterLab or answer.
HANG_S = 600


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers={"Authorization": f"token {TOKEN}"})
    with urllib.request.urlopen(req, timeout=HANG_S) as resp:
        return resp.status, resp.read()


def test_jupyterlab_serves_the_start_chapter(tmp_path):
    port = _free_port()
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path), "JUPYTER_CONFIG_DIR": str(tmp_path)}
    cmd = [sys.executable, "-m", "jupyter", "lab", "chapters/", "--no-browser", "--allow-root",
           f"--port={port}", "--ip=127.0.0.1", f"--IdentityProvider.token={TOKEN}"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline, last = time.monotonic() + HANG_S, None
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"jupyter lab exited early:\n{proc.stderr.read()[-2000:]}"
            try:
                status, _ = _get(f"{base}/api/status")
                if status == 200:
                    break
            except OSError as err:
                last = err
            time.sleep(0.5)
        else:
            raise AssertionError(f"jupyter lab did not answer within {HANG_S} s: {last}")
        status, page = _get(f"{base}/lab")
        assert status == 200 and b"JupyterLab" in page
        status, body = _get(f"{base}/api/contents/00_start_here.ipynb")
        model = json.loads(body)
        assert status == 200 and model["type"] == "notebook"
        assert any("Start here" in "".join(c["source"]) for c in model["content"]["cells"])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
