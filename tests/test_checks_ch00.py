"""The chapter-00 check passes the reference and diagnoses each known mistake."""

from __future__ import annotations

import numpy as np
import pytest

from mosaics_edu.checks import CheckFailed, ch00


def test_reference_passes(capsys):
    ch00.check_stable_softmax(ch00.reference_softmax)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("diagnosis", list(ch00.SOFTMAX_MISTAKES))
def test_each_mistake_is_diagnosed(diagnosis):
    wrong = ch00.SOFTMAX_MISTAKES[diagnosis]
    with pytest.raises(CheckFailed) as err:
        ch00.check_stable_softmax(wrong)
    message = str(err.value)
    assert "00_start_here" in message and "stable_softmax" in message
    assert diagnosis[:40] in message


def test_stub_gets_a_not_implemented_message():
    def stub(x):
        raise NotImplementedError()

    with pytest.raises(CheckFailed, match="not implemented yet"):
        ch00.check_stable_softmax(stub)


def test_unknown_error_is_described_with_shapes():
    with pytest.raises(CheckFailed, match="shape"):
        ch00.check_stable_softmax(lambda x: ch00.reference_softmax(x)[..., :1])


def test_crash_in_learner_code_is_reported():
    with pytest.raises(CheckFailed, match="ZeroDivisionError"):
        ch00.check_stable_softmax(lambda x: 1 / 0)


def test_compare_handles_torch_and_tuples():
    import torch

    from mosaics_edu.checks import compare

    compare("xx", "pair", lambda a: (torch.tensor(a), a * 2), lambda a: (a, a * 2),
            [(np.ones(3),)], quiet=True)
    with pytest.raises(CheckFailed, match="wrong on test case 0"):
        compare("xx", "pair", lambda a: (a, a * 3), lambda a: (a, a * 2), [(np.ones(3),)])
