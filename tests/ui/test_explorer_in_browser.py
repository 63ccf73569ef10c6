"""Chapter 07's retrieval explorer, driven in JupyterLab + Chromium as a learner drives it.

The generic test (``test_widget_in_browser.py``) runs every chapter and moves one slider per figure.
This one checks what is particular to the explorer: typing a new text into its text box (and
pressing Enter) redraws the view and refits the position slider to the new text's length, and
moving the position slider afterwards redraws it again. Only the cells up to the explorer run (the
rest of the chapter is the generic test's job). It reuses the generic module's JupyterLab server,
browser and helpers.
"""

from __future__ import annotations

import sys

import nbformat
import pytest

from . import test_widget_in_browser as generic

lab = generic.lab  # the fixtures, shared: one JupyterLab server, one browser
browser = generic.browser

pytestmark = generic.pytestmark  # ui, and the browser tests' xdist group (one worker, one server)

NAME = next((n for n in generic.CHAPTERS if n.startswith("07_")), None)
NEW_TEXT = "Mo and Pip went to the lake. Mo saw a fish. Pip said, Mo, look!"

CELLS_DONE = """(last) => {
  const w = window.jupyterapp.shell.currentWidget;
  if (!w || !w.sessionContext.session || !w.sessionContext.session.kernel) return null;
  const cells = w.content.model.cells;
  for (let i = 0; i <= last; i++) {
    const c = cells.get(i);
    if (c.type !== 'code') continue;
    for (let j = 0; j < c.outputs.length; j++)
      if (c.outputs.get(j).type === 'error') return {state: 'error', cell: i};
    if (c.executionCount === null) return null;
  }
  return w.sessionContext.session.kernel.status === 'idle' ? {state: 'done'} : null;
}"""


def _explorer_cell() -> int:
    nb = nbformat.read(generic.SOLUTIONS / NAME, as_version=4)
    found = [
        i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code"
        and "explorer_controls" in c.source
        and any(line.startswith("interactive_figure(") for line in c.source.splitlines())
    ]
    assert len(found) == 1, f"{NAME}: expected one explorer cell, found {found}"
    return found[0]


def _wait_new_image(page, index: int, old: str) -> str:
    page.wait_for_function(
        """([cellIndex, old]) => {
             const cell = document.querySelector(`[data-cell-index="${cellIndex}"]`);
             const img = cell && cell.querySelector('.widget-output img');
             return !!img && img.getAttribute('src') !== old; }""",
        arg=[index, old],
        timeout=generic.REDRAW_MS,
    )
    return page.locator(f'[data-cell-index="{index}"] .widget-output img').first.get_attribute("src")


def _settled_src(page, index: int) -> str:
    """The figure's image once the kernel is idle and the image has stopped changing (typing a text
    can redraw twice: once for the text, once more when the refitted slider clamps the position)."""
    page.wait_for_function(generic.KERNEL_IDLE, timeout=generic.REDRAW_MS)
    img = page.locator(f'[data-cell-index="{index}"] .widget-output img').first
    src = img.get_attribute("src")
    for _ in range(int(generic.REDRAW_MS / 1000)):
        page.wait_for_timeout(1000)
        now = img.get_attribute("src")
        if now == src:
            return src
        src = now
    raise AssertionError("the explorer's image never settled")


@pytest.mark.skipif(NAME is None, reason="chapter 07 is not built")
def test_typing_a_text_and_moving_the_position_redraw_the_explorer(lab, browser, tmp_path):
    index = _explorer_cell()
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(lab(f"lab/workspaces/ui-07-explorer/tree/{NAME}"))
        page.wait_for_function(generic.KERNEL_IDLE, timeout=generic.KERNEL_START_MS)
        page.evaluate(
            """(i) => { const nb = window.jupyterapp.shell.currentWidget.content;
                                   nb.activeCellIndex = i + 1;
                                   window.jupyterapp.commands.execute('notebook:run-all-above'); }""",
            index,
        )
        state = page.wait_for_function(
            CELLS_DONE, arg=index, timeout=generic.RUN_ALL_MS, polling=500
        ).json_value()
        assert state["state"] == "done", f"{NAME}: cell {state.get('cell')} shows an error"
        page.evaluate("""() => window.jupyterapp.shell.currentWidget.content.widgets.forEach(
                             (cell, i) => cell.node.setAttribute('data-cell-index', String(i)))""")
        figure = page.locator(
            f'[data-cell-index="{index}"] {generic.RENDERED_WIDGET}:has(.widget-output)'
        ).first
        img = figure.locator(".widget-output img").first
        img.wait_for(state="attached", timeout=generic.REDRAW_MS)
        figure.scroll_into_view_if_needed()
        before = img.get_attribute("src")
        slider = figure.locator(".widget-slider .noUi-handle").first
        old_max = int(float(slider.get_attribute("aria-valuemax")))

        # type a short text and press Enter: the view redraws, the position slider spans its tokens
        box = figure.locator(".widget-text input").first
        box.fill(NEW_TEXT)
        box.press("Enter")
        _wait_new_image(page, index, before)
        page.wait_for_function(
            "([h, old]) => { const e = document.querySelectorAll(h)[0]; "
            "return !!e && Number(e.getAttribute('aria-valuemax')) !== old; }",
            arg=[f'[data-cell-index="{index}"] .widget-slider .noUi-handle', old_max],
            timeout=generic.REDRAW_MS,
        )
        new_max = int(float(slider.get_attribute("aria-valuemax")))
        assert 1 <= new_max < old_max, f"position slider max {old_max} -> {new_max} for a short text"
        after_text = _settled_src(page, index)
        shot = tmp_path / "07-explorer-new-text.png"
        figure.screenshot(path=str(shot))
        print(f"\nexplorer after typing: {shot}", file=sys.stderr)

        # move the position slider: the view redraws again
        old_value = generic._move_first_slider(figure)
        _wait_new_image(page, index, after_text)
        assert slider.get_attribute("aria-valuenow") != old_value, "the position slider did not move"
    except Exception:
        generic._report(page, tmp_path, "07-explorer")
        raise
    finally:
        try:
            page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.shutdown()")
        except Exception as exc:  # noqa: BLE001 - a failed shutdown must not hide the test's own error
            print(f"kernel shutdown failed: {exc}", file=sys.stderr)
        page.close()
