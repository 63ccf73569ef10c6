"""Checks for chapter 11 (the capstone): each deliverable checked on what it produces.

- ``build_models()`` — a mosaic (:class:`~mosaics_edu.models.MemoryMosaicLM`, which chapter 08's
  tools read) and a GPT for the capstone's languages: vocabulary 16, a context of at least 128
  tokens that a full 128-token batch really runs through, at most ``MAX_PARAMS`` parameters each
  and within 10 % of each other, both strictly causal, and without dropout (the same tokens give
  the same outputs in training mode);
- ``train_model(model, steps, seed)`` — trains in place and returns one loss per step; the check
  trains the learner's pair (:func:`mosaics_edu.course.capstone.experiment`) and requires falling losses
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

from ...models.lm import GPT, MemoryMosaicLM, count_parameters
from .. import capstone
from ..inspection import trace
from . import call_learner, fail, fmt, notebook_check, passed

CHAPTER = "11_capstone"
H1, H2, H3 = "(see hint 1 above)", "(see hint 2 above)", "(see hint 3 above)"
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
    "BUILD_REGIMES",
]


def _fail(exercise: str, message: str, kind: str = "generic") -> None:
    fail(CHAPTER, exercise, message, kind)


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
# 11.1: a fair pair
# --------------------------------------------------------------------------------------------

#: What the pair is probed in besides its sizes: a wrong pair may go wrong in one of them alone.
BUILD_REGIMES = {
    "full-context": f"a batch of full {capstone.LENGTH}-token sequences, the length the capstone trains and "
                    f"tests on, goes through each model {H2}",
    "training-mode": f"each model runs twice on the same tokens in training mode, where dropout acts: "
                     f"without dropout the two runs agree {H1}",
}


def _full_context(model: torch.nn.Module) -> Exception | None:
    """The error a forward pass over a (2, LENGTH) batch raises, or None."""
    x = torch.randint(0, capstone.VOCAB, (2, capstone.LENGTH), generator=torch.Generator().manual_seed(11))
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(x)
    except Exception as err:  # noqa: BLE001 - the learner's model: its error is the diagnosis
        return err
    finally:
        model.train(was)
    return None


def _deterministic_in_training(model: torch.nn.Module) -> bool:
    """Two training-mode forward passes over the same tokens agree (no dropout); the global random
    state is left as it was."""
    x = torch.randint(0, capstone.VOCAB, (2, 40), generator=torch.Generator().manual_seed(12))
    was = model.training
    model.train()
    with torch.random.fork_rng(), torch.no_grad():
        torch.manual_seed(12)
        a = model(x)[0]
        b = model(x)[0]
    model.train(was)
    return bool(torch.equal(a, b))


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
    """Exercise 11.1: ``build_models() -> (mosaic, gpt)``."""
    ex = "build_models"
    pair = call_learner(CHAPTER, ex, build_models)
    if not isinstance(pair, tuple | list) or len(pair) != 2:
        _fail(ex, f"return a pair (mosaic, gpt); got {type(pair).__name__} {H1}", "type")
    mosaic, gpt = pair
    if not isinstance(mosaic, MemoryMosaicLM):
        _fail(ex, f"the first model must be a MemoryMosaicLM (chapter 08's tools read it), got "
                  f"{type(mosaic).__name__} {H1}", "type")
    if not isinstance(gpt, GPT):
        _fail(ex, f"the second model must be the package's GPT, got {type(gpt).__name__} {H1}", "type")
    for name, m in (("mosaic", mosaic), ("gpt", gpt)):
        cfg = m.config
        if cfg.vocab_size != capstone.VOCAB:
            _fail(ex, f"the {name}'s vocab_size is {cfg.vocab_size}; the languages have {capstone.VOCAB} "
                      f"symbols {H1}", "mistake")
        if cfg.block_size < capstone.LENGTH:
            _fail(ex, f"the {name}'s block_size is {cfg.block_size}; it must read {capstone.LENGTH} tokens "
                      f"(capstone.LENGTH: the inputs are the first {capstone.LENGTH} of each sequence's "
                      f"{capstone.LENGTH + 1} symbols) {H1}", "mistake")
    n = {"mosaic": count_parameters(mosaic), "gpt": count_parameters(gpt)}
    if max(n.values()) > MAX_PARAMS:
        _fail(ex, f"parameters {n}: each model may have at most {MAX_PARAMS:,} (the budget keeps training "
                  f"within a few CPU-minutes) {H2}", "mistake")
    if abs(n["mosaic"] - n["gpt"]) > 0.1 * min(n.values()):
        _fail(ex, f"parameters {n}: not a fair fight; make the two within 10 % of each other (the GPT has a "
                  f"learned position table the mosaic does not: pmem_size can make up for it) {H2}",
              "mistake")
    for name, m in (("mosaic", mosaic), ("gpt", gpt)):
        err = _full_context(m)
        if err is not None:
            why = (f" Its config says block_size={m.config.block_size}, so a table inside it was cut shorter "
                   "than that: the GPT's position table, gpt.wpe, needs one row per position; make the sizes "
                   "equal through the mosaic's pmem_size instead" if isinstance(err, IndexError) else "")
            _fail(ex, f"the {name} cannot read a full context: on a batch of {capstone.LENGTH}-token "
                      f"sequences (on the CPU) it raised {type(err).__name__}: {err}.{why} {H2}", "regime")
    for name, m in (("mosaic", mosaic), ("gpt", gpt)):
        if not _causal(m):
            _fail(ex, f"the {name}'s predictions at position t change when later tokens change: it must "
                      "read only the past (the package's own models do)", "mistake")
    for name, m in (("mosaic", mosaic), ("gpt", gpt)):
        if not _deterministic_in_training(m):
            p = m.config.dropout
            preset = ", which the gpu-small and paper presets bring along" if p == 0.05 else ""
            _fail(ex, f"the {name} gives different outputs for the same tokens in training mode: dropout is "
                      f"on (dropout={p!r}{preset}). Both models train without dropout: set dropout=0.0 "
                      f"{H1}", "regime")
    passed(CHAPTER, ex)


# --------------------------------------------------------------------------------------------
# 11.2: training, and whether the mosaic learned in context
# --------------------------------------------------------------------------------------------


def _experiment(exercise: str, build_models: Callable, train_model: Callable) -> dict:
    _needs(exercise, "build_models", build_models)  # a clear message if it is not done
    try:
        return capstone.experiment(build_models, train_model)
    except NotImplementedError:
        _fail(exercise, "this check uses your `train_model` (exercise 11.2), which is not implemented yet: "
                        "do it first, run its cell, then run this check again.")
    except Exception as err:  # noqa: BLE001
        _fail(exercise, f"training your models with your `train_model` raised {type(err).__name__}: {err}")
    return {}


@notebook_check
def check_train_model(train_model: Callable, build_models: Callable) -> None:
    """Exercise 11.2: ``train_model(model, steps, seed) -> losses``; trains the learner's pair."""
    ex = "train_model"
    call_learner(CHAPTER, ex, train_model, _untrained_mosaic(), 1, 0)  # a stub fails here, first
    result = _experiment(ex, build_models, train_model)
    steps = capstone.TRAIN_STEPS
    for name, losses in result["losses"].items():
        losses = np.asarray([float(v) for v in (losses or [])])
        if losses.shape != (steps,):
            _fail(ex, f"train_model returned {losses.size} losses for the {name}; return one per step "
                      f"({steps}) {H2}", "shape")
        if not np.isfinite(losses).all():
            _fail(ex, f"the {name}'s loss became {fmt(losses[~np.isfinite(losses)][0])}: lower the learning "
                      f"rate, warm it up, or clip the gradients {H2}", "mistake")
        if not losses[-20:].mean() < losses[:20].mean():
            _fail(ex, f"the {name}'s loss did not fall (first 20 steps {losses[:20].mean():.3f}, last 20 "
                      f"{losses[-20:].mean():.3f}): is the optimizer stepping, on the batches of "
                      f"capstone.training_batch(step, ...)? {H1}", "mistake")
    late = result["late"]
    mosaic, uni, bi = late["mosaic"], late["unigram"], late["bigram"]
    halfway = (uni["tvd"] + bi["tvd"]) / 2
    print(f"late positions (t >= {capstone.LATE}) of {len(capstone.test_set()[1])} held-out languages: "
          + "; ".join(f"{k} accuracy {v['accuracy']:.3f}, TVD {v['tvd']:.3f}" for k, v in late.items()))
    if mosaic["accuracy"] < 0.9 or mosaic["tvd"] > halfway:
        _fail(ex, f"your mosaic did not learn the languages from their context: late accuracy "
                  f"{mosaic['accuracy']:.3f} (needs >= 0.9), TVD {mosaic['tvd']:.3f} (needs <= "
                  f"{halfway:.3f}, halfway between the in-context unigram's and bigram's). Train longer, or "
                  f"check the learning rate and the warm-up {H2}.")
    passed(CHAPTER, ex)


# --------------------------------------------------------------------------------------------
# 11.3: the head that carries the in-context bigram
# --------------------------------------------------------------------------------------------


def reference_bigram_head(model: MemoryMosaicLM) -> tuple[int, int]:
    """(block, head) whose zeroing raises the late loss on the held-out languages most."""
    effects = capstone.head_ablation(model, capstone.test_set()[1])
    return tuple(int(i) for i in np.unravel_index(effects.argmax(), effects.shape))


@notebook_check
def check_bigram_head(bigram_head: Callable, build_models: Callable, train_model: Callable) -> None:
    """Exercise 11.3: ``bigram_head(model) -> (block, head)`` on the learner's trained mosaic."""
    ex = "bigram_head"
    call_learner(CHAPTER, ex, bigram_head, _untrained_mosaic())  # a stub fails here, before any training
    mosaic = _experiment(ex, build_models, train_model)["models"]["mosaic"]
    got = call_learner(CHAPTER, ex, bigram_head, mosaic)
    effects = capstone.head_ablation(mosaic, capstone.test_set()[1])
    try:
        block, head = (int(v) for v in got)
        effects[block, head]
    except (TypeError, ValueError, IndexError):
        _fail(ex, f"return (block, head), two ints inside {effects.shape}; got {fmt(got)} {H2}", "type")
    table = np.array2string(effects.round(3) + 0.0, precision=3)  # + 0.0: no "-0."
    if effects[block, head] < 0.95 * effects.max():
        _fail(ex, f"zeroing block {block}, head {head} raises the late loss by {effects[block, head]:.3f}, "
                  f"but another head matters more: average the loss over the late positions "
                  f"(t >= capstone.LATE) and keep the largest rise {H2}; late-loss increase per "
                  f"(block, head):\n{table}")
    print(f"late-loss increase when each head is zeroed (rows: blocks):\n{table}")
    passed(CHAPTER, ex)


def _untrained_mosaic() -> MemoryMosaicLM:
    from ...models.lm import MosaicConfig

    torch.manual_seed(0)
    return MemoryMosaicLM(MosaicConfig(vocab_size=capstone.VOCAB, block_size=capstone.LENGTH, n_layer=1,
                                       n_head=2, n_embd=16))


# --------------------------------------------------------------------------------------------
# 11.4: one prediction explained
# --------------------------------------------------------------------------------------------


def reference_top_pairs(model: MemoryMosaicLM, tokens: torch.Tensor, t: int, block: int,
                        head: int) -> list[int]:
    """The three stored positions s < t that (block, head) weighs most at query t, heaviest first."""
    weights = trace(model, tokens[None]).maps[block][0, head, t]  # (T,)
    return weights.argsort(descending=True)[:3].tolist()


TOP_PAIRS_MISTAKES: dict[str, Callable] = {
    f"sorted the positions from the lightest to the heaviest; return the heaviest first {H2}":
        lambda m, x, t, b, h: reference_top_pairs(m, x, t, b, h)[::-1],
    f"returned the positions of the tokens the values peeked at (s + 1); return the stored positions s "
    f"{H2}":
        lambda m, x, t, b, h: [s + 1 for s in reference_top_pairs(m, x, t, b, h)],
    f"read the map column t (the weight of later queries on pair t); the weights of query t are row t "
    f"{H3}":
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
    """Exercise 11.4: ``top_pairs(model, tokens, t, block, head) -> [s1, s2, s3]``."""
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
                _fail(ex, f"{where}: it looks like you {diagnosis}.", "mistake")
        want = reference_top_pairs(model, tokens, t, b, h)
        _fail(ex, f"{where}: got {fmt(got)}, expected three positions s < {t} with the largest weights, "
                  f"e.g. {want} (weights {np.round(weights[want].numpy(), 4).tolist()}). trace(model, "
                  f"tokens[None]).maps[block][0, head, t] holds query t's weight on every pair s {H3}")
    passed(CHAPTER, ex)


def _as_ints(got: object) -> list[int] | None:
    try:
        return [int(s) for s in got]
    except (TypeError, ValueError):
        return None


# --------------------------------------------------------------------------------------------
# 11.5: the conclusion
# --------------------------------------------------------------------------------------------


@notebook_check
def check_conclusion(conclusion: Callable, build_models: Callable, train_model: Callable) -> None:
    """Exercise 11.5: ``conclusion() -> str``, checked against the run of the learner's own code."""
    ex = "conclusion"
    text = call_learner(CHAPTER, ex, conclusion)
    if not isinstance(text, str):
        _fail(ex, f"return the conclusion as a string, got {type(text).__name__} {H1}", "type")
    words = len(text.split())
    if words < MIN_WORDS:
        _fail(ex, f"the conclusion has {words} words; write at least {MIN_WORDS}: what you built, what it "
                  f"measured, why, and one limitation {H2}", "mistake")
    result = _experiment(ex, build_models, train_model)
    for name in ("mosaic", "gpt"):
        number = f"{result['late'][name]['accuracy']:.2f}"
        if number not in text:
            _fail(ex, f"quote the {name}'s late accuracy as your run measured it, {number} (two decimals): "
                      f"numbers in a conclusion come from the run {H3}", "mistake")
    block, head = reference_bigram_head(result["models"]["mosaic"])
    if not re.search(rf"block {block},? head {head}\b", text):
        _fail(ex, f"name the head your analysis found, as 'block {block}, head {head}' {H2}", "mistake")
    if not re.search(r"[Ll]imitation", text):
        _fail(ex, f"state one limitation of the experiment in a sentence with the word 'limitation' {H2}",
              "mistake")
    passed(CHAPTER, ex)
