"""The two RegBench scores, exactly as the benchmark's offline evaluation defines them.

At every input position t of a sample (every token but the last, separators included):

- the *reference distribution* is uniform over the valid next symbols: run the automaton over the
  current string so far (a ``|`` resets it to state 0) and take the symbols that have a
  transition from the state reached. The separator and the pad always get 0, even at the end of
  a string where the true next token is ``|``;
- **accuracy**: the model's argmax over all 20 tokens is correct iff the reference gives it
  probability > 0 (a valid next symbol; not necessarily the token that was sampled);
- **TVD**: ½ Σ_v |p_model(v) − p_ref(v)| over the full vocabulary, p_model the softmax of the
  logits.

Both are micro-averaged: pooled over all positions of all samples. (The benchmark's training
logs use other definitions — they skip end-of-string positions, average per batch, and log
2·TVD; do not mix them with these.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ...core.validation import check_positive_int
from .automata import Automaton
from .datasets import CPU_SIZES, Sample, SampleSizes, draw_samples, make_batch
from .vocab import SEP, SYMBOLS, VOCAB_SIZE

__all__ = ["reference_distribution", "Scores", "score_probabilities", "evaluate", "evaluate_samples"]


def reference_distribution(sample: Sample) -> np.ndarray:
    """(L-1, VOCAB_SIZE) float64: row t is uniform over the valid symbols after ``tokens[:t+1]``.

    Raises ``ValueError`` naming the position if the sample could not have come from its
    automaton (a symbol without a transition).
    """
    if not isinstance(sample, Sample):
        raise TypeError(f"sample must be a Sample, got {type(sample).__name__}")
    a, tokens = sample.automaton, sample.tokens
    ref = np.zeros((len(tokens) - 1, VOCAB_SIZE))  # (L-1, V)
    state: int | None = 0
    for t, tok in enumerate(tokens):  # the last token is checked too, though it is no input
        state = 0 if tok == SEP else a.step(state, tok)
        if state is None:
            raise ValueError(
                f"token {t} ({SYMBOLS[tok - 1]!r}) has no transition in the sample's automaton: "
                "the sample was not drawn from it"
            )
        if t < len(ref):
            ref[t, list(a.out_symbols(state))] = 1.0 / len(a.out_symbols(state))
    return ref


@dataclass(frozen=True)
class Scores:
    """Micro-averaged accuracy and TVD over ``n_positions`` positions of ``n_samples`` samples."""

    accuracy: float
    tvd: float
    n_positions: int
    n_samples: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        return f"accuracy {self.accuracy:.3f}, TVD {self.tvd:.3f} ({self.n_positions} positions)"


def score_probabilities(probs: torch.Tensor, reference: torch.Tensor) -> tuple[float, float]:
    """Sums over positions of (argmax is valid) and of the TVD. probs, reference: (P, V)."""
    if probs.shape != reference.shape or probs.dim() != 2:
        raise ValueError(
            f"probs and reference must both be (positions, vocab), got "
            f"{tuple(probs.shape)} and {tuple(reference.shape)}"
        )
    best = probs.argmax(dim=-1)  # (P,)
    correct = (reference.gather(1, best[:, None])[:, 0] > 0).double().sum()
    tvd = 0.5 * (probs - reference).abs().sum(dim=-1).sum()
    return float(correct), float(tvd)


def _logits_of(model: Callable[..., Any], x: torch.Tensor) -> torch.Tensor:
    out = model(x)
    if isinstance(out, tuple | list):  # the package's models return (logits, loss)
        out = out[0]
    if not isinstance(out, torch.Tensor):
        raise TypeError(
            f"the model must return logits (a tensor) or (logits, loss), got {type(out).__name__}"
        )
    if out.shape != (*x.shape, VOCAB_SIZE):
        raise ValueError(
            f"the model returned logits of shape {tuple(out.shape)} for inputs {tuple(x.shape)}; expected "
            f"(B, T, {VOCAB_SIZE}): build it with vocab_size={VOCAB_SIZE}, the RegBench vocabulary"
        )
    return out


def _model_device(model: Any) -> torch.device:
    if isinstance(model, nn.Module):
        for p in model.parameters():
            return p.device
    return torch.device("cpu")


@torch.no_grad()
def evaluate_samples(
    model: Callable[..., Any],
    samples: Sequence[Sample],
    batch_size: int = 64,
    device: torch.device | str | None = None,
) -> Scores:
    """Score ``model`` on ``samples`` (see the module docstring for the definitions).

    ``model`` is anything that maps (B, T) int64 token ids to (B, T, 20) logits, or to a tuple
    whose first element is those logits (``forward(idx) -> (logits, loss)``). An ``nn.Module`` is
    put in eval mode for the call and given back in the mode it had.
    """
    if not callable(model):
        raise TypeError(f"model must be callable (ids -> logits), got {type(model).__name__}")
    if not isinstance(samples, Sequence) or len(samples) == 0:
        raise ValueError("samples must be a non-empty list of Sample (see draw_samples)")
    check_positive_int("batch_size", batch_size)
    for i, s in enumerate(samples):
        if not isinstance(s, Sample):
            raise TypeError(f"samples[{i}] must be a Sample, got {type(s).__name__}")
    longest = max(len(s.tokens) - 1 for s in samples)
    block = getattr(getattr(model, "config", None), "block_size", None)
    if isinstance(block, int) and block < longest:
        raise ValueError(
            f"the samples need {longest} positions but the model's block_size is {block}: build the "
            f"model with block_size >= {longest} (CPU_SIZES samples need up to {CPU_SIZES.max_tokens - 1})"
        )
    device = _model_device(model) if device is None else torch.device(device)
    refs = [torch.from_numpy(reference_distribution(s)) for s in samples]  # validates every sample
    was_training = model.training if isinstance(model, nn.Module) else None
    if isinstance(model, nn.Module):
        model.eval()
    correct = tvd = 0.0
    try:
        for i in range(0, len(samples), batch_size):
            x, _ = make_batch(samples[i : i + batch_size], device=device)  # (B, T)
            probs = torch.softmax(_logits_of(model, x).double(), dim=-1).cpu()  # (B, T, V)
            for row, ref in enumerate(refs[i : i + batch_size]):
                p = probs[row, : len(ref)]  # (L-1, V): the scored positions, padding left out
                if torch.isnan(p).any():
                    raise ValueError(
                        f"the model's logits for samples[{i + row}] give NaN probabilities "
                        "(a row of NaN or all -inf logits)"
                    )
                c, d = score_probabilities(p, ref)
                correct, tvd = correct + c, tvd + d
    finally:
        if was_training is not None:
            model.train(was_training)
    n = sum(len(r) for r in refs)
    return Scores(accuracy=correct / n, tvd=tvd / n, n_positions=n, n_samples=len(samples))


def evaluate(
    model: Callable[..., Any],
    automata: Sequence[Automaton],
    *,
    seed: int = 0,
    sizes: SampleSizes = CPU_SIZES,
    batch_size: int = 64,
    device: torch.device | str | None = None,
) -> Scores:
    """Score ``model`` on one sample per automaton, drawn by :func:`draw_samples` (``seed``, ``sizes``).

    ``evaluate(model, test_automata())`` is the RegBench-mini test score. Bring your own automata
    with :func:`~mosaics_edu.course.regbench.jsonio.load_automata`.
    """
    return evaluate_samples(model, draw_samples(automata, seed, sizes), batch_size=batch_size, device=device)
