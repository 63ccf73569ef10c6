"""The import contract (tools/import_contract.py): the package keeps it, and the checker can fail.

Layers, lowest first: core (math, data, utilities) -> models -> training -> course -> tools (the
command lines). No upward import, no import cycle, no private name used across modules. Pure
``ast``: nothing is imported, so this runs in a second.
"""

from __future__ import annotations

import ast

import import_contract as ic
import pytest

LAYERS = [
    ("core", ["pkg", "pkg.low", "pkg.sub", "pkg.sub.*"]),
    ("models", ["pkg.mid"]),
    ("course", ["pkg.high", "pkg.*.__main__"]),
]

CLEAN = {
    "pkg/__init__.py": '"""A made-up package."""\n',
    "pkg/low.py": "import math\n\n\ndef _helper():\n    return math.pi\n\n\ndef helper():\n"
                  "    return _helper()\n",
    "pkg/sub/__init__.py": "from .leaf import LEAF\n",
    "pkg/sub/leaf.py": "from ..low import helper\n\nLEAF = helper()\n",
    "pkg/mid.py": "from . import low\nfrom .sub.leaf import LEAF\n\n\nclass Model:\n"
                  "    def _forward(self):\n        return self._forward_impl()\n\n"
                  "    def _forward_impl(self):\n        return low.helper() + LEAF\n",
    "pkg/high.py": "import pkg.mid as mid\n\n\ndef run():\n    from .low import helper\n"
                   "    return mid.Model(), helper()\n",
    "pkg/sub/__main__.py": "from pkg.high import run\n\nrun()\n",
}


def check(changed: dict[str, str] | None = None, layers=LAYERS) -> list[str]:
    """The contract's violations for CLEAN with some files replaced or added."""
    return ic.violations({**CLEAN, **(changed or {})}, layers, package="pkg")


def test_the_package_keeps_the_contract():
    found = ic.violations(ic.package_files())
    assert found == [], "the import contract is broken:\n" + "\n".join(found)


def test_a_clean_package_passes():
    assert check() == []


def test_every_import_edge_is_resolved():
    modules = ic.read_modules(CLEAN)
    edges, private = ic.imports(modules, "pkg")
    pairs = {(e.importer, e.target) for e in edges}
    assert ("pkg.sub.leaf", "pkg.low") in pairs  # from ..low import helper
    assert ("pkg.mid", "pkg.low") in pairs  # from . import low
    assert ("pkg.mid", "pkg.sub.leaf") in pairs and ("pkg.mid", "pkg.sub") in pairs  # + its __init__
    assert ("pkg.high", "pkg.mid") in pairs  # import pkg.mid as mid
    assert ("pkg.high", "pkg.low") in pairs  # a lazy import inside a function counts
    assert not any(e.target == "math" for e in edges) and private == []


@pytest.mark.parametrize("source, line", [
    ("from .high import run\n", 1),  # at the top
    ("def f():\n    from . import high\n    return high\n", 2),  # lazy, in a function
    ("import pkg.high\n", 1),  # absolute
    ('if __name__ == "__main__":\n    from pkg.high import run\n', 2),  # a __main__ block
])
def test_an_upward_import_is_reported(source, line):
    found = check({"pkg/low.py": source})
    ups = [f for f in found if f.startswith("upward import")]
    assert ups == [f"upward import: pkg.low (core) imports pkg.high (course) at pkg/low.py:{line}"]


def test_importing_a_sub_module_runs_its_package_init():
    # pkg.sub's __init__ is put in the top layer: a core module importing pkg.sub.leaf runs it
    layers = [("core", ["pkg", "pkg.low", "pkg.sub.leaf"]), ("models", ["pkg.mid"]),
              ("course", ["pkg.high", "pkg.sub", "pkg.*.__main__"])]
    found = check({"pkg/low.py": "import pkg.sub.leaf\n", "pkg/sub/leaf.py": "X = 1\n"}, layers)
    assert found == [
        f"upward import: pkg.{m} ({layer}) imports pkg.sub (course) (its package __init__ runs on "
        f"import) at pkg/{m}.py:{line}"
        for m, layer, line in (("low", "core", 1), ("mid", "models", 2))  # mid: from .sub.leaf
    ]


def test_a_cycle_is_reported():
    found = check({"pkg/low.py": "from . import sub\n"})  # low -> sub -> leaf -> low
    assert found == ["import cycle: pkg.low -> pkg.sub -> pkg.sub.leaf -> pkg.low"]
    two = check({"pkg/mid.py": "from . import high\n", "pkg/high.py": "from . import mid\n"})
    assert "import cycle: pkg.high -> pkg.mid -> pkg.high" in two


def test_a_private_import_is_reported():
    found = check({"pkg/mid.py": "from .low import _helper\n"})
    assert found == [
        "private name: pkg.mid imports _helper from pkg.low (pkg/mid.py:1); "
        "give it a public name or move it"
    ]


def test_reading_another_modules_private_member_is_reported():
    found = check({"pkg/high.py": "from .mid import Model\n\n\ndef run():\n    return Model()._forward()\n"})
    assert found == [
        "private name: pkg.high reads ._forward, defined in pkg.mid (pkg/high.py:5); give it a "
        "public name"
    ]


def test_private_names_inside_their_own_module_pass():
    # pkg.low calls its own _helper, pkg.mid its own methods through self: both in CLEAN
    assert "_helper" in ic.read_modules(CLEAN)["pkg.low"].defined
    assert check() == []


def test_a_module_in_no_layer_is_reported():
    found = check({"pkg/extra.py": "X = 1\n"})
    assert found == ["unlayered module: pkg.extra (pkg/extra.py) matches no layer; add it"]


def test_layer_of_prefers_an_exact_listing_then_the_longest_glob():
    layers = [("a", ["p.*"]), ("b", ["p.x"]), ("c", ["p.y.*"])]
    assert ic.layer_of("p.x", layers) == 1
    assert ic.layer_of("p.z", layers) == 0
    assert ic.layer_of("p.y.w", layers) == 2
    assert ic.layer_of("q", layers) is None


def test_a_chapter_may_import_any_layer_but_no_private_name():
    layers = [*LAYERS, ("chapters", ["chapters.sources.*"])]
    chapter = "from pkg.high import run\nfrom pkg import low\n\nrun()\n"
    assert check({"chapters/sources/01_x.py": chapter}, layers) == []
    found = check({"chapters/sources/01_x.py": chapter + "low._helper()\n"}, layers)
    assert found == [
        "private name: chapters.sources.01_x reads ._helper, defined in pkg.low "
        "(chapters/sources/01_x.py:5); give it a public name"
    ]


def test_the_module_map_names_every_module():
    """mosaics_edu/__init__.py's docstring lists every entry point and folder at the top, and every
    module and sub-package of each layer folder (``core.memory``, ``course.regbench``, ...)."""
    package = ic.ROOT / ic.PACKAGE
    doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text(encoding="utf-8")))
    names = {p.stem for p in package.glob("*.py") if p.stem != "__init__"}
    names |= {p.parent.name for p in package.glob("*/__init__.py")} - set(LAYER_FOLDERS)
    for folder in LAYER_FOLDERS:
        names |= {f"{folder}.{p.stem}" for p in (package / folder).glob("*.py") if p.stem != "__init__"}
        names |= {f"{folder}.{p.parent.name}" for p in (package / folder).glob("*/__init__.py")}
    missing = sorted(n for n in names if f"``{n}``" not in doc)
    assert missing == [], f"add these to the module map of mosaics_edu/__init__.py: {missing}"
    assert all(f"\n{folder}/ — " in f"\n{doc}" for folder in LAYER_FOLDERS), "one heading per folder"


LAYER_FOLDERS = ("core", "models", "training", "course")


def test_every_layer_is_one_folder():
    """Folders are layers: every module of core/, models/, training/ and course/ lies in the layer of
    its folder, and the only modules outside them are the entry points and the data package."""
    modules = ic.read_modules(ic.package_files())
    names = [layer for layer, _ in ic.LAYERS]
    layers = {name: names[ic.layer_of(name, ic.LAYERS)] for name in modules if name.startswith(ic.PACKAGE)}
    for name, layer in layers.items():
        parts = name.split(".")
        if len(parts) > 1 and parts[1] in LAYER_FOLDERS:
            assert layer == parts[1], f"{name} is in folder {parts[1]}/ but layer {layer}"
        elif len(parts) > 1 and parts[1] == "data":
            assert layer == "core", name
        elif len(parts) > 1:
            assert layer == "tools", f"{name} outside the layer folders must be an entry point"
