"""Shared pytest set-up for unit tests and notebook tests."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
# Two notebook kernels share 2 cores in CI: one thread each keeps them from fighting.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("JUPYTEXT_CEILING_DIRECTORIES", str(ROOT))
