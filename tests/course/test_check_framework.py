"""The exercise-check framework itself (:mod:`mosaics_edu.course.checks`): fresh inputs, in-place
detection, one tolerance policy, materialised iterators, plain messages, named mistakes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mosaics_edu.course.checks import (
    CheckFailed,
    Floor,
    call_checked,
    compare,
    describe_difference,
    fmt,
    fresh_copy,
    materialise,
    tolerance,
)


def softmax(x):
    z = x - x.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def naive(x):
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


CASES = [(np.array([[1000.0, 1001.0], [0.0, 1.0]]),)]


def _message(fn, reference=softmax, cases=CASES, **kw):
    with np.errstate(all="ignore"), pytest.raises(CheckFailed) as err:
        compare("xx", "ex", fn, reference, cases, **kw)
    return str(err.value)


# --- fresh inputs and in-place answers ------------------------------------------------------


def test_in_place_answer_is_named_with_the_learners_argument_name():
    def in_place(scores):
        scores -= scores.max(axis=-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=-1, keepdims=True)
        return scores

    msg = _message(in_place)
    assert "changed its argument `scores` in place" in msg and "test case 0" in msg


def test_in_place_answer_cannot_corrupt_the_cases():
    cases = [(np.array([[1000.0, 1001.0]]),)]

    def in_place(x):
        x -= x.max(axis=-1, keepdims=True)
        return softmax(x)

    with pytest.raises(CheckFailed):
        compare("xx", "ex", in_place, softmax, cases)
    assert cases[0][0].tolist() == [[1000.0, 1001.0]]
    assert "inf or NaN" in _message(naive, cases=cases)  # the naive formula still fails


def test_declared_names_when_the_signature_has_none():
    def star(*args):
        args[1][0] = 5.0
        return args[0] + 1

    cases = [(np.zeros(3), np.zeros(3))]
    msg = _message(star, reference=lambda a, b: a + 1, cases=cases, arg_names=["keys", "values"])
    assert "argument `values` in place" in msg


def test_in_place_on_tensors_modules_and_lists():
    lin = torch.nn.Linear(2, 2)

    def bump(model, x):
        with torch.no_grad():
            model.weight += 1
        return x

    msg = _message(bump, reference=lambda m, x: x, cases=[(lin, torch.ones(2))])
    assert "argument `model` in place" in msg

    def appends(items):
        items.append(1.0)
        return 0.0

    assert "argument `items`" in _message(appends, reference=lambda v: 0.0, cases=[([2.0],)])

    def zero_(t):
        return t.zero_()

    assert "argument `t`" in _message(zero_, reference=torch.zeros_like, cases=[(torch.ones(3),)])


def test_fresh_copy_keeps_requires_grad_and_is_independent():
    t = torch.ones(2, requires_grad=True)
    c = fresh_copy({"a": [t, np.zeros(2)], "f": len})
    assert c["a"][0].requires_grad and c["a"][0] is not t and c["f"] is len
    c["a"][1][0] = 3.0
    assert c["a"][1][0] == 3.0


def test_call_checked_returns_the_answer():
    assert call_checked("xx", "ex", lambda a, b: a + b, (1, 2)) == 3


# --- one tolerance policy --------------------------------------------------------------------


def test_float32_answers_pass_on_every_scale():
    for scale in (1e-6, 1.0, 1e6):
        cases = [(scale * np.random.default_rng(0).standard_normal((4, 5)),)]
        compare("xx", "ex", lambda x: (x.astype(np.float32) * 3).sum(0), lambda x: (x * 3).sum(0),
                cases, quiet=True)
        compare("xx", "ex", lambda x: torch.tensor(x, dtype=torch.float32).exp(), np.exp,
                [(np.linspace(-3, 3, 7),)], quiet=True)


def test_tolerance_is_relative_to_the_values_scale():
    tiny = [(1e-6 * np.arange(1.0, 5.0),)]
    msg = _message(lambda x: 1.01 * x, reference=lambda x: x, cases=tiny)
    assert "times 1.01" in msg  # a 1 % error on tiny values is not hidden by an absolute tolerance
    assert np.all(tolerance(np.array([1e6, 0.0])) > 1.0)  # a 0 entry next to 1e6 gets the scale's


def test_float32_sensitivity_widens_the_tolerance_on_ill_conditioned_cases():
    cases = [(np.array([[900.0, 900.5, 899.0]]),)]
    compare("xx", "ex", lambda x: softmax(x.astype(np.float32)), softmax, cases, quiet=True)


def test_float16_answer_gets_a_precision_message():
    msg = _message(lambda x: softmax(x).astype(np.float16), cases=[(np.array([[0.1, 0.2, 0.3]]),)])
    assert "float16" in msg and "float32 or float64" in msg
    msg = _message(lambda x: torch.tensor(softmax(x), dtype=torch.bfloat16),
                   cases=[(np.array([[0.1, 0.2, 0.3]]),)])
    assert "bfloat16" in msg


def test_integer_answer_is_named():
    msg = _message(lambda x: (x * 2).astype(int), reference=lambda x: x * 2,
                   cases=[(np.array([0.3, 1.7]),)])
    assert "integer dtype" in msg


def test_explicit_tolerances_only_widen():
    compare("xx", "ex", lambda x: x + 1e-3, lambda x: x, [(np.ones(2),)], floor=Floor(abs=1e-2),
            quiet=True)
    with pytest.raises(CheckFailed):
        compare("xx", "ex", lambda x: x + 1e-3, lambda x: x, [(np.ones(2),)], floor=Floor(abs=1e-12))


# --- iterators --------------------------------------------------------------------------------


def test_generators_are_read_once_not_found_empty():
    def groups(n):
        return ({"params": (p for p in range(i, i + 2))} for i in range(n))

    compare("xx", "ex", groups, lambda n: [{"params": [i, i + 1]} for i in range(n)],
            [(2,), (3,)], quiet=True)
    assert materialise(map(float, [1, 2])) == [1.0, 2.0]
    assert materialise(({"a": iter([1])},)) == ({"a": [1]},)


# --- messages ---------------------------------------------------------------------------------


def test_known_mistake_is_named():
    def axis0(x):
        e = np.exp(x - x.max(0, keepdims=True))
        return e / e.sum(0, keepdims=True)

    msg = _message(axis0, mistakes={"normalised over axis 0": axis0})
    assert "it looks like you normalised over axis 0" in msg


def test_generic_message_lists_positions_and_is_plain():
    msg = _message(lambda x: softmax(x) + np.array([[0.0, 0.0], [0.0, 0.1]])).splitlines()[0]
    assert "1 of 4 entries differ, first at (1, 1)" in msg
    for bad in ("np.float", "tensor(", "array("):  # the description (the inputs are shown below it)
        assert bad not in msg
    msg = _message(lambda x: torch.tensor(softmax(x)) * 2).splitlines()[0]
    assert "times 2" in msg and "tensor(" not in msg


@pytest.mark.parametrize("wrong,fragment", [
    (lambda x: None, "forget the `return`"),
    (lambda x: softmax(x).T[:, :1], "shape"),
    (lambda x: -softmax(x), "wrong sign"),
    (lambda x: softmax(x) + 0.5, "same 0.5"),
    (lambda x: np.vstack([softmax(x)[:1] * 0 + 0.3, softmax(x)[1:]]), "first row"),
    (lambda x: softmax(x).sum(-1), "axis is missing"),
])
def test_patterns_are_described(wrong, fragment):
    assert fragment in _message(wrong)


def test_transpose_is_described():
    x = np.arange(9.0).reshape(3, 3)
    assert "transpose" in describe_difference(x.T, x)


def test_hint_is_appended_to_the_generic_message():
    assert "look at the mask" in _message(lambda x: softmax(x) * 0 + 0.2, hint="look at the mask")


def test_crash_and_stub_messages():
    def stub(x):
        raise NotImplementedError()

    assert "not implemented yet" in _message(stub)
    assert "ZeroDivisionError" in _message(lambda x: 1 / 0)


def test_fmt_writes_numbers_plainly():
    assert fmt(np.float64(0.25)) == "0.25"
    assert fmt(torch.tensor(0.5)) == "0.5"
    assert fmt((np.int64(1), 2)) == "(1, 2)"
    assert fmt(np.array([0.5, 1.0])) == "[0.5 1. ]"
    assert fmt(True) == "True"


def test_tuples_of_tensors_still_compare():
    compare("xx", "pair", lambda a: (torch.tensor(a), a * 2), lambda a: (a, a * 2),
            [(np.ones(3),)], quiet=True)
    msg = _message(lambda a: (a, a * 3), reference=lambda a: (a, a * 2), cases=[(np.ones(3),)])
    assert "item 1" in msg


def test_a_mistake_is_named_only_when_it_holds_on_every_case():
    def half_beta(x, beta):  # the declared mistake
        return x * beta / 2

    cases = [(np.ones(2), 2.0), (np.ones(2), 3.0)]
    # ignoring beta (using 1) equals "beta/2" on the first case only: not named
    msg = _message(lambda x, beta: x * 1.0, reference=lambda x, beta: x * beta, cases=cases,
                   mistakes={"halved beta": half_beta})
    assert "halved beta" not in msg and "test case 0" in msg
    msg = _message(lambda x, beta: x * beta * 0.5, reference=lambda x, beta: x * beta, cases=cases,
                   mistakes={"halved beta": half_beta})
    assert "it looks like you halved beta" in msg


def test_scalar_answers_in_half_precision_are_named():
    msg = _message(lambda x: np.float16(x.sum() / 3), reference=lambda x: x.sum() / 3,
                   cases=[(np.array([1.0, 2.0, 4.0]),)])
    assert "float16" in msg


def test_an_ignored_argument_is_named():
    cases = [(np.ones(3), 2.0), (np.ones(3), 3.0)]
    msg = _message(lambda x, beta: x * 2.0, reference=lambda x, beta: x * beta, cases=cases)
    assert "changing `beta` from 3 to 2 does not change your answer" in msg
    assert "ignores its argument `beta`" in msg
    # a string argument is tried with the values it takes in the other cases
    msg = _message(lambda x, form: x, reference=lambda x, form: x if form == "a" else -x,
                   cases=[(np.ones(2), "a"), (np.ones(2), "b")])
    assert "ignores its argument `form`" in msg


def test_a_wrong_boolean_mask_is_described_not_crashed_on():
    """Masks (bool arrays) have no tolerance: a wrong entry is named, a right mask is accepted."""
    from mosaics_edu.course.checks import describe_difference, tolerance

    want = np.array([[True, False], [False, True]])
    assert np.array_equal(tolerance(want), np.zeros((2, 2)))
    msg = describe_difference(np.array([[True, True], [False, True]]), want)
    assert "1 of 4 entries differ" in msg and "(0, 1)" in msg, msg
