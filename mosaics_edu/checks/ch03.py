"""Checks for chapter 03 (three moons): the complex-linear constraint, the generation loop with
the value fill-in, the share of each unit's key map on each moon, and the per-position training
loss whose area is the training loss (predictive disentanglement's "steamroller")."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from ..moons.cached_generation import generate_cached, moon_keys, moon_values, read_memory
from ..moons.evaluate import moon_shares as reference_moon_shares
from ..moons.evaluate import position_loss
from ..moons.model import MoonMemory, block_magnitudes, to_complex_linear
from . import as_numpy, call_learner, compare, fail, fmt, passed

CHAPTER = "03_three_moons"

# ---------------------------------------------------------------- 3.1 complex-linear projection


def _conjugate(w: torch.Tensor) -> torch.Tensor:
    out = to_complex_linear(w).clone()
    out[..., 0::2, 1::2] *= -1
    out[..., 1::2, 0::2] *= -1
    return out


def _top_row_only(w: torch.Tensor) -> torch.Tensor:
    a, b = w[..., 0::2, 0::2], w[..., 0::2, 1::2]
    out = torch.empty_like(w)
    out[..., 0::2, 0::2], out[..., 0::2, 1::2] = a, b
    out[..., 1::2, 0::2], out[..., 1::2, 1::2] = -b, a
    return out


def _not_halved(w: torch.Tensor) -> torch.Tensor:
    return 2 * to_complex_linear(w)


def _strided_blocks(w: torch.Tensor) -> torch.Tensor:
    rows, cols = w.shape
    perm_r = torch.arange(rows).view(2, rows // 2).T.reshape(-1)  # pairs (i, i + m)
    perm_c = torch.arange(cols).view(2, cols // 2).T.reshape(-1)
    inv_r, inv_c = torch.argsort(perm_r), torch.argsort(perm_c)
    return to_complex_linear(w[perm_r][:, perm_c])[inv_r][:, inv_c]


def _complex_cases() -> list[tuple[torch.Tensor]]:
    g = torch.Generator().manual_seed(3)
    return [(torch.randn(6, 6, generator=g, dtype=torch.float64),),
            (torch.randn(4, 2, generator=g, dtype=torch.float64),),
            (torch.randn(2, 6, generator=g, dtype=torch.float64),)]


def check_complex_linear(complex_linear: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """Exercise 3.1: project a (2m, 2n) matrix so that every 2×2 block is [[a, b], [-b, a]]."""
    compare(CHAPTER, "complex_linear", complex_linear, to_complex_linear, _complex_cases(),
            mistakes={
                "built [[a, -b], [b, a]] (the conjugate): the block must be [[a, b], [-b, a]], "
                "so b = (w[0,1] - w[1,0]) / 2": _conjugate,
                "copied a and b from the top row of each block; the nearest complex-linear "
                "block averages: a = (w[0,0] + w[1,1]) / 2, b = (w[0,1] - w[1,0]) / 2":
                    _top_row_only,
                "forgot to divide by 2 when averaging the two entries that define a (and b)":
                    _not_halved,
                "paired row i with row i + m (and column j with j + n); the 2×2 blocks are made "
                "of *adjacent* rows 2i, 2i+1 and columns 2j, 2j+1 (one moon's sin and cos)":
                    _strided_blocks,
            }, atol=1e-9, quiet=True)
    w = _complex_cases()[0][0]
    once = torch.as_tensor(as_numpy(call_learner(CHAPTER, "complex_linear", complex_linear, w)))
    twice = torch.as_tensor(as_numpy(call_learner(CHAPTER, "complex_linear", complex_linear,
                                                  once)))
    if not torch.allclose(once, twice, atol=1e-9):
        fail(CHAPTER, "complex_linear", "projecting twice changed the matrix again: a projection "
             "must leave a complex-linear matrix as it is.")
    passed(CHAPTER, "complex_linear")


# ---------------------------------------------------------------- 3.2 generation with fill-in


def _check_model(n_units: int) -> MoonMemory:
    """A model whose units each read one moon (so generation follows the orbits) plus noise."""
    g = torch.Generator().manual_seed(30 + n_units)
    model = MoonMemory(n_units).double()
    with torch.no_grad():
        for w in model.parameters():
            w.copy_(torch.eye(6, dtype=torch.float64)
                    + 0.1 * torch.randn(6, 6, generator=g, dtype=torch.float64))
    return model


def _no_fill_in(model, prefix, n_steps):
    keys, values = moon_keys(model, prefix), moon_values(model, prefix[:, 1:])
    out = []
    for _ in range(n_steps):
        pred = read_memory(model, keys[:, :, -1], keys[:, :, :-1], values)
        out.append(pred)
        values = torch.cat([values, torch.zeros_like(values[:, :, :1])], dim=2)
        keys = torch.cat([keys, moon_keys(model, pred[:, None])], dim=2)
    return torch.stack(out, 1)


def _frozen_memory(model, prefix, n_steps):
    keys, values = moon_keys(model, prefix), moon_values(model, prefix[:, 1:])
    mem_k, query, out = keys[:, :, :-1], keys[:, :, -1], []
    for _ in range(n_steps):
        pred = read_memory(model, query, mem_k, values)
        out.append(pred)
        query = moon_keys(model, pred[:, None])[:, :, 0]
    return torch.stack(out, 1)


def _unshifted_values(model, prefix, n_steps):
    keys, values = moon_keys(model, prefix), moon_values(model, prefix)
    out = []
    for _ in range(n_steps):
        pred = read_memory(model, keys[:, :, -1], keys, values)
        out.append(pred)
        keys = torch.cat([keys, moon_keys(model, pred[:, None])], dim=2)
        values = torch.cat([values, moon_values(model, pred[:, None])], dim=2)
    return torch.stack(out, 1)


def _shifted_output(model, prefix, n_steps):
    gen = generate_cached(model, prefix, n_steps)
    return torch.cat([prefix[:, -1:], gen[:, :-1]], dim=1)


def _query_never_moves(model, prefix, n_steps):
    keys, values = moon_keys(model, prefix), moon_values(model, prefix[:, 1:])
    query, out = keys[:, :, -1], []
    for _ in range(n_steps):
        pred = read_memory(model, query, keys[:, :, :-1], values)
        out.append(pred)
        values = torch.cat([values, moon_values(model, pred[:, None])], dim=2)
        keys = torch.cat([keys, moon_keys(model, pred[:, None])], dim=2)
    return torch.stack(out, 1)


def _first_key_query(model, prefix, n_steps):
    keys, values = moon_keys(model, prefix), moon_values(model, prefix[:, 1:])
    out = []
    for _ in range(n_steps):
        pred = read_memory(model, keys[:, :, 0], keys[:, :, :-1], values)
        out.append(pred)
        values = torch.cat([values, moon_values(model, pred[:, None])], dim=2)
        keys = torch.cat([keys, moon_keys(model, pred[:, None])], dim=2)
    return torch.stack(out, 1)


def _first_repeated(model, prefix, n_steps):
    gen = generate_cached(model, prefix, 1)
    return gen.repeat(1, n_steps, 1)


def _generation_cases() -> list[tuple]:
    from ..moons.data import VALID_TRIPLE, sample_windows

    g = torch.Generator().manual_seed(33)
    x, _ = sample_windows(3, [VALID_TRIPLE], g, length=300)
    x = x.double()
    return [(_check_model(3), x[:, :200], 12), (_check_model(3), x[:, :2], 5),
            (_check_model(1), x[:, :150], 12), (_check_model(3), x[:, :1], 3)]


def check_generate(generate_with_fill_in: Callable) -> None:
    """Exercise 3.2: cached generation that fills in the value of each position once its next
    point exists."""
    compare(CHAPTER, "generate_with_fill_in", generate_with_fill_in, generate_cached,
            _generation_cases(), mistakes={
                "never filled in the values: the pair of the last observed position and of every "
                "generated position must get the value W_ψ(point that followed it), not 0":
                    _no_fill_in,
                "kept the memory fixed to the prompt's pairs: each generated point completes one "
                "pair (value) and starts another (key); add both to the memory": _frozen_memory,
                "stored W_ψ x_s as the value of position s (and let a position read its own pair); "
                "the value is what came *next*, W_ψ x_{s+1}, and a position reads pairs s < t only":
                    _unshifted_values,
                "returned the last prompt point as the first generated one: output j must be the "
                "prediction of x_{c+j}": _shifted_output,
                "repeated the first prediction: feed each predicted point back in before "
                "predicting the next": _first_repeated,
                "kept querying with the prompt's last key: at every step the query is the key of "
                "the newest point (keys[:, :, -1] after you append it)": _query_never_moves,
                "queried with the key of the first point (keys[:, :, 0]); the query is the key of "
                "the newest point, keys[:, :, -1]": _first_key_query,
            }, atol=1e-8, quiet=True)
    passed(CHAPTER, "generate_with_fill_in")


# ---------------------------------------------------------------- 3.3 which moon a unit follows


def _block_ab(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    w = to_complex_linear(w)
    return w[0::2, 0::2], w[0::2, 1::2]


def _shares_cols(w):
    m = block_magnitudes(w).double()
    return (m / m.sum(0, keepdim=True)).numpy()


def _shares_abs_a(w):
    a, _ = _block_ab(w)
    m = a.abs()
    return (m / m.sum(1, keepdim=True)).numpy()


def _shares_squared(w):
    m = block_magnitudes(w).double() ** 2
    return (m / m.sum(1, keepdim=True)).numpy()


def _shares_abs_entries(w):
    m = to_complex_linear(w).abs().reshape(3, 2, 3, 2).sum((1, 3))
    return (m / m.sum(1, keepdim=True)).numpy()


def _shares_unnormalised(w):
    return block_magnitudes(w).double().numpy()


def _shares_row_max(w):
    m = block_magnitudes(w).double()
    return (m / m.max(1, keepdim=True).values).numpy()


def _shares_softmax(w):
    return torch.softmax(block_magnitudes(w).double(), dim=1).numpy()


def _shares_transposed(w):
    m = block_magnitudes(w.T).double()
    return (m / m.sum(1, keepdim=True)).numpy()


def _share_cases() -> list[tuple[torch.Tensor]]:
    g = torch.Generator().manual_seed(34)
    perm = torch.zeros(6, 6, dtype=torch.float64)
    for unit, moon in enumerate((2, 0, 1)):
        perm[2 * unit:2 * unit + 2, 2 * moon:2 * moon + 2] = torch.tensor([[0.6, 0.8], [-0.8, 0.6]])
    return [(to_complex_linear(torch.randn(6, 6, generator=g, dtype=torch.float64)),),
            (to_complex_linear(perm + 0.05 * torch.randn(6, 6, generator=g,
                                                         dtype=torch.float64)),),
            (to_complex_linear(3 * torch.randn(6, 6, generator=g, dtype=torch.float64)),)]


def check_moon_shares(moon_shares: Callable[[torch.Tensor], np.ndarray]) -> None:
    """Exercise 3.3: each unit's share of its W_φ block mass on each moon (rows sum to 1)."""
    compare(CHAPTER, "moon_shares", moon_shares, reference_moon_shares, _share_cases(), mistakes={
        "normalised each column (moon) instead of each row (unit): the shares of one unit must "
        "add up to 1 over the three moons": _shares_cols,
        "used |a| only: a block [[a, b], [-b, a]] has magnitude sqrt(a² + b²)": _shares_abs_a,
        "used squared magnitudes a² + b²; use the magnitude |a + ib| = sqrt(a² + b²)":
            _shares_squared,
        "summed the absolute values of the block's four entries (2|a| + 2|b|); use the block's "
        "magnitude sqrt(a² + b²)": _shares_abs_entries,
        "returned the block magnitudes without dividing by each unit's total": _shares_unnormalised,
        "read W_φ transposed: its rows 2h, 2h+1 belong to unit h (the key's coordinates), its "
        "columns 2m, 2m+1 to moon m (the input's sin and cos)": _shares_transposed,
        "divided by each row's largest magnitude; shares divide by the row's sum, so that they "
        "add up to 1": _shares_row_max,
        "took a softmax of the magnitudes; a share is the magnitude divided by the row's sum "
        "(no exponential)": _shares_softmax,
    }, atol=1e-6, quiet=True)
    passed(CHAPTER, "moon_shares")


# ---------------------------------------------------------------- 3.4 the learning curve and its area


def reference_learning_curve(model: MoonMemory, x: torch.Tensor, clip: float) -> tuple[np.ndarray, float]:
    """Teacher-forced clipped squared error at every position, and its mean (the training loss).

    x: (W, T+1, 6) -> curve (T,) averaged over windows and coordinates, area = curve.mean().
    """
    curve = position_loss(model, x, clip)  # (T,)
    return curve, float(curve.mean())


def _curve_variant(model, x, clip, *, clip_where="residual", shift=True, reduce_dims="mean",
                   square=True, area="mean", inputs="all_but_last"):
    with torch.no_grad():
        pred = model(x[:, :-1] if inputs == "all_but_last" else x)  # (W, T, 6)
        target = x[:, 1:] if shift else x[:, :-1]
        if inputs != "all_but_last":
            target = torch.cat([x[:, 1:], x[:, -1:]], dim=1)
        r = pred - target
        if clip_where == "residual":
            r = r.clamp(-clip, clip)
        err = r**2 if square else r.abs()
        if clip_where == "square":
            err = err.clamp(max=clip)
        curve = err.mean(dim=(0, 2)) if reduce_dims == "mean" else err.sum(2).mean(0)
        curve = curve.numpy()
    return curve, float(curve.mean() if area == "mean" else curve.sum())


CURVE_MISTAKES: dict[str, dict] = {
    "forgot to clip: the loss clips each residual x̂ - x to ±clip before squaring":
        {"clip_where": "none"},
    "clipped the squared error at clip; the residual is clipped to ±clip, then squared (so the "
    "largest loss per coordinate is clip²)": {"clip_where": "square"},
    "compared the prediction at position t with x_t; it predicts the next point, x_{t+1} "
    "(targets x[:, 1:])": {"shift": False},
    "summed the 6 coordinates; the loss is the mean over windows *and* coordinates":
        {"reduce_dims": "sum"},
    "used |x̂ - x|; the training loss squares the clipped residual": {"square": False},
    "summed the curve for the area; the training loss is its mean over positions (the area "
    "divided by the window length)": {"area": "sum"},
}


def _curve_cases() -> list[tuple]:
    from ..moons.data import TRAIN_TRIPLES, VALID_TRIPLE, sample_windows

    g = torch.Generator().manual_seed(35)
    x1, _ = sample_windows(4, [VALID_TRIPLE], g, length=121)
    x2, _ = sample_windows(3, list(TRAIN_TRIPLES), g, length=90)
    return [(_check_model(3), x1.double(), 0.5), (_check_model(1), x2.double(), 0.2),
            (_check_model(3), x2[:2, :41].double(), 100.0)]


def check_learning_curve(learning_curve: Callable) -> None:
    """Exercise 3.4: the per-position training loss (teacher forced, clipped) and its area."""
    ex = "learning_curve"
    for k, (model, x, clip) in enumerate(_curve_cases()):
        want_curve, want_area = reference_learning_curve(model, x, clip)
        W, T1, _ = x.shape
        where = f"on test case {k} (x of shape {tuple(x.shape)}, clip={clip:g})"
        x_given = x.clone()
        got = call_learner(CHAPTER, ex, learning_curve, model, x_given, clip)
        if not torch.equal(x_given, x):
            fail(CHAPTER, ex, f"{where}: your function changed its argument `x` in place.")
        if not isinstance(got, tuple | list) or len(got) != 2:
            fail(CHAPTER, ex, f"must return a pair (curve, area), got {type(got).__name__}")
        curve = np.asarray(as_numpy(got[0]), dtype=np.float64)
        try:
            area = float(as_numpy(got[1]))
        except (TypeError, ValueError):
            fail(CHAPTER, ex, "the area must be one number (a float), the mean of the curve")
        if curve.shape != want_curve.shape:
            hint = {(T1,): " — one per point: you ran the model on all T+1 points; the last "
                           "one has no next point to predict, use x[:, :-1] as input",
                    (W,): " — one per window: average over the windows (axis 0) and the "
                          "coordinates, not over positions",
                    (T1 - 1, 6): " — keep averaging over the 6 coordinates too"}.get(curve.shape, "")
            fail(CHAPTER, ex, f"{where}: the curve has shape {curve.shape}, expected "
                 f"({T1 - 1},): one value per position t = 0 … T-1{hint}.")
        ok_curve = np.allclose(curve, want_curve, rtol=1e-5, atol=1e-9)
        ok_area = math.isclose(area, want_area, rel_tol=1e-5, abs_tol=1e-12)
        if ok_curve and ok_area:
            continue
        for diagnosis, flags in CURVE_MISTAKES.items():
            wc, wa = _curve_variant(model, x, clip, **flags)
            if np.allclose(curve, wc, rtol=1e-5, atol=1e-9) and math.isclose(area, wa, rel_tol=1e-5):
                fail(CHAPTER, ex, f"wrong {where}: it looks like you {diagnosis}.")
        if not ok_curve:
            for other in (0.5, 1.0, 0.25):  # a threshold typed in instead of the argument
                if other != clip and np.allclose(curve, _curve_variant(model, x, other)[0],
                                                 rtol=1e-5, atol=1e-9):
                    fail(CHAPTER, ex, f"wrong {where}: your curve is the one for clip={other:g}; "
                         "use the argument `clip`.")
            bad = np.flatnonzero(~np.isclose(curve, want_curve, rtol=1e-5, atol=1e-9))
            i = int(bad[np.argmax(np.abs(curve - want_curve)[bad])])
            fail(CHAPTER, ex, f"wrong {where}: the curve differs at {len(bad)} of {len(curve)} "
                 f"positions (first t={int(bad[0])}); at t={i} you have {fmt(curve[i])}, expected "
                 f"{fmt(want_curve[i])}. Predict from x[:, :-1], compare with x[:, 1:], clip the "
                 "residual, square, average over windows and coordinates.")
        fail(CHAPTER, ex, f"wrong {where}: the curve is right but the area {fmt(area)} is not its "
             f"mean {fmt(want_area)}.")
    passed(CHAPTER, ex)
