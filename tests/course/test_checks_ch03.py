"""The chapter 03 checks pass the reference solutions and diagnose every known mistake.

The wrong answers below are written the way a learner would write them (not copied from the
check's own mistake models), so a test passes only if the check recognises real learner code.
"""

from __future__ import annotations

import copy
from unittest import mock

import numpy as np
import pytest
import torch
from check_contract import table_tests

from mosaics_edu.course.checks import CheckFailed, ch03
from mosaics_edu.course.moons import moon_shares as package_moon_shares
from mosaics_edu.course.moons import to_complex_linear
from mosaics_edu.course.moons.cached_generation import generate_cached, moon_keys, moon_values, read_memory


def _tag(exercise: str) -> str:
    return f"[chapter {ch03.CHAPTER} · exercise '{exercise}']"


# ---------------------------------------------------------------- reference solutions (chapter)


def complex_linear(w):
    rows, cols = w.shape
    blocks = w.reshape(rows // 2, 2, cols // 2, 2)  # (m, 2, n, 2)
    a = (blocks[:, 0, :, 0] + blocks[:, 1, :, 1]) / 2  # (m, n)
    b = (blocks[:, 0, :, 1] - blocks[:, 1, :, 0]) / 2  # (m, n)
    out = torch.stack([torch.stack([a, b], -1), torch.stack([-b, a], -1)], 1)  # (m, 2, n, 2)
    return out.reshape(rows, cols)


def generate_with_fill_in(model, prefix, n_steps):
    keys = moon_keys(model, prefix)  # (B, H, c, hd)
    values = moon_values(model, prefix[:, 1:])  # (B, H, c-1, hd)
    out = []
    for _ in range(n_steps):
        pred = read_memory(model, keys[:, :, -1], keys[:, :, :-1], values)  # (B, 6)
        out.append(pred)
        values = torch.cat([values, moon_values(model, pred[:, None])], dim=2)
        keys = torch.cat([keys, moon_keys(model, pred[:, None])], dim=2)
    return torch.stack(out, dim=1)  # (B, n_steps, 6)


def moon_shares(w_phi):
    a, b = w_phi[0::2, 0::2], w_phi[0::2, 1::2]  # (3, 3) each
    mag = torch.sqrt(a**2 + b**2)
    return (mag / mag.sum(dim=1, keepdim=True)).detach().numpy()


EXERCISES = {
    "complex_linear": (ch03.check_complex_linear, complex_linear, to_complex_linear),
    "generate_with_fill_in": (ch03.check_generate, generate_with_fill_in, generate_cached),
    "moon_shares": (ch03.check_moon_shares, moon_shares, package_moon_shares),
}


@pytest.mark.parametrize("exercise", EXERCISES)
@pytest.mark.parametrize("which", ["chapter solution", "package function"])
def test_reference_solution_passes(exercise, which, capsys):
    check, chapter_solution, package_function = EXERCISES[exercise]
    check(chapter_solution if which == "chapter solution" else package_function)
    out = capsys.readouterr().out
    assert f"✓ {_tag(exercise)} passed" in out


@pytest.mark.parametrize("exercise", EXERCISES)
def test_stub_fails_with_not_implemented(exercise):
    def stub(*args):
        raise NotImplementedError()

    check = EXERCISES[exercise][0]
    with pytest.raises(CheckFailed, match="not implemented yet") as err:
        check(stub)
    assert _tag(exercise) in str(err.value)


# ---------------------------------------------------------------- 3.1 learner mistakes


def _cl_conjugate(w):
    rows, cols = w.shape
    out = torch.empty_like(w)
    for i in range(0, rows, 2):
        for j in range(0, cols, 2):
            p, q, r, s = w[i, j], w[i, j + 1], w[i + 1, j], w[i + 1, j + 1]
            a, b = (p + s) / 2, (r - q) / 2  # sign of b flipped
            out[i, j], out[i, j + 1], out[i + 1, j], out[i + 1, j + 1] = a, b, -b, a
    return out


def _cl_top_row(w):
    rows, cols = w.shape
    out = torch.empty_like(w)
    for i in range(0, rows, 2):
        for j in range(0, cols, 2):
            a, b = w[i, j], w[i, j + 1]  # no averaging with the bottom row
            out[i, j], out[i, j + 1], out[i + 1, j], out[i + 1, j + 1] = a, b, -b, a
    return out


def _cl_not_halved(w):
    rows, cols = w.shape
    blocks = w.reshape(rows // 2, 2, cols // 2, 2)
    a = blocks[:, 0, :, 0] + blocks[:, 1, :, 1]
    b = blocks[:, 0, :, 1] - blocks[:, 1, :, 0]
    return torch.stack([torch.stack([a, b], -1), torch.stack([-b, a], -1)], 1).reshape(rows, cols)


def _cl_strided(w):
    rows, cols = w.shape
    blocks = w.reshape(2, rows // 2, 2, cols // 2)  # block (i, j) = rows i, i+m; cols j, j+n
    a = (blocks[0, :, 0] + blocks[1, :, 1]) / 2  # (m, n)
    b = (blocks[0, :, 1] - blocks[1, :, 0]) / 2
    top = torch.stack([a, b], 1)  # (m, 2, n)
    bottom = torch.stack([-b, a], 1)  # (m, 2, n)
    return torch.stack([top, bottom], 0).reshape(rows, cols)


def _cl_sum_for_b(w):
    out = w.clone()
    for i in range(0, w.shape[0], 2):
        for j in range(0, w.shape[1], 2):
            a = (w[i, j] + w[i + 1, j + 1]) / 2
            b = (w[i, j + 1] + w[i + 1, j]) / 2  # q + r
            out[i, j], out[i, j + 1], out[i + 1, j], out[i + 1, j + 1] = a, b, -b, a
    return out


def _cl_square_loop(w):  # loops over the block rows for the columns too
    out = w.clone()
    m = min(w.shape) // 2
    for i in range(m):
        for j in range(m):
            blk = w[2 * i:2 * i + 2, 2 * j:2 * j + 2]
            a, b = (blk[0, 0] + blk[1, 1]) / 2, (blk[0, 1] - blk[1, 0]) / 2
            out[2 * i:2 * i + 2, 2 * j:2 * j + 2] = torch.stack([torch.stack([a, b]), torch.stack([-b, a])])
    return out


def _cl_identity(w):
    return w.clone()  # forgot to project at all


# ---------------------------------------------------------------- 3.2 learner mistakes


def _gen_no_fill_in(model, prefix, n_steps):
    keys = moon_keys(model, prefix)
    values = moon_values(model, prefix[:, 1:])
    B, H, _, hd = values.shape
    out = []
    for _ in range(n_steps):
        pred = read_memory(model, keys[:, :, -1], keys[:, :, :-1], values)
        out.append(pred)
        values = torch.cat([values, torch.zeros(B, H, 1, hd, dtype=values.dtype)], dim=2)
        keys = torch.cat([keys, moon_keys(model, pred[:, None])], dim=2)
    return torch.stack(out, dim=1)


def _gen_frozen(model, prefix, n_steps):
    keys = moon_keys(model, prefix)
    values = moon_values(model, prefix[:, 1:])
    query, out = keys[:, :, -1], []
    for _ in range(n_steps):
        pred = read_memory(model, query, keys[:, :, :-1], values)
        out.append(pred)
        query = moon_keys(model, pred[:, None])[:, :, 0]
    return torch.stack(out, dim=1)


def _gen_unshifted(model, prefix, n_steps):
    points, out = prefix, []
    for _ in range(n_steps):
        keys, values = moon_keys(model, points), moon_values(model, points)
        pred = read_memory(model, keys[:, :, -1], keys, values)
        out.append(pred)
        points = torch.cat([points, pred[:, None]], dim=1)
    return torch.stack(out, dim=1)


def _gen_shifted(model, prefix, n_steps):
    points = [prefix[:, -1]]
    keys, values = moon_keys(model, prefix), moon_values(model, prefix[:, 1:])
    for _ in range(n_steps - 1):
        pred = read_memory(model, keys[:, :, -1], keys[:, :, :-1], values)
        points.append(pred)
        values = torch.cat([values, moon_values(model, pred[:, None])], dim=2)
        keys = torch.cat([keys, moon_keys(model, pred[:, None])], dim=2)
    return torch.stack(points, dim=1)


def _gen_repeated(model, prefix, n_steps):
    keys, values = moon_keys(model, prefix), moon_values(model, prefix[:, 1:])
    pred = read_memory(model, keys[:, :, -1], keys[:, :, :-1], values)
    return torch.stack([pred] * n_steps, dim=1)


# ---------------------------------------------------------------- 3.3 learner mistakes


def _magnitudes(w_phi):
    return torch.sqrt(w_phi[0::2, 0::2] ** 2 + w_phi[0::2, 1::2] ** 2)  # (3, 3)


def _shares_by_column(w_phi):
    mag = _magnitudes(w_phi)
    return (mag / mag.sum(dim=0, keepdim=True)).numpy()


def _shares_abs_a(w_phi):
    mag = w_phi[0::2, 0::2].abs()
    return (mag / mag.sum(dim=1, keepdim=True)).numpy()


def _shares_squared(w_phi):
    mag = w_phi[0::2, 0::2] ** 2 + w_phi[0::2, 1::2] ** 2
    return (mag / mag.sum(dim=1, keepdim=True)).numpy()


def _shares_four_entries(w_phi):
    mag = torch.zeros(3, 3, dtype=w_phi.dtype)
    for h in range(3):
        for m in range(3):
            mag[h, m] = w_phi[2 * h:2 * h + 2, 2 * m:2 * m + 2].abs().sum()
    return (mag / mag.sum(dim=1, keepdim=True)).numpy()


def _shares_unnormalised(w_phi):
    return _magnitudes(w_phi).numpy()


def _shares_transposed_map(w_phi):
    mag = _magnitudes(w_phi.T.contiguous())
    return (mag / mag.sum(dim=1, keepdim=True)).numpy()


def _gen_reads_first_key(model, prefix, n_steps):
    keys, values = moon_keys(model, prefix), moon_values(model, prefix[:, 1:])
    out = []
    for _ in range(n_steps):
        pred = read_memory(model, keys[:, :, 0], keys[:, :, :-1], values)  # wrong query
        out.append(pred)
        values = torch.cat([values, moon_values(model, pred[:, None])], dim=2)
        keys = torch.cat([keys, moon_keys(model, pred[:, None])], dim=2)
    return torch.stack(out, dim=1)


def _gen_stale_key(model, prefix, n_steps):
    keys = moon_keys(model, prefix)
    values = moon_values(model, prefix[:, 1:])
    out, last = [], keys[:, :, -1]
    for _ in range(n_steps):
        pred = read_memory(model, last, keys[:, :, :-1], values)
        out.append(pred)
        values = torch.cat([values, moon_values(model, pred[:, None])], dim=2)
        keys = torch.cat([keys, moon_keys(model, pred[:, None])], dim=2)
        # the query stays the prompt's last key: the new point's key is stored but never asked
    return torch.stack(out, dim=1)


def _shares_a_plus_b(w_phi):
    mag = (w_phi[0::2, 0::2] + w_phi[0::2, 1::2]).abs()
    return (mag / mag.sum(dim=1, keepdim=True)).numpy()


def _shares_softmax(w_phi):
    return torch.softmax(_magnitudes(w_phi), dim=1).numpy()


def _shares_row_max(w_phi):
    mag = _magnitudes(w_phi)
    return (mag / mag.max(dim=1, keepdim=True).values).numpy()



# Each learner mistake with a phrase of the diagnosis that the check must give for it.
LEARNER_MISTAKES = {
    "complex_linear": [
        (_cl_conjugate, "(the conjugate)"),
        (_cl_top_row, "copied a and b from the top row"),
        (_cl_not_halved, "forgot to divide by 2"),
        (_cl_strided, "paired row i with row i + m"),
        (_cl_sum_for_b, "took b = (q + r)/2"),
        (_cl_square_loop, "projected only the blocks of the leading square part"),
        (_cl_identity, "returned the matrix as it was"),
    ],
    "generate_with_fill_in": [
        (_gen_no_fill_in, "never filled in the values"),
        (_gen_frozen, "kept the memory fixed to the prompt's pairs"),
        (_gen_unshifted, "stored W_ψ x_s as the value of position s"),
        (_gen_shifted, "returned the last prompt point as the first generated one"),
        (_gen_repeated, "repeated the first prediction"),
        (_gen_stale_key, "kept querying with the prompt's last key"),
        (_gen_reads_first_key, "queried with the key of the first point"),
    ],
    "moon_shares": [
        (_shares_by_column, "normalised each column (moon) instead of each row"),
        (_shares_abs_a, "used |a| only"),
        (_shares_squared, "used squared magnitudes"),
        (_shares_four_entries, "summed the absolute values of the block's four entries"),
        (_shares_unnormalised, "returned the block magnitudes without dividing"),
        (_shares_transposed_map, "read W_φ transposed"),
        (_shares_row_max, "divided by each row's largest magnitude"),
        (_shares_softmax, "took a softmax of the magnitudes"),
        (_shares_a_plus_b, "took |a + b|"),
    ],
}


def _declared_mistakes(exercise: str) -> dict:
    """The ``mistakes`` mapping the check hands to ``compare`` (read by wrapping ``compare``)."""
    seen = {}
    real_compare = ch03.compare

    def recording_compare(*args, **kw):
        seen.update(kw.get("mistakes") or {})
        return real_compare(*args, **kw)

    check, solution, _ = EXERCISES[exercise]
    with mock.patch.object(ch03, "compare", recording_compare):
        check(solution)
    return seen


def _full_diagnosis(exercise: str, phrase: str) -> str:
    matches = [d for d in _declared_mistakes(exercise) if phrase in d]
    assert len(matches) == 1, f"{phrase!r} matches {len(matches)} diagnoses of {exercise}"
    return matches[0]


@pytest.mark.parametrize("exercise", EXERCISES)
def test_every_declared_mistake_has_a_learner_version(exercise, capsys):
    declared = _declared_mistakes(exercise)
    capsys.readouterr()
    assert len(declared) == len(LEARNER_MISTAKES[exercise])
    for diagnosis in declared:
        hits = [p for _, p in LEARNER_MISTAKES[exercise] if p in diagnosis]
        assert len(hits) == 1, f"diagnosis not covered exactly once: {diagnosis!r}"


@pytest.mark.parametrize("exercise,wrong,phrase", [
    pytest.param(ex, wrong, phrase, id=f"{ex}-{wrong.__name__}")
    for ex, items in LEARNER_MISTAKES.items() for wrong, phrase in items
])
def test_each_mistake_is_diagnosed(exercise, wrong, phrase, capsys):
    diagnosis = _full_diagnosis(exercise, phrase)
    capsys.readouterr()
    check = EXERCISES[exercise][0]
    with pytest.raises(CheckFailed) as err:
        check(wrong)
    message = str(err.value)
    assert message.startswith(_tag(exercise))
    assert f"it looks like you {diagnosis}." in message
    assert "passed" not in capsys.readouterr().out


# ---------------------------------------------------------------- wrong answers, no known mistake


def _cl_odd_on_complex_linear(w):
    """Right on a general matrix, but changes a matrix that is already complex-linear."""
    projected = complex_linear(w)
    if torch.allclose(projected, w, atol=1e-12):
        return 2 * w
    return projected


def _cl_drops_last_column_pair(w):
    return complex_linear(w)[:, :-2]


def _gen_crashes(model, prefix, n_steps):
    keys = moon_keys(model, prefix)
    return read_memory(model, keys[:, :, -1], keys, keys[:, :, 1:])  # shapes disagree


def _shares_uniform(w_phi):
    return np.full((3, 3), 1 / 3)


def _shares_flat(w_phi):
    mag = _magnitudes(w_phi)
    return (mag / mag.sum(dim=1, keepdim=True)).numpy().reshape(-1)


GENERIC_WRONG = [
    ("complex_linear", _cl_drops_last_column_pair, "expected shape (6, 6)"),
    ("generate_with_fill_in", _gen_crashes, "your function raised ValueError"),
    ("moon_shares", _shares_uniform, "the largest difference is"),
    ("moon_shares", _shares_flat, "expected shape (3, 3)"),
]


@pytest.mark.parametrize("exercise,wrong,expected", [
    pytest.param(ex, wrong, expected, id=f"{ex}-{wrong.__name__}")
    for ex, wrong, expected in GENERIC_WRONG
])
def test_unknown_wrong_answer_gets_an_informative_message(exercise, wrong, expected, capsys):
    check = EXERCISES[exercise][0]
    with pytest.raises(CheckFailed) as err:
        check(wrong)
    message = str(err.value)
    assert message.startswith(_tag(exercise))
    assert expected in message
    assert "it looks like you" not in message  # no known mistake was claimed
    assert "passed" not in capsys.readouterr().out


# ---------------------------------------------------------------- 3.4 the learning curve


def learning_curve(model, x, clip):
    with torch.no_grad():
        pred = model(x[:, :-1])  # (W, T, 6)
    err = (pred - x[:, 1:]).clamp(-clip, clip) ** 2  # (W, T, 6)
    curve = err.mean(dim=(0, 2)).numpy()  # (T,)
    return curve, float(curve.mean())


def test_learning_curve_reference_passes(capsys):
    ch03.check_learning_curve(learning_curve)
    ch03.check_learning_curve(ch03.reference_learning_curve)
    assert f"✓ {_tag('learning_curve')} passed" in capsys.readouterr().out


def test_learning_curve_stub_fails():
    def stub(*args):
        raise NotImplementedError()

    with pytest.raises(CheckFailed, match="not implemented yet"):
        ch03.check_learning_curve(stub)


@pytest.mark.parametrize("diagnosis", list(ch03.CURVE_MISTAKES))
def test_every_curve_mistake_is_diagnosed(diagnosis):
    flags = ch03.CURVE_MISTAKES[diagnosis]
    with pytest.raises(CheckFailed) as err:
        ch03.check_learning_curve(lambda m, x, c: ch03._curve_variant(m, x, c, **flags))
    assert f"it looks like you {diagnosis}." in str(err.value)


# ---------------------------------------------------------------- written wrong answers
# Each row: (exercise, answer, a phrase of the message). None is a mistake model of the checks.


def _cl_in_place(w):
    rows, cols = w.shape
    for i in range(0, rows, 2):
        for j in range(0, cols, 2):
            a = (w[i, j] + w[i + 1, j + 1]) / 2
            b = (w[i, j + 1] - w[i + 1, j]) / 2
            w[i, j], w[i, j + 1], w[i + 1, j], w[i + 1, j + 1] = a, b, -b, a  # overwrites w
    return w


def _cl_a_only(w):
    out = complex_linear(w)
    out[0::2, 1::2] = 0  # forgot b: a scaling without rotation
    out[1::2, 0::2] = 0
    return out


def _gen_one_too_many(model, prefix, n_steps):
    return generate_with_fill_in(model, prefix, n_steps + 1)


def _gen_prefix_in_place(model, prefix, n_steps):
    out = generate_with_fill_in(model, prefix, n_steps)
    prefix[:, -1] = out[:, 0]  # "advance the window" on the caller's tensor
    return out


def _gen_list(model, prefix, n_steps):
    return list(generate_with_fill_in(model, prefix, n_steps).unbind(1))


def _shares_abs_in_place(w_phi):
    w_phi.abs_()  # harmless for the magnitudes, but it changes the caller's matrix
    return moon_shares(w_phi)


def _lc_unclipped(model, x, clip):
    with torch.no_grad():
        err = (model(x[:, :-1]) - x[:, 1:]) ** 2
    curve = err.mean(dim=(0, 2)).numpy()
    return curve, float(curve.mean())


def _lc_fixed_clip(model, x, clip):
    return learning_curve(model, x, 0.5)


def _lc_all_points(model, x, clip):
    with torch.no_grad():
        pred = model(x)
    err = (pred[:, :-1] - x[:, 1:]).clamp(-clip, clip) ** 2
    err = torch.cat([err, err[:, -1:]], dim=1)  # pad the last position
    curve = err.mean(dim=(0, 2)).numpy()
    return curve, float(curve.mean())


def _lc_per_window(model, x, clip):
    with torch.no_grad():
        err = (model(x[:, :-1]) - x[:, 1:]).clamp(-clip, clip) ** 2
    curve = err.mean(dim=(1, 2)).numpy()  # one value per window
    return curve, float(curve.mean())


def _lc_in_place(model, x, clip):
    x[:, 1:] -= x[:, :-1]  # "work with differences", on the caller's tensor
    return learning_curve(model, x, clip)


def _lc_trapezoid(model, x, clip):
    curve, _ = learning_curve(model, x, clip)
    return curve, float(np.trapezoid(curve))


WRITTEN_WRONG = [
    ("complex_linear", _cl_in_place, "changed its argument `w` in place"),
    ("complex_linear", _cl_a_only, "entries differ"),
    ("complex_linear", _cl_identity, "it looks like you returned the matrix as it was"),
    ("complex_linear", _cl_drops_last_column_pair, "expected shape (6, 6)"),
    ("complex_linear", _cl_odd_on_complex_linear, "every failing case is one where the matrix is already"),
    ("generate_with_fill_in", _gen_one_too_many, "shape"),
    ("generate_with_fill_in", _gen_prefix_in_place, "changed its argument `prefix` in place"),
    ("generate_with_fill_in", _gen_list, "wrong on test case 0 of 4"),
    ("generate_with_fill_in", _gen_stale_key, "kept querying with the prompt's last key"),
    ("generate_with_fill_in", _gen_reads_first_key, "queried with the key of the first point"),
    ("moon_shares", _shares_abs_in_place, "changed its argument `w_phi` in place"),
    ("moon_shares", _shares_softmax, "took a softmax of the magnitudes"),
    ("moon_shares", _shares_row_max, "divided by each row's largest magnitude"),
    ("moon_shares", _shares_uniform, "entries differ"),
    ("moon_shares", _shares_flat, "expected shape (3, 3)"),
    ("learning_curve", _lc_unclipped, "forgot to clip"),
    ("learning_curve", _lc_fixed_clip, "ignores its argument `clip`"),
    ("learning_curve", _lc_all_points, "the curve is wrong: it returned shape (121,)"),
    ("learning_curve", _lc_per_window, "the curve is wrong: it returned shape (4,)"),
    ("learning_curve", _lc_in_place, "changed its argument `x` in place"),
    ("learning_curve", _lc_trapezoid, "the area is wrong"),
]
CHECKS = {**{ex: EXERCISES[ex][0] for ex in EXERCISES}, "learning_curve": ch03.check_learning_curve}


# ---------------------------------------------------------------- wrong answers in the regimes


def _cl_row_loop(w):  # loops over the block rows for both indices: a non-square matrix crashes
    out = w.clone()
    for i in range(0, w.shape[0], 2):
        for j in range(0, w.shape[0], 2):
            a, b = (w[i, j] + w[i + 1, j + 1]) / 2, (w[i, j + 1] - w[i + 1, j]) / 2
            out[i, j], out[i, j + 1], out[i + 1, j], out[i + 1, j + 1] = a, b, -b, a
    return out


def _gen_last_value(model, prefix, n_steps):  # reads the last stored value: none for a 1-point prompt
    keys, values = moon_keys(model, prefix), moon_values(model, prefix[:, 1:])
    latest = values[:, :, -1]  # IndexError when the prompt holds a single point
    out = []
    for _ in range(n_steps):
        pred = read_memory(model, keys[:, :, -1], keys[:, :, :-1], values)
        out.append(pred)
        latest = moon_values(model, pred[:, None])
        values = torch.cat([values, latest], dim=2)
        keys = torch.cat([keys, moon_keys(model, pred[:, None])], dim=2)
    return torch.stack(out, dim=1)


def _shares_drop_small(w_phi):  # "cleans up" shares below 5 % (they come back as 0)
    shares = moon_shares(w_phi)
    shares[shares < 0.05] = 0.0
    return shares


def _lc_clip_below_only(model, x, clip):
    with torch.no_grad():
        r = (model(x[:, :-1]) - x[:, 1:]).clamp(min=-clip)
    curve = (r**2).mean(dim=(0, 2)).numpy()
    return curve, float(curve.mean())


def _lc_clipped_predictions(model, x, clip):  # clips the predictions instead of the residuals
    with torch.no_grad():
        r = model(x[:, :-1]).clamp(-clip, clip) - x[:, 1:]
    curve = (r**2).mean(dim=(0, 2)).numpy()
    return curve, float(curve.mean())


REGIME_WRONG = [
    ("complex_linear", _cl_row_loop, "your function raised IndexError", "non-square"),
    ("complex_linear", _cl_square_loop, "projected only the blocks of the leading square part",
     "non-square"),
    ("generate_with_fill_in", _gen_last_value, "your function raised IndexError", "short-prompt"),
    ("generate_with_fill_in", _gen_no_fill_in, "never filled in the values", "short-prompt"),
    ("moon_shares", _shares_drop_small, "every failing case is one where each unit follows one moon",
     "one-moon"),
    ("moon_shares", _shares_abs_a, "used |a| only", "zero-a"),
    ("learning_curve", _lc_clip_below_only, "every failing case is one where residuals lie beyond",
     "clip-binds"),
    ("learning_curve", _lc_clipped_predictions, "every failing case is one where residuals lie beyond",
     "clip-binds"),
]


# ---------------------------------------------------------------- correct variants


def _cl_via_transpose(w):
    """Projecting wᵀ and transposing back gives the same blocks: [[a, b], [-b, a]]ᵀ's own
    projection is [[a, -b], [b, a]], transposed back [[a, b], [-b, a]]."""
    return to_complex_linear(w.T.contiguous()).T


def _cl_float32(w):
    return complex_linear(w.float())


def _gen_recompute(model, prefix, n_steps):
    """No cache: run the whole model on prefix + generated points at every step. The model's
    forward already fills in every value whose next point exists."""
    points = prefix
    for _ in range(n_steps):
        with torch.no_grad():
            nxt = model(points)[:, -1:]  # (B, 1, 6)
        points = torch.cat([points, nxt], dim=1)
    return points[:, prefix.shape[1]:]


def _shares_torch(w_phi):
    blocks = w_phi.reshape(3, 2, 3, 2)  # (unit, row in block, moon, column in block)
    mag = torch.hypot(blocks[:, 0, :, 0], blocks[:, 0, :, 1])
    return mag / mag.sum(-1, keepdim=True)


def _shares_float32(w_phi):
    return moon_shares(w_phi.float()).astype(np.float32)


def _lc_numpy(model, x, clip):
    with torch.no_grad():
        pred = model(x[:, :-1]).numpy()
    r = np.clip(pred - x[:, 1:].numpy(), -clip, clip)
    curve = (r * r).mean(axis=2).mean(axis=0)
    return curve, curve.mean()


def _lc_float32(model, x, clip):
    with torch.no_grad():
        pred = copy.deepcopy(model).float()(x[:, :-1].float())
    curve = ((pred - x[:, 1:].float()).clamp(-clip, clip) ** 2).mean(dim=(0, 2))
    return curve, curve.mean()


def _cl_loop_float32(w):
    out = w.float().clone()
    for i in range(0, w.shape[0], 2):
        for j in range(0, w.shape[1], 2):
            a = (out[i, j] + out[i + 1, j + 1]) / 2
            b = (out[i, j + 1] - out[i + 1, j]) / 2
            out[i:i + 2, j:j + 2] = torch.stack([torch.stack([a, b]), torch.stack([-b, a])])
    return out


def _gen_loop_of_points(model, prefix, n_steps):  # keeps the points, rebuilds keys and values
    points, out = prefix, []
    for _ in range(n_steps):
        keys, values = moon_keys(model, points), moon_values(model, points[:, 1:])
        pred = read_memory(model, keys[:, :, -1], keys[:, :, :-1], values)
        out.append(pred)
        points = torch.cat([points, pred[:, None]], dim=1)
    return torch.stack(out, dim=1)


def _shares_block_norm(w_phi):  # the Frobenius norm of a block is √2 |a + ib|: the same shares
    mag = torch.stack([torch.stack([torch.linalg.norm(w_phi[2 * h:2 * h + 2, 2 * m:2 * m + 2])
                                    for m in range(3)]) for h in range(3)])
    return (mag / mag.sum(1, keepdim=True)).numpy()


def _lc_min_of_squares(model, x, clip):  # min(r², clip²) is the clipped residual squared
    with torch.no_grad():
        err = torch.minimum((model(x[:, :-1]) - x[:, 1:]) ** 2, torch.tensor(clip**2))
    curve = err.mean(dim=(0, 2)).numpy()
    return curve, float(curve.mean())


CORRECT_VARIANTS = [
    ("complex_linear", _cl_via_transpose), ("complex_linear", _cl_float32),
    ("complex_linear", _cl_loop_float32),
    ("generate_with_fill_in", _gen_recompute), ("generate_with_fill_in", generate_cached),
    ("generate_with_fill_in", _gen_loop_of_points),
    ("moon_shares", _shares_torch), ("moon_shares", _shares_float32), ("moon_shares", _shares_block_norm),
    ("learning_curve", _lc_numpy), ("learning_curve", _lc_float32), ("learning_curve", _lc_min_of_squares),
]

for _ex in CHECKS:  # one table of wrong answers and correct variants per exercise
    _seen = {w for ex, w, _ in WRITTEN_WRONG}
    _wrong = [(f"{w.__name__}", w, phrase) for ex, w, phrase in WRITTEN_WRONG if ex == _ex]
    _wrong += [(f"{w.__name__}", w, phrase) for ex, w, phrase in GENERIC_WRONG
               if ex == _ex and w not in _seen]
    _wrong += [(f"{w.__name__}-regime", w, phrase, regime) for ex, w, phrase, regime in REGIME_WRONG
               if ex == _ex]
    _right = [(r.__name__, r) for ex, r in CORRECT_VARIANTS if ex == _ex]
    globals()[f"test_{_ex}_wrong_fails"], globals()[f"test_{_ex}_variant_passes"] = table_tests(
        CHECKS[_ex], _wrong, _right)


def test_cases_are_in_the_regimes_they_name():
    for case in ch03.complex_cases():
        (w,) = case
        for regime in case.regime:
            assert regime in ch03.COMPLEX_REGIMES
            assert {"non-square": w.shape[0] != w.shape[1],
                    "projected": torch.allclose(to_complex_linear(w), w)}[regime], regime
    for case in ch03.generation_cases():
        model, prefix, _ = case
        for regime in case.regime:
            assert regime in ch03.GENERATE_REGIMES
            assert {"short-prompt": prefix.shape[1] <= 2, "one-unit": model.n_units == 1}[regime], regime
    for case in ch03.share_cases():
        (w,) = case
        mag = torch.sqrt(w[0::2, 0::2] ** 2 + w[0::2, 1::2] ** 2)
        for regime in case.regime:
            assert regime in ch03.SHARE_REGIMES
            assert {"one-moon": bool(((mag / mag.sum(1, keepdim=True)).max(1).values > 0.9).all()),
                    "zero-a": bool(((w[0::2, 0::2] == 0) & (w[0::2, 1::2] != 0)).any())}[regime], regime
    for case in ch03.curve_cases():
        model, x, clip = case
        with torch.no_grad():
            r = model(x[:, :-1]) - x[:, 1:]
        for regime in case.regime:
            assert regime in ch03.CURVE_REGIMES
            beyond = min(float((r > clip).double().mean()), float((r < -clip).double().mean()))
            assert {"clip-binds": beyond > 0.005,
                    "clip-free": bool(r.abs().max() < clip),
                    "one-position": x.shape[1] == 2}[regime], regime
