"""Chapter 11's project: a new language in every sequence, and what a model learns of them.

Each sequence is written in a language of its own: a random **Markov language** over ``VOCAB``
symbols in which every symbol may be followed by ``SUCCESSORS`` others, with random
probabilities — the simplest probabilistic automaton, one whose state is the last symbol. No two
sequences share a language, so a model predicts well only by learning the language from the
sequence itself: in-context learning, as in RegBench (chapter 07), with the automaton's state
visible. The best predictor from the context alone is close to the *in-context bigram*: count
which symbols followed the current one so far.

- :func:`random_languages`, :func:`sample_sequences`, :func:`training_batch`, :func:`test_set`:
  the data (seeded, vectorised);
- :func:`ngram_probs`, :func:`model_probs`, :func:`scores`, :func:`late`: predictions and their
  scores per position (accuracy: the predicted symbol may follow; TVD to the true distribution);
- :func:`head_ablation`: how much each contextual-memory head of a trained mosaic carries
  (chapter 08's ablations);
- :func:`experiment`: train and score a learner's pair of models once per kernel (cached);
- :func:`language_view`, :func:`draw_language_view`: the chapter's widget.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from ..core.validation import check_positive_int

__all__ = [
    "LATE",
    "LENGTH",
    "SUCCESSORS",
    "TRAIN_STEPS",
    "VOCAB",
    "draw_language_view",
    "experiment",
    "head_ablation",
    "language_view",
    "late",
    "model_probs",
    "ngram_probs",
    "random_languages",
    "sample_sequences",
    "scores",
    "test_set",
    "training_batch",
]

VOCAB = 16  # symbols of every language
SUCCESSORS = 3  # symbols that may follow each symbol
LENGTH = 128  # tokens a model reads (it predicts tokens 1 … LENGTH)
LATE = 64  # positions from here on are "late": the context holds several visits to each symbol
TRAIN_STEPS = 200  # the steps chapter 11 trains each model for
_TEST_SEED = 10_000  # the held-out languages' seed, far from any training step's


def _rng(seed: Any) -> np.random.Generator:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    return np.random.default_rng(int(seed))


def random_languages(n: int, seed: int, successors: int = SUCCESSORS, vocab: int = VOCAB) -> np.ndarray:
    """``n`` random Markov languages: (n, vocab, vocab) transition matrices, row a = P(next | a).

    Each row has ``successors`` non-zero entries at random symbols, with probabilities drawn
    uniformly from the simplex (Dirichlet(1, …, 1)).
    """
    check_positive_int("n", n)
    if not isinstance(successors, int) or not 1 <= successors <= vocab:
        raise ValueError(f"successors must be an int in [1, {vocab}], got {successors!r}")
    rng = _rng(seed)
    order = rng.random((n, vocab, vocab)).argsort(axis=-1)[..., :successors]  # (n, V, K) successors
    probs = rng.dirichlet(np.ones(successors), size=(n, vocab))  # (n, V, K)
    out = np.zeros((n, vocab, vocab))
    np.put_along_axis(out, order, probs, axis=-1)
    return out


def sample_sequences(languages: np.ndarray, length: int, seed: int) -> torch.Tensor:
    """One sequence of ``length + 1`` symbols per language, the first symbol uniform. -> (n, length+1)."""
    languages = np.asarray(languages)
    if languages.ndim != 3 or languages.shape[1] != languages.shape[2]:
        raise ValueError(f"languages must be (n, V, V) transition matrices, got shape {languages.shape}")
    rng = _rng(seed)
    n, vocab = languages.shape[:2]
    cdf = languages.cumsum(axis=-1)  # (n, V, V)
    x = np.zeros((n, length + 1), dtype=np.int64)
    x[:, 0] = rng.integers(0, vocab, n)
    u = rng.random((n, length))
    rows = np.arange(n)
    for t in range(length):
        c = cdf[rows, x[:, t]]  # (n, V): the current symbol's cumulative row
        x[:, t + 1] = np.minimum((u[:, t, None] > c).sum(axis=1), vocab - 1)
    return torch.from_numpy(x)


def training_batch(step: int, batch_size: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch ``step`` of a training run: fresh languages, one sequence each. -> x, y (B, LENGTH)."""
    if not isinstance(step, int) or step < 0:
        raise ValueError(f"step must be an int >= 0, got {step!r}")
    s = 1_000_003 * int(seed) + step
    seqs = sample_sequences(random_languages(batch_size, s), LENGTH, s + 7)
    return seqs[:, :-1], seqs[:, 1:]


def test_set(n: int = 256) -> tuple[np.ndarray, torch.Tensor]:
    """The held-out languages (no training batch draws them) and one sequence of each."""
    langs = random_languages(n, _TEST_SEED)
    return langs, sample_sequences(langs, LENGTH, _TEST_SEED + 1)


def ngram_probs(sequences: torch.Tensor, order: int, prior: float = 0.1) -> torch.Tensor:
    """In-context n-gram predictions of every next symbol. (n, T+1) -> (n, T, V).

    ``order`` 1: the frequencies of the symbols seen so far; 2: the frequencies of the symbols that
    followed the current one so far (the in-context bigram). Counts start at ``prior`` each.
    """
    if order not in (1, 2):
        raise ValueError(f"order must be 1 (unigram) or 2 (bigram), got {order!r}")
    x = torch.as_tensor(sequences)[:, :-1]
    n, T = x.shape
    vocab = VOCAB
    probs = torch.empty(n, T, vocab, dtype=torch.float64)
    counts = torch.full((n, vocab, vocab) if order == 2 else (n, vocab), prior, dtype=torch.float64)
    rows = torch.arange(n)
    for t in range(T):
        if order == 1:
            counts[rows, x[:, t]] += 1
            c = counts
        else:
            if t > 0:
                counts[rows, x[:, t - 1], x[:, t]] += 1
            c = counts[rows, x[:, t]]  # (n, V): what followed the current symbol so far
        probs[:, t] = c / c.sum(dim=1, keepdim=True)
    return probs


@torch.no_grad()
def model_probs(model: nn.Module, sequences: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """A language model's next-symbol probabilities. (n, T+1) -> (n, T, V)."""
    was_training = model.training
    model.eval()
    try:
        out = [torch.softmax(model(chunk[:, :-1])[0].double(), dim=-1)
               for chunk in torch.as_tensor(sequences).split(batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(out)


def scores(probs: torch.Tensor, languages: np.ndarray, sequences: torch.Tensor) -> dict[str, np.ndarray]:
    """Per position t, averaged over the sequences: ``accuracy`` (the most likely symbol may follow
    symbol t) and ``tvd`` (total-variation distance to the true next-symbol distribution)."""
    probs = torch.as_tensor(probs, dtype=torch.float64)
    x = torch.as_tensor(sequences)[:, :-1]
    truth = torch.as_tensor(np.asarray(languages))[torch.arange(len(x))[:, None], x]  # (n, T, V)
    if probs.shape != truth.shape:
        raise ValueError(f"probs must have shape {tuple(truth.shape)}, got {tuple(probs.shape)}")
    best = probs.argmax(dim=-1, keepdim=True)
    accuracy = (truth.gather(-1, best)[..., 0] > 0).double().mean(dim=0)
    tvd = 0.5 * (probs - truth).abs().sum(dim=-1).mean(dim=0)
    return {"accuracy": accuracy.numpy(), "tvd": tvd.numpy()}


def late(curve: np.ndarray) -> float:
    """The mean of a per-position curve over the late positions (t >= LATE)."""
    return float(np.mean(np.asarray(curve)[LATE:]))


_ABLATIONS: dict[str, np.ndarray] = {}  # head_ablation's results by the digest of its inputs


def _digest(model: nn.Module, sequences: torch.Tensor) -> str:
    """SHA-256 of the model's class, weights and buffers and of the sequences: equal digests, equal
    inputs (a model changed in place gets a new digest)."""
    h = hashlib.sha256(type(model).__qualname__.encode())
    for name, t in [*model.state_dict().items(), ("sequences", sequences)]:
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def head_ablation(model: nn.Module, sequences: torch.Tensor) -> np.ndarray:
    """Late loss increase when each contextual-memory head of a mosaic is zeroed. -> (blocks, heads).

    Exercises 11.3 to 11.5 ask it of the same trained mosaic again and again: a result is kept
    for the same weights and sequences (a copy is returned)."""
    from ..models.lm import MemoryMosaicLM

    if not isinstance(model, MemoryMosaicLM):
        raise TypeError(f"model must be a MemoryMosaicLM (chapter 08's tools read it), got "
                        f"{type(model).__name__}")
    key = _digest(model, sequences)
    if key not in _ABLATIONS:
        _ABLATIONS[key] = _head_ablation(model, sequences)
    return _ABLATIONS[key].copy()


def _head_ablation(model: nn.Module, sequences: torch.Tensor) -> np.ndarray:
    from .inspection import per_token_loss

    x, y = sequences[:, :-1], sequences[:, 1:]
    base = per_token_loss(model, x, y)[:, LATE:].mean()
    cfg = model.config
    out = np.zeros((cfg.n_layer, cfg.n_head))
    for layer in range(cfg.n_layer):
        for head in range(cfg.n_head):
            ablated = per_token_loss(model, x, y, ablate=[(layer, "cmem", head)])[:, LATE:].mean()
            out[layer, head] = float(ablated - base)
    return out


# --------------------------------------------------------------------------------------------
# the experiment, once per kernel
# --------------------------------------------------------------------------------------------

_CACHE: dict[str, dict[str, Any]] = {}


def _fingerprint(*fns: Callable) -> str:
    """What identifies a learner's functions: their source (or bytecode when no source is at hand)."""
    h = hashlib.sha256()
    for fn in fns:
        try:
            h.update(inspect.getsource(fn).encode())
        except (OSError, TypeError):
            code = getattr(fn, "__code__", None)
            what = (getattr(fn, "__qualname__", fn), code and code.co_code, code and code.co_consts)
            h.update(repr(what).encode())
    return h.hexdigest()


def experiment(build_models: Callable[[], tuple[nn.Module, nn.Module]],
               train_model: Callable[[nn.Module, int, int], list[float]],
               steps: int = TRAIN_STEPS, seed: int = 0) -> dict[str, Any]:
    """Build the pair, train both for ``steps`` with ``seed``, score them on the held-out languages.

    Returns ``models`` (the trained mosaic and GPT), ``losses``, ``scores`` per model and for the
    in-context unigram and bigram, and ``late`` (the late-position means). The result is cached
    per kernel: the same functions (same source) are trained once.
    """
    key = _fingerprint(build_models, train_model) + f"/{steps}/{seed}"
    if key not in _CACHE:
        torch.manual_seed(seed)
        mosaic, gpt = build_models()
        losses = {"mosaic": train_model(mosaic, steps, seed), "gpt": train_model(gpt, steps, seed)}
        langs, seqs = test_set()
        result = {"models": {"mosaic": mosaic, "gpt": gpt}, "losses": losses, "scores": {}}
        for name, probs in (("mosaic", model_probs(mosaic, seqs)), ("gpt", model_probs(gpt, seqs)),
                            ("unigram", ngram_probs(seqs, 1)), ("bigram", ngram_probs(seqs, 2))):
            result["scores"][name] = scores(probs, langs, seqs)
        result["late"] = {name: {k: late(v) for k, v in s.items()} for name, s in result["scores"].items()}
        _CACHE[key] = result
    return _CACHE[key]


# --------------------------------------------------------------------------------------------
# the widget: what a perfect in-context learner would need
# --------------------------------------------------------------------------------------------


def language_view(successors: int, seed: int = 0, n_sequences: int = 64) -> dict[str, Any]:
    """One random language with ``successors`` per symbol, and the in-context unigram's and bigram's
    accuracy and TVD by position over ``n_sequences`` sequences of such languages."""
    langs = random_languages(n_sequences, seed, successors=successors)
    seqs = sample_sequences(langs, LENGTH, seed + 1)
    curves = {name: scores(ngram_probs(seqs, order), langs, seqs) for name, order in (("unigram", 1),
                                                                                     ("bigram", 2))}
    return {"successors": successors, "language": langs[0], "curves": curves,
            "late": {name: {k: late(v) for k, v in c.items()} for name, c in curves.items()}}


def draw_language_view(view: dict[str, Any], fig: Any) -> None:
    """Left: one language's transition matrix; right: the n-gram baselines' TVD by position."""
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.6]})
    left.imshow(view["language"], cmap="Blues", vmin=0, vmax=1)
    left.set(title=f"a language: P(next | current), {view['successors']} successors", xlabel="next symbol",
             ylabel="current symbol")
    for name, c in view["curves"].items():
        right.plot(c["tvd"], label=f"in-context {name}: TVD")
    right.axvline(LATE, color="0.5", ls=":", lw=1)
    right.set(xlabel="position t", ylabel="TVD to the true next-symbol distribution", ylim=(0, 1),
              title="what the context alone can teach")
    right.legend(fontsize=8)
