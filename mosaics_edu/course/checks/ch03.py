"""Checks for chapter 03 (three moons): the complex-linear constraint, the generation loop with
the value fill-in, the share of each unit's key map on each moon, and the per-position training
loss whose area is the training loss (predictive disentanglement's "steamroller")."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..moons.cached_generation import generate_cached, moon_keys, moon_values, read_memory
from ..moons.evaluate import moon_shares as reference_moon_shares
from ..moons.evaluate import position_loss
from ..moons.model import MoonMemory, block_magnitudes, to_complex_linear
from . import Case, as_numpy, call_learner, compare, fail, notebook_check, passed

CHAPTER = "03_three_moons"
H1, H2, H3 = "(see hint 1 above)", "(see hint 2 above)", "(see hint 3 above)"

__all__ = ["check_complex_linear", "check_generate", "check_moon_shares", "check_learning_curve",
           "complex_cases", "generation_cases", "share_cases", "curve_cases", "COMPLEX_MISTAKES",
           "COMPLEX_REGIMES", "GENERATE_MISTAKES", "GENERATE_REGIMES", "SHARE_MISTAKES", "SHARE_REGIMES",
           "CURVE_MISTAKES", "CURVE_REGIMES", "reference_learning_curve"]

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


def _symmetric_b(w: torch.Tensor) -> torch.Tensor:  # b = (q + r)/2: the sign below the diagonal lost
    a = (w[..., 0::2, 0::2] + w[..., 1::2, 1::2]) / 2
    b = (w[..., 0::2, 1::2] + w[..., 1::2, 0::2]) / 2
    out = torch.empty_like(w)
    out[..., 0::2, 0::2], out[..., 0::2, 1::2] = a, b
    out[..., 1::2, 0::2], out[..., 1::2, 1::2] = -b, a
    return out


def _square_blocks_only(w: torch.Tensor) -> torch.Tensor:  # blocks (i, j) for i, j < min(m, n) only
    out = to_complex_linear(w).clone()
    rows, cols = w.shape
    k = 2 * min(rows, cols) // 2
    out[:, k:] = w[:, k:]
    out[k:, :] = w[k:, :]
    return out


COMPLEX_MISTAKES = {
    f"built [[a, -b], [b, a]] (the conjugate): the block must be [[a, b], [-b, a]], "
    f"so b = (w[0,1] - w[1,0]) / 2 {H2}": _conjugate,
    f"copied a and b from the top row of each block; the nearest complex-linear "
    f"block averages: a = (w[0,0] + w[1,1]) / 2, b = (w[0,1] - w[1,0]) / 2 {H2}": _top_row_only,
    f"forgot to divide by 2 when averaging the two entries that define a (and b) {H3}": _not_halved,
    f"paired row i with row i + m (and column j with j + n); the 2×2 blocks are made "
    f"of *adjacent* rows 2i, 2i+1 and columns 2j, 2j+1 (one moon's sin and cos) {H1}": _strided_blocks,
    f"took b = (q + r)/2: the block [[a, b], [-b, a]] has -b below the diagonal, so the "
    f"nearest b is (q - r)/2 {H2}": _symmetric_b,
    f"returned the matrix as it was: every block must be replaced by its nearest "
    f"[[a, b], [-b, a]] {H1}": lambda w: w.clone(),
    f"projected only the blocks of the leading square part of the matrix: a (2m, 2n) matrix "
    f"has m × n blocks, every one projected {H1}": _square_blocks_only,
}

COMPLEX_REGIMES = {
    "non-square": f"the matrix is not square (2m ≠ 2n): loop over m block rows and n block "
                  f"columns {H1}",
    "projected": f"the matrix is already complex-linear, so its projection is itself {H1}",
}


def complex_cases() -> list[Case]:
    g = torch.Generator().manual_seed(3)
    cases = [Case(torch.randn(6, 6, generator=g, dtype=torch.float64), why="6×6, the moons' maps"),
             Case(torch.randn(4, 2, generator=g, dtype=torch.float64), regime="non-square",
                  why="4×2: more block rows than columns"),
             Case(torch.randn(2, 6, generator=g, dtype=torch.float64), regime="non-square",
                  why="2×6: one block row")]
    projected = to_complex_linear(torch.randn(4, 6, generator=g, dtype=torch.float64))
    cases += [Case(projected, regime=("projected", "non-square"),
                   why="already complex-linear: the projection leaves it as it is"),
              Case(torch.randn(2, 2, generator=g), why="one 2×2 block, float32")]
    return cases


@notebook_check
def check_complex_linear(complex_linear: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """Exercise 3.1: project a (2m, 2n) matrix so that every 2×2 block is [[a, b], [-b, a]]."""
    compare(CHAPTER, "complex_linear", complex_linear, to_complex_linear, complex_cases(),
            mistakes=COMPLEX_MISTAKES, regimes=COMPLEX_REGIMES, rebuild="ch03.complex_cases()[{k}]",
            quiet=True, arg_names=["w"],
            hint=f"Write out one 2×2 block by hand: rows 2i, 2i+1 and columns 2j, 2j+1 {H2}.")
    w = complex_cases()[0][0]
    once = torch.as_tensor(as_numpy(call_learner(CHAPTER, "complex_linear", complex_linear, w)))
    twice = torch.as_tensor(as_numpy(call_learner(CHAPTER, "complex_linear", complex_linear,
                                                  once)))
    if not torch.allclose(once, twice, atol=1e-9):
        fail(CHAPTER, "complex_linear", f"projecting twice changed the matrix again: a projection "
             f"must leave a complex-linear matrix as it is {H1}.", "mistake")
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


GENERATE_MISTAKES = {
    f"never filled in the values: the pair of the last observed position and of every "
    f"generated position must get the value W_ψ(point that followed it), not 0 {H2}": _no_fill_in,
    f"kept the memory fixed to the prompt's pairs: each generated point completes one "
    f"pair (value) and starts another (key); add both to the memory {H1}": _frozen_memory,
    f"stored W_ψ x_s as the value of position s (and let a position read its own pair); "
    f"the value is what came *next*, W_ψ x_{{s+1}}, and a position reads pairs s < t only {H1}":
        _unshifted_values,
    f"returned the last prompt point as the first generated one: output j must be the "
    f"prediction of x_{{c+j}} {H2}": _shifted_output,
    f"repeated the first prediction: feed each predicted point back in before "
    f"predicting the next {H1}": _first_repeated,
    f"kept querying with the prompt's last key: at every step the query is the key of "
    f"the newest point (keys[:, :, -1] after you append it) {H3}": _query_never_moves,
    f"queried with the key of the first point (keys[:, :, 0]); the query is the key of "
    f"the newest point, keys[:, :, -1] {H3}": _first_key_query,
}

GENERATE_REGIMES = {
    "short-prompt": f"the prompt has one or two points, so the memory starts (nearly) empty and "
                    f"every pair it reads was completed by the generation itself {H2}",
    "one-unit": f"the model has a single 6-d unit (H = 1) {H1}",
}


def generation_cases() -> list[Case]:
    from ..moons.data import VALID_TRIPLE, sample_windows

    g = torch.Generator().manual_seed(33)
    x, _ = sample_windows(3, [VALID_TRIPLE], g, length=300)
    x = x.double()
    return [Case(_check_model(3), x[:, :200], 12, why="a long prompt, three units"),
            Case(_check_model(3), x[:, :2], 5, regime="short-prompt",
                 why="two prompt points: one stored pair to start with"),
            Case(_check_model(1), x[:, :150], 12, regime="one-unit", why="one 6-d unit"),
            Case(_check_model(3), x[:, :1], 3, regime="short-prompt",
                 why="one prompt point: the memory starts empty")]


@notebook_check
def check_generate(generate_with_fill_in: Callable) -> None:
    """Exercise 3.2: cached generation that fills in the value of each position once its next
    point exists."""
    compare(CHAPTER, "generate_with_fill_in", generate_with_fill_in, generate_cached,
            generation_cases(), mistakes=GENERATE_MISTAKES, regimes=GENERATE_REGIMES,
            rebuild="ch03.generation_cases()[{k}]", arg_names=["model", "prefix", "n_steps"],
            quiet=True,
            hint=f"Print the shapes of keys and values after each step: keys always one pair "
                 f"longer than values {H2}.")
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


def _shares_a_plus_b(w):  # |a + b| instead of |a + ib|
    a, b = _block_ab(w)
    m = (a + b).abs()
    return (m / m.sum(1, keepdim=True)).numpy()


SHARE_MISTAKES = {
    f"normalised each column (moon) instead of each row (unit): the shares of one unit must "
    f"add up to 1 over the three moons {H2}": _shares_cols,
    f"used |a| only: a block [[a, b], [-b, a]] has magnitude sqrt(a² + b²) {H3}": _shares_abs_a,
    f"used squared magnitudes a² + b²; use the magnitude |a + ib| = sqrt(a² + b²) {H3}":
        _shares_squared,
    f"summed the absolute values of the block's four entries (2|a| + 2|b|); use the block's "
    f"magnitude sqrt(a² + b²) {H3}": _shares_abs_entries,
    f"returned the block magnitudes without dividing by each unit's total {H2}": _shares_unnormalised,
    f"read W_φ transposed: its rows 2h, 2h+1 belong to unit h (the key's coordinates), its "
    f"columns 2m, 2m+1 to moon m (the input's sin and cos) {H1}": _shares_transposed,
    f"divided by each row's largest magnitude; shares divide by the row's sum, so that they "
    f"add up to 1 {H2}": _shares_row_max,
    f"took a softmax of the magnitudes; a share is the magnitude divided by the row's sum "
    f"(no exponential) {H2}": _shares_softmax,
    f"took |a + b|: a block multiplies by the complex number a + ib, whose magnitude is "
    f"sqrt(a² + b²) {H3}": _shares_a_plus_b,
}

SHARE_REGIMES = {
    "one-moon": f"each unit follows one moon, so its shares are near 0, 0 and 1: a mistake in the "
                f"magnitude (|a|, a² + b²) shows in the small shares {H3}",
    "zero-a": f"some blocks are pure rotations by 90° (a = 0, b ≠ 0): |a| alone calls them empty {H3}",
}


def share_cases() -> list[Case]:
    g = torch.Generator().manual_seed(34)
    perm = torch.zeros(6, 6, dtype=torch.float64)
    for unit, moon in enumerate((2, 0, 1)):
        perm[2 * unit:2 * unit + 2, 2 * moon:2 * moon + 2] = torch.tensor([[0.6, 0.8], [-0.8, 0.6]])
    quarter = to_complex_linear(torch.randn(6, 6, generator=g, dtype=torch.float64))
    quarter[0::2, 0::2][0, 1] = quarter[1::2, 1::2][0, 1] = 0.0  # block (0, 1): a = 0
    quarter[0::2, 0::2][2, 0] = quarter[1::2, 1::2][2, 0] = 0.0  # block (2, 0): a = 0
    return [Case(to_complex_linear(torch.randn(6, 6, generator=g, dtype=torch.float64)),
                 why="a random complex-linear map"),
            Case(to_complex_linear(perm + 0.05 * torch.randn(6, 6, generator=g, dtype=torch.float64)),
                 regime="one-moon", why="each unit follows one moon"),
            Case(to_complex_linear(3 * torch.randn(6, 6, generator=g, dtype=torch.float64)),
                 why="large entries"),
            Case(quarter, regime="zero-a", why="two blocks with a = 0: rotations by 90°")]


@notebook_check
def check_moon_shares(moon_shares: Callable[[torch.Tensor], np.ndarray]) -> None:
    """Exercise 3.3: each unit's share of its W_φ block mass on each moon (rows sum to 1)."""
    compare(CHAPTER, "moon_shares", moon_shares, reference_moon_shares, share_cases(),
            mistakes=SHARE_MISTAKES, regimes=SHARE_REGIMES, rebuild="ch03.share_cases()[{k}]",
            arg_names=["w_phi"], quiet=True,
            hint=f"Print the (3, 3) magnitudes before you divide: row h is unit h {H2}.")
    passed(CHAPTER, "moon_shares")


# ---------------------------------------------------------------- 3.4 the learning curve and its area


def reference_learning_curve(model: MoonMemory, x: torch.Tensor, clip: float) -> tuple[np.ndarray, float]:
    """Teacher-forced clipped squared error at every position, and its mean (the training loss).

    x: (W, T+1, 6) -> curve (T,) averaged over windows and coordinates, area = curve.mean().
    """
    curve = position_loss(model, x, clip)  # (T,)
    return curve, float(curve.mean())


def _curve_variant(model, x, clip, *, clip_where="residual", shift=True, reduce_dims="mean",
                   square=True, area="mean"):
    with torch.no_grad():
        pred = model(x[:, :-1])  # (W, T, 6)
        r = pred - (x[:, 1:] if shift else x[:, :-1])
        if clip_where == "residual":
            r = r.clamp(-clip, clip)
        elif clip_where == "above":
            r = r.clamp(max=clip)
        err = r**2 if square else r.abs()
        if clip_where == "square":
            err = err.clamp(max=clip)
        curve = err.mean(dim=(0, 2)) if reduce_dims == "mean" else err.sum(2).mean(0)
        curve = curve.numpy()
    return curve, float(curve.mean() if area == "mean" else curve.sum())


CURVE_MISTAKES: dict[str, dict] = {
    f"forgot to clip: the loss clips each residual x̂ - x to ±clip before squaring {H2}":
        {"clip_where": "none"},
    f"clipped the squared error at clip; the residual is clipped to ±clip, then squared (so the "
    f"largest loss per coordinate is clip²) {H3}": {"clip_where": "square"},
    f"clipped the residual from above only (clamp(max=clip)); a residual below -clip must become "
    f"-clip too: clamp(-clip, clip) {H3}": {"clip_where": "above"},
    f"compared the prediction at position t with x_t; it predicts the next point, x_{{t+1}} "
    f"(targets x[:, 1:]) {H1}": {"shift": False},
    f"summed the 6 coordinates; the loss is the mean over windows *and* coordinates {H2}":
        {"reduce_dims": "sum"},
    f"used |x̂ - x|; the training loss squares the clipped residual {H2}": {"square": False},
    f"summed the curve for the area; the training loss is its mean over positions (the area "
    f"divided by the window length) {H1}": {"area": "sum"},
}

CURVE_REGIMES = {
    "clip-binds": f"residuals lie beyond ±clip on both sides, so how (and on which side) you clip "
                  f"decides the loss {H3}",
    "clip-free": f"clip is so large that no residual reaches it (a clipping mistake cannot show "
                 f"here) {H2}",
    "one-position": f"the windows have T + 1 = 2 points: one position, whose loss is the area {H1}",
}


def curve_cases() -> list[Case]:
    from ..moons.data import TRAIN_TRIPLES, VALID_TRIPLE, sample_windows

    g = torch.Generator().manual_seed(35)
    x1, _ = sample_windows(4, [VALID_TRIPLE], g, length=121)
    x2, _ = sample_windows(3, list(TRAIN_TRIPLES), g, length=90)
    return [Case(_check_model(3), x1.double(), 0.25, regime="clip-binds", why="4 windows, clip 0.25"),
            Case(_check_model(1), x2.double(), 0.2, regime="clip-binds", why="one unit, clip 0.2"),
            Case(_check_model(3), x2[:2, :41].double(), 100.0, regime="clip-free",
                 why="clip 100: nothing is clipped"),
            Case(_check_model(3), x1[:1, :60].double(), 0.15, regime="clip-binds", why="a single window"),
            Case(_check_model(1), x2[:, :2].double(), 0.4, regime=("one-position", "clip-binds"),
                 why="windows of 2 points: T = 1")]


@notebook_check
def check_learning_curve(learning_curve: Callable) -> None:
    """Exercise 3.4: the per-position training loss (teacher forced, clipped) and its area."""
    mistakes = {d: (lambda m, x, c, f=f: _curve_variant(m, x, c, **f)) for d, f in CURVE_MISTAKES.items()}
    compare(CHAPTER, "learning_curve", learning_curve, reference_learning_curve, curve_cases(),
            mistakes=mistakes, regimes=CURVE_REGIMES, rebuild="ch03.curve_cases()[{k}]",
            arg_names=["model", "x", "clip"], items=("the curve", "the area"),
            hint=f"One value per position t = 0 … T-1, with T = x.shape[1] - 1: predict from "
                 f"x[:, :-1] (the last point has no next point), compare with x[:, 1:], clip each "
                 f"residual to ±clip, square, average over the windows and the 6 coordinates; the "
                 f"area is the curve's mean {H2}.")
