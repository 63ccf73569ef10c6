"""Which explanation fits: the known mistakes, and the arguments an answer ignores.

A wrong answer is explained only by what fits *every* case, not the failing one alone:

- a declared mistake (:func:`explains`): a function that makes that mistake gives the learner's
  answer on every case where it can run (two that fit are both named, :func:`looks_like`);
- an ignored argument (:func:`ignored_argument`): changing it moves the expected answer but never
  the learner's;
- a regime (:func:`shared_regimes`): the tags that the failing cases share and the passing ones
  do not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .arrays import as_numpy, fmt, leaves
from .cases import regimes_of
from .inputs import fresh_copy, materialise
from .tolerance import Floor, close

__all__ = ["explains", "ignored_argument", "looks_like", "mistakes_from", "shared_regimes"]


def mistakes_from(variant: Callable[..., Any], table: Mapping[str, Mapping[str, Any]]) -> dict[str, Callable]:
    """The mistakes of a table {diagnosis: switches}: each is ``variant`` called with its switches
    (``mistakes_from(cmem, {"masked one step too many": {"lag": 2}})``)."""
    return {d: (lambda *a, f=f: variant(*a, **f)) for d, f in table.items()}


def shared_regimes(cases: Sequence[Sequence[Any]], bad: Sequence[int], regimes: Mapping[str, str]) -> list:
    """The regimes of every failing case that explain the failures best: those whose cases fail
    in the largest share (all of them, or at least half; one tag among many does not explain)."""
    shared = set.intersection(*(set(regimes_of(cases[j])) for j in bad)) & set(regimes)
    share = {r: sum(j in bad for j, c in enumerate(cases) if r in regimes_of(c))
             / sum(r in regimes_of(c) for c in cases) for r in shared}
    best = max(share.values(), default=0.0)
    return sorted(r for r, v in share.items() if v == best) if best >= 0.5 else []


def looks_like(found: Sequence[str]) -> str:
    """"it looks like you <mistake>.", or every mistake that fits when several do."""
    if len(found) == 1:
        return f"it looks like you {found[0]}."
    rest = "; or you ".join(found[1:])
    return (f"{len(found)} explanations fit every case, so look at both: you {found[0]}; or you "
            f"{rest}.")


def _makes(wrong: Callable[..., Any], case: Sequence[Any], got: Any, tol: Any,
           floor: Floor | None) -> bool | None:
    """Whether the mistake ``wrong`` gives ``got`` on ``case``; None when it cannot run there."""
    try:
        with np.errstate(all="ignore"):
            made = materialise(wrong(*[fresh_copy(a) for a in case]))
    except Exception:  # noqa: BLE001 — a mistake model that cannot run on this case
        return None
    return close(got, made, tol, equal_nan=True, floor=floor)


def _finite(x: Any) -> bool:
    try:
        return all(np.all(np.isfinite(np.asarray(leaf, dtype=np.complex128)))
                   for leaf in leaves(as_numpy(x)))
    except (TypeError, ValueError):
        return True


def explains(wrong: Callable[..., Any], cases: Sequence[Sequence[Any]], runs: Sequence[tuple],
             k: int, floor: Floor | None = None) -> bool:
    """Whether the mistake ``wrong`` explains the learner's answers; ``runs`` holds, case by case,
    (answer, expected, tolerance, right?), right None where the learner's function crashed.

    A mistake is named only if it gives the learner's answer on case ``k`` *and* on every other
    case (a β of 2 makes "ignored β" look like "used β/2" on that case alone). A case where the
    mistake cannot run, or where the learner's answer is nan/inf (a degenerate case such as λ = 0,
    β = 0), is no evidence either way."""
    if not _makes(wrong, cases[k], runs[k][0], runs[k][2], floor):
        return False
    for j, (got, _, tol, right) in enumerate(runs):
        if right is None:  # the learner's function crashed here: so must the mistake
            if _makes(wrong, cases[j], None, tol, floor) is not None:
                return False
        elif j != k and _finite(got) and _makes(wrong, cases[j], got, tol, floor) is False:
            return False
    return True


def _alternatives(cases: Sequence[Sequence[Any]], k: int, i: int) -> list[Any]:
    """Other values argument ``i`` could take: a nudge of a number, the values of other cases."""
    x = cases[k][i]
    out: list[Any] = []
    for j, other in enumerate(cases):
        y = other[i] if i < len(other) else None
        if j != k and type(y) is type(x) and isinstance(y, str | float | int) and y != x:
            out.append(y)
    if not out and isinstance(x, float | int) and not isinstance(x, bool):
        out.append(x * 1.5 + 1 if isinstance(x, float) else x + 1)
    return list(dict.fromkeys(out))[:3]


def _moves(fn: Callable[..., Any], case: Sequence[Any], i: int, alt: Any, base: Any,
           floor: Floor | None) -> bool | None:
    """Whether ``fn``'s answer changes when argument ``i`` becomes ``alt``; None if it cannot run."""
    moved = tuple(alt if j == i else a for j, a in enumerate(case))
    try:
        with np.errstate(all="ignore"):
            answer = materialise(fn(*[fresh_copy(a) for a in moved]))
    except Exception:  # noqa: BLE001 — this alternative does not apply
        return None
    if isinstance(answer, dict) and isinstance(base, dict):  # compare the entries both answers have
        common = answer.keys() & base.keys()
        answer, base = {k: answer[k] for k in common}, {k: base[k] for k in common}
    return not close(answer, base, equal_nan=True, floor=floor)


def ignored_argument(learner: Callable[..., Any], reference: Callable[..., Any],
                     cases: Sequence[Sequence[Any]], runs: Sequence[tuple], names: Sequence[str],
                     floor: Floor | None = None) -> str:
    """Name an argument (a number or a string) that the learner's answer does not depend on,
    on *any* case, although the expected answer does: "your function ignores its argument
    `beta`". One case is not enough: a cap that binds there hides the argument on that case alone."""
    k = next(j for j, run in enumerate(runs) if run[3] is False)
    for i, name in enumerate(names):
        first, evidence = None, 0
        for j, case in enumerate(cases[:len(runs)]):
            if i >= len(case) or runs[j][3] is None:
                continue
            for alt in _alternatives(cases, j, i):
                if not _moves(reference, case, i, alt, runs[j][1], floor):
                    continue
                learner_moves = _moves(learner, case, i, alt, runs[j][0], floor)
                if learner_moves is None:
                    continue
                if learner_moves:
                    evidence = -1
                    break
                evidence += 1
                if first is None or j == k:
                    first = (j, alt)
            if evidence < 0:
                break
        if evidence > 0 and first is not None:
            j, alt = first
            return (f"changing `{name}` from {fmt(cases[j][i])} to {fmt(alt)} does not change your "
                    f"answer (test case {j}), but it changes the expected one, and so on every case: "
                    f"your function ignores its argument `{name}` (a fixed number or name in its "
                    "place?).")
    return ""
