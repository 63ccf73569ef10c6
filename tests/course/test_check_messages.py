"""How well the checks speak: the share of wrong answers that get a diagnosis, not just "differs".

Every chapter's check tests give their tables of wrong answers and correct variants to
``check_contract.table_tests``, which collects them in ``check_contract.TABLES``. Here every wrong
answer of every table is run once more through its check, and the kind of the message is read
from the :class:`~mosaics_edu.course.checks.CheckFailed` it raises: anything but ``"generic"`` names a
cause (a declared mistake, a regime, an in-place change, a shape or dtype, an ignored argument,
the learner's own error). The test prints the share per exercise and in all, and requires
at least 70 % in all, with every wrong answer caught.
"""

from __future__ import annotations

import importlib
from collections import Counter

import check_contract
import numpy as np

from mosaics_edu.course.checks import CheckFailed

#: The chapters whose check tests are written as tables (all of them).
CHAPTERS = ("00", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11")
SHARE = 0.70


def _tables() -> list[tuple]:
    for chapter in CHAPTERS:
        importlib.import_module(f"test_checks_ch{chapter}")  # registers its tables on import
    return [t for t in check_contract.TABLES if t[0].__module__.rsplit(".", 1)[-1][2:] in CHAPTERS]


def test_every_exercise_has_its_wrong_answers_and_correct_variants():
    by_check: dict[str, list] = {}
    for check, wrong, right in _tables():
        entry = by_check.setdefault(f"{check.__module__}.{check.__name__}", [0, 0, 0])
        entry[0] += len(wrong)
        entry[1] += sum(len(w) > 3 for w in wrong)
        entry[2] += len(right)
    short = {name: counts for name, counts in by_check.items()
             if counts[0] < 7 or counts[1] < 2 or counts[2] < 3}
    assert not short, f"(wrong answers, of them in a regime, correct variants) below (7, 2, 3): {short}"


def test_most_wrong_answers_get_a_specific_message(capsys):
    rows, kinds = [], Counter()
    for check, wrong, _ in _tables():
        specific = 0
        for w in wrong:
            with np.errstate(all="ignore"):
                try:
                    check(w[1])
                except CheckFailed as err:
                    kinds[err.kind] += 1
                    specific += err.specific
                    continue
            raise AssertionError(f"{check.__name__}: the wrong answer {w[0]!r} passed")
        rows.append((f"{check.__module__.rsplit('.', 1)[-1]}.{check.__name__}", specific, len(wrong)))
    total, named = sum(r[2] for r in rows), sum(r[1] for r in rows)
    with capsys.disabled():
        print("\nspecific messages per exercise (specific / wrong answers tried):")
        for name, s, n in rows:
            print(f"  {name:45s} {s:3d} / {n:3d}  {s / n:5.0%}")
        print(f"  {'all':45s} {named:3d} / {total:3d}  {named / total:5.0%}   by kind: {dict(kinds)}")
    assert named / total >= SHARE, f"only {named}/{total} wrong answers get a specific message"
