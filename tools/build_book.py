"""Build the course website (book/): run every solutions notebook, then let Jupyter Book render them.

    python tools/build_book.py [--jobs 2]

The chapters are executed here, not by Jupyter Book, so that they run under the same hang
protection as the test suite (tools/kernel_guard.py: a kernel that stops working is caught in
minutes and the chapter re-run once; none is left running). Each executed notebook is written to
``book/_executed/`` (``book/chapters`` points there) with the hash of the code it ran (its cells
and every file of the package); an unchanged chapter is not run again. Kernels get one math
thread each, as in the tests: several spinning math threads on a busy machine made chapter 02
take 119 s instead of about 20. Then
``jupyter-book build -W -n --keep-going book/`` renders the pages (warnings are errors) without
executing anything (``execute_notebooks: off`` in book/_config.yml).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kernel_guard import execute  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "chapters" / "solutions"
BOOK = ROOT / "book"
EXECUTED = BOOK / "_executed"
THREADS = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


def package_hash() -> str:
    """Every file of the package (code, checks, shipped weights and results): a chapter's output
    depends on them as much as on its own cells."""
    h = hashlib.sha256()
    package = ROOT / "mosaics_edu"
    for path in sorted(p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        h.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def code_hash(nb: nbformat.NotebookNode, package: str | None = None) -> str:
    """What decides whether an executed copy is still valid: the code cells' sources and the
    package they import."""
    code = "\n\0".join(c.source for c in nb.cells if c.cell_type == "code")
    return hashlib.sha256((package or package_hash()).encode() + code.encode()).hexdigest()[:16]


def is_fresh(name: str) -> bool:
    """The executed copy exists and ran exactly the code of today's solutions notebook."""
    done = EXECUTED / name
    if not done.exists():
        return False
    want = code_hash(nbformat.read(SOLUTIONS / name, as_version=4))
    return nbformat.read(done, as_version=4).metadata.get("executed_code_hash") == want


def run_chapter(name: str) -> tuple[str, float]:
    """Execute one solutions notebook (stopping at a failing cell) and write it atomically."""
    nb = nbformat.read(SOLUTIONS / name, as_version=4)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as sockets:  # unix sockets: no TCP port to clash or expose
        execute(nb, SOLUTIONS, env={**os.environ, **THREADS}, sockets=sockets)
    nb.metadata["executed_code_hash"] = code_hash(nb)
    EXECUTED.mkdir(exist_ok=True)
    tmp = EXECUTED / f".{name}.tmp"
    nbformat.write(nb, tmp)
    tmp.replace(EXECUTED / name)
    return name, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="chapters executed at once (default 2)")
    parser.add_argument("--no-render", action="store_true", help="execute only; skip jupyter-book")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs {args.jobs}: give at least 1")
    names = sorted(p.name for p in SOLUTIONS.glob("[0-9][0-9]_*.ipynb"))
    todo = [n for n in names if not is_fresh(n)]
    print(f"{len(names) - len(todo)} chapters unchanged, {len(todo)} to run", flush=True)
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for name, seconds in pool.map(run_chapter, todo):
            print(f"ran {name} in {seconds:.0f} s", flush=True)
    for stale in set(p.name for p in EXECUTED.glob("*.ipynb")) - set(names):
        (EXECUTED / stale).unlink()  # a chapter that no longer exists
    if args.no_render:
        return 0
    cmd = ["jupyter-book", "build", "-W", "-n", "--keep-going", str(BOOK)]
    return subprocess.call(cmd, cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main())
