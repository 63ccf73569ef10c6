"""Colab's widgets: the widget code and two solutions notebooks run against ipywidgets 7.7.1.

Colab ships ipywidgets 7.7.x and keeps it (its install cell uses --no-deps), while the package asks
for ipywidgets 8 locally, where JupyterLab 4 needs it. So the 7.x code path is tested here, in a
separate environment: ipywidgets 7.7.1 (from PyPI) installed into a folder that goes first on
PYTHONPATH, everything else (torch, numpy, the package) taken from the running environment. The
kernels the tests start inherit that PYTHONPATH, so they import ipywidgets 7.7.1 too.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COLAB_IPYWIDGETS = "7.7.1"
NOTEBOOKS = ["00_start_here.ipynb", "03_three_moons.ipynb"]  # a fast one, and the replay widget

# one worker runs the whole module: the ipywidgets 7 environment is made once (--dist loadgroup)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ipywidgets7")]

RUN_NOTEBOOKS = """
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

for path in map(Path, sys.argv[1:]):
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import ipywidgets; print(ipywidgets.__version__)"))
    NotebookClient(nb, timeout=3600, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()  # raises on an error
    views = [o for c in nb.cells for o in c.get("outputs", [])
             if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    static = [o for o in views if "image/png" in o["data"]]
    print(f"{path.name}: kernel ipywidgets {nb.cells[-1].outputs[0]['text'].strip()}, "
          f"{len(views)} widgets, {len(static)} with a static view")
"""


@pytest.fixture(scope="module")
def colab_env(tmp_path_factory) -> dict[str, str]:
    """Environment variables that put ipywidgets 7.7.1 in front of this environment's packages."""
    target = tmp_path_factory.mktemp("ipywidgets7")
    # ipywidgets' kernel side needs only these two; its front-end packages (widgetsnbextension,
    # jupyterlab_widgets) are Colab's own business, so --no-deps, exactly as on Colab.
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--disable-pip-version-check",
         "--target", str(target), f"ipywidgets=={COLAB_IPYWIDGETS}", "ipython_genutils==0.2.0"],
        capture_output=True, text=True)
    assert done.returncode == 0, f"pip could not install ipywidgets {COLAB_IPYWIDGETS}:\n{done.stderr}"
    path = os.pathsep.join(p for p in [str(target), os.environ.get("PYTHONPATH", "")] if p)
    return {**os.environ, "PYTHONPATH": path, "MPLBACKEND": "Agg"}


def _run(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_the_environment_imports_ipywidgets_7(colab_env):
    code = "import ipywidgets, mosaics_edu.course.widgets; print(ipywidgets.__version__)"
    out = _run(["-c", code], colab_env)
    assert out.strip() == COLAB_IPYWIDGETS


def test_widget_unit_tests_pass_with_ipywidgets_7(colab_env):
    out = _run(["-m", "pytest", "-p", "no:xdist", "-p", "no:cacheprovider", "-q",
                "tests/course/test_widgets.py"], colab_env)
    assert " passed" in out and "failed" not in out and "error" not in out.lower(), out[-2000:]


def test_solutions_notebooks_run_with_ipywidgets_7(colab_env):
    paths = [str(ROOT / "chapters" / "solutions" / name) for name in NOTEBOOKS]
    out = _run(["-c", RUN_NOTEBOOKS, *paths], colab_env)
    print(out)
    for name in NOTEBOOKS:
        m = re.search(rf"^{name}: kernel ipywidgets (\S+), (\d+) widgets, (\d+) with a static view$",
                      out, re.M)
        assert m, out
        assert m.group(1) == COLAB_IPYWIDGETS, "the notebook kernel must import ipywidgets 7"
        widgets, static = int(m.group(2)), int(m.group(3))
        assert widgets >= 1 and static == widgets, f"every interactive figure has its static view: {m[0]}"
