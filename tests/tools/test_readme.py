"""The README's Python example runs as written, and its commands name real presets and flags."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_readme_python_examples_run(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert blocks, "README.md has no python example"
    for code in blocks:
        exec(compile(code, "README.md", "exec"), {})
    assert capsys.readouterr().out.strip(), "the example prints the parameter count"


def test_readme_train_commands_use_known_presets_and_models():
    from mosaics_edu.training import PRESETS

    commands = re.findall(r"mosaics_edu\.train (--model \S+ --preset \S+)", README)
    assert commands
    for cmd in commands:
        model, preset = re.match(r"--model (\S+) --preset (\S+)", cmd).groups()
        assert model in {"mosaic", "gpt"} and preset in PRESETS, cmd
