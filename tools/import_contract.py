"""The package's import contract, checked by reading the source (``ast``), importing nothing.

    python tools/import_contract.py        # prints every violation; exit status 1 if any

Every module of ``mosaics_edu`` lies in one layer, and the layers are ordered, lowest first
(:data:`LAYERS`). The contract, three rules:

1. **No upward import**: a module imports only modules of its own layer or of a lower one.
   Importing ``a.b.c`` also runs the package ``a.b`` (its ``__init__``), so that counts as an
   import of ``a.b`` too, for every module outside ``a.b``.
2. **No import cycle** between modules (same layer or not).
3. **No private name across modules**: ``from .x import _y`` is refused (a module's ``_names``
   are its own business), and so is ``obj._y`` where ``_y`` is defined in another module of the
   package and nowhere in the module that reads it (``model._logits(h)`` from outside the
   model's module).

The chapters' sources (``chapters/sources/*.py``) are checked too, as a layer above all: they
may import anything, but no private name either (a learner reads what a chapter uses).

Every import counts, wherever it stands: at the top, inside a function (a lazy import is still
a dependency), under ``if __name__ == "__main__":``. A module that matches no layer is a
violation too, so a new module gets its place in :data:`LAYERS` before it can ship.

``tests/tools/test_import_contract.py`` runs the contract on the package, and the checker itself on
small made-up packages (an upward import, a cycle, a private import must each be reported; a
clean package must pass).
"""

from __future__ import annotations

import ast
import fnmatch
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "mosaics_edu"
CHAPTERS = "chapters/sources"

# The layers, lowest first: (name, module patterns). A pattern is a module name or an
# ``fnmatch`` glob; a module takes the layer of its exact name if one lists it, else of the
# longest glob that matches it.
LAYERS: list[tuple[str, list[str]]] = [
    # the math (retrieval, keys and values, the layers, v2's pieces), the data (corpus,
    # tokenizers, token files) and the small utilities they share; no model, no training
    ("core", ["mosaics_edu", "mosaics_edu.core", "mosaics_edu.core.*", "mosaics_edu.data",
              "mosaics_edu.data.*"]),
    # the language models (v1, v2, GPT), the registry of model kinds, the FLOPs formulas
    ("models", ["mosaics_edu.models", "mosaics_edu.models.*"]),
    # training: config, schedules, the shared optimizer step, Trainer, the checkpoint format, the run
    # cache, the command line
    ("training", ["mosaics_edu.training", "mosaics_edu.training.*"]),
    # what the chapters use: toys and figures, experiments, inspection, exercise checks, widgets
    ("course", ["mosaics_edu.course", "mosaics_edu.course.*"]),
    # the entry points (python -m mosaics_edu.train / .regbench / .moons / .bench), which
    # nothing in the package imports
    ("tools", ["mosaics_edu.train", "mosaics_edu.regbench", "mosaics_edu.moons",
               "mosaics_edu.bench"]),
    # the chapters: any layer, but no private name
    ("chapters", ["chapters.sources.*"]),
]


@dataclass
class Module:
    """One module read from source: its dotted name, whether it is a package's ``__init__``,
    its file (for messages) and its syntax tree."""

    name: str
    is_package: bool
    path: str
    tree: ast.Module
    defined: set[str] = field(default_factory=set)  # every _name this module defines


@dataclass(frozen=True)
class Edge:
    """``importer`` imports module ``target`` at line ``line``."""

    importer: str
    target: str
    line: int
    implicit: bool = False  # the package __init__ that importing a sub-module runs


def read_modules(files: dict[str, str]) -> dict[str, Module]:
    """Modules from ``{relative path: source}`` (``pkg/__init__.py``, ``pkg/a.py``, ...)."""
    modules: dict[str, Module] = {}
    for path, source in sorted(files.items()):
        parts = Path(path).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        tree = ast.parse(source, filename=path)
        modules[name] = Module(name, is_package, path, tree, _private_definitions(tree))
    return modules


def package_files(root: Path = ROOT, package: str = PACKAGE, chapters: str = CHAPTERS) -> dict[str, str]:
    """``{relative path: source}`` of every ``.py`` file of ``package`` and of the chapters'
    sources under ``root``."""
    paths = [*(root / package).rglob("*.py"), *(root / chapters).glob("*.py")]
    return {p.relative_to(root).as_posix(): p.read_text(encoding="utf-8") for p in sorted(paths)}


def _private_definitions(tree: ast.Module) -> set[str]:
    """Private names a module defines: functions, classes, assigned names and attributes."""
    out: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.append(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.append(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.append(node.attr)
        elif isinstance(node, ast.arg):
            names.append(node.arg)
        elif isinstance(node, ast.alias):
            names.append((node.asname or node.name).split(".")[0])
        out.update(n for n in names if _is_private(n))
    return out


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _resolve(module: Module, level: int, target: str | None) -> str:
    """The absolute name of ``from <level dots><target> import ...`` inside ``module``."""
    if level == 0:
        return target or ""
    base = module.name.split(".")
    if not module.is_package:
        base = base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def imports(modules: dict[str, Module], package: str) -> tuple[list[Edge], list[str]]:
    """Every import edge between modules of ``package``, and the private-name violations."""
    edges: list[Edge] = []
    private: list[str] = []

    def add(importer: Module, target: str, line: int) -> None:
        edges.append(Edge(importer.name, target, line))
        # importing a.b.c runs a.b's __init__ (a package the importer is not inside of)
        parts = target.split(".")
        for i in range(2, len(parts)):
            parent = ".".join(parts[:i])
            inside = importer.name == parent or importer.name.startswith(parent + ".")
            if parent in modules and not inside:
                edges.append(Edge(importer.name, parent, line, implicit=True))

    for module in modules.values():
        for node in ast.walk(module.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name == package or alias.name.startswith(package + "."):
                        add(module, _known(modules, alias.name), node.lineno)
            elif isinstance(node, ast.ImportFrom):
                source = _resolve(module, node.level, node.module)
                if not (source == package or source.startswith(package + ".")):
                    continue
                for alias in node.names:
                    sub = f"{source}.{alias.name}"
                    if sub in modules:  # from pkg import module
                        add(module, sub, node.lineno)
                        continue
                    add(module, _known(modules, source), node.lineno)
                    if _is_private(alias.name) and source != module.name:
                        private.append(
                            f"private name: {module.name} imports {alias.name} from {source} "
                            f"({module.path}:{node.lineno}); give it a public name or move it"
                        )
            elif (
                isinstance(node, ast.Attribute)
                and _is_private(node.attr)
                and node.attr not in module.defined
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
            ):
                owners = sorted(m.name for m in modules.values() if node.attr in m.defined)
                if owners:
                    private.append(
                        f"private name: {module.name} reads .{node.attr}, defined in "
                        f"{', '.join(owners)} ({module.path}:{node.lineno}); give it a public name"
                    )
    return edges, private


def _known(modules: dict[str, Module], name: str) -> str:
    """``name`` if it is a module, else its longest prefix that is one."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        candidate = ".".join(parts[:i])
        if candidate in modules:
            return candidate
    return name


def layer_of(name: str, layers: list[tuple[str, list[str]]]) -> int | None:
    """Index of the layer ``name`` lies in: an exact listing first, else the longest glob."""
    best: tuple[int, int] | None = None  # (pattern length, layer)
    for index, (_, patterns) in enumerate(layers):
        for pattern in patterns:
            if pattern == name:
                return index
            if any(c in pattern for c in "*?[") and fnmatch.fnmatchcase(name, pattern):
                if best is None or len(pattern) > best[0]:
                    best = (len(pattern), index)
    return None if best is None else best[1]


def cycles(edges: list[Edge]) -> list[list[str]]:
    """One import cycle (a list of modules, first repeated last) per strongly connected group."""
    graph: dict[str, set[str]] = {}
    for e in edges:
        if e.importer != e.target:
            graph.setdefault(e.importer, set()).add(e.target)
            graph.setdefault(e.target, set())
    # Tarjan's strongly connected components, iteratively
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    groups: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        groups.append(sorted(group))
            elif child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return [_one_cycle(group, graph) for group in groups]


def _one_cycle(group: list[str], graph: dict[str, set[str]]) -> list[str]:
    """A shortest cycle through the first module of a strongly connected group."""
    members = set(group)
    start = group[0]
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for child in sorted(graph[node] & members):
            if child == start:
                return paths[node] + [start]
            if child not in paths:
                paths[child] = paths[node] + [child]
                queue.append(child)
    raise AssertionError("a strongly connected group always holds a cycle")


def violations(
    files: dict[str, str], layers: list[tuple[str, list[str]]] = LAYERS, package: str = PACKAGE
) -> list[str]:
    """Every breach of the contract by the package in ``files`` ({relative path: source})."""
    modules = read_modules(files)
    edges, out = imports(modules, package)
    for name in sorted(modules):
        if layer_of(name, layers) is None:
            out.append(f"unlayered module: {name} ({modules[name].path}) matches no layer; add it")
    for e in sorted(set(edges), key=lambda e: (e.importer, e.line, e.target, e.implicit)):
        low, high = layer_of(e.importer, layers), layer_of(e.target, layers)
        if low is not None and high is not None and high > low:
            how = " (its package __init__ runs on import)" if e.implicit else ""
            out.append(
                f"upward import: {e.importer} ({layers[low][0]}) imports {e.target} "
                f"({layers[high][0]}){how} at {modules[e.importer].path}:{e.line}"
            )
    for cycle in cycles(edges):
        out.append("import cycle: " + " -> ".join(cycle))
    return out


def main() -> int:
    found = violations(package_files())
    for line in found:
        print(line)
    print(f"import contract: {len(found)} violation(s)" if found else "import contract: kept")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
