"""The chapter 01 checks pass the reference solutions and diagnose every known mistake."""

from __future__ import annotations

import numpy as np
import pytest

from mosaics_edu.checks import CheckFailed, ch01


def retrieve(keys, values, queries, beta):
    scores = -beta * ((queries[:, None, :] - keys[None, :, :]) ** 2).sum(-1)  # (m, n)
    w = np.exp(scores - scores.max(axis=1, keepdims=True))
    return (w / w.sum(axis=1, keepdims=True)) @ values


def attention_retrieve(keys, values, queries, beta):
    scores = 2 * beta * queries @ keys.T
    w = np.exp(scores - scores.max(axis=1, keepdims=True))
    return (w / w.sum(axis=1, keepdims=True)) @ values


def leave_one_out_error(keys, values, beta):
    scores = -beta * ((keys[:, None, :] - keys[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(scores, -np.inf)
    w = np.exp(scores - scores.max(axis=1, keepdims=True))
    answers = (w / w.sum(axis=1, keepdims=True)) @ values
    return float(np.mean(((answers - values) ** 2).sum(axis=1)))


EXERCISES = [
    (ch01.check_retrieve, retrieve, ch01.RETRIEVE_MISTAKES),
    (ch01.check_attention_retrieve, attention_retrieve, ch01.ATTENTION_MISTAKES),
    (ch01.check_leave_one_out_error, leave_one_out_error, ch01.LOO_MISTAKES),
]


@pytest.mark.parametrize("check,solution,_", EXERCISES)
def test_reference_solution_passes(check, solution, _, capsys):
    check(solution)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("check,solution,_", EXERCISES)
def test_stub_fails_with_not_implemented(check, solution, _):
    def stub(*args):
        raise NotImplementedError()

    with pytest.raises(CheckFailed, match="not implemented yet"):
        check(stub)


MISTAKE_CASES = [
    pytest.param(check, diagnosis, wrong, id=f"{check.__name__}-{i}")
    for check, _, mistakes in EXERCISES
    for i, (diagnosis, wrong) in enumerate(mistakes.items())
]


@pytest.mark.parametrize("check,diagnosis,wrong", MISTAKE_CASES)
def test_each_mistake_is_diagnosed(check, diagnosis, wrong):
    with np.errstate(all="ignore"), pytest.raises(CheckFailed) as err:
        check(wrong)
    assert diagnosis in str(err.value)


def test_wrong_shape_is_reported():
    with pytest.raises(CheckFailed, match="shape"):
        ch01.check_retrieve(lambda k, v, q, b: retrieve(k, v, q, b)[:, 0])
