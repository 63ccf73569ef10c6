"""Checks for chapter 02 (Keys from the past, values from the future).

References: :func:`mosaics_edu.features.leaky_average` (keys), :func:`mosaics_edu.toys.peek_values`
(values), :func:`mosaics_edu.memory.kernel_regression` with the strict mask
:func:`mosaics_edu.toys.causal_mask` (retrieval) and :func:`mosaics_edu.toys.no_peeking` (the
learner's own test, run on predictors that do and do not peek).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .. import memory, toys
from ..features import leaky_average
from . import call_learner, compare, fail, passed

CHAPTER = "02_keys_and_values"

__all__ = ["check_leaky_keys", "check_peek_values", "check_causal_retrieve", "check_no_peeking"]


def _unit(k: np.ndarray, axis: int = -1) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return k / np.linalg.norm(k, axis=axis, keepdims=True)


def _leaky(f: np.ndarray, decay: float) -> np.ndarray:
    return leaky_average(np.asarray(f, dtype=np.float64), decay, method="recurrent")


# --------------------------------------------------------------------------------------------
# exercise 2.1: leaky_keys
# --------------------------------------------------------------------------------------------


def _keys_case(seed: int, T: int, d: int, decay: float):
    return np.random.default_rng(seed).standard_normal((T, d)), decay


KEYS_CASES = [_keys_case(30, 6, 3, 0.5), _keys_case(31, 9, 4, 0.9), _keys_case(32, 5, 2, 0.0)]


def _ref_keys(features, decay):
    return _unit(_leaky(features, decay))


def _weights_swapped(f, decay):  # k̄_t = λ k̃_t + k̄_{t-1}
    out, acc = np.zeros_like(f), np.zeros_like(f[0])
    for t in range(len(f)):
        acc = decay * f[t] + acc
        out[t] = acc
    return _unit(out)


def _exclusive(f, decay):  # k̄_t built from s < t only
    shifted = np.concatenate([np.zeros_like(f[:1]), f[:-1]])
    return _unit(_leaky(shifted, decay))


KEYS_MISTAKES: dict[str, Callable] = {
    "forgot to L2-normalise the keys: divide each k̄_t by its norm ||k̄_t|| (over the features)":
        lambda f, lam: _leaky(f, lam),
    "normalised over the time axis (axis 0); each key k_t is normalised on its own, over its "
    "features (axis=-1)":
        lambda f, lam: _unit(_leaky(f, lam), axis=0),
    "put the decay on the current input (k̄_t = λ k̃_t + k̄_{t-1}); the recursion is "
    "k̄_t = k̃_t + λ k̄_{t-1}: the *past* fades":
        _weights_swapped,
    "averaged the future instead of the past (the recursion ran backwards in time): k_t may "
    "only use k̃_0 … k̃_t":
        lambda f, lam: _unit(_leaky(f[::-1], lam)[::-1]),
    "left the current input out (only s < t): the key of position t must include k̃_t itself, "
    "and position 0 then has an all-zero key (0/0 = nan)":
        _exclusive,
    "normalised each input before averaging instead of normalising the average":
        lambda f, lam: _leaky(_unit(f), lam),
}


def check_leaky_keys(leaky_keys: Callable[..., np.ndarray]) -> None:
    """Exercise 2.1: leaky-average keys, L2-normalised."""
    compare(CHAPTER, "leaky_keys", leaky_keys, _ref_keys, KEYS_CASES, mistakes=KEYS_MISTAKES,
            rtol=1e-6, atol=1e-9)


# --------------------------------------------------------------------------------------------
# exercise 2.2: peek_values
# --------------------------------------------------------------------------------------------

VALUES_CASES = [
    (np.arange(1.0, 6.0)[:, None], 0.0),
    (np.random.default_rng(40).standard_normal((7, 2)), 0.3),
    (np.random.default_rng(41).standard_normal((4, 3)), 0.8),
]


def _ref_values(x, gamma):
    return toys.peek_values(x, gamma)


def _prev(x):
    return np.concatenate([np.zeros_like(x[:1]), x[:-1]])


def _next(x):
    return np.concatenate([x[1:], np.zeros_like(x[:1])])


VALUES_MISTAKES: dict[str, Callable] = {
    "peeked in the wrong direction: you used x_{t-1} (the past); the value of position t peeks "
    "at the *next* input x_{t+1}":
        lambda x, g: g * x + (1 - g) * _prev(x),
    "wrapped around at the end (np.roll?): the last value peeks at x_0; past the window the "
    "next input counts as 0":
        lambda x, g: g * x + (1 - g) * np.roll(x, -1, axis=0),
    "swapped γ and 1-γ: v_t = γ x_t + (1-γ) x_{t+1}":
        lambda x, g: (1 - g) * x + g * _next(x),
    "returned x_{t+1} alone: mix in γ x_t as well":
        lambda x, g: _next(x),
}


def check_peek_values(peek_values: Callable[..., np.ndarray]) -> None:
    """Exercise 2.2: values that peek one step into the future."""
    compare(CHAPTER, "peek_values", peek_values, _ref_values, VALUES_CASES,
            mistakes=VALUES_MISTAKES, rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------------------------
# exercise 2.3: causal_retrieve
# --------------------------------------------------------------------------------------------


def _retrieve_case(seed: int, T: int, d: int, m: int, beta: float):
    rng = np.random.default_rng(seed)
    keys = _unit(rng.standard_normal((T, d)))
    return keys, rng.standard_normal((T, m)), beta


RETRIEVE_CASES = [_retrieve_case(50, 5, 3, 1, 2.0), _retrieve_case(51, 8, 4, 2, 5.0),
                  _retrieve_case(52, 6, 2, 3, 200.0)]


def _with_mask(keys, values, beta, mask):
    return memory.kernel_regression(keys, values, keys, beta, mask=mask)


def _ref_retrieve(keys, values, beta):
    return _with_mask(keys, values, beta, toys.causal_mask(len(keys)))


def _nan_first_row(keys, values, beta):
    out = _ref_retrieve(keys, values, beta).copy()
    out[0] = np.nan
    return out


RETRIEVE_MISTAKES: dict[str, Callable] = {
    "let position t read its own pair (mask s <= t): its value v_t holds x_{t+1}, the very thing "
    "position t must predict. Use s < t (np.tri(T, T, k=-1))":
        lambda k, v, b: _with_mask(k, v, b, np.tri(len(k), dtype=bool)),
    "used no mask: every position reads every pair, including the future":
        lambda k, v, b: _with_mask(k, v, b, None),
    "masked the wrong triangle: position t read pairs s > t (the future), not s < t (the past)":
        lambda k, v, b: _with_mask(k, v, b, np.tri(len(k), dtype=bool).T & ~np.eye(len(k), dtype=bool)),
    "returned nan at position 0: its memory is empty (no s < 0), and the convention is an "
    "answer of exactly 0 (set empty rows to 0 instead of dividing 0 by 0)":
        _nan_first_row,
    "cut one pair too many (mask s < t-1): position t may read pair t-1":
        lambda k, v, b: _with_mask(k, v, b, np.tri(len(k), k=-2, dtype=bool)),
}


def check_causal_retrieve(causal_retrieve: Callable[..., np.ndarray]) -> None:
    """Exercise 2.3: strictly causal retrieval with an empty memory at position 0."""
    compare(CHAPTER, "causal_retrieve", causal_retrieve, _ref_retrieve, RETRIEVE_CASES,
            mistakes=RETRIEVE_MISTAKES, rtol=1e-6, atol=1e-9)


# --------------------------------------------------------------------------------------------
# exercise 2.4: the learner's own "no peeking" test
# --------------------------------------------------------------------------------------------


def _causal_unit(x):
    return toys.predict_next(x, decay=0.5, beta=30.0)[0]


def _leaky_unit(x):  # reads its own pair: mask s <= t
    keys = toys.unit_keys(x, 0.5)
    values = toys.peek_values(x[:, None])
    mask = np.tri(len(x), dtype=bool)
    return memory.kernel_regression(keys, values, keys, 30.0, mask=mask)[:, 0]


def _reads_last(x):  # ignores the near future but reads the end of the series
    return 0.5 * x + 0.01 * x[-1]


def _uses_present(x):  # a legitimate predictor: the next value guessed from x_t and x_{t-1}
    return 2 * x - np.concatenate([x[:1], x[:-1]])


_SERIES = toys.periodic_signal(1, 40, 10.0, seed=7)[0]

# (predictor, t, expected answer, what it means if the learner gets it wrong)
PEEKING_CASES: list[tuple[Callable, int, bool, str]] = [
    (_causal_unit, 15, True,
     "said the causal memory unit peeks. Did you change x_t itself, or compare positions after "
     "t? Position t may use x_0 … x_t; change only x_{t+1}, x_{t+2}, … and compare positions 0 … t"),
    (_uses_present, 20, True,
     "said a predictor using x_t and x_{t-1} peeks: those are allowed at position t. Change only "
     "x_{t+1} onwards, and compare the predictions at positions 0 … t"),
    (_leaky_unit, 15, False,
     "missed the leak of a memory unit that reads its own pair (mask s <= t): its prediction at "
     "position t uses v_t, which holds x_{t+1}. Change x_{t+1} and compare the predictions at "
     "positions 0 … t (t included)"),
    (_reads_last, 10, False,
     "missed a predictor that reads the *last* value of the series: change every future value "
     "x_{t+1}, x_{t+2}, …, x_{T-1}, not only x_{t+1}"),
]


def check_no_peeking(no_peeking: Callable[[Callable, np.ndarray, int], bool]) -> None:
    """Exercise 2.4: the learner's test must accept causal predictors and catch peeking ones."""
    for k, (predict, t, expected, diagnosis) in enumerate(PEEKING_CASES):
        reference = toys.no_peeking(predict, _SERIES, t)
        if reference != expected:  # the case itself must be right; cannot happen unless edited
            raise RuntimeError(f"check_no_peeking case {k} is inconsistent with toys.no_peeking")
        answer = call_learner(CHAPTER, "no_peeking", no_peeking, predict, _SERIES.copy(), t)
        if not isinstance(answer, bool | np.bool_):
            fail(CHAPTER, "no_peeking", f"returned {answer!r} ({type(answer).__name__}); return "
                 "True (no peeking) or False (peeks)")
        if bool(answer) != expected:
            fail(CHAPTER, "no_peeking", f"wrong on test case {k}: it {diagnosis}.")
    passed(CHAPTER, "no_peeking")
