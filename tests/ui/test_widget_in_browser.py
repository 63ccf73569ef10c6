"""A real learner's flow, for every chapter: JupyterLab in Chromium, run, save, check.

For each chapter, as a learner who has done the exercises: open the chapter in JupyterLab (the
learner notebook with every exercise filled in from the solutions notebook: its code cells are the
solutions notebook's), run all cells, require that no cell shows an error, that every widget the
kernel displayed is drawn by the page, that each interactive figure appears exactly once in its
cell, and that moving one of its sliders redraws its figure; then save the notebook from JupyterLab
and check the saved file with ``pytest --nbval`` exactly as the README says: every cell must pass,
outputs compared. JupyterLab's kernels use the math libraries' default thread count (at least 2)
and the check one thread (the root ``conftest.py``), so every printed output of every chapter is
compared between two thread counts: a number printed at the floating-point noise floor fails here,
as it would fail for a learner. Half of the chapters are checked from the clone's root, half from
``chapters/``, the two places a learner runs the command from. This is the suite's run of every
solutions notebook (tests/chapters/test_saved_notebooks.py runs them with nbclient only where no browser is
installed).

Chapter 00 is also run as a learner who has not started: its learner notebook with the stubs. No
cell may show an error (a failing check reports its message without stopping "Run All"), every
check cell must report its unsolved exercise in one line, and ``pytest --nbval`` on the saved file
must fail on exactly the check cells, naming each exercise, and pass every other cell
(tests/learner_flow.py). For the other chapters, what their stubs could break is checked without
running them (``learner_flow.stub_problems``, in tests/chapters/test_learner_notebooks.py): each stub raises
NotImplementedError, which every check reports (tests/check_contract.py), each exercise has its
check cell, and no other cell after it reads it. A screenshot of the chapter's first interactive
figure is saved under the test's temporary folder and its path printed.

One JupyterLab server serves all chapters (module-scoped), started like a learner's (the math
libraries' default thread count, nothing of pytest in its kernels' environment); each chapter's
kernel is shut down when its test ends. Needs Debian's Chromium (`apt-get install chromium`) and
the `playwright` package; skipped without them. `.ci/run` installs both. No browser is downloaded.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from kernel_guard import KernelHang, wait_watched
from learner_flow import (
    BROWSER_AVAILABLE,
    CHROMIUM,
    learner_clone,
    nbval_problems,
    pytest_nbval,
    session_env,
    session_problems,
    with_answers,
)

ROOT = Path(__file__).resolve().parents[2]
LEARNER = ROOT / "chapters"
CHAPTERS = sorted(p.name for p in LEARNER.glob("[0-9][0-9]_*.ipynb"))
STUBS = "stubs"  # the folder (under the server's root) of the learner notebook run with its stubs
TOKEN = "ui-test-token"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# An output area that holds a rendered widget view (an Output widget's own outputs are nested deeper).
RENDERED_WIDGET = ".jp-OutputArea-output:has(> .jupyter-widgets)"
# No time limit can fail a slow machine (chapter 05 computes for about 45 s on an idle 2-core
# machine; at load 14 a chapter that takes 12 s idle took 818 s). Every wait on the page is watched
# instead (tools/kernel_guard.py): when the JupyterLab server and its kernels do no work for a few
# minutes while the page still waits, the wait fails as a hang, and the chapter is run once more in
# a fresh kernel. Each single look at the page gives up after POLL_MS and is repeated.
POLL_MS = 5_000

# one worker runs the whole module: its JupyterLab server and browser are started once (--dist loadgroup)
pytestmark = [pytest.mark.ui, pytest.mark.xdist_group("browser")]

KERNEL_IDLE = """() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  return !!(w && w.sessionContext && w.sessionContext.isReady && w.sessionContext.session
            && w.sessionContext.session.kernel && w.sessionContext.session.kernel.status === 'idle'); }"""

# Truthy once "run all" has finished (every code cell has an execution count and the kernel is
# idle) or once a cell holds an error output (run all stops there).
RUN_ALL_STATE = """() => {
  const w = window.jupyterapp.shell.currentWidget;
  if (!w || !w.sessionContext.session || !w.sessionContext.session.kernel) return null;
  const cells = w.content.model.cells, errors = [], views = {};
  let pending = 0;
  for (let i = 0; i < cells.length; i++) {
    const c = cells.get(i);
    if (c.type !== 'code') continue;
    if (c.executionCount === null) pending++;
    for (let j = 0; j < c.outputs.length; j++) {
      const o = c.outputs.get(j);
      if (o.type === 'error') errors.push(i);
      if (o.data && o.data['""" + WIDGET_VIEW + """']) views[i] = (views[i] || 0) + 1;
    }
  }
  if (errors.length) return {state: 'error', errors, views};
  const idle = w.sessionContext.session.kernel.status === 'idle';
  if (pending === 0 && idle) return {state: 'done', errors, views};
  return null;
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _figure_cells(name: str) -> list[int]:
    """Indices of the cells that call ``interactive_figure`` (read from the notebook itself)."""
    nb = nbformat.read(LEARNER / name, as_version=4)
    return [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
            and any(line.startswith("interactive_figure(") for line in c.source.splitlines())]


class Lab:
    """The running JupyterLab server: ``lab(path)`` is the URL of a page, ``lab.pid`` its process,
    ``lab.root`` the folder it serves (a learner's clone: the notebooks with answers in
    ``chapters/``; ``stubs/`` another clone, with the learner notebook of chapter 00 as shipped)."""

    def __init__(self, base: str, pid: int, root: Path) -> None:
        self.base, self.pid, self.root = base, pid, root

    def __call__(self, path: str) -> str:
        return f"{self.base}/{path}?token={TOKEN}"


def wait_for(page, lab: Lab, expression: str, what: str, arg=None):
    """``page.wait_for_function(expression, arg)`` without a time limit, watched for hangs."""
    from playwright.sync_api import TimeoutError as PageTimeout

    def look():
        try:
            return page.wait_for_function(expression, arg=arg, timeout=POLL_MS, polling=500)
        except PageTimeout:
            return None

    return wait_watched(look, lab.pid, what)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab-root")
    chapters = learner_clone(root)  # the layout of a learner's clone: pytest finds the project's config
    for name in CHAPTERS:
        nbformat.write(with_answers(Path(name).stem), chapters / name)
    shutil.copy(LEARNER / CHAPTERS[0], learner_clone(root / STUBS) / CHAPTERS[0])
    port = _free_port()
    log = open(root / "lab.log", "w")  # noqa: SIM115 - closed below
    settings = root / "settings"
    # Render every cell (no virtual scrolling) and skip the news pop-up.
    for name, value in [("notebook-extension/tracker", {"windowingMode": "none"}),
                        ("apputils-extension/notification", {"fetchNews": "false"})]:
        path = settings / "@jupyterlab" / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    env = {**session_env(), "JUPYTER_CONFIG_DIR": str(root / "cfg"), "JUPYTER_RUNTIME_DIR": str(root / "rt"),
           "JUPYTERLAB_SETTINGS_DIR": str(settings)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root",
         "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
         f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}",
         "--LabApp.expose_app_in_browser=True",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if proc.poll() is not None:
            raise RuntimeError((root / "lab.log").read_text()[-2000:])
        try:
            urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=5)
            return True
        except OSError:
            time.sleep(0.5)
            return False

    try:
        wait_watched(answers, proc.pid, "JupyterLab to start")
    except Exception:
        proc.kill()
        raise
    yield Lab(base, proc.pid, root)
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="module")
def browser():
    if not BROWSER_AVAILABLE:  # the learner flow then runs in tests/chapters/test_learner_notebooks.py
        pytest.skip("Chromium or playwright is not installed (apt-get install chromium), or "
                    "MOSAICS_NO_BROWSER=1")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run"])
        yield b
        b.close()


def _slider_state(figure) -> tuple[str, str]:
    """The first slider's handle position and its readout (a log slider's handle position is the
    exponent, rounded: its readout is what moves visibly)."""
    handle = figure.locator(".widget-slider .noUi-handle").first
    return handle.get_attribute("aria-valuenow"), figure.locator(".widget-readout").first.inner_text()


def _move_first_slider(figure) -> tuple[str, str]:
    """Move the figure's first slider one step (down when it sits at its maximum); its state before."""
    handle = figure.locator(".widget-slider .noUi-handle").first
    handle.scroll_into_view_if_needed()
    before = _slider_state(figure)
    now, top = handle.get_attribute("aria-valuenow"), handle.get_attribute("aria-valuemax")
    handle.focus()
    handle.page.keyboard.press("ArrowLeft" if float(now) >= float(top) else "ArrowRight")
    return before


SAVED = "() => { const w = window.jupyterapp.shell.currentWidget; return !!w && !w.context.model.dirty; }"
FIGURE_IMAGE = "([i]) => !!document.querySelector(`[data-cell-index=\"${i}\"] .widget-output img`)"

ERRORS = """() => {
  const cells = window.jupyterapp.shell.currentWidget.content.model.cells, found = [];
  for (let i = 0; i < cells.length; i++) {
    const c = cells.get(i);
    if (c.type !== 'code') continue;
    for (let j = 0; j < c.outputs.length; j++) {
      const o = c.outputs.get(j).toJSON();
      if (o.output_type === 'error') found.push(`cell ${i}: ${o.ename}: ${o.evalue}`);
    }
  }
  return found;
}"""


def _report(page, tmp_path: Path, chapter: str) -> None:
    shot = tmp_path / f"{chapter}-failure.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"page at failure: {shot}", file=sys.stderr)
    for error in page.evaluate(ERRORS):
        print(error[:600], file=sys.stderr)
    for text in page.locator(".jp-OutputArea-output").all_inner_texts():
        if "Error" in text or "Traceback" in text:
            print("cell output:", text[:600].replace("\n", " | "), file=sys.stderr)


@pytest.mark.parametrize("name", CHAPTERS, ids=lambda n: n[:2])
def test_chapter_runs_in_jupyterlab_and_its_widgets_respond(name, lab, browser, tmp_path, capsys):
    _with_one_retry(name, lab, browser, tmp_path, capsys, stubs=False)


def test_chapter_00_with_its_stubs_runs_in_jupyterlab(lab, browser, tmp_path, capsys):
    _with_one_retry(CHAPTERS[0], lab, browser, tmp_path, capsys, stubs=True)


def _with_one_retry(name, lab, browser, tmp_path, capsys, stubs: bool) -> None:
    for attempt in (1, 2):  # a hung kernel is caught by the watched waits; the chapter runs once more
        try:
            return _run_chapter(name, lab, browser, tmp_path, capsys, attempt, stubs)
        except KernelHang as hang:
            if attempt == 2:
                raise
            print(f"{name}: {hang}; running the chapter again in a fresh kernel", file=sys.stderr)


def _run_chapter(name, lab, browser, tmp_path, capsys, attempt: int, stubs: bool) -> None:
    chapter = Path(name).stem
    figure_cells = _figure_cells(name)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    kernel_up = True
    folder = f"{STUBS}/chapters" if stubs else "chapters"
    try:
        # A workspace of its own: the page must not reopen the notebooks of earlier chapters.
        space = f"ui-{chapter[:2]}{'-stubs' if stubs else ''}-{attempt}"
        page.goto(lab(f"lab/workspaces/{space}/tree/{folder}/{name}"))
        wait_for(page, lab, KERNEL_IDLE, f"{name}: its kernel to start")
        page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
        state = wait_for(page, lab, RUN_ALL_STATE, f"{name}: run all").json_value()
        assert state["state"] == "done", f"{name}: cells {state['errors']} show an error"

        # Every widget the kernel displayed is drawn, none reports a failure to render.
        views = page.locator(RENDERED_WIDGET)
        expected_views = sum(state["views"].values())
        wait_for(page, lab, "([sel, n]) => document.querySelectorAll(sel).length >= n",
                 f"{name}: {expected_views} widgets drawn", arg=[RENDERED_WIDGET, expected_views])
        assert views.count() == expected_views, f"{name}: {expected_views} widgets displayed, " \
            f"{views.count()} drawn"
        rendered = " ".join(views.all_inner_texts())
        assert "Error displaying widget" not in rendered and "not registered" not in rendered
        stderr = page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
        tracebacks = [t for t in stderr.all_inner_texts()  # a check's report is no error
                      if ("Traceback" in t or "Error" in t) and not t.startswith("✗ [chapter")]
        assert not tracebacks, f"{name}: error text in an output: {tracebacks[0][:500]}"

        # Each interactive figure shows once in its cell, and moving its first slider redraws it.
        assert figure_cells, f"{name} has no interactive figure"
        page.evaluate("""() => window.jupyterapp.shell.currentWidget.content.widgets.forEach(
                             (cell, i) => cell.node.setAttribute('data-cell-index', String(i)))""")
        for k, index in enumerate(figure_cells):
            cell = page.locator(f'[data-cell-index="{index}"]')
            figures = cell.locator(f"{RENDERED_WIDGET}:has(.widget-output)")
            assert figures.count() == 1, f"{name}: cell {index} shows {figures.count()} interactive figures"
            figure = figures.first
            img = figure.locator(".widget-output img").first
            wait_for(page, lab, FIGURE_IMAGE, f"{name}: cell {index}'s figure", arg=[index])
            if k == 0:
                figure.scroll_into_view_if_needed()
                shot = tmp_path / f"{chapter}-first-widget.png"
                figure.screenshot(path=str(shot))
                with capsys.disabled():
                    print(f"\n{name}: first widget screenshot {shot}")
            before = img.get_attribute("src")
            assert before and before.startswith("data:image/png")
            old_value = _move_first_slider(figure)
            wait_for(page, lab,
                     """([cellIndex, old]) => {
                          const cell = document.querySelector(`[data-cell-index="${cellIndex}"]`);
                          const img = cell && cell.querySelector('.widget-output img');
                          return !!img && img.getAttribute('src') !== old; }""",
                     f"{name}: cell {index} to redraw after a slider move", arg=[index, before])
            new_value = _slider_state(figure)
            assert new_value != old_value, f"{name}: cell {index}: the slider did not move ({new_value})"

        # Save as the learner does, then the learner's check of the saved file.
        page.evaluate("() => { window.jupyterapp.commands.execute('docmanager:save'); }")
        wait_for(page, lab, SAVED, f"{name}: JupyterLab to save the notebook")
        # the saved file is all the check needs: free the chapter's kernel before the check starts
        # its own (two idle-and-busy kernels at once were the test command's memory peak)
        _shut_down_kernel(page)
        kernel_up = False
        saved = lab.root / folder / name
        if stubs:
            problems, exercises = session_problems(nbformat.read(saved, as_version=4), chapter)
            assert not problems, f"{name}, run in JupyterLab:\n" + "\n".join(problems)
            problems = nbval_problems(saved, chapter, exercises)
            assert not problems, f"{name}, saved from JupyterLab:\n" + "\n".join(problems)
        else:
            _check_saved_with_answers(saved, chapter)
    except Exception:
        _report(page, tmp_path, chapter)
        raise
    finally:
        if kernel_up:  # free the chapter's kernel before the next chapter starts its own
            try:
                _shut_down_kernel(page)
            except Exception as exc:  # noqa: BLE001 - a failed shutdown must not hide the test's error
                print(f"kernel shutdown failed: {exc}", file=sys.stderr)
        page.close()


def _check_saved_with_answers(saved: Path, chapter: str) -> None:
    """The saved notebook holds every cell's outputs, no error, and ``pytest --nbval`` passes on it
    (run from the clone's root for even chapters, from ``chapters/`` for odd ones)."""
    nb = nbformat.read(saved, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code), f"{chapter}: the saved notebook lacks outputs"
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, f"{chapter}: {errors[0].ename}: {errors[0].evalue[-3000:]}"
    cwd = saved.parent if int(chapter[:2]) % 2 else saved.parent.parent
    res = pytest_nbval(saved, cwd)
    assert res.returncode == 0 and f"{len(code)} passed" in res.stdout, (
        f"`pytest --nbval` (run in {cwd.name}/) failed on {saved.name} as saved from JupyterLab, every "
        f"exercise right:\n{res.stdout[-6000:]}\n{res.stderr[-2000:]}")


def _shut_down_kernel(page) -> None:
    """Shut the current notebook's kernel down. The promise settles when the server answers the
    session's deletion, which it does after the kernel has shut down."""
    page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.shutdown()")
