"""Where am I running? Versions, device and Colab detection, for chapter 00 and bug reports."""

from __future__ import annotations

import platform
import sys

__all__ = ["in_colab", "best_device", "environment_report"]


def in_colab() -> bool:
    """True inside Google Colab (Colab imports ``google.colab`` when its kernel starts)."""
    return "google.colab" in sys.modules


def best_device() -> str:
    """The fastest available torch device: ``"cuda"``, then ``"mps"``, else ``"cpu"``."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def environment_report() -> dict[str, str]:
    """Versions of the pieces the course relies on, plus the device and where we run."""
    import matplotlib
    import numpy
    import torch

    import mosaics_edu

    device = best_device()
    report = {
        "python": platform.python_version(),
        "mosaics_edu": mosaics_edu.__version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "matplotlib": matplotlib.__version__,
        "device": device,
        "where": "Colab" if in_colab() else "local",
    }
    try:
        import ipywidgets

        report["ipywidgets"] = ipywidgets.__version__
    except ImportError:  # pragma: no cover - ipywidgets is a dependency
        report["ipywidgets"] = "missing"
    if device == "cuda":
        report["gpu"] = torch.cuda.get_device_name(0)
    return report
