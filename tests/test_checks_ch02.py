"""The chapter 02 checks pass the reference solutions and diagnose every known mistake."""

from __future__ import annotations

import numpy as np
import pytest
from check_contract import contract_tests

from mosaics_edu.checks import CheckFailed, ch02


def leaky_keys(features, decay):
    out, acc = np.zeros_like(features), np.zeros_like(features[0])
    for t in range(len(features)):
        acc = features[t] + decay * acc
        out[t] = acc
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


def leaky_keys_ema(features, decay):
    """The normalised EMA (1-λ) Σ λ^(t-s) k̃_s: same direction, so the same keys."""
    out, acc = np.zeros_like(features), np.zeros_like(features[0])
    for t in range(len(features)):
        acc = (1 - decay) * features[t] + decay * acc
        out[t] = acc
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


def peek_values(x, gamma):
    nxt = np.concatenate([x[1:], np.zeros_like(x[:1])])
    return gamma * x + (1 - gamma) * nxt


def causal_retrieve(keys, values, beta):
    T = len(keys)
    scores = -beta * ((keys[:, None] - keys[None]) ** 2).sum(-1)
    mask = np.tri(T, T, k=-1, dtype=bool)
    scores = np.where(mask, scores, -np.inf)
    out = np.zeros((T, values.shape[1]))
    for t in range(1, T):
        w = np.exp(scores[t, :t] - scores[t, :t].max())
        out[t] = (w / w.sum()) @ values[:t]
    return out


def no_peeking(predict, x, t):
    changed = x.copy()
    changed[t + 1:] += 1.0 + np.arange(len(x) - t - 1)
    return bool(np.allclose(predict(x)[: t + 1], predict(changed)[: t + 1]))


EXERCISES = [
    (ch02.check_leaky_keys, leaky_keys, ch02.KEYS_MISTAKES),
    (ch02.check_peek_values, peek_values, ch02.VALUES_MISTAKES),
    (ch02.check_causal_retrieve, causal_retrieve, ch02.RETRIEVE_MISTAKES),
    (ch02.check_no_peeking, no_peeking, {}),
]


test_reference_solution_passes, test_stub_fails_with_not_implemented, test_each_mistake_is_diagnosed = (
    contract_tests(EXERCISES)
)


def test_normalised_ema_keys_are_accepted(capsys):
    ch02.check_leaky_keys(leaky_keys_ema)
    assert "passed" in capsys.readouterr().out




# The learner's own test, written wrongly in the usual ways.
def _changes_present(predict, x, t):
    changed = x.copy()
    changed[t:] += 1.0
    return bool(np.allclose(predict(x)[: t + 1], predict(changed)[: t + 1]))


def _compares_future(predict, x, t):
    changed = x.copy()
    changed[t + 1:] += 1.0
    return bool(np.allclose(predict(x)[t + 1:], predict(changed)[t + 1:]))


def _only_next(predict, x, t):
    changed = x.copy()
    changed[t + 1] += 1.0
    return bool(np.allclose(predict(x)[: t + 1], predict(changed)[: t + 1]))


def _excludes_t(predict, x, t):
    changed = x.copy()
    changed[t + 1:] += 1.0
    return bool(np.allclose(predict(x)[:t], predict(changed)[:t]))


@pytest.mark.parametrize("wrong,case", [
    (_changes_present, 0), (_compares_future, 0), (_only_next, 3), (_excludes_t, 2),
    (lambda p, x, t: True, 2), (lambda p, x, t: False, 0),
])
def test_wrong_no_peeking_tests_are_diagnosed(wrong, case):
    with pytest.raises(CheckFailed) as err:
        ch02.check_no_peeking(wrong)
    assert ch02.PEEKING_CASES[case][3] in str(err.value)


def test_no_peeking_must_return_a_bool():
    with pytest.raises(CheckFailed, match="return True"):
        ch02.check_no_peeking(lambda p, x, t: "yes")
