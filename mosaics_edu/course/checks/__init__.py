"""Exercise checks: compare a learner's function with the package's reference, and diagnose.

A check runs the learner's function on a few cases. When an answer is wrong it does not stop at
"wrong": it tries the *known mistakes* of that exercise (a softmax over the wrong axis, a mask off
by one, a missing normalisation, ...) and, if the learner's answer matches one of them, says which.
Every failure raises :class:`CheckFailed`, an ``AssertionError``, so ``pytest --nbval`` reports it.

Three rules hold for every check written with :func:`compare` (or :func:`call_checked`):

- **Fresh inputs.** The learner gets deep copies of each case's arguments, so an answer that
  modifies its input cannot corrupt the cases of later calls; a modified argument (an array, a
  tensor, a module, or an element of a list, tuple or dict) is itself a diagnosis ("your function
  changed its argument `keys` in place").
- **One tolerance policy** (:func:`tolerance`): relative to the scale of the expected values,
  widened by how much the reference itself moves when its inputs are rounded to float32 — so a
  correct float32 answer passes, and a float16 answer or a loss of precision is named as such. A
  check whose answer is float32 work over a long chain may set a :class:`Floor` under it.
- **Answers are materialised**: a generator or other one-shot iterator returned where a list is
  shown is turned into a list once, so it is never read twice (and found empty the second time).

A wrong answer gets the most specific message that fits every case: a declared mistake (when two
fit, both are named), a shape or dtype, an ignored argument, or the regime that all failing cases
share (their :class:`~mosaics_edu.course.checks.cases.Case` tags: "only the cases where exp overflows
fail"); only then where and by how much it differs. Every message shows the failing case's inputs
(:func:`~mosaics_edu.course.checks.cases.show_inputs`). How a failure reaches the learner (raised in a
test run, printed in a notebook session, never with a traceback) is
:mod:`mosaics_edu.course.checks.report`.

Writing a new check is short::

    @notebook_check
    def check_softmax(softmax):
        compare(
            "00_start_here", "stable_softmax", softmax, reference_softmax,
            [Case(np.array([[1000.0, 1001.0]]), regime="overflow", why="exp(1000) overflows")],
            mistakes={"applied over axis 0 instead of the last axis": lambda x: ...},
            regimes={"overflow": "a score is so large that exp overflows: ..."},
        )

The framework, one idea a module: :mod:`~mosaics_edu.course.checks.cases` (test cases, their regimes),
:mod:`~mosaics_edu.course.checks.inputs` (fresh inputs, in-place changes, the learner's call),
:mod:`~mosaics_edu.course.checks.tolerance` (the tolerance policy),
:mod:`~mosaics_edu.course.checks.describe` (what differs), :mod:`~mosaics_edu.course.checks.diagnose`
(the mistakes and ignored arguments that fit),
:mod:`~mosaics_edu.course.checks.report` (how a failure reaches the learner),
:mod:`~mosaics_edu.course.checks.arrays`
(numbers written plainly); :func:`compare`, here, puts them together. Per-chapter checks live in
``mosaics_edu.course.checks.chNN``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from .arrays import as_numpy, dtype_name, fmt, leaves
from .cases import Case, show_inputs
from .describe import describe_difference, kind_of_difference
from .diagnose import explains, ignored_argument, looks_like, mistakes_from, shared_regimes
from .inputs import argument_names, call_checked, call_learner, fresh_copy, learner_line, materialise
from .report import CheckFailed, fail, notebook_check, passed
from .tolerance import Floor, close, float32_sensitivity, tolerance

__all__ = [
    "Case",
    "CheckFailed",
    "Floor",
    "as_numpy",
    "call_checked",
    "call_learner",
    "compare",
    "describe_difference",
    "fail",
    "fmt",
    "fresh_copy",
    "learner_line",
    "materialise",
    "mistakes_from",
    "notebook_check",
    "passed",
    "show_inputs",
    "tolerance",
]


def _where(k: int, cases: Sequence[Sequence[Any]]) -> str:
    """"on test case 3 of 10 (why it is there)"."""
    why = getattr(cases[k], "why", "")
    return f"on test case {k} of {len(cases)}" + (f" ({why})" if why else "")


def _which(ks: Sequence[int]) -> str:
    """"3", "1 and 4", "0, 2 and 5"."""
    ks = [str(k) for k in ks]
    return ks[0] if len(ks) == 1 else ", ".join(ks[:-1]) + " and " + ks[-1]


# --------------------------------------------------------------------------------------------
# compare: the one entry point most checks need
# --------------------------------------------------------------------------------------------


def compare(
    chapter: str,
    exercise: str,
    learner: Callable[..., Any],
    reference: Callable[..., Any],
    cases: Iterable[Sequence[Any]],
    mistakes: Mapping[str, Callable[..., Any]] | None = None,
    quiet: bool = False,
    *,
    arg_names: Sequence[str] | None = None,
    hint: str = "",
    float32_probe: bool = True,
    regimes: Mapping[str, str] | None = None,
    rebuild: str = "",
    items: Sequence[str] | None = None,
    floor: Floor | None = None,
) -> None:
    """Check ``learner(*case) ≈ reference(*case)`` for every case; diagnose what is wrong.

    The learner gets fresh copies of every argument; a modified argument fails the check with its
    name (from the learner's signature, else ``arg_names``). The tolerance is :func:`tolerance`:
    relative to the expected values' scale and widened by the reference's float32 sensitivity on
    the case (``float32_probe=False`` skips that probe for an expensive reference); a ``floor``
    (:class:`Floor`) can only widen it.

    Every case is run, then the message is the most specific that fits: the ``mistakes`` (a
    diagnosis -> a function making that mistake) that give the learner's answer on *every* case
    (all of them when several do); a wrong shape, dtype or a missing return; an argument the
    answer ignores; the regimes (tags of :class:`Case`, described in ``regimes``) shared by every
    failing case when the others pass; else where the first failing case differs, which cases fail,
    and ``hint``. ``rebuild`` ("ch01.RETRIEVE_CASES[{k}]") shows how to rebuild a case whose inputs
    are too large to print; ``items`` names the parts of a tuple answer. Prints a pass line
    unless ``quiet``.
    """
    cases = list(cases)
    names = argument_names(learner, max(len(c) for c in cases), arg_names)
    runs: list[tuple] = []  # (answer, expected, tolerance, right); answer None and right None: a crash
    for k, case in enumerate(cases):
        want, tol = _expected(reference, case, float32_probe)
        inputs = show_inputs(names, case, rebuild.format(k=k) if rebuild else "")
        try:
            got = call_checked(chapter, exercise, learner, case, arg_names, where=_where(k, cases),
                               inputs=inputs)
        except CheckFailed as err:
            if err.kind != "crash" or all(run[3] for run in runs):
                raise  # in place, a stub, or a crash before any wrong answer: that is the message
            runs.append((None, want, tol, None))  # a crash after a wrong answer: diagnose that one
            break
        runs.append((got, want, tol, close(got, want, tol, equal_nan=True, floor=floor)))
    bad = [k for k, run in enumerate(runs) if run[3] is False]
    if not bad:
        if not quiet:
            passed(chapter, exercise)
        return
    k = bad[0]
    got, want, tol, _ = runs[k]
    head = f"wrong {_where(k, cases)}: "
    tail = "\n" + show_inputs(names, cases[k], rebuild.format(k=k) if rebuild else "")
    found = [d for d, wrong in (mistakes or {}).items() if explains(wrong, cases, runs, k, floor)]
    if found:
        fail(chapter, exercise, head + looks_like(found) + tail, "mistake")
    dtypes = [dtype_name(x) for x in leaves(got)]
    dtype = dtypes[0] if len(dtypes) == 1 else None
    described = describe_difference(got, want, tol, dtype, items)
    kind = kind_of_difference(got, want, dtype)
    extra = f" {hint}" if hint else ""
    if kind != "generic":
        fail(chapter, exercise, head + described + (extra if kind == "shape" else "") + tail, kind)
    ignored = ignored_argument(learner, reference, cases, runs, names, floor)
    if ignored:
        fail(chapter, exercise, head + ignored + tail, "ignored")
    which = f" It fails on test case{'s' if len(bad) > 1 else ''} {_which(bad)} of {len(cases)}"
    if len(runs) < len(cases):
        which += f" (and your function crashes on test case {len(runs) - 1}; the cases after it did not run)"
    shared = shared_regimes(cases[:len(runs)], bad, regimes or {})
    if shared and len(bad) < len(runs):
        said = "; and ".join(regimes[r] for r in sorted(shared))  # type: ignore[index]
        fail(chapter, exercise, f"{head}{described}{which}, and only those: every failing case is one "
             f"where {said}.{tail}", "regime")
    fail(chapter, exercise, f"{head}{described}{which}.{extra}{tail}")


def _expected(reference: Callable[..., Any], case: Sequence[Any], probe: bool) -> tuple[Any, Any]:
    """The reference answer on ``case`` and the tolerance around it."""
    with np.errstate(all="ignore"):
        want = materialise(reference(*[fresh_copy(a) for a in case]))
    return want, tolerance(want, float32_sensitivity(reference, case, want) if probe else None)
