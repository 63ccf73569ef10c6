"""Root pytest hooks: make notebook runs robust on a busy 2-core machine.

No limit may trip because a machine is slow or busy. The limits here and in pyproject.toml's addopts
are hang protection: an hour per cell, ten minutes for a kernel to start or for a finished cell's
last output (the longest cell of the course takes well under a minute on an idle laptop).
"""

from __future__ import annotations

import pytest

try:
    from nbval.plugin import IPyNbCell
except ImportError:  # pragma: no cover - nbval is a dependency
    IPyNbCell = None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    for item in items:
        if IPyNbCell is not None and isinstance(item, IPyNbCell):
            # nbval waits only 5 s for output after a cell finishes; a busy machine can take
            # longer, a hung kernel takes forever: wait long enough that only a hang trips it.
            item.output_timeout = 600
