"""Build every chapter's two notebooks from its one Jupytext source.

    python tools/build_notebooks.py            # rebuild all chapters
    python tools/build_notebooks.py 01         # only chapters whose name starts with 01

``chapters/sources/NN_name.py`` (py:percent, solutions between ``### BEGIN SOLUTION`` and
``### END SOLUTION``) becomes

- ``chapters/NN_name.ipynb``            the learner notebook: each solution replaced by a stub,
- ``chapters/solutions/NN_name.ipynb``  the solutions notebook: markers removed.

Both are written without outputs, with an "Open in Colab" badge, a setup cell that installs the
package only on Colab, and the chapter's learner time (``tools/learner_time.py``) at the end of its
first markdown cell. The notebooks are committed (Colab and GitHub open ``.ipynb`` only);
``tests/chapters/test_notebook_build.py`` fails when they differ from a fresh build.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "chapters" / "sources"
LEARNER_DIR = ROOT / "chapters"
SOLUTIONS_DIR = ROOT / "chapters" / "solutions"

# Where the course lives on GitHub: the one setting behind every Colab badge and Colab install cell.
# Whoever publishes the course sets it (owner/name, and the branch or tag learners should get),
# then runs this script and commits the notebooks (CONTRIBUTING.md, "Publishing").
REPO = "memory-mosaics-course/mosaics-step-by-step"
BRANCH = "main"

# Colab comes with everything the chapters import (numpy, matplotlib, torch, ipywidgets 7.7, tqdm,
# IPython), so the package goes in with --no-deps: Colab keeps its own CUDA torch and the
# ipywidgets 7 its front end renders (the package asks for ipywidgets>=8, which JupyterLab 4 needs).
COLAB_SETUP = f'''# Setup: on Colab, install the course package alone (Colab's torch and widgets stay).
import subprocess
import sys

if "google.colab" in sys.modules:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                           "mosaics-edu @ git+https://github.com/{REPO}@{BRANCH}"])'''

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
REGION = re.compile(
    r"^(?P<indent>[ \t]*)### BEGIN SOLUTION[^\n]*\n.*?^[ \t]*### END SOLUTION[^\n]*(\n|$)",
    re.M | re.S,
)
STUB = "\\g<indent># YOUR CODE HERE\n\\g<indent>raise NotImplementedError()\n"
MARKER_LINE = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[^\n]*(\n|$)", re.M)


def read_source(path: Path) -> nbformat.NotebookNode:
    """Read a chapter source, insisting on the percent format."""
    return jupytext.read(path, fmt="py:percent")


def _check_markers(nb: nbformat.NotebookNode, name: str) -> None:
    for i, cell in enumerate(nb.cells):
        begins, ends = cell.source.count(BEGIN), cell.source.count(END)
        if begins != ends:
            raise ValueError(f"{name}: cell {i} has {begins} '{BEGIN}' but {ends} '{END}' markers")
        if begins and cell.cell_type != "code":
            raise ValueError(f"{name}: cell {i} is markdown but holds solution markers")


def _with_header(nb: nbformat.NotebookNode, path_in_repo: str, kind: str) -> nbformat.NotebookNode:
    badge = (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
             f"(https://colab.research.google.com/github/{REPO}/blob/{BRANCH}/{path_in_repo})")
    note = {
        "learner": "This is the **learner notebook**: exercises hold stubs for you to fill in. "
                   "The worked answers are in `chapters/solutions/`.",
        "solutions": "This is the **solutions notebook**: every exercise is filled in. "
                     "Try the learner notebook in `chapters/` first.",
    }[kind]
    head = [
        nbformat.v4.new_markdown_cell(f"{badge}\n\n{note}"),
        # remove-cell: the course website leaves the Colab cell out.
        nbformat.v4.new_code_cell(COLAB_SETUP, metadata={"tags": ["colab-setup", "remove-cell"]}),
    ]
    nb.cells = head + nb.cells
    return nb


def _clean(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    nb.metadata.pop("jupytext", None)
    nb.metadata.setdefault("kernelspec", {
        "display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"})
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:03d}"  # stable ids: rebuilding gives byte-identical files
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        keep = {k: v for k, v in cell.metadata.items() if k == "tags"}
        cell.metadata = nbformat.NotebookNode(keep)
    return nb


def learner(nb: nbformat.NotebookNode, name: str = "chapter") -> nbformat.NotebookNode:
    """The learner build: every solution region replaced by a ``NotImplementedError`` stub."""
    _check_markers(nb, name)
    nb = nbformat.from_dict(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = REGION.sub(STUB, cell.source).rstrip("\n")
    return _clean(_with_header(nb, f"chapters/{name}.ipynb", "learner"))


def solutions(nb: nbformat.NotebookNode, name: str = "chapter") -> nbformat.NotebookNode:
    """The solutions build: the markers removed, the answers kept."""
    _check_markers(nb, name)
    nb = nbformat.from_dict(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = MARKER_LINE.sub("", cell.source).rstrip("\n")
    return _clean(_with_header(nb, f"chapters/solutions/{name}.ipynb", "solutions"))


def with_learner_time(nb: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """The chapter with its learner time (``tools/learner_time.py``) closing its first markdown cell."""
    from learner_time import learner_time

    nb = nbformat.from_dict(nb)
    first = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    if first is None:
        raise ValueError(f"{name}: a chapter starts with a markdown cell (title, objectives)")
    first.source = first.source.rstrip("\n") + "\n\n" + learner_time(nb, name).sentence()
    return nb


def build(source: Path) -> tuple[nbformat.NotebookNode, nbformat.NotebookNode]:
    """Both notebooks of one chapter source, in memory, the learner time in their front matter."""
    nb = with_learner_time(read_source(source), source.stem)
    return learner(nb, source.stem), solutions(nb, source.stem)


def sources(prefix: str = "") -> list[Path]:
    """Every chapter source, in course order."""
    return sorted(p for p in SOURCES.glob(f"{prefix}*.py") if p.stem[:2].isdigit())


def main(argv: list[str]) -> int:
    prefix = argv[0] if argv else ""
    found = sources(prefix)
    if not found:
        print(f"no chapter source matches '{prefix}*' in {SOURCES}", file=sys.stderr)
        return 1
    SOLUTIONS_DIR.mkdir(exist_ok=True)
    for src in found:
        stu, sol = build(src)
        nbformat.write(stu, LEARNER_DIR / f"{src.stem}.ipynb")
        nbformat.write(sol, SOLUTIONS_DIR / f"{src.stem}.ipynb")
        print(f"built chapters/{src.stem}.ipynb and chapters/solutions/{src.stem}.ipynb")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
