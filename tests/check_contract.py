"""The tests every chapter's exercise checks owe, written once.

``EXERCISES`` is a list of ``(check, reference_solution, known_mistakes)``; ``known_mistakes``
maps each diagnosis to a function that makes that mistake. The three tests: the reference passes
(and the pass line is printed), a stub fails with "not implemented yet", and every known mistake
fails with its own diagnosis in the message.

    from check_contract import contract_tests
    test_reference_passes, test_stub_fails, test_mistakes_diagnosed = contract_tests(EXERCISES)
"""

from __future__ import annotations

import numpy as np
import pytest

from mosaics_edu.course.checks import CheckFailed


def contract_tests(exercises):
    """Three parametrised pytest functions over ``exercises``; bind them to ``test_*`` names."""

    @pytest.mark.parametrize("check,solution,_", exercises)
    def test_reference_passes(check, solution, _, capsys):
        check(solution)
        assert "passed" in capsys.readouterr().out

    @pytest.mark.parametrize("check,solution,_", exercises)
    def test_stub_fails(check, solution, _):
        def stub(*args):
            raise NotImplementedError()

        with pytest.raises(CheckFailed, match="not implemented yet"):
            check(stub)

    cases = [
        pytest.param(check, diagnosis, wrong, id=f"{check.__name__}-{i}")
        for check, _, mistakes in exercises
        for i, (diagnosis, wrong) in enumerate(mistakes.items())
    ]

    @pytest.mark.parametrize("check,diagnosis,wrong", cases)
    def test_mistakes_diagnosed(check, diagnosis, wrong):
        with np.errstate(all="ignore"), pytest.raises(CheckFailed) as err:
            check(wrong)
        assert diagnosis in str(err.value)

    return test_reference_passes, test_stub_fails, test_mistakes_diagnosed


#: Words by which a message names a mistake (a declared one, or one the framework recognises).
NAMED = ("it looks like you", "in place", "float16", "bfloat16", "integer dtype", "ignores its argument",
         "forget the `return`", "not implemented")

#: Every table given to :func:`table_tests` on import of a test module: (check, wrong, correct).
#: ``tests/course/test_check_messages.py`` reads it to measure how many wrong answers get a diagnosis.
TABLES: list[tuple] = []


def table_tests(check, wrong_answers, correct_variants):
    """Two parametrised tests for one check, from tables written *by the test author*.

    ``wrong_answers``: ``[(id, fn, fragment)]`` or ``[(id, fn, fragment, regime)]`` — each ``fn``
    must fail the check with ``fragment`` in its message (a diagnosis when the check should
    recognise the mistake by name, else a part of the generic message); ``regime`` names the regime
    of the check's cases in which alone the answer goes wrong. ``correct_variants``: ``[(id, fn)]``
    — each must pass.
    """
    TABLES.append((check, wrong_answers, correct_variants))

    @pytest.mark.parametrize("fn,fragment", [pytest.param(w[1], w[2], id=w[0]) for w in wrong_answers])
    def test_wrong_answer_fails(fn, fragment):
        with np.errstate(all="ignore"), pytest.raises(CheckFailed) as err:
            check(fn)
        assert fragment in str(err.value), str(err.value)

    @pytest.mark.parametrize("fn", [pytest.param(f, id=i) for i, f in correct_variants])
    def test_correct_variant_passes(fn, capsys):
        check(fn)
        assert "passed" in capsys.readouterr().out

    return test_wrong_answer_fails, test_correct_variant_passes
