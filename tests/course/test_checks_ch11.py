"""The chapter-11 (capstone) checks: each fails on an empty deliverable, passes the reference and
correct answers written differently, and fails on wrong ones. The checks that train the learner's
models share one training of the reference pair (``capstone.experiment`` caches it per process)."""

from __future__ import annotations

import functools
import math
import re
from pathlib import Path

import jupytext
import numpy as np
import pytest
import torch
from check_contract import table_tests

from mosaics_edu.course import capstone, inspection
from mosaics_edu.course.checks import CheckFailed, ch11
from mosaics_edu.models import GPT, GPTConfig, MemoryMosaicLM, MosaicConfig, count_parameters
from mosaics_edu.models.v2 import MemoryMosaicV2LM, MosaicV2Config

SHAPE = dict(vocab_size=16, block_size=128, n_layer=2, n_head=2, n_embd=32, dropout=0.0)

# one worker runs the whole module, so the reference pair is trained once, not once per worker
pytestmark = pytest.mark.xdist_group("capstone_pair")


def _chapter_solutions(*names: str) -> tuple:
    """The chapter's own answers to these exercises, run from its source: the tests check the code
    a learner reads in the solutions notebook, not a copy of it."""
    nb = jupytext.read(Path(__file__).resolve().parents[2] / "chapters" / "sources" / "11_capstone.py")
    ns = {"torch": torch, "capstone": capstone, "MemoryMosaicLM": MemoryMosaicLM,
          "MosaicConfig": MosaicConfig, "GPT": GPT, "GPTConfig": GPTConfig}
    cells = [c.source for c in nb.cells if c.cell_type == "code" and "exercise" in c.metadata.get("tags", [])]
    for name in names:
        (source,) = [c for c in cells if f"def {name}(" in c]
        exec(compile(source, f"chapters/sources/11_capstone.py ({name})", "exec"), ns)
    return tuple(ns[name] for name in names)


build_models, train_model = _chapter_solutions("build_models", "train_model")


def stub(*args):
    raise NotImplementedError()


# ---- 11.1: a fair pair (cheap: nothing is trained) ----------------------------------------------


class _PeekingGPT(GPT):
    """A GPT that reads one token ahead: what the causality test must catch."""

    def forward(self, idx, targets=None):
        return super().forward(torch.roll(idx, -1, dims=1), targets)


def _trimmed_positions():
    """Made even by cutting the GPT's position table to 64 rows, its config still saying 128."""
    gpt = GPT(GPTConfig(**SHAPE))
    gpt.wpe = torch.nn.Embedding(64, SHAPE["n_embd"])
    return MemoryMosaicLM(MosaicConfig(**SHAPE)), gpt


def _preset_pair():
    """Built from the gpu-small preset, whose dropout (0.05) comes along unnoticed."""
    shape = {k: v for k, v in SHAPE.items() if k != "dropout"}
    return (MemoryMosaicLM(MosaicConfig.preset("gpu-small", **shape, pmem_size=144)),
            GPT(GPTConfig.preset("gpu-small", **shape)))


WRONG_PAIR = [
    ("trimmed-positions", _trimmed_positions, "cannot read a full context", "full-context"),
    ("context-127", lambda: (MemoryMosaicLM(MosaicConfig(**{**SHAPE, "block_size": 127}, pmem_size=144)),
                             GPT(GPTConfig(**{**SHAPE, "block_size": 127}))), "block_size is 127",
     "full-context"),
    ("preset-dropout", _preset_pair, "dropout=0.05", "training-mode"),
    ("mosaic-dropout", lambda: (MemoryMosaicLM(MosaicConfig(**{**SHAPE, "dropout": 0.1}, pmem_size=144,
                                                            attn_dropout=True)), GPT(GPTConfig(**SHAPE))),
     "the mosaic gives different outputs", "training-mode"),
    ("vocab-256", lambda: (MemoryMosaicLM(MosaicConfig(**{**SHAPE, "vocab_size": 256})),
                           GPT(GPTConfig(**{**SHAPE, "vocab_size": 256}))), "vocab_size is 256"),
    ("short-context", lambda: (MemoryMosaicLM(MosaicConfig(**{**SHAPE, "block_size": 64}, pmem_size=144)),
                               GPT(GPTConfig(**{**SHAPE, "block_size": 64}))), "block_size is 64"),
    ("too-big", lambda: (MemoryMosaicLM(MosaicConfig(**{**SHAPE, "n_embd": 64})),
                         GPT(GPTConfig(**{**SHAPE, "n_embd": 64}))), "at most 40,000"),
    ("unfair", lambda: (MemoryMosaicLM(MosaicConfig(**SHAPE)), GPT(GPTConfig(**SHAPE))), "not a fair fight"),
    ("swapped", lambda: build_models()[::-1], "must be a MemoryMosaicLM"),
    ("v2", lambda: (MemoryMosaicV2LM(MosaicV2Config(**SHAPE)), GPT(GPTConfig(**SHAPE))), "MemoryMosaicLM"),
    ("one-model", lambda: build_models()[0], "return a pair"),
    ("three", lambda: (*build_models(), None), "return a pair"),
    ("peeking", lambda: (build_models()[0], _PeekingGPT(GPTConfig(**SHAPE))), "read only the past"),
]
RIGHT_PAIR = [
    ("reference", build_models),
    ("list", lambda: list(build_models())),
    ("one-block", lambda: (MemoryMosaicLM(MosaicConfig(**{**SHAPE, "n_layer": 1, "n_embd": 48},
                                                       pmem_size=232)),
                           GPT(GPTConfig(**{**SHAPE, "n_layer": 1, "n_embd": 48})))),
    ("four-heads", lambda: (MemoryMosaicLM(MosaicConfig(**{**SHAPE, "n_head": 4}, pmem_size=144)),
                            GPT(GPTConfig(**{**SHAPE, "n_head": 4})))),
    ("longer-context", lambda: (MemoryMosaicLM(MosaicConfig(**{**SHAPE, "block_size": 256}, pmem_size=176)),
                                GPT(GPTConfig(**{**SHAPE, "block_size": 256})))),
]
test_pair_wrong_answer_fails, test_pair_correct_variant_passes = table_tests(
    ch11.check_build_models, WRONG_PAIR, RIGHT_PAIR)


def test_regime_pairs_pass_every_probe_but_their_own():
    """A pair labelled with a regime passes the sizes and the causality test: only its own probe
    (a full context, or training mode) finds what is wrong with it."""
    assert {w[3] for w in WRONG_PAIR if len(w) > 3} <= set(ch11.BUILD_REGIMES)
    for name, make, _, regime in (w for w in WRONG_PAIR if len(w) > 3):
        mosaic, gpt = make()
        counts = [count_parameters(mosaic), count_parameters(gpt)]
        assert max(counts) <= ch11.MAX_PARAMS and abs(counts[0] - counts[1]) <= 0.1 * min(counts), name
        assert ch11._causal(mosaic) and ch11._causal(gpt), name
        in_full = [ch11._full_context(m) is None and m.config.block_size >= capstone.LENGTH
                   for m in (mosaic, gpt)]
        in_training = [ch11._deterministic_in_training(m) for m in (mosaic, gpt)]
        assert all(in_training) == (regime != "training-mode"), name
        assert all(in_full) == (regime != "full-context"), name


def test_the_training_mode_probe_leaves_the_random_state_alone():
    mosaic, gpt = _preset_pair()
    torch.manual_seed(3)
    ch11._deterministic_in_training(mosaic)
    after = torch.rand(3)
    torch.manual_seed(3)
    assert torch.equal(after, torch.rand(3))


@pytest.mark.parametrize("check", [
    ch11.check_build_models,
    functools.partial(ch11.check_train_model, build_models=build_models),
    functools.partial(ch11.check_bigram_head, build_models=build_models, train_model=train_model),
    functools.partial(ch11.check_top_pairs, build_models=build_models, train_model=train_model),
    functools.partial(ch11.check_conclusion, build_models=build_models, train_model=train_model),
], ids=["build_models", "train_model", "bigram_head", "top_pairs", "conclusion"])
def test_every_check_fails_on_an_empty_deliverable(check):
    with pytest.raises(CheckFailed, match="not implemented yet"):
        check(stub)


def test_a_later_check_says_when_an_earlier_deliverable_is_missing():
    with pytest.raises(CheckFailed, match="your `build_models` .* not implemented yet"):
        ch11.check_train_model(train_model, stub)


# ---- 11.2 - 11.5: on the trained reference pair (one training, shared) ------------------------------


@pytest.fixture(scope="module")
def run():
    torch.set_num_threads(1)
    return capstone.experiment(build_models, train_model)


@pytest.mark.slow
def test_the_reference_pair_passes_every_check(run, capstone_answers, capsys):
    ch11.check_train_model(train_model, build_models)
    ch11.check_bigram_head(capstone_answers["bigram_head"], build_models, train_model)
    ch11.check_top_pairs(capstone_answers["top_pairs"], build_models, train_model)
    ch11.check_conclusion(capstone_answers["conclusion"], build_models, train_model)
    assert capsys.readouterr().out.count("passed") == 4
    assert run["late"]["mosaic"]["accuracy"] > 0.9


def _no_training(model, steps, seed):  # returns nothing
    return []


def _frozen(model, steps, seed):  # computes losses but never steps
    with torch.no_grad():
        return [float(model(*capstone.training_batch(s, 8, seed))[1]) for s in range(steps)]


def _twenty_steps(model, steps, seed):  # trains too little, pads the list
    losses = train_model(model, 20, seed)
    return losses + [losses[-1] * 0.99] * (steps - 20)


@pytest.mark.slow
@pytest.mark.parametrize("wrong, fragment", [(_no_training, "returned 0 losses"),
                                             (_frozen, "did not fall"),
                                             (_twenty_steps, "did not learn the languages")],
                         ids=["no-training", "frozen", "twenty-steps"])
def test_train_model_wrong_answers_fail(wrong, fragment):
    with pytest.raises(CheckFailed, match=fragment):
        ch11.check_train_model(wrong, build_models)


def _effects(model):
    return capstone.head_ablation(model, capstone.test_set()[1])


@pytest.fixture(scope="module")
def capstone_answers(run):
    """Correct answers to 11.3 - 11.5, written here."""

    def bigram_head(model):
        e = _effects(model)
        return tuple(int(i) for i in np.unravel_index(e.argmax(), e.shape))

    def top_pairs(model, tokens, t, block, head):
        w = inspection.trace(model, tokens[None]).maps[block][0, head, t]
        return torch.topk(w, 3).indices.tolist()

    def conclusion():
        r = capstone.experiment(build_models, train_model)
        b, h = bigram_head(r["models"]["mosaic"])
        words = " ".join(["word"] * 120)
        acc = {k: f"{r['late'][k]['accuracy']:.2f}" for k in ("mosaic", "gpt")}
        return f"{words}. Mosaic {acc['mosaic']}, GPT {acc['gpt']}; block {b}, head {h}. Limitation: a seed."

    return {"bigram_head": bigram_head, "top_pairs": top_pairs, "conclusion": conclusion}


@pytest.mark.slow
def test_bigram_head_answers(run):
    mosaic = run["models"]["mosaic"]
    e = _effects(mosaic)
    worst = tuple(int(i) for i in np.unravel_index(e.argmin(), e.shape))
    right = tuple(int(i) for i in np.unravel_index(e.argmax(), e.shape))
    for wrong, fragment in ((lambda m: worst, "another head matters more"),
                            (lambda m: (5, 5), "return (block, head)"),
                            (lambda m: "block 0", "return (block, head)"),
                            (lambda m: right[::-1] if right[::-1] != right and e[right[::-1]] < 0.95 * e.max()
                             else worst, "another head matters more")):
        with pytest.raises(CheckFailed, match=re.escape(fragment)):
            ch11.check_bigram_head(wrong, build_models, train_model)
    for correct in (lambda m: right, lambda m: list(right), lambda m: tuple(np.int64(i) for i in right)):
        ch11.check_bigram_head(correct, build_models, train_model)


@pytest.mark.slow
def test_top_pairs_answers(run, capstone_answers):
    ref = ch11.reference_top_pairs
    wrong = [
        (lambda m, x, t, b, h: ref(m, x, t, b, h)[::-1], "lightest to the heaviest"),
        (lambda m, x, t, b, h: [s + 1 for s in ref(m, x, t, b, h)], "s + 1"),
        (lambda m, x, t, b, h: ref(m, x, t, b, h) + [0], "top_pairs"),
        (lambda m, x, t, b, h: ref(m, x, t, b, 1 - h), "top_pairs"),
        (lambda m, x, t, b, h: [t - 1, t - 2, t - 3], "top_pairs"),
    ]
    for fn, fragment in wrong:
        with pytest.raises(CheckFailed, match=re.escape(fragment)):
            ch11.check_top_pairs(fn, build_models, train_model)

    def numpy_argsort(m, x, t, b, h):
        w = inspection.trace(m, x[None]).maps[b][0, h, t].numpy()
        return [int(s) for s in np.argsort(-w, kind="stable")[:3]]

    for correct in (ref, capstone_answers["top_pairs"], numpy_argsort):
        ch11.check_top_pairs(correct, build_models, train_model)


@pytest.mark.slow
def test_conclusion_answers(run, capstone_answers):
    good = capstone_answers["conclusion"]()
    acc = f"{run['late']['mosaic']['accuracy']:.2f}"
    wrong = [
        (lambda: "Too short. Limitation: none.", "words"),
        (lambda: good.replace(acc, "0.50"), "quote the mosaic's late accuracy"),
        (lambda: good.replace("Limitation", "Caveat"), "limitation"),
        (lambda: good.replace(", head ", ", unit "), "name the head"),
        (lambda: 42, "as a string"),
    ]
    for fn, fragment in wrong:
        with pytest.raises(CheckFailed, match=re.escape(fragment)):
            ch11.check_conclusion(fn, build_models, train_model)
    for correct in (capstone_answers["conclusion"], lambda: good.replace("Limitation", "A limitation"),
                    lambda: good + " More words."):
        ch11.check_conclusion(correct, build_models, train_model)


# ---- the package module --------------------------------------------------------------------------


def test_languages_and_baselines():
    langs = capstone.random_languages(50, 3)
    assert langs.shape == (50, 16, 16) and np.allclose(langs.sum(-1), 1)
    assert (np.count_nonzero(langs, axis=-1) == capstone.SUCCESSORS).all()
    seqs = capstone.sample_sequences(langs, 128, 4)
    x = seqs.numpy()
    assert all(langs[i, x[i, t], x[i, t + 1]] > 0 for i in range(50) for t in range(128))  # allowed moves
    assert torch.equal(seqs, capstone.sample_sequences(langs, 128, 4))  # seeded
    s = {o: capstone.scores(capstone.ngram_probs(seqs, o), langs, seqs) for o in (1, 2)}
    assert capstone.late(s[2]["accuracy"]) > 0.9 > capstone.late(s[1]["accuracy"])
    assert capstone.late(s[2]["tvd"]) < capstone.late(s[1]["tvd"])
    perfect = torch.as_tensor(langs)[torch.arange(50)[:, None], seqs[:, :-1]]
    assert math.isclose(capstone.late(capstone.scores(perfect, langs, seqs)["tvd"]), 0.0, abs_tol=1e-12)


def test_bad_inputs_name_the_argument():
    with pytest.raises(ValueError, match="successors must be an int"):
        capstone.random_languages(3, 0, successors=0)
    with pytest.raises(ValueError, match="seed must be an int >= 0"):
        capstone.random_languages(3, -1)
    with pytest.raises(ValueError, match="order must be 1"):
        capstone.ngram_probs(torch.zeros(2, 5, dtype=torch.long), 3)
    with pytest.raises(TypeError, match="must be a MemoryMosaicLM"):
        capstone.head_ablation(GPT(GPTConfig(**SHAPE)), capstone.test_set(4)[1])


def test_head_ablation_is_kept_for_the_same_weights_and_recomputed_after_a_change():
    """Exercises 11.3-11.5 ablate the same trained mosaic many times: the result is kept per
    (weights, sequences) digest; a model changed in place, or other sequences, is measured again."""
    torch.manual_seed(0)
    model = ch11._untrained_mosaic()
    seqs = capstone.test_set(8)[1]
    first = capstone.head_ablation(model, seqs)
    first[0, 0] = 123.0  # the caller's copy: the kept result is not touched
    again = capstone.head_ablation(model, seqs)
    assert again[0, 0] != 123.0
    np.testing.assert_array_equal(again, capstone._head_ablation(model, seqs))
    with torch.no_grad():
        next(model.parameters()).mul_(3.0)  # changed in place: a new digest, a new measurement
    changed = capstone.head_ablation(model, seqs)
    np.testing.assert_array_equal(changed, capstone._head_ablation(model, seqs))
    assert not np.array_equal(changed, again)
    other = capstone.head_ablation(model, capstone.test_set(4)[1])
    np.testing.assert_array_equal(other, capstone._head_ablation(model, capstone.test_set(4)[1]))
