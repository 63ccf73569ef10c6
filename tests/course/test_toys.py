"""mosaics_edu.course.toys: the toy regressions and periodic signals of chapters 01 and 02."""

from __future__ import annotations

import numpy as np
import pytest

from mosaics_edu.core import memory
from mosaics_edu.course import toys


def test_make_regression_shapes_and_seed():
    k, v = toys.make_regression(50, dim=2, noise=0.1, seed=3)
    assert k.shape == (50, 2) and v.shape == (50, 1)
    k2, v2 = toys.make_regression(50, dim=2, noise=0.1, seed=3)
    assert np.array_equal(k, k2) and np.array_equal(v, v2)
    assert np.all((k >= 0) & (k <= 1))
    k0, v0 = toys.make_regression(20, dim=1, noise=0.0)
    assert np.allclose(v0[:, 0], toys.target_function(k0))


@pytest.mark.parametrize("bad", [dict(n=0), dict(n=5, dim=3), dict(n=5, noise=-1.0)])
def test_make_regression_rejects_bad_input(bad):
    with pytest.raises(ValueError):
        toys.make_regression(**bad)


def test_error_vs_memory_size_sqrt_schedule_beats_fixed():
    sizes = [32, 512]
    out = toys.error_vs_memory_size(sizes, {"sqrt": lambda n: 10 * np.sqrt(n), "fixed": lambda n: 10.0},
                                    seeds=2, n_test=100)
    assert out["sizes"].tolist() == sizes
    assert out["sqrt"][1] < out["sqrt"][0] and out["sqrt"][1] < out["fixed"][1]


def test_leave_one_out_excludes_own_pair():
    k, v = toys.make_regression(30, seed=1)
    # With a huge beta the in-sample answer is the pair itself (error 0) but LOO is not.
    assert toys.in_sample_error(k, v, 1e7) < 1e-12
    assert toys.leave_one_out_error(k, v, 1e7) > 0.01
    # Direct computation for one pair.
    n = len(k)
    i = 4
    others = np.arange(n) != i
    ans = memory.kernel_regression(k[others], v[others], k[i : i + 1], 50.0)
    full = memory.kernel_regression(k, v, k, 50.0, mask=~np.eye(n, dtype=bool))
    assert np.allclose(ans, full[i])


def test_fit_demo_weights_and_validation():
    r = toys.fit_demo(n=40, beta=50.0, query=0.5)
    assert r["weights"].shape == (40,) and np.isclose(r["weights"].sum(), 1.0)
    assert np.isclose(r["answer"], r["weights"] @ r["values"])
    with pytest.raises(ValueError, match="query"):
        toys.fit_demo(query=1.5)


def test_unit_keys_and_values():
    x = toys.periodic_signal(2, 30, period=10.0, seed=0)
    k = toys.unit_keys(x, 0.5)
    assert k.shape == (2, 30, 24) and np.allclose(np.linalg.norm(k, axis=-1), 1.0)
    v = toys.peek_values(x[..., None], 0.25)
    assert np.allclose(v[:, :-1, 0], 0.25 * x[:, :-1] + 0.75 * x[:, 1:])
    assert np.allclose(v[:, -1, 0], 0.25 * x[:, -1])
    with pytest.raises(ValueError):
        toys.peek_values(x[0], 0.5)


def test_causal_mask_is_strict():
    m = toys.causal_mask(4)
    assert m.tolist() == [[False] * 4, [True, False, False, False], [True, True, False, False],
                          [True, True, True, False]]


def test_predict_next_is_causal_and_zero_at_start():
    x = toys.periodic_signal(1, 40, period=10.0, seed=1)[0]
    pred, w = toys.predict_next(x, 0.5, 30.0)
    assert pred[0] == 0.0 and np.all(np.triu(w) == 0)
    assert all(toys.no_peeking(lambda s: toys.predict_next(s, 0.5, 30.0)[0], x, t) for t in range(39))


def test_no_peeking_catches_a_leak():
    x = np.linspace(0, 1, 10)
    assert not toys.no_peeking(lambda s: np.r_[s[1:], 0.0], x, 3)
    assert toys.no_peeking(lambda s: 2 * s, x, 3)
    assert toys.no_peeking(lambda s: np.r_[s[1:], 0.0], x, 9)  # the last position has no future
    with pytest.raises(ValueError):
        toys.no_peeking(lambda s: s, x, 10)


def test_memory_unit_demo_defaults():
    r = toys.memory_unit_demo()
    q = int(r["query"])
    assert r["weights"].shape == (100,) and r["weights"][q:].sum() == 0.0
    assert np.isclose(r["weights"].sum(), 1.0)
    with pytest.raises(ValueError):
        toys.memory_unit_demo(query=0)


def test_error_by_position_drops_after_one_period():
    x = toys.periodic_signal(50, 60, period=15.0, seed=2)
    e = toys.error_by_position(x, 0.5, 30.0)
    assert e.shape == (59,)
    assert e[17:30].mean() < 0.2 * e[1:15].mean()
