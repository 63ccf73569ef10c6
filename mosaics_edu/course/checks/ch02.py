"""Checks for chapter 02 (Keys from the past, values from the future).

References: :func:`mosaics_edu.core.features.leaky_average` (keys),
:func:`mosaics_edu.course.toys.peek_values` and :func:`mosaics_edu.core.memory.kernel_regression`
with the strict mask :func:`mosaics_edu.course.toys.causal_mask` (the memory unit's answers),
:func:`mosaics_edu.course.toys.no_peeking` (the learner's own test, run on predictors that do and
do not peek), and
:class:`mosaics_edu.course.induction.MemoryUnitLM` (the one-layer induction head's forward pass).
Every argument is varied over the cases: lengths, widths, decays, bandwidths, peek mixes, batch
sizes, vocabularies, float32 inputs.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ...core import memory
from .. import toys
from ..induction import MemoryUnitLM
from . import Case, Floor, call_checked, compare, fail, notebook_check, passed, show_inputs
from . import ch02_variants as variants

CHAPTER = "02_keys_and_values"
H1, H2, H3 = "(see hint 1 above)", "(see hint 2 above)", "(see hint 3 above)"

__all__ = [
    "check_leaky_keys",
    "check_causal_predict",
    "check_no_peeking",
    "check_memory_unit_lm",
    "KEYS_CASES",
    "KEYS_MISTAKES",
    "KEYS_REGIMES",
    "PREDICT_CASES",
    "PREDICT_MISTAKES",
    "PREDICT_REGIMES",
    "PEEKING_CASES",
    "LM_CASES",
    "LM_MISTAKES",
    "LM_REGIMES",
]


# --------------------------------------------------------------------------------------------
# exercise 2.1: leaky_keys
# --------------------------------------------------------------------------------------------


def _keys_case(seed: int, T: int, d: int, decay: float, dtype: type = np.float64, shift: float = 0.0):
    return (np.random.default_rng(seed).standard_normal((T, d)) + shift).astype(dtype), decay


KEYS_CASES = [
    Case(*_keys_case(30, 6, 3, 0.5), why="λ = 1/2, where λ and 1 - λ agree"),
    Case(*_keys_case(31, 9, 4, 0.9), why="a long memory"),
    Case(*_keys_case(32, 5, 2, 0.0), regime="lambda-zero",
         why="λ = 0: each key is its own input, normalised"),
    Case(*_keys_case(33, 4, 4, 0.7), why="square (T = d): an axis mistake still shows"),
    Case(*_keys_case(34, 12, 3, 0.99, shift=2.0), regime="far",
         why="λ = 0.99 and inputs far from 0: normalising the inputs first changes the average"),
    Case(*_keys_case(35, 1, 5, 0.3), regime="single", why="a single position"),
    Case(*_keys_case(36, 10, 6, 0.8, dtype=np.float32), why="float32"),
    Case(np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [-1.0, 0.0]]), 0.8, regime="long-past",
         why="the past beyond t-1 still counts: k̄_3 = k̃_3 + λ k̃_2 + λ² k̃_1 + λ³ k̃_0"),
]

KEYS_REGIMES = {
    "lambda-zero": f"λ = 0, where each key is its own input, normalised {H1}",
    "single": f"T = 1: the key of position 0 is its input, normalised {H2}",
    "far": f"the inputs are far from 0 and λ is near 1: average first, normalise the average "
           f"last {H2}",
    "long-past": f"inputs older than t-1 still matter: carry the state k̄_{{t-1}} from step to step "
                 f"(it holds the whole past) {H3}",
}

def _ref_keys(features, decay):
    return variants.unit(variants.leaky(features, decay))


KEYS_MISTAKES: dict[str, Callable] = {
    f"forgot to L2-normalise the keys: divide each k̄_t by its norm ||k̄_t|| (over the features) {H2}":
        lambda f, decay: variants.leaky(f, decay),
    f"divided by the sum of absolute values (the L1 norm); a unit key has Euclidean length 1, "
    f"k̄_t / sqrt(Σ_i k̄_t,i²) (np.linalg.norm) {H2}":
        lambda f, decay: (variants.leaky(f, decay)
                          / np.abs(variants.leaky(f, decay)).sum(axis=-1, keepdims=True)),
    f"normalised over the time axis (axis 0); each key k_t is normalised on its own, over its "
    f"features (axis=-1) {H2}":
        lambda f, decay: variants.unit(variants.leaky(f, decay), axis=0),
    f"put the decay on the current input (k̄_t = λ k̃_t + k̄_{{t-1}}); the recursion is "
    f"k̄_t = k̃_t + λ k̄_{{t-1}}: the *past* fades {H3}":
        variants.weights_swapped,
    f"averaged the future instead of the past (the recursion ran backwards in time): k_t may "
    f"only use k̃_0 … k̃_t {H2}":
        lambda f, decay: variants.unit(variants.leaky(np.asarray(f)[::-1], decay)[::-1]),
    f"left the current input out (only s < t): the key of position t must include k̃_t itself, "
    f"and position 0 then has an all-zero key (0/0 = nan) {H3}":
        variants.exclusive,
    f"normalised each input before averaging instead of normalising the average {H2}":
        lambda f, decay: variants.leaky(variants.unit(np.asarray(f, dtype=np.float64)), decay),
    f"ignored the decay: your keys are the normalised inputs alone, whatever λ is (the state "
    f"k̄_{{t-1}} must be carried from step to step) {H3}":
        lambda f, decay: variants.unit(np.asarray(f, dtype=np.float64)),
    f"used 1 - λ as the decay: λ is the fraction of the past *kept* per step (larger λ, longer "
    f"memory) {H1}":
        lambda f, decay: variants.unit(variants.leaky(f, 1 - decay)),
    f"weighted input s by λ^s instead of λ^(t-s): the newest input must weigh 1 and older ones "
    f"less {H1}":
        variants.inverse_decay,
    f"added λ times the previous *input* (k̃_t + λ k̃_{{t-1}}); the recursion adds λ times the "
    f"previous *state* k̄_{{t-1}}, which holds the whole past {H3}": variants.one_step,
}


@notebook_check
def check_leaky_keys(leaky_keys: Callable[..., np.ndarray]) -> None:
    """Exercise 2.1: leaky-average keys, L2-normalised."""
    compare(CHAPTER, "leaky_keys", leaky_keys, _ref_keys, KEYS_CASES, mistakes=KEYS_MISTAKES,
            arg_names=["features", "decay"], regimes=KEYS_REGIMES, rebuild="ch02.KEYS_CASES[{k}]",
            hint=f"Compute k̄ for the first two positions by hand (k̄_0 = features_0, k̄_1 = "
                 f"features_1 + decay * k̄_0) and compare with your loop; then normalise each row "
                 f"{H2}.")


# --------------------------------------------------------------------------------------------
# exercise 2.2: causal_predict — values that peek, retrieval from s < t
# --------------------------------------------------------------------------------------------


def _predict_case(seed: int, T: int, d: int, m: int, beta: float, gamma: float,
                  dtype: type = np.float64):
    rng = np.random.default_rng(seed)
    keys = variants.unit(rng.standard_normal((T, d)))
    return keys.astype(dtype), rng.standard_normal((T, m)).astype(dtype), beta, gamma


def _far_keys() -> tuple:
    """Unit keys far apart (distance² about 2.7 to 3): with β = 2,000 the best scores of rows 1 and
    2 are below -5,000, every exp underflows; position 3 comes back near position 0."""
    angles = np.radians([0.0, 120.0, 250.0, 10.0, 130.0, 250.0, 5.0])
    keys = np.stack([np.cos(angles), np.sin(angles)], axis=1)  # (7, 2)
    x = np.random.default_rng(57).standard_normal((7, 2))
    return keys, x, 2000.0, 0.3


PREDICT_CASES = [
    Case(*_predict_case(51, 8, 4, 2, 5.0, 0.3)),
    Case(*_predict_case(50, 5, 3, 1, 2.0, 0.0), regime="gamma-zero", why="γ = 0: the value is x_{t+1}"),
    Case(*_predict_case(52, 6, 2, 3, 200.0, 0.0), regime="gamma-zero", why="a sharp kernel, γ = 0"),
    Case(*_far_keys(), regime="underflow",
         why="β = 2,000 on keys far apart: every exp(-β ||k_t - k_s||²) of rows 1 and 2 underflows"),
    Case(*_predict_case(53, 7, 7, 2, 1.0, 0.8), why="square keys (T = d)"),
    Case(*_predict_case(54, 9, 3, 1, 0.0, 0.5), regime="beta-zero",
         why="β = 0: the plain average of the past values"),
    Case(*_predict_case(55, 2, 2, 2, 3.0, 0.2), regime="short",
         why="two positions: row 0 is 0, row 1 reads pair 0 alone"),
    Case(*_predict_case(58, 1, 3, 2, 3.0, 0.4), regime=("short", "single"),
         why="one position: its memory is empty, the answer is [[0, 0]]"),
    Case(*_predict_case(56, 10, 5, 3, 4.0, 0.6, dtype=np.float32), why="float32"),
]

PREDICT_REGIMES = {
    "underflow": f"every exp(-β ||k_t - k_s||²) of a row underflows to 0 (0/0 = nan): subtract the "
                 f"row's largest score (over s < t) before exp {H2}",
    "short": f"the series is one or two positions long: row 0 has an empty memory and answers "
             f"exactly 0; row 1 reads pair 0 alone {H2}",
    "single": f"T = 1: the only position has an empty memory, the answer is all zeros {H2}",
    "gamma-zero": f"γ = 0, where the value of s is exactly x_{{s+1}} {H1}",
    "beta-zero": f"β = 0, where row t averages the t past values with equal weights {H2}",
}

def _ref_predict(keys, x, beta, gamma):
    return variants.with_mask(keys, toys.peek_values(x, gamma), beta, toys.causal_mask(len(keys)))


def _nan_first_row(k, x, b, g):
    out = _ref_predict(k, x, b, g).copy()
    out[0] = np.nan
    return out


PREDICT_MISTAKES: dict[str, Callable] = {
    f"let position t read its own pair (mask s <= t): its value v_t holds x_{{t+1}}, the very thing "
    f"position t must predict. Use s < t (np.tri(T, T, k=-1)) {H3}": variants.wrong_predict("inclusive"),
    f"used no mask: every position reads every pair, including the future {H2}":
        variants.wrong_predict("none"),
    f"masked the wrong triangle: position t read pairs s > t (the future), not s < t (the past) {H3}":
        variants.wrong_predict("future"),
    f"returned nan at position 0: its memory is empty (no s < 0), and the convention is an "
    f"answer of exactly 0 (set empty rows to 0 instead of dividing 0 by 0) {H2}": _nan_first_row,
    f"let position 0 read its own pair to fill its empty memory: its answer is exactly 0 {H2}":
        variants.wrong_predict("first_self"),
    f"cut one pair too many (mask s < t-1): position t may read pair t-1 {H3}": variants.wrong_predict("two"),
    f"peeked in the wrong direction: your values use x_{{t-1}} (the past); the value of position t "
    f"peeks at the *next* input x_{{t+1}} {H1}": variants.wrong_predict(direction=-1),
    f"swapped γ and 1-γ: v_t = γ x_t + (1-γ) x_{{t+1}} {H1}": variants.wrong_predict(gamma=lambda g: 1 - g),
    f"ignored γ: your values are x_{{t+1}} alone; mix in γ x_t as well {H1}":
        variants.wrong_predict(gamma=lambda g: 0.0),
    f"stored x_t as the value (no peek): the value of position t is γ x_t + (1-γ) x_{{t+1}} {H1}":
        variants.wrong_predict(gamma=lambda g: 1.0),
    f"normalised the weights over the queries (axis 0) instead of over the stored pairs (axis 1) {H2}":
        variants.axis0,
    f"used the papers' softmax(beta k.k_s), half this exercise's bandwidth: the Gaussian "
    f"exp(-beta ||k_t - k_s||^2) on unit keys is softmax(2 beta k_t.k_s) (chapter 00's notation "
    f"table) {H2}": variants.wrong_predict(beta_factor=0.5),
    f"masked after the softmax: the weights were normalised over every pair, the future "
    f"included, so the pairs s < t no longer sum to 1; give s >= t the score -inf *before* the "
    f"softmax {H2}": variants.softmax_then_mask,
    f"computed the exponentials without subtracting the row's largest score: on keys far apart "
    f"with a large β they all underflow to 0 (0/0 = nan) {H2}":
        lambda k, x, b, g: variants.softmax_then_mask(k, x, b, g, stable=False),
    f"took the softmax over every pair, then masked and renormalised: where a pair s >= t takes "
    f"all the weight (the query's own key is at distance 0), the past underflows to 0 first and the "
    f"renormalisation divides 0 by 0; mask with -inf before the softmax {H2}":
        lambda k, x, b, g: variants.softmax_then_mask(k, x, b, g, renormalise=True),
}


@notebook_check
def check_causal_predict(causal_predict: Callable[..., np.ndarray]) -> None:
    """Exercise 2.2: peeking values and strictly causal retrieval, position 0 answering 0."""
    compare(CHAPTER, "causal_predict", causal_predict, _ref_predict, PREDICT_CASES,
            mistakes=PREDICT_MISTAKES, arg_names=["keys", "x", "beta", "gamma"], regimes=PREDICT_REGIMES,
            rebuild="ch02.PREDICT_CASES[{k}]",
            hint=f"Print your (T, T) weight matrix for a short case: row t must be zero from column "
                 f"t on, row 0 all zero, every other row summing to 1 {H2}.")


# --------------------------------------------------------------------------------------------
# exercise 2.3: the learner's own "no peeking" test
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


def _reads_two_ahead(x):  # peeks at x_{t+2} only (0 past the end)
    return np.concatenate([x[2:], np.zeros(2)])


def _running_mean(x):  # legitimate: the mean of x_0 … x_t
    return np.cumsum(x) / np.arange(1, len(x) + 1)


def _tiny_leak(x):  # a causal running mean plus a leak of 1e-6 times the next value
    nxt = np.concatenate([x[1:], np.zeros(1)])
    return _running_mean(x) + 1e-6 * nxt


_SERIES = toys.periodic_signal(1, 40, 10.0, seed=7)[0]
_SHORT = toys.periodic_signal(1, 12, 5.0, seed=8)[0]

# (predictor, series, t, expected answer, what it means if the learner gets it wrong)
PEEKING_CASES: list[tuple[Callable, np.ndarray, int, bool, str]] = [
    (_causal_unit, _SERIES, 15, True,
     f"said the causal memory unit peeks. Did you change x_t itself, or compare positions after "
     f"t? Position t may use x_0 … x_t; change only x_{{t+1}}, x_{{t+2}}, … and compare positions "
     f"0 … t {H2}"),
    (_uses_present, _SERIES, 20, True,
     f"said a predictor using x_t and x_{{t-1}} peeks: those are allowed at position t. Change only "
     f"x_{{t+1}} onwards, and compare the predictions at positions 0 … t {H2}"),
    (_leaky_unit, _SERIES, 15, False,
     f"missed the leak of a memory unit that reads its own pair (mask s <= t): its prediction at "
     f"position t uses v_t, which holds x_{{t+1}}. Change x_{{t+1}} and compare the predictions at "
     f"positions 0 … t (t included) {H3}"),
    (_reads_last, _SERIES, 10, False,
     f"missed a predictor that reads the *last* value of the series: change every future value "
     f"x_{{t+1}}, x_{{t+2}}, …, x_{{T-1}}, not only x_{{t+1}} {H2}"),
    (_reads_two_ahead, _SHORT, 9, False,
     f"missed a predictor that reads x_{{t+2}} (here t = T-3): change every value after t, up to "
     f"the end of the series {H2}"),
    (_running_mean, _SHORT, 0, True,
     f"said a running mean of x_0 … x_t peeks (at t = 0). Compare the predictions at positions "
     f"0 … t only — for t = 0 that is the single prediction at position 0 {H3}"),
    (_leaky_unit, _SHORT, 10, False,
     f"missed the leak at t = T-2 (the last position that has a future): x_{{T-1}} must be changed "
     f"too; check your slices at the end of the series {H3}"),
    (_leaky_unit, _SHORT, 11, True,
     f"said a predictor peeks at t = T-1, the last position: there is no future to change, so "
     f"nothing can leak; return True (x[t + 1:] is empty there, x[t + 1] does not exist) {H2}"),
    (_tiny_leak, _SERIES, 12, False,
     f"missed a leak of 1e-6 · x_{{t+1}}: np.allclose's default tolerance (1e-5 of the values) "
     f"hides it. Compare with a tolerance of 1e-9 at most, or exactly {H3}"),
]


@notebook_check
def check_no_peeking(no_peeking: Callable[[Callable, np.ndarray, int], bool]) -> None:
    """Exercise 2.3: the learner's test must accept causal predictors and catch peeking ones."""
    ex = "no_peeking"
    for k, (predict, series, t, expected, diagnosis) in enumerate(PEEKING_CASES):
        reference = toys.no_peeking(predict, series, t)
        if reference != expected:  # the case itself must be right; cannot happen unless edited
            raise RuntimeError(f"check_no_peeking case {k} is inconsistent with toys.no_peeking")
        where = f"on test case {k} of {len(PEEKING_CASES)} (t = {t}, a series of {len(series)})"
        inputs = show_inputs(["predict", "x", "t"], (predict, series, t), f"ch02.PEEKING_CASES[{k}][:3]")
        answer = call_checked(CHAPTER, ex, no_peeking, (predict, series, t),
                              arg_names=["predict", "x", "t"], where=where, inputs=inputs)
        if not isinstance(answer, bool | np.bool_):
            fail(CHAPTER, ex, f"returned {answer!r:.80} (a {type(answer).__name__}); return True "
                 f"(no peeking) or False (peeks), one bool: wrap a comparison of arrays in "
                 f"bool(np.allclose(...)) or bool(np.array_equal(...)) {H3}", "type")
        if bool(answer) != expected:
            fail(CHAPTER, ex, f"wrong {where}: it {diagnosis}.\n{inputs}", "mistake")
    passed(CHAPTER, ex)


# --------------------------------------------------------------------------------------------
# exercise 2.4: the one-layer induction head's forward pass
# --------------------------------------------------------------------------------------------


def _lm_case(seed: int, vocab: int, n_embd: int, B: int, T: int) -> tuple[MemoryUnitLM, torch.Tensor]:
    """A MemoryUnitLM whose per-head scalars are moved away from their initial values."""
    torch.manual_seed(seed)
    model = MemoryUnitLM(vocab, n_embd=n_embd)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1 and not name.startswith("ln"):  # decay, bandwidth, peek, value scale
                p.add_(0.05 * torch.randn_like(p))
        model.ln.weight.uniform_(0.5, 1.5)
        model.ln.bias.normal_(0.0, 0.1)
    tokens = torch.randint(0, vocab, (B, T), generator=torch.Generator().manual_seed(seed))
    return model.eval(), tokens


def _sharp_case() -> tuple[MemoryUnitLM, torch.Tensor]:
    """The largest bandwidth the extractor allows, s = e^5: scores k_t·k_s up to β = e^10 ≈ 22,026."""
    model, tokens = _lm_case(73, 13, 8, 2, 10)  # (a seed where some query's past scores are all < -1e4)
    with torch.no_grad():
        model.keys.beta_logit.fill_(0.6)  # 10·0.6 = 6, clamped at 5
    return model, tokens


def _repeating_case() -> tuple[MemoryUnitLM, torch.Tensor]:
    """A sequence that repeats itself: the induction head's memory holds a copy of every token."""
    model, _ = _lm_case(64, 9, 8, 1, 1)
    return model, torch.tensor([[1, 2, 3, 4, 1, 2, 3, 4, 1]])


LM_CASES = [
    Case(*_lm_case(60, 11, 8, 2, 9), why="two sequences of 9"),
    Case(*_lm_case(61, 32, 16, 3, 16), why="three sequences of 16"),
    Case(*_lm_case(62, 7, 12, 1, 5), why="one sequence, d = 12 > vocab = 7"),
    Case(*_lm_case(63, 20, 8, 4, 1), regime="single",
         why="T = 1: only the empty memory of position 0, which retrieves exactly 0"),
    Case(*_repeating_case(), regime="repeats", why="a sequence that repeats: every token has earlier copies"),
    Case(*_sharp_case(), regime="sharp",
         why="the largest bandwidth, β = e^10: scores k_t·k_s from -22,026 to 22,026"),
]

LM_REGIMES = {
    "single": f"T = 1: position 0 alone, whose memory is empty; its retrieval is exactly 0, so its "
              f"logits are those of LN(x) {H2}",
    "sharp": f"the scores k_t·k_s reach ±22,026 (β = e^10): exp overflows unless each row's largest "
             f"score is subtracted (torch.softmax does it), and a mask filled with a finite number "
             f"such as -1e4 no longer hides the future; fill with -inf {H3}",
    "repeats": f"the sequence repeats, so a query's key meets stored keys of the same token: check "
               f"the mask (s < t) and the scale of the scores k_t·k_s {H3}",
}


@torch.no_grad()
def _ref_lm(model: MemoryUnitLM, tokens: torch.Tensor) -> torch.Tensor:
    return model(tokens)


def _lm(mask_k: int | None = -1, scale: float = 1.0, residual: bool = True, ln: str = "h",
        peek: str = "values", nan0: bool = False, axis: int = -1, sqrt_d: bool = False,
        proj: bool = True, mask_after: bool = False, probs: bool = False) -> Callable:
    """A forward pass with one mistake, built from the model's own parts."""

    @torch.no_grad()
    def wrong(model: MemoryUnitLM, tokens: torch.Tensor) -> torch.Tensor:
        T = tokens.shape[1]
        x = model.embed(tokens)  # (B, T, d)
        k = model.keys(x)[:, 0]  # (B, T, d)
        v = {"values": model.values(x)[:, 0], "x": x, "keys": k}[peek]  # (B, T, d)
        scores = scale * k @ k.transpose(-1, -2)  # (B, T, T)
        if sqrt_d:
            scores = scores / k.shape[-1] ** 0.5
        allowed = torch.ones(T, T, dtype=torch.bool).tril(mask_k) if mask_k is not None else None
        if allowed is not None and not mask_after:
            scores = scores.masked_fill(~allowed, float("-inf"))
        w = torch.softmax(scores, dim=axis)
        if mask_after:
            w = w * allowed
        if not nan0:
            w = w.nan_to_num(0.0)
        y = w @ v  # (B, T, d)
        y = model.proj(y) if proj else y
        h = x + y if residual else y
        h = {"h": model.ln(h), "none": h, "x": model.ln(x) + y}[ln]
        logits = model.unembed(h)
        return torch.softmax(logits, dim=-1) if probs else logits

    return wrong


LM_MISTAKES: dict[str, Callable] = {
    f"let position t read its own pair (mask s <= t, tril(0)): its value holds token t+1, the "
    f"answer itself. Use s < t: torch.ones(T, T).tril(-1) {H3}": _lm(mask_k=0),
    f"used no mask: every position reads the whole sequence, the future included {H2}": _lm(mask_k=None),
    f"returned nan at position 0: its memory is empty, the softmax of an all -inf row is nan; "
    f"set those weights to 0 (e.g. torch.nan_to_num) so that position 0 retrieves exactly 0 {H2}":
        _lm(nan0=True),
    f"cut one pair too many (mask s < t-1, tril(-2)): position t may read pair t-1 {H3}": _lm(mask_k=-2),
    f"multiplied the scores by 2: the keys already carry s_h, and k·k' = s_h² k̂·k̂' = β_h k̂·k̂' is "
    f"the papers' logit. (Chapter 01's Gaussian softmax(2β k·k') uses a β half as large) {H2}":
        _lm(scale=2.0),
    f"divided the scores by sqrt(d): a memory unit has no 1/sqrt(d), its bandwidth is in the keys' "
    f"scale {H2}": _lm(sqrt_d=True),
    f"used torch's causal attention (scaled_dot_product_attention with is_causal=True): it lets "
    f"position t read its own pair (s <= t) and divides by sqrt(d); a memory unit reads s < t, "
    f"with the scores k_t·k_s as they are {H2}": _lm(mask_k=0, sqrt_d=True),
    f"left out the residual connection: the output is x + W_o y, not W_o y alone {H2}":
        _lm(residual=False),
    f"left out the final LayerNorm before the unembedding {H2}": _lm(ln="none"),
    f"normalised x alone and added W_o y after the LayerNorm: the LayerNorm takes the whole "
    f"residual stream, LN(x + W_o y) {H2}": _lm(ln="x"),
    f"retrieved the embeddings x instead of the values: the value extractor's peek at token t+1 "
    f"is what makes one layer an induction head {H1}": _lm(peek="x"),
    f"retrieved the keys instead of the values: the values come from model.values, which peek at "
    f"token t+1 {H1}": _lm(peek="keys"),
    f"normalised the weights over the queries (dim=-2) instead of over the stored pairs (dim=-1) {H2}":
        _lm(axis=-2),
    f"left out the output map W_o (model.proj) after the retrieval {H2}": _lm(proj=False),
    f"applied the mask after the softmax: the weights were normalised over every pair, the "
    f"future included; fill the scores of s >= t with -inf *before* the softmax {H3}":
        _lm(mask_after=True),
    f"returned probabilities (a softmax over the vocabulary); return the logits themselves {H2}":
        _lm(probs=True),
}


@notebook_check
def check_memory_unit_lm(memory_unit_lm: Callable[[MemoryUnitLM, torch.Tensor], torch.Tensor]) -> None:
    """Exercise 2.4: the forward pass of the one-layer induction head, against ``MemoryUnitLM``."""
    compare(CHAPTER, "memory_unit_lm", memory_unit_lm, _ref_lm, LM_CASES, mistakes=LM_MISTAKES,
            arg_names=["model", "tokens"], floor=Floor(rel=1e-4, abs=1e-4), regimes=LM_REGIMES,
            rebuild="ch02.LM_CASES[{k}]",
            hint=f"Check the shapes line by line on a (1, 5) input: x (B, T, d), keys and values "
                 f"(B, T, d) after [:, 0], scores (B, T, T), logits (B, T, vocab) {H2}.")
