"""Root pytest hooks: make notebook runs robust on a busy 2-core machine."""

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
            item.output_timeout = 60  # nbval waits only 5 s for late output by default
