"""Checks for chapter 10 (the capstone): each deliverable checked on what it produces.

- ``build_models()`` — a mosaic (:class:`~mosaics_edu.models.MemoryMosaicLM`, which chapter 07's
  tools read) and a GPT for the capstone's languages: vocabulary 16, a context of at least 128
  tokens, at most ``MAX_PARAMS`` parameters each and within 10 % of each other, both strictly
  causal;
- ``train_model(model, steps, seed)`` — trains in place and returns one loss per step; the check
  trains the learner's pair (:func:`mosaics_edu.capstone.experiment`) and requires falling losses
  and a mosaic that learned the languages from their context;
- ``bigram_head(model)`` — the (block, head) whose ablation raises the late loss most;
- ``top_pairs(model, tokens, t, block, head)`` — the three stored positions that head weighs most
  when predicting token t + 1;
- ``conclusion()`` — the written conclusion: long enough, quoting the run's own numbers and head,
  and naming a limitation.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import torch

from .. import capstone
from ..inspection import trace
from ..models import GPT, MemoryMosaicLM, count_parameters
from . import call_learner, fail, fmt, notebook_check, passed

CHAPTER = "10_capstone"
MAX_PARAMS = 40_000
MIN_WORDS = 120

__all__ = [
    "check_bigram_head",
    "check_build_models",
    "check_conclusion",
    "check_top_pairs",
    "check_train_model",
    "reference_bigram_head",
    "reference_top_pairs",
]


def _fail(exercise: str, message: str) -> None:
    fail(CHAPTER, exercise, message)


def _needs(exercise: str, name: str, fn: Callable, *args):
    """Call an earlier deliverable the check depends on; say so if it is not done yet."""
    try:
        return fn(*args)
    except NotImplementedError:
        _fail(exercise, f"this check uses your `{name}` (an earlier deliverable), which is not implemented "
                        "yet: do that exercise first, run its cell, then run this check again.")
    except Exception as err:  # noqa: BLE001 - the learner's crash is the diagnosis
        _fail(exercise, f"this check calls your `{name}`, which raised {type(err).__name__}: {err}")
    return None


# --------------------------------------------------------------------------------------------
# 10.1: a fair pair
# --------------------------------------------------------------------------------------------


def _causal(model: torch.nn.Module) -> bool:
    """Logits at positions <= t do not move when the tokens after t change."""
    g = torch.Generator().manual_seed(10)
    x = torch.randint(0, capstone.VOCAB, (2, 40), generator=g)
    y = x.clone()
    y[:, 21:] = (y[:, 21:] + 1) % capstone.VOCAB
    was = model.training
    model.eval()
    with torch.no_grad():
        a, b = model(x)[0][:, :21], model(y)[0][:, :21]
    model.train(was)
    return bool(torch.allclose(a, b, atol=1e-5))


@notebook_check
def check_build_models(build_models: Callable) -> None:
    """Exercise 10.1: ``build_models() -> (mosaic, gpt)``."""
    ex = "build_models"
    pair = call_learner(CHAPTER, ex, build_models)
    if not isinstance(pair, tuple | list) or len(pair) != 2:
        _fail(ex, f"return a pair (mosaic, gpt); got {type(pair).__name__}")
    mosaic, gpt = pair
    if not isinstance(mosaic, MemoryMosaicLM):
        _fail(ex, f"the first model must be a MemoryMosaicLM (chapter 07's tools read it), got "
                  f"{type(mosaic).__name__}")
    if not isinstance(gpt, GPT):
        _fail(ex, f"the second model must be the package's GPT, got {type(gpt).__name__}")
    for name, m in (("mosaic", mosaic), ("gpt", gpt)):
        cfg = m.config
        if cfg.vocab_size != capstone.VOCAB:
            _fail(ex, f"the {name}'s vocab_size is {cfg.vocab_size}; the languages have {capstone.VOCAB} "
                      "symbols")
        if cfg.block_size < capstone.LENGTH:
            _fail(ex, f"the {name}'s block_size is {cfg.block_size}; it must read {capstone.LENGTH} tokens")
    n = {"mosaic": count_parameters(mosaic), "gpt": count_parameters(gpt)}
    if max(n.values()) > MAX_PARAMS:
        _fail(ex, f"parameters {n}: each model may have at most {MAX_PARAMS:,} (the budget keeps training "
                  "within a few CPU-minutes)")
    if abs(n["mosaic"] - n["gpt"]) > 0.1 * min(n.values()):
        _fail(ex, f"parameters {n}: not a fair fight; make the two within 10 % of each other (the GPT has a "
                  "learned position table the mosaic does not: pmem_size can make up for it)")
    for name, m in (("mosaic", mosaic), ("gpt", gpt)):
        if not _causal(m):
            _fail(ex, f"the {name}'s predictions at position t change when later tokens change: it must "
                      "read only the past")
    passed(CHAPTER, ex)


# --------------------------------------------------------------------------------------------
# 10.2: training, and whether the mosaic learned in context
# --------------------------------------------------------------------------------------------


def _experiment(exercise: str, build_models: Callable, train_model: Callable) -> dict:
    _needs(exercise, "build_models", build_models)  # a clear message if it is not done
    try:
        return capstone.experiment(build_models, train_model)
    except NotImplementedError:
        _fail(exercise, "this check uses your `train_model` (exercise 10.2), which is not implemented yet: "
                        "do it first, run its cell, then run this check again.")
    except Exception as err:  # noqa: BLE001
        _fail(exercise, f"training your models with your `train_model` raised {type(err).__name__}: {err}")
    return {}


@notebook_check
def check_train_model(train_model: Callable, build_models: Callable) -> None:
    """Exercise 10.2: ``train_model(model, steps, seed) -> losses``; trains the learner's pair."""
    ex = "train_model"
    call_learner(CHAPTER, ex, train_model, _untrained_mosaic(), 1, 0)  # a stub fails here, first
    result = _experiment(ex, build_models, train_model)
    steps = capstone.TRAIN_STEPS
    for name, losses in result["losses"].items():
        losses = np.asarray([float(v) for v in (losses or [])])
        if losses.shape != (steps,):
            _fail(ex, f"train_model returned {losses.size} losses for the {name}; return one per step "
                      f"({steps})")
        if not np.isfinite(losses).all():
            _fail(ex, f"the {name}'s loss became {fmt(losses[~np.isfinite(losses)][0])}: lower the learning "
                      "rate or clip the gradients")
        if not losses[-20:].mean() < losses[:20].mean():
            _fail(ex, f"the {name}'s loss did not fall (first 20 steps {losses[:20].mean():.3f}, last 20 "
                      f"{losses[-20:].mean():.3f}): is the optimizer stepping, on the batches of "
                      "capstone.training_batch(step, ...)?")
    late = result["late"]
    mosaic, uni, bi = late["mosaic"], late["unigram"], late["bigram"]
    halfway = (uni["tvd"] + bi["tvd"]) / 2
    print(f"late positions (t >= {capstone.LATE}) of {len(capstone.test_set()[1])} held-out languages: "
          + "; ".join(f"{k} accuracy {v['accuracy']:.3f}, TVD {v['tvd']:.3f}" for k, v in late.items()))
    if mosaic["accuracy"] < 0.9 or mosaic["tvd"] > halfway:
        _fail(ex, f"your mosaic did not learn the languages from their context: late accuracy "
                  f"{mosaic['accuracy']:.3f} (needs >= 0.9), TVD {mosaic['tvd']:.3f} (needs <= "
                  f"{halfway:.3f}, halfway between the in-context unigram's and bigram's). Train longer, or "
                  "check the learning rate and the warm-up.")
    passed(CHAPTER, ex)


# --------------------------------------------------------------------------------------------
# 10.3: the head that carries the in-context bigram
# --------------------------------------------------------------------------------------------


def reference_bigram_head(model: MemoryMosaicLM) -> tuple[int, int]:
    """(block, head) whose zeroing raises the late loss on the held-out languages most."""
    effects = capstone.head_ablation(model, capstone.test_set()[1])
    return tuple(int(i) for i in np.unravel_index(effects.argmax(), effects.shape))


@notebook_check
def check_bigram_head(bigram_head: Callable, build_models: Callable, train_model: Callable) -> None:
    """Exercise 10.3: ``bigram_head(model) -> (block, head)`` on the learner's trained mosaic."""
    ex = "bigram_head"
    call_learner(CHAPTER, ex, bigram_head, _untrained_mosaic())  # a stub fails here, before any training
    mosaic = _experiment(ex, build_models, train_model)["models"]["mosaic"]
    got = call_learner(CHAPTER, ex, bigram_head, mosaic)
    effects = capstone.head_ablation(mosaic, capstone.test_set()[1])
    try:
        block, head = (int(v) for v in got)
        effects[block, head]
    except (TypeError, ValueError, IndexError):
        _fail(ex, f"return (block, head), two ints inside {effects.shape}; got {fmt(got)}")
    table = np.array2string(effects.round(3) + 0.0, precision=3)  # + 0.0: no "-0."
    if effects[block, head] < 0.95 * effects.max():
        _fail(ex, f"zeroing block {block}, head {head} raises the late loss by {effects[block, head]:.3f}, "
                  f"but another head matters more; late-loss increase per (block, head):\n{table}")
    print(f"late-loss increase when each head is zeroed (rows: blocks):\n{table}")
    passed(CHAPTER, ex)


def _untrained_mosaic() -> MemoryMosaicLM:
    from ..models import MosaicConfig

    torch.manual_seed(0)
    return MemoryMosaicLM(MosaicConfig(vocab_size=capstone.VOCAB, block_size=capstone.LENGTH, n_layer=1,
                                       n_head=2, n_embd=16))


# --------------------------------------------------------------------------------------------
# 10.4: one prediction explained
# --------------------------------------------------------------------------------------------


def reference_top_pairs(model: MemoryMosaicLM, tokens: torch.Tensor, t: int, block: int,
                        head: int) -> list[int]:
    """The three stored positions s < t that (block, head) weighs most at query t, heaviest first."""
    weights = trace(model, tokens[None]).maps[block][0, head, t]  # (T,)
    return weights.argsort(descending=True)[:3].tolist()


TOP_PAIRS_MISTAKES: dict[str, Callable] = {
    "sorted the positions from the lightest to the heaviest; return the heaviest first":
        lambda m, x, t, b, h: reference_top_pairs(m, x, t, b, h)[::-1],
    "returned the positions of the tokens the values peeked at (s + 1); return the stored positions s":
        lambda m, x, t, b, h: [s + 1 for s in reference_top_pairs(m, x, t, b, h)],
    "read the map column t (the weight of later queries on pair t); the weights of query t are row t":
        lambda m, x, t, b, h: trace(m, x[None]).maps[b][0, h, :, t].argsort(descending=True)[:3].tolist(),
}  # fmt: skip


def _right_pairs(got: object, weights: torch.Tensor, t: int) -> bool:
    """Three distinct positions s < t whose weights are the three largest, heaviest first (ties in
    either order: two pairs with the same key weigh the same)."""
    try:
        pos = [int(s) for s in got]
    except (TypeError, ValueError):
        return False
    if len(pos) != 3 or len(set(pos)) != 3 or not all(0 <= s < t for s in pos):
        return False
    w = weights[pos].double()
    best = weights.double().sort(descending=True).values[:3]
    return bool(torch.allclose(w, best, rtol=1e-5, atol=1e-7))


@notebook_check
def check_top_pairs(top_pairs: Callable, build_models: Callable, train_model: Callable) -> None:
    """Exercise 10.4: ``top_pairs(model, tokens, t, block, head) -> [s1, s2, s3]``."""
    ex = "top_pairs"
    probe = _untrained_mosaic()
    probe_tokens = capstone.test_set(4)[1][0, :-1]
    call_learner(CHAPTER, ex, top_pairs, probe, probe_tokens, 50, 0, 1)  # a stub fails before training
    mosaic = _experiment(ex, build_models, train_model)["models"]["mosaic"]
    block, head = reference_bigram_head(mosaic)
    seqs = capstone.test_set()[1]
    cases = [(mosaic, seqs[i, :-1], t, block, head) for i, t in ((0, 70), (1, 100), (2, 127))]
    cases.append((probe, probe_tokens, 50, 0, 1))
    for k, (model, tokens, t, b, h) in enumerate(cases):
        got = call_learner(CHAPTER, ex, top_pairs, model, tokens.clone(), t, b, h)
        weights = trace(model, tokens[None]).maps[b][0, h, t]  # (T,)
        if _right_pairs(got, weights, t):
            continue
        where = f"wrong on test case {k} (t={t}, block {b}, head {h})"
        for diagnosis, wrong in TOP_PAIRS_MISTAKES.items():
            if list(map(int, wrong(model, tokens, t, b, h))) == _as_ints(got):
                _fail(ex, f"{where}: it looks like you {diagnosis}.")
        want = reference_top_pairs(model, tokens, t, b, h)
        _fail(ex, f"{where}: got {fmt(got)}, expected three positions s < {t} with the largest weights, "
                  f"e.g. {want} (weights {np.round(weights[want].numpy(), 4).tolist()}). trace(model, "
                  "tokens[None]).maps[block][0, head, t] holds query t's weight on every pair s")
    passed(CHAPTER, ex)


def _as_ints(got: object) -> list[int] | None:
    try:
        return [int(s) for s in got]
    except (TypeError, ValueError):
        return None


# --------------------------------------------------------------------------------------------
# 10.5: the conclusion
# --------------------------------------------------------------------------------------------


@notebook_check
def check_conclusion(conclusion: Callable, build_models: Callable, train_model: Callable) -> None:
    """Exercise 10.5: ``conclusion() -> str``, checked against the run of the learner's own code."""
    ex = "conclusion"
    text = call_learner(CHAPTER, ex, conclusion)
    if not isinstance(text, str):
        _fail(ex, f"return the conclusion as a string, got {type(text).__name__}")
    words = len(text.split())
    if words < MIN_WORDS:
        _fail(ex, f"the conclusion has {words} words; write at least {MIN_WORDS}: what you built, what it "
                  "measured, why, and one limitation")
    result = _experiment(ex, build_models, train_model)
    for name in ("mosaic", "gpt"):
        number = f"{result['late'][name]['accuracy']:.2f}"
        if number not in text:
            _fail(ex, f"quote the {name}'s late accuracy as your run measured it, {number} (two decimals): "
                      "numbers in a conclusion come from the run")
    block, head = reference_bigram_head(result["models"]["mosaic"])
    if not re.search(rf"block {block},? head {head}\b", text):
        _fail(ex, f"name the head your analysis found, as 'block {block}, head {head}'")
    if not re.search(r"[Ll]imitation", text):
        _fail(ex, "state one limitation of the experiment in a sentence with the word 'limitation'")
    passed(CHAPTER, ex)
