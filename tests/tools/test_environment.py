"""environment.yml (conda) and pyproject.toml (pip) list the same dependencies."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CONDA_NAMES = {"pytorch": "torch"}  # conda-forge name -> PyPI name


def _norm(req: str) -> tuple[str, str]:
    m = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*(.*?)\s*", req)
    assert m, f"cannot parse requirement {req!r}"
    name = m.group(1).lower().replace("_", "-")
    return CONDA_NAMES.get(name, name), m.group(2).replace(" ", "")


def test_environment_yml_parses_and_matches_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["name"] == "mosaics-edu"
    assert "conda-forge" in env["channels"]
    deps = env["dependencies"]
    pip_sections = [d for d in deps if isinstance(d, dict)]
    assert pip_sections and any("-e ." in line for line in pip_sections[0]["pip"]), (
        "environment.yml must install the package itself with pip (-e .)")
    conda = {_norm(d) for d in deps if isinstance(d, str) and not d.startswith(("python", "pip"))}

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip = {_norm(d) for d in project["dependencies"] + project["optional-dependencies"]["dev"]}
    assert conda == pip, (
        "environment.yml and pyproject.toml disagree:\n"
        f"  only in environment.yml: {sorted(conda - pip)}\n"
        f"  only in pyproject.toml:  {sorted(pip - conda)}")


def test_cpu_constraint_pins_torch_exactly_and_pyproject_only_floors_it():
    pins = (ROOT / "constraints" / "cpu.txt").read_text()
    assert re.search(r"^torch==\d+\.\d+\.\d+$", pins, re.M), "constraints/cpu.txt pins torch"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    torch_req = [d for d in project["dependencies"] if d.startswith("torch")]
    assert torch_req and ">=" in torch_req[0] and "==" not in torch_req[0], (
        "pyproject.toml must only floor torch, so Colab and conda keep their own build")
