"""Chapter 08's retrieval explorer, driven in JupyterLab + Chromium as a learner drives it.

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
from kernel_guard import wait_watched

from . import test_widget_in_browser as generic

lab = generic.lab  # the fixtures, shared: one JupyterLab server, one browser
browser = generic.browser

pytestmark = generic.pytestmark  # ui, and the browser tests' xdist group (one worker, one server)

NAME = next((n for n in generic.CHAPTERS if n.startswith("08_")), None)
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
    nb = nbformat.read(generic.LEARNER / NAME, as_version=4)
    found = [
        i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code"
        and "explorer_controls" in c.source
        and any(line.startswith("interactive_figure(") for line in c.source.splitlines())
    ]
    assert len(found) == 1, f"{NAME}: expected one explorer cell, found {found}"
    return found[0]


def _wait_new_image(page, lab, index: int, old: str) -> str:
    generic.wait_for(page, lab, """([cellIndex, old]) => {
             const cell = document.querySelector(`[data-cell-index="${cellIndex}"]`);
             const img = cell && cell.querySelector('.widget-output img');
             return !!img && img.getAttribute('src') !== old; }""",
                     f"the explorer (cell {index}) to redraw", arg=[index, old])
    return page.locator(f'[data-cell-index="{index}"] .widget-output img').first.get_attribute("src")


def _settled_src(page, lab, index: int) -> str:
    """The figure's image once the kernel is idle and the image has stopped changing for two looks
    a second apart (typing a text can redraw twice: once for the text, once more when the refitted
    slider clamps the position)."""
    generic.wait_for(page, lab, generic.KERNEL_IDLE, "the kernel to finish redrawing")
    img = page.locator(f'[data-cell-index="{index}"] .widget-output img').first
    seen = [img.get_attribute("src")]

    def unchanged():
        page.wait_for_timeout(1000)
        seen.append(img.get_attribute("src"))
        return seen[-1] if seen[-1] == seen[-2] else None

    return wait_watched(unchanged, lab.pid, "the explorer's image to settle")


@pytest.mark.skipif(NAME is None, reason="chapter 08 is not built")
def test_typing_a_text_and_moving_the_position_redraw_the_explorer(lab, browser, tmp_path):
    index = _explorer_cell()
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(lab(f"lab/workspaces/ui-07-explorer/tree/chapters/{NAME}"))
        generic.wait_for(page, lab, generic.KERNEL_IDLE, "chapter 08's kernel to start")
        page.evaluate(
            """(i) => { const nb = window.jupyterapp.shell.currentWidget.content;
                                   nb.activeCellIndex = i + 1;
                                   window.jupyterapp.commands.execute('notebook:run-all-above'); }""",
            index,
        )
        state = generic.wait_for(page, lab, CELLS_DONE, "the cells up to the explorer to run",
                                 arg=index).json_value()
        assert state["state"] == "done", f"{NAME}: cell {state.get('cell')} shows an error"
        page.evaluate("""() => window.jupyterapp.shell.currentWidget.content.widgets.forEach(
                             (cell, i) => cell.node.setAttribute('data-cell-index', String(i)))""")
        figure = page.locator(
            f'[data-cell-index="{index}"] {generic.RENDERED_WIDGET}:has(.widget-output)'
        ).first
        img = figure.locator(".widget-output img").first
        generic.wait_for(page, lab, generic.FIGURE_IMAGE, "the explorer's figure", arg=[index])
        figure.scroll_into_view_if_needed()
        before = img.get_attribute("src")
        slider = figure.locator(".widget-slider .noUi-handle").first
        old_max = int(float(slider.get_attribute("aria-valuemax")))

        # type a short text and press Enter: the view redraws, the position slider spans its tokens
        box = figure.locator(".widget-text input").first
        box.fill(NEW_TEXT)
        box.press("Enter")
        _wait_new_image(page, lab, index, before)
        generic.wait_for(
            page, lab,
            "([h, old]) => { const e = document.querySelectorAll(h)[0]; "
            "return !!e && Number(e.getAttribute('aria-valuemax')) !== old; }",
            "the position slider to refit", arg=[f'[data-cell-index="{index}"] .widget-slider .noUi-handle',
                                                 old_max])
        new_max = int(float(slider.get_attribute("aria-valuemax")))
        assert 1 <= new_max < old_max, f"position slider max {old_max} -> {new_max} for a short text"
        after_text = _settled_src(page, lab, index)
        shot = tmp_path / "07-explorer-new-text.png"
        figure.screenshot(path=str(shot))
        print(f"\nexplorer after typing: {shot}", file=sys.stderr)

        # move the position slider: the view redraws again
        old_value = generic._move_first_slider(figure)
        _wait_new_image(page, lab, index, after_text)
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
