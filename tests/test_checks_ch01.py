"""The chapter 01 checks pass the reference solutions and diagnose every known mistake."""

from __future__ import annotations

import numpy as np
import pytest
from check_contract import contract_tests

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


test_reference_solution_passes, test_stub_fails_with_not_implemented, test_each_mistake_is_diagnosed = (
    contract_tests(EXERCISES)
)




def test_wrong_shape_is_reported():
    with pytest.raises(CheckFailed, match="shape"):
        ch01.check_retrieve(lambda k, v, q, b: retrieve(k, v, q, b)[:, 0])
