"""How a failed check reaches the learner: one message, no traceback, and never a stopped chapter.

- :class:`CheckFailed` carries the message and its ``kind`` (what the message names: a declared
  mistake, a regime, an in-place change, a shape, ... or ``"generic"`` when it can only say where
  the answer differs). IPython shows an exception through its ``_render_traceback_`` method when
  it has one, so a failed check shows its message alone, not the frames of the checks.
- :func:`notebook_check` wraps every chapter's ``check_*`` function. Under a test run (pytest,
  and ``pytest --nbval`` on a saved notebook, whose kernel inherits pytest's environment) or
  outside IPython, a failure raises :class:`CheckFailed`. In a learner's notebook it prints the
  message instead, so "Run All" goes on past an exercise that is not done yet; the chapter's other
  cells never use the learner's answers. ``MOSAICS_CHECKS=raise`` or ``=report`` overrides the
  choice.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["CheckFailed", "KINDS", "fail", "notebook_check", "passed", "raises"]

#: What a message can name. Every kind but "generic" is a diagnosis: it says what is wrong.
KINDS = ("mistake", "regime", "in-place", "shape", "dtype", "ignored", "crash", "stub", "type",
         "return", "generic")

_RED, _PLAIN = "\x1b[0;31m", "\x1b[0m"


class CheckFailed(AssertionError):
    """An exercise check failed; the message names the chapter, the exercise and the likely cause."""

    def __init__(self, message: str, kind: str = "generic") -> None:
        super().__init__(message)
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        self.kind = kind

    @property
    def specific(self) -> bool:
        """Whether the message names a cause (anything but the generic "where it differs")."""
        return self.kind != "generic"

    def _render_traceback_(self) -> list[str]:
        """What IPython shows for this exception: the message, without the checks' frames."""
        return [f"{_RED}CheckFailed{_PLAIN}: {self}"]


def _tag(chapter: str, exercise: str) -> str:
    return f"[chapter {chapter} · exercise '{exercise}']"


def fail(chapter: str, exercise: str, message: str, kind: str = "generic") -> None:
    """Raise :class:`CheckFailed` with the chapter/exercise tag in front of ``message``.

    ``kind`` says what the message names (see :data:`KINDS`); leave it "generic" unless the message
    names a cause.
    """
    raise CheckFailed(f"{_tag(chapter, exercise)} {message}", kind)


def passed(chapter: str, exercise: str) -> None:
    """Print the one line a learner sees when an exercise is right."""
    print(f"✓ {_tag(chapter, exercise)} passed")


def raises() -> bool:
    """Whether a failed check raises (a test run, a script) or only reports (a notebook session)."""
    mode = os.environ.get("MOSAICS_CHECKS", "").strip().lower()
    if mode in ("raise", "report"):
        return mode == "raise"
    if "PYTEST_VERSION" in os.environ or "PYTEST_CURRENT_TEST" in os.environ:
        return True  # pytest, or a kernel that pytest (nbval) started
    ipython = sys.modules.get("IPython")
    return ipython is None or ipython.get_ipython() is None


def notebook_check(check: Callable[..., None]) -> Callable[..., None]:
    """Wrap a chapter's check so that in a notebook session a failure is reported, not raised."""

    @functools.wraps(check)
    def run(*answers: Any, **options: Any) -> None:
        try:
            check(*answers, **options)
        except CheckFailed as err:
            if raises():
                raise
            print(f"✗ {err}", file=sys.stderr)

    return run
