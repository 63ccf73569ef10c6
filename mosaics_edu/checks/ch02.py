"""Checks for chapter 02 (Keys from the past, values from the future).

References: :func:`mosaics_edu.features.leaky_average` (keys), :func:`mosaics_edu.toys.peek_values`
and :func:`mosaics_edu.memory.kernel_regression` with the strict mask
:func:`mosaics_edu.toys.causal_mask` (the memory unit's answers), :func:`mosaics_edu.toys.no_peeking`
(the learner's own test, run on predictors that do and do not peek), and
:class:`mosaics_edu.induction.MemoryUnitLM` (the one-layer induction head's forward pass).
Every argument is varied over the cases: lengths, widths, decays, bandwidths, peek mixes, batch
sizes, vocabularies, float32 inputs.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .. import memory, toys
from ..features import leaky_average
from ..induction import MemoryUnitLM
from . import call_checked, compare, fail, passed

CHAPTER = "02_keys_and_values"

__all__ = [
    "check_leaky_keys",
    "check_causal_predict",
    "check_no_peeking",
    "check_memory_unit_lm",
    "KEYS_MISTAKES",
    "PREDICT_MISTAKES",
    "LM_MISTAKES",
]


def _unit(k: np.ndarray, axis: int = -1) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return k / np.linalg.norm(k, axis=axis, keepdims=True)


def _leaky(f: np.ndarray, decay: float) -> np.ndarray:
    return leaky_average(np.asarray(f, dtype=np.float64), decay, method="recurrent")


# --------------------------------------------------------------------------------------------
# exercise 2.1: leaky_keys
# --------------------------------------------------------------------------------------------


def _keys_case(seed: int, T: int, d: int, decay: float, dtype: type = np.float64, shift: float = 0.0):
    return (np.random.default_rng(seed).standard_normal((T, d)) + shift).astype(dtype), decay


KEYS_CASES = [
    _keys_case(30, 6, 3, 0.5),
    _keys_case(31, 9, 4, 0.9),
    _keys_case(32, 5, 2, 0.0),  # λ = 0: each key is its own input, normalised
    _keys_case(33, 4, 4, 0.7),  # square (T = d): an axis mistake still shows
    _keys_case(34, 12, 3, 0.99, shift=2.0),  # long memory, inputs far from 0
    _keys_case(35, 1, 5, 0.3),  # a single position
    _keys_case(36, 10, 6, 0.8, dtype=np.float32),
]


def _ref_keys(features, decay):
    return _unit(_leaky(features, decay))


def _weights_swapped(f, decay):  # k̄_t = λ k̃_t + k̄_{t-1}
    f = np.asarray(f, dtype=np.float64)
    out, acc = np.zeros_like(f), np.zeros_like(f[0])
    for t in range(len(f)):
        acc = decay * f[t] + acc
        out[t] = acc
    return _unit(out)


def _exclusive(f, decay):  # k̄_t built from s < t only
    f = np.asarray(f, dtype=np.float64)
    shifted = np.concatenate([np.zeros_like(f[:1]), f[:-1]])
    return _unit(_leaky(shifted, decay))


def _inverse_decay(f, decay):  # λ^(s) instead of λ^(t-s): the oldest input weighs the most
    f = np.asarray(f, dtype=np.float64)
    w = decay ** np.arange(len(f), dtype=np.float64)  # (T,)
    return _unit(np.cumsum(w[:, None] * f, axis=0))


KEYS_MISTAKES: dict[str, Callable] = {
    "forgot to L2-normalise the keys: divide each k̄_t by its norm ||k̄_t|| (over the features)":
        lambda f, decay: _leaky(f, decay),
    "normalised over the time axis (axis 0); each key k_t is normalised on its own, over its "
    "features (axis=-1)":
        lambda f, decay: _unit(_leaky(f, decay), axis=0),
    "put the decay on the current input (k̄_t = λ k̃_t + k̄_{t-1}); the recursion is "
    "k̄_t = k̃_t + λ k̄_{t-1}: the *past* fades":
        _weights_swapped,
    "averaged the future instead of the past (the recursion ran backwards in time): k_t may "
    "only use k̃_0 … k̃_t":
        lambda f, decay: _unit(_leaky(np.asarray(f)[::-1], decay)[::-1]),
    "left the current input out (only s < t): the key of position t must include k̃_t itself, "
    "and position 0 then has an all-zero key (0/0 = nan)":
        _exclusive,
    "normalised each input before averaging instead of normalising the average":
        lambda f, decay: _leaky(_unit(np.asarray(f, dtype=np.float64)), decay),
    "ignored the decay: your keys are the normalised inputs alone, whatever λ is (the state "
    "k̄_{t-1} must be carried from step to step)":
        lambda f, decay: _unit(np.asarray(f, dtype=np.float64)),
    "used 1 - λ as the decay: λ is the fraction of the past *kept* per step (larger λ, longer "
    "memory)":
        lambda f, decay: _unit(_leaky(f, 1 - decay)),
    "weighted input s by λ^s instead of λ^(t-s): the newest input must weigh 1 and older ones "
    "less":
        _inverse_decay,
}


def check_leaky_keys(leaky_keys: Callable[..., np.ndarray]) -> None:
    """Exercise 2.1: leaky-average keys, L2-normalised."""
    compare(CHAPTER, "leaky_keys", leaky_keys, _ref_keys, KEYS_CASES, mistakes=KEYS_MISTAKES,
            arg_names=["features", "decay"],
            hint="Compute k̄ for the first two positions by hand (k̄_0 = features_0, k̄_1 = "
                 "features_1 + decay * k̄_0) and compare with your loop; then normalise each row.")


# --------------------------------------------------------------------------------------------
# exercise 2.2: causal_predict — values that peek, retrieval from s < t
# --------------------------------------------------------------------------------------------


def _predict_case(seed: int, T: int, d: int, m: int, beta: float, gamma: float,
                  dtype: type = np.float64):
    rng = np.random.default_rng(seed)
    keys = _unit(rng.standard_normal((T, d)))
    return keys.astype(dtype), rng.standard_normal((T, m)).astype(dtype), beta, gamma


PREDICT_CASES = [
    _predict_case(51, 8, 4, 2, 5.0, 0.3),
    _predict_case(50, 5, 3, 1, 2.0, 0.0),
    _predict_case(52, 6, 2, 3, 200.0, 0.0),  # sharp kernel: needs the stable softmax
    _predict_case(53, 7, 7, 2, 1.0, 0.8),  # square keys (T = d)
    _predict_case(54, 9, 3, 1, 0.0, 0.5),  # β = 0: the plain average of the past values
    _predict_case(55, 2, 2, 2, 3.0, 0.2),  # two positions: one answer is 0, one reads one pair
    _predict_case(56, 10, 5, 3, 4.0, 0.6, dtype=np.float32),
]


def _values(x, gamma, direction=1):
    x = np.asarray(x, dtype=np.float64)
    if direction == 1:
        other = np.concatenate([x[1:], np.zeros_like(x[:1])])
    else:
        other = np.concatenate([np.zeros_like(x[:1]), x[:-1]])
    return gamma * x + (1 - gamma) * other


def _with_mask(keys, values, beta, mask):
    return memory.kernel_regression(np.asarray(keys, dtype=np.float64), values,
                                    np.asarray(keys, dtype=np.float64), beta, mask=mask)


def _ref_predict(keys, x, beta, gamma):
    return _with_mask(keys, toys.peek_values(x, gamma), beta, toys.causal_mask(len(keys)))


def _p(mask="strict", **value_kw) -> Callable:
    def wrong(k, x, b, g):
        T = len(k)
        masks = {"strict": np.tri(T, k=-1, dtype=bool), "inclusive": np.tri(T, dtype=bool),
                 "none": None, "future": np.tri(T, dtype=bool).T & ~np.eye(T, dtype=bool),
                 "two": np.tri(T, k=-2, dtype=bool)}
        vals = _values(x, value_kw.get("gamma", lambda g: g)(g), value_kw.get("direction", 1))
        return _with_mask(k, vals, value_kw.get("beta_factor", 1.0) * b, masks[mask])

    return wrong


def _nan_first_row(k, x, b, g):
    out = _ref_predict(k, x, b, g).copy()
    out[0] = np.nan
    return out


def _axis0(k, x, b, g):  # weights normalised over the queries
    k = np.asarray(k, dtype=np.float64)
    T = len(k)
    scores = -b * ((k[:, None] - k[None]) ** 2).sum(-1)
    mask = np.tri(T, k=-1, dtype=bool)
    e = np.where(mask, np.exp(scores - scores.max()), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.nan_to_num(e / e.sum(axis=0, keepdims=True))
    return w @ _values(x, g)


PREDICT_MISTAKES: dict[str, Callable] = {
    "let position t read its own pair (mask s <= t): its value v_t holds x_{t+1}, the very thing "
    "position t must predict. Use s < t (np.tri(T, T, k=-1))": _p("inclusive"),
    "used no mask: every position reads every pair, including the future": _p("none"),
    "masked the wrong triangle: position t read pairs s > t (the future), not s < t (the past)":
        _p("future"),
    "returned nan at position 0: its memory is empty (no s < 0), and the convention is an "
    "answer of exactly 0 (set empty rows to 0 instead of dividing 0 by 0)": _nan_first_row,
    "cut one pair too many (mask s < t-1): position t may read pair t-1": _p("two"),
    "peeked in the wrong direction: your values use x_{t-1} (the past); the value of position t "
    "peeks at the *next* input x_{t+1}": _p(direction=-1),
    "swapped γ and 1-γ: v_t = γ x_t + (1-γ) x_{t+1}": _p(gamma=lambda g: 1 - g),
    "ignored γ: your values are x_{t+1} alone; mix in γ x_t as well": _p(gamma=lambda g: 0.0),
    "stored x_t as the value (no peek): the value of position t is γ x_t + (1-γ) x_{t+1}":
        _p(gamma=lambda g: 1.0),
    "normalised the weights over the queries (axis 0) instead of over the stored pairs (axis 1)":
        _axis0,
    "used the papers' softmax(beta k.k_s), half this exercise's bandwidth: the Gaussian "
    "exp(-beta ||k_t - k_s||^2) on unit keys is softmax(2 beta k_t.k_s) (chapter 00's notation table)":
        _p(beta_factor=0.5),
}


def check_causal_predict(causal_predict: Callable[..., np.ndarray]) -> None:
    """Exercise 2.2: peeking values and strictly causal retrieval, position 0 answering 0."""
    compare(CHAPTER, "causal_predict", causal_predict, _ref_predict, PREDICT_CASES,
            mistakes=PREDICT_MISTAKES, arg_names=["keys", "x", "beta", "gamma"],
            hint="Print your (T, T) weight matrix for a short case: row t must be zero from column "
                 "t on, row 0 all zero, every other row summing to 1.")


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


_SERIES = toys.periodic_signal(1, 40, 10.0, seed=7)[0]
_SHORT = toys.periodic_signal(1, 12, 5.0, seed=8)[0]

# (predictor, series, t, expected answer, what it means if the learner gets it wrong)
PEEKING_CASES: list[tuple[Callable, np.ndarray, int, bool, str]] = [
    (_causal_unit, _SERIES, 15, True,
     "said the causal memory unit peeks. Did you change x_t itself, or compare positions after "
     "t? Position t may use x_0 … x_t; change only x_{t+1}, x_{t+2}, … and compare positions 0 … t"),
    (_uses_present, _SERIES, 20, True,
     "said a predictor using x_t and x_{t-1} peeks: those are allowed at position t. Change only "
     "x_{t+1} onwards, and compare the predictions at positions 0 … t"),
    (_leaky_unit, _SERIES, 15, False,
     "missed the leak of a memory unit that reads its own pair (mask s <= t): its prediction at "
     "position t uses v_t, which holds x_{t+1}. Change x_{t+1} and compare the predictions at "
     "positions 0 … t (t included)"),
    (_reads_last, _SERIES, 10, False,
     "missed a predictor that reads the *last* value of the series: change every future value "
     "x_{t+1}, x_{t+2}, …, x_{T-1}, not only x_{t+1}"),
    (_reads_two_ahead, _SHORT, 9, False,
     "missed a predictor that reads x_{t+2} (here t = T-3): change every value after t, up to "
     "the end of the series"),
    (_running_mean, _SHORT, 0, True,
     "said a running mean of x_0 … x_t peeks (at t = 0). Compare the predictions at positions "
     "0 … t only — for t = 0 that is the single prediction at position 0"),
    (_leaky_unit, _SHORT, 10, False,
     "missed the leak at t = T-2 (the last position that has a future): x_{T-1} must be changed "
     "too; check your slices at the end of the series"),
]


def check_no_peeking(no_peeking: Callable[[Callable, np.ndarray, int], bool]) -> None:
    """Exercise 2.3: the learner's test must accept causal predictors and catch peeking ones."""
    ex = "no_peeking"
    for k, (predict, series, t, expected, diagnosis) in enumerate(PEEKING_CASES):
        reference = toys.no_peeking(predict, series, t)
        if reference != expected:  # the case itself must be right; cannot happen unless edited
            raise RuntimeError(f"check_no_peeking case {k} is inconsistent with toys.no_peeking")
        answer = call_checked(CHAPTER, ex, no_peeking, (predict, series, t),
                              arg_names=["predict", "x", "t"], where=f"on test case {k}")
        if not isinstance(answer, bool | np.bool_):
            fail(CHAPTER, ex, f"returned {answer!r} (a {type(answer).__name__}); return True "
                 "(no peeking) or False (peeks)")
        if bool(answer) != expected:
            fail(CHAPTER, ex, f"wrong on test case {k} (t = {t}, a series of {len(series)}): it "
                 f"{diagnosis}.")
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


LM_CASES = [_lm_case(60, 11, 8, 2, 9), _lm_case(61, 32, 16, 3, 16), _lm_case(62, 7, 12, 1, 5),
            _lm_case(63, 20, 8, 4, 1)]  # T = 1: only the empty memory of position 0


@torch.no_grad()
def _ref_lm(model: MemoryUnitLM, tokens: torch.Tensor) -> torch.Tensor:
    return model(tokens)


def _lm(mask_k: int | None = -1, scale: float = 1.0, residual: bool = True, ln: bool = True,
        peek: bool = True, nan0: bool = False, axis: int = -1, sqrt_d: bool = False,
        proj: bool = True) -> Callable:
    """A forward pass with one mistake, built from the model's own parts."""

    @torch.no_grad()
    def wrong(model: MemoryUnitLM, tokens: torch.Tensor) -> torch.Tensor:
        T = tokens.shape[1]
        x = model.embed(tokens)  # (B, T, d)
        k = model.keys(x)[:, 0]  # (B, T, d)
        v = model.values(x)[:, 0] if peek else x  # (B, T, d)
        scores = scale * k @ k.transpose(-1, -2)  # (B, T, T)
        if sqrt_d:
            scores = scores / k.shape[-1] ** 0.5
        if mask_k is not None:
            allowed = torch.ones(T, T, dtype=torch.bool).tril(mask_k)
            scores = scores.masked_fill(~allowed, float("-inf"))
        w = torch.softmax(scores, dim=axis)
        if not nan0:
            w = w.nan_to_num(0.0)
        y = w @ v  # (B, T, d)
        y = model.proj(y) if proj else y
        h = x + y if residual else y
        return model.unembed(model.ln(h) if ln else h)

    return wrong


LM_MISTAKES: dict[str, Callable] = {
    "let position t read its own pair (mask s <= t, tril(0)): its value holds token t+1, the "
    "answer itself. Use s < t: torch.ones(T, T).tril(-1)": _lm(mask_k=0),
    "used no mask: every position reads the whole sequence, the future included": _lm(mask_k=None),
    "returned nan at position 0: its memory is empty, the softmax of an all -inf row is nan; "
    "set those weights to 0 (e.g. torch.nan_to_num) so that position 0 retrieves exactly 0":
        _lm(nan0=True),
    "cut one pair too many (mask s < t-1, tril(-2)): position t may read pair t-1": _lm(mask_k=-2),
    "multiplied the scores by 2: the keys already carry s_h, and k·k' = s_h² k̂·k̂' = β_h k̂·k̂' is "
    "the papers' logit. (Chapter 01's Gaussian softmax(2β k·k') uses a β half as large)":
        _lm(scale=2.0),
    "divided the scores by sqrt(d): a memory unit has no 1/sqrt(d), its bandwidth is in the keys' "
    "scale": _lm(sqrt_d=True),
    "left out the residual connection: the output is x + W_o y, not W_o y alone":
        _lm(residual=False),
    "left out the final LayerNorm before the unembedding": _lm(ln=False),
    "retrieved the embeddings x instead of the values: the value extractor's peek at token t+1 "
    "is what makes one layer an induction head": _lm(peek=False),
    "normalised the weights over the queries (dim=-2) instead of over the stored pairs (dim=-1)":
        _lm(axis=-2),
    "left out the output map W_o (model.proj) after the retrieval": _lm(proj=False),
}


def check_memory_unit_lm(memory_unit_lm: Callable[[MemoryUnitLM, torch.Tensor], torch.Tensor]) -> None:
    """Exercise 2.4: the forward pass of the one-layer induction head, against ``MemoryUnitLM``."""
    compare(CHAPTER, "memory_unit_lm", memory_unit_lm, _ref_lm, LM_CASES, mistakes=LM_MISTAKES,
            arg_names=["model", "tokens"], rtol=1e-4, atol=1e-4,
            hint="Check the shapes line by line on a (1, 5) input: x (B, T, d), keys and values "
                 "(B, T, d) after [:, 0], scores (B, T, T), logits (B, T, vocab).")
