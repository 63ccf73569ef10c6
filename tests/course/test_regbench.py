"""mosaics_edu.course.regbench: automata, minimisation, splits, metrics, baselines, JSON (RegBench-mini)."""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
from collections import Counter

import numpy as np
import pytest
import torch

from mosaics_edu.course import regbench as rb
from mosaics_edu.course.regbench.automata import MAX_STATES, MIN_STATES
from mosaics_edu.models import GPT, GPTConfig, MemoryMosaicLM, MosaicConfig, count_parameters

A, B, C = 1, 2, 3  # the ids of the symbols a, b, c


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def ids(text: str) -> list[int]:
    return rb.encode(text)


def accepted_strings(table, accepting, alphabet, max_len):
    """Brute force: every string up to max_len (symbol tuples) the table accepts."""
    out = set()
    for length in range(max_len + 1):
        for string in itertools.product(alphabet, repeat=length):
            state = 0
            for sym in string:
                state = table[state].get(sym)
                if state is None:
                    break
            if state is not None and state in accepting:
                out.add(string)
    return out


def relabel(table, perm):
    """The same DFA with state s renamed perm[s] (perm[0] must be 0: the start stays 0)."""
    new = [None] * len(table)
    for s, row in enumerate(table):
        new[perm[s]] = {a: perm[t] for a, t in row.items()}
    return new


class Oracle(torch.nn.Module):
    """Predicts exactly the reference distribution of one automaton (optionally mixed with uniform)."""

    def __init__(self, automaton: rb.Automaton, mix: float = 0.0) -> None:
        super().__init__()
        self.automaton, self.mix = automaton, mix

    def forward(self, idx):
        probs = torch.zeros(*idx.shape, rb.VOCAB_SIZE, dtype=torch.float64)
        for b, row in enumerate(idx.tolist()):
            state = 0
            for t, tok in enumerate(row):
                if tok == rb.PAD:
                    break
                state = 0 if tok == rb.SEP else self.automaton.step(state, tok)
                syms = list(self.automaton.out_symbols(state))
                probs[b, t, syms] = 1.0 / len(syms)
        probs = (1 - self.mix) * probs + self.mix / rb.VOCAB_SIZE
        return probs.log()


# --------------------------------------------------------------------------------------------
# vocabulary
# --------------------------------------------------------------------------------------------


def test_vocabulary_round_trip_and_ids():
    assert rb.VOCAB_SIZE == 20 and rb.PAD == 0 and rb.SEP == 19
    assert ids("ab|r") == [1, 2, 19, 18]
    assert rb.decode(ids("a b | c")) == "ab|c"
    with pytest.raises(ValueError, match="not in the vocabulary"):
        rb.encode("az")
    with pytest.raises(ValueError, match="outside the vocabulary"):
        rb.decode([20])


# --------------------------------------------------------------------------------------------
# trimming, minimisation, canonical form
# --------------------------------------------------------------------------------------------

# 0 -a-> 1, 0 -b-> 2, 1 -a-> 3, 2 -a-> 4, 3 -b-> 0, 4 -b-> 0   (1≡2 and 3≡4)
# 5 is unreachable; 6 is dead (non-accepting, nothing accepted from it), reached by 0 -c-> 6
HAND_TABLE = [{1: 1, 2: 2, 3: 6}, {1: 3}, {1: 4}, {2: 0}, {2: 0}, {1: 0}, {}]
HAND_ACCEPTING = {0, 1, 2, 3, 4, 5}


def test_minimise_merges_equivalent_states_and_drops_unreachable_and_dead_ones():
    table, acc = rb.minimise(HAND_TABLE, HAND_ACCEPTING)
    assert len(table) == 3  # {0}, {1, 2}, {3, 4}
    assert table == [{1: 1, 2: 1}, {1: 2}, {2: 0}]  # breadth-first numbering
    assert acc == {0, 1, 2}
    before = accepted_strings(HAND_TABLE, HAND_ACCEPTING, [1, 2, 3], 7)
    assert accepted_strings(table, acc, [1, 2, 3], 7) == before


def test_trim_removes_unreachable_and_dead_states_only():
    table, acc = rb.trim(HAND_TABLE, HAND_ACCEPTING)
    assert len(table) == 5  # 5 (unreachable) and 6 (dead) are gone, 1≢2 is not trim's job
    assert all(3 not in row for row in table)  # the edge into the dead state is dropped
    assert rb.reachable_states(HAND_TABLE) == [0, 1, 2, 6, 3, 4]


def test_minimise_of_an_all_accepting_cycle_is_one_state_with_a_self_loop():
    table, acc = rb.minimise([{1: 1}, {1: 2}, {1: 0}])  # a a a a ... from three states
    assert table == [{1: 0}] and acc == {0}


def test_minimise_keeps_a_minimal_dfa_and_distinguishes_states():
    # a then b alternate: state 0 allows only a, state 1 only b: not equivalent
    table, _ = rb.minimise([{1: 1}, {2: 0}])
    assert table == [{1: 1}, {2: 0}]


def test_trim_refuses_an_empty_language():
    with pytest.raises(ValueError, match="accepts no string"):
        rb.trim([{1: 1}, {}], accepting=set())


def test_minimise_preserves_the_language_of_random_automata():
    rng = np.random.default_rng(5)
    shrunk = 0
    for _ in range(30):
        raw, alphabet = rb.draw_raw_table(rng)
        table, acc = rb.minimise(raw)
        shrunk += len(table) < len(raw)
        used = sorted({a for row in raw for a in row})[:3]  # brute force over a few symbols
        sub_raw = [{a: t for a, t in row.items() if a in used} for row in raw]
        sub_min = [{a: t for a, t in row.items() if a in used} for row in table]
        everything = set(range(len(raw)))
        assert accepted_strings(sub_raw, everything, used, 5) == accepted_strings(
            sub_min, set(range(len(table))), used, 5
        )
    assert shrunk > 0  # minimisation does something on generated automata


def test_canonical_form_is_invariant_to_state_relabelling_and_redundant_states():
    rng = np.random.default_rng(1)
    for _ in range(40):
        raw, _ = rb.draw_raw_table(rng)
        n = len(raw)
        perm = [0, *(1 + rng.permutation(n - 1))]  # rename every state but the start
        relabelled = relabel(raw, perm)
        # a redundant copy of state 0 that some edges now use, and an unreachable state
        copy = dict(relabelled[0])
        padded = [dict(row) for row in relabelled] + [copy, {ids("a")[0]: 0}]
        for row in padded[1:n]:
            for a, t in row.items():
                if t == 0:
                    row[a] = n  # into the copy of the start state
                    break
        forms = {rb.Automaton(rb.minimise(t)[0]) for t in (raw, relabelled, padded)}
        assert len(forms) == 1
        assert rb.Automaton(raw).canonical() == forms.pop()


def test_canonical_form_separates_different_languages():
    ab = rb.Automaton([{"a": 1}, {"b": 0}])
    ba = rb.Automaton([{"b": 1}, {"a": 0}])
    assert ab.canonical() != ba.canonical()
    assert rb.Automaton([{"a": 1}, {"a": 0}]).canonical() == rb.Automaton([{"a": 0}])


# --------------------------------------------------------------------------------------------
# the generator
# --------------------------------------------------------------------------------------------


def test_raw_automata_respect_every_constraint_across_seeds():
    n_states, sizes, degrees = set(), set(), set()
    for seed in range(300):
        table, alphabet = rb.draw_raw_table(np.random.default_rng(seed))
        n_states.add(len(table))
        sizes.add(len(alphabet))
        assert len(set(alphabet)) == len(alphabet) and set(alphabet) <= set(range(1, 19))
        for s, row in enumerate(table):
            degrees.add(len(row))
            assert 1 <= len(row) <= 3
            assert set(row) <= set(alphabet)  # labels from the automaton's alphabet
            assert s not in row.values()  # no self-loop
            assert len(set(row.values())) == len(row)  # distinct targets
    assert n_states == set(range(MIN_STATES, MAX_STATES + 1))  # the whole range is used
    assert sizes == set(range(4, 19))
    assert degrees == {1, 2, 3}


def test_generated_automata_are_minimal_canonical_and_keep_out_degrees():
    rng = np.random.default_rng(2)
    for _ in range(200):
        a = rb.random_automaton(rng)
        assert 1 <= a.n_states <= MAX_STATES
        assert all(1 <= len(p) <= 3 for p in a.transitions)
        assert a.canonical() == a
        assert rb.reachable_states(a.table()) == list(range(a.n_states))


def test_generation_is_deterministic_by_seed():
    one = [rb.random_automaton(np.random.default_rng(7)) for _ in range(3)]
    two = [rb.random_automaton(np.random.default_rng(7)) for _ in range(3)]
    assert one == two


# --------------------------------------------------------------------------------------------
# samples and splits
# --------------------------------------------------------------------------------------------


def test_samples_are_strings_of_their_automaton_within_the_sizes():
    automata = rb.training_automata(60, seed=3)
    for sample in rb.draw_samples(automata, seed=1):
        strings = sample.strings
        assert 5 <= len(strings) <= 10
        for s in strings:
            assert 1 <= len(s) <= 20
            assert sample.automaton.accepts(rb.encode(s))
        assert sample.tokens[0] != rb.SEP and sample.tokens[-1] != rb.SEP
        assert len(sample.tokens) <= rb.CPU_SIZES.max_tokens == 209


def test_strings_follow_uniform_transitions():
    a = rb.Automaton([{"a": 0, "b": 0, "c": 0}])
    s = a.sample_string(6000, np.random.default_rng(0))
    counts = np.bincount(s, minlength=4)[1:]
    assert np.all(np.abs(counts / 6000 - 1 / 3) < 0.03)


def test_held_out_sets_are_fixed_distinct_and_disjoint():
    test, val = rb.test_automata(), rb.validation_automata()
    assert len(test) == rb.N_TEST == 500 and len(val) == rb.N_VALIDATION == 200
    assert all(a.canonical() == a for a in test + val)
    assert len(set(test)) == 500 and len(set(val)) == 200 and not set(test) & set(val)
    digest = hashlib.sha256(json.dumps(rb.automata_to_json(test)).encode()).hexdigest()
    # fixed by seed: a change here means numpy changed its random stream or the generator changed,
    # and every shipped RegBench result would then refer to another test set
    assert digest[:16] == TEST_SET_SHA256_PREFIX, digest


TEST_SET_SHA256_PREFIX = "dd12be590e49ed30"  # of the 500 test automata as JSON, numpy 2.4


def test_training_sets_are_nested_distinct_and_disjoint_from_held_out():
    held_out = set(rb.test_automata()) | set(rb.validation_automata())
    big = rb.training_automata(2500, seed=0)
    assert len(set(big)) == 2500 and not set(big) & held_out
    assert rb.training_automata(100, seed=0) == big[:100]
    assert rb.training_automata(100, seed=1) != big[:100]
    small = rb.training_set(100, seed=0)
    assert rb.training_set(500, seed=0)[:100] == small
    assert [s.automaton for s in small] == big[:100]


@pytest.mark.slow
def test_largest_training_sets_are_disjoint_from_held_out():
    held_out = set(rb.test_automata()) | set(rb.validation_automata())
    for seed in (0, 1):
        train = rb.training_automata(max(rb.TRAINING_SIZES), seed=seed)
        assert len(set(train)) == len(train) and not set(train) & held_out


def test_make_batch_masks_separator_targets_and_padding():
    a = rb.Automaton([{"a": 1}, {"b": 0}])
    s1, s2 = rb.Sample(a, ids("ab|a")), rb.Sample(a, ids("a|ab|aba"))
    x, y = rb.make_batch([s1, s2])
    assert x.shape == y.shape == (2, 7) and x.dtype == y.dtype == torch.long
    assert x[0].tolist() == ids("ab|") + [rb.PAD] * 4
    assert y[0].tolist() == [2, -1, 1] + [-1] * 4
    assert x[1].tolist() == ids("a|ab|ab")
    assert y[1].tolist() == [-1, 1, 2, -1, 1, 2, 1]
    assert rb.make_batch([s1], length=10)[0].shape == (1, 10)
    with pytest.raises(ValueError, match="shorter than the longest"):
        rb.make_batch([s2], length=3)


# --------------------------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------------------------


def test_reference_distribution_resets_at_separators_and_ignores_string_ends():
    a = rb.Automaton([{"a": 1, "b": 1}, {"c": 0}])
    ref = rb.reference_distribution(rb.Sample(a, ids("ac|b")))
    assert ref.shape == (3, 20)
    assert ref[0, 3] == 1.0  # after a: only c
    assert ref[1, [1, 2]].tolist() == [0.5, 0.5]  # after ac: back in state 0
    assert ref[2, [1, 2]].tolist() == [0.5, 0.5]  # at '|': state 0 again
    assert ref[:, [rb.PAD, rb.SEP]].sum() == 0
    with pytest.raises(ValueError, match="token 1"):
        rb.reference_distribution(rb.Sample(a, ids("aa")))


def test_exact_reference_scores_accuracy_one_and_tvd_zero_and_a_mixture_its_exact_tvd():
    a = rb.training_automata(1, seed=4)[0]
    samples = rb.draw_samples([a] * 12, seed=0)
    exact = rb.evaluate_samples(Oracle(a), samples, batch_size=5)
    assert exact.accuracy == 1.0 and exact.tvd < 1e-9
    assert exact.n_positions == sum(len(s.tokens) - 1 for s in samples) and exact.n_samples == 12
    mixed = rb.evaluate_samples(Oracle(a, mix=0.1), samples)
    refs = np.concatenate([rb.reference_distribution(s) for s in samples])
    expected = 0.1 * 0.5 * np.abs(1 / 20 - refs).sum(axis=1).mean()  # p - ref = 0.1 (u - ref)
    assert mixed.tvd > 0 and mixed.tvd == pytest.approx(expected, rel=1e-9)
    assert mixed.accuracy == 1.0  # mixing in a little uniform mass keeps the argmax valid


def test_predicting_the_separator_is_always_wrong_with_tvd_one():
    samples = rb.draw_samples(rb.test_automata()[:5])

    def always_sep(idx):
        logits = torch.full((*idx.shape, 20), -30.0)
        logits[..., rb.SEP] = 30.0
        return logits

    s = rb.evaluate_samples(always_sep, samples)
    assert s.accuracy == 0.0 and s.tvd == pytest.approx(1.0, abs=1e-12)


def _tiny_models():
    torch.manual_seed(0)
    common = dict(vocab_size=20, block_size=256, n_layer=1, n_head=2, n_embd=16)
    return {
        "gpt": GPT(GPTConfig(**common)),
        "mosaic": MemoryMosaicLM(MosaicConfig(**common)),
        "lstm": rb.LSTMLM(rb.LSTMConfig(n_embd=16)),
    }


@pytest.mark.parametrize("name", ["gpt", "mosaic", "lstm"])
def test_evaluate_scores_the_package_models_as_a_per_sample_loop_would(name):
    model = _tiny_models()[name].train()
    automata = rb.test_automata()[:6]
    scores = rb.evaluate(model, automata, batch_size=4)
    assert model.training  # the mode is given back
    # the same numbers, one unpadded sample at a time (padding must not leak into real positions)
    correct = tvd = n = 0.0
    model.eval()
    with torch.no_grad():
        for sample in rb.draw_samples(automata):
            x = torch.tensor([sample.tokens[:-1]])
            p = torch.softmax(model(x)[0][0].double(), dim=-1).numpy()
            ref = rb.reference_distribution(sample)
            correct += (ref[np.arange(len(ref)), p.argmax(-1)] > 0).sum()
            tvd += 0.5 * np.abs(p - ref).sum()
            n += len(ref)
    assert scores.accuracy == pytest.approx(correct / n, abs=1e-12)
    assert scores.tvd == pytest.approx(tvd / n, rel=1e-9)
    assert 0 <= scores.accuracy <= 1 and 0 < scores.tvd < 1


def test_evaluate_is_micro_averaged():
    a = rb.Automaton([{"a": 1}, {"b": 0}])
    long, short = rb.Sample(a, ids("abab|ab")), rb.Sample(a, ids("ab"))

    def says_b(idx):
        logits = torch.zeros(*idx.shape, 20)
        logits[..., 2] = 5.0
        return logits

    # long: inputs a b a b | a, valid next b a b a a b: 3 of 6 correct; short: 1 of 1
    s = rb.evaluate_samples(says_b, [long, short])
    assert s.accuracy == pytest.approx(4 / 7)  # pooled; the mean of per-sample accuracies is 0.75


def test_evaluate_refuses_bad_inputs_with_clear_messages():
    models = _tiny_models()
    automata = rb.test_automata()[:2]
    with pytest.raises(ValueError, match="block_size"):
        rb.evaluate(GPT(GPTConfig(vocab_size=20, block_size=16, n_layer=1, n_head=2, n_embd=16)), automata)
    with pytest.raises(ValueError, match="vocab_size=20"):
        rb.evaluate(GPT(GPTConfig(vocab_size=32, block_size=256, n_layer=1, n_head=2, n_embd=16)), automata)
    with pytest.raises(TypeError, match="list of Automaton"):
        rb.evaluate(models["gpt"], "abc")
    with pytest.raises(TypeError, match=r"automata\[1\]"):
        rb.evaluate(models["gpt"], [automata[0], "x"])
    with pytest.raises(ValueError, match="non-empty"):
        rb.evaluate_samples(models["gpt"], [])
    with pytest.raises(ValueError, match="batch_size"):
        rb.evaluate(models["gpt"], automata, batch_size=0)
    with pytest.raises(TypeError, match="callable"):
        rb.evaluate_samples(3, rb.draw_samples(automata))
    with pytest.raises(TypeError, match="logits"):
        rb.evaluate(lambda idx: "nope", automata)


# --------------------------------------------------------------------------------------------
# n-gram baselines
# --------------------------------------------------------------------------------------------


def test_ngram_distributions_on_a_hand_computed_prefix():
    # tokens a b | a c | a: counts within strings, strings start after a start marker
    d1 = rb.ngram_distributions(ids("ab|ac|a"), 1)
    d2 = rb.ngram_distributions(ids("ab|ac|a"), 2)
    assert d1[0] == {A: 1.0}
    assert d1[-1] == pytest.approx({A: 3 / 5, B: 1 / 5, C: 1 / 5})
    assert d2[0] == {A: 1.0}  # 'a' never followed by anything yet: back off to the unigram
    assert d2[2] == {A: 1.0}  # at '|': what starts a string
    assert d2[-1] == pytest.approx({B: 0.5, C: 0.5})  # 'a' was followed by b once and c once
    d3 = rb.ngram_distributions(ids("ab|ac|a"), 3)
    assert d3[-1] == pytest.approx({B: 0.5, C: 0.5})  # context (start, a) seen twice
    assert all(rb.SEP not in d and rb.PAD not in d for d in d3)


def test_memory_bigram_on_a_hand_computed_string():
    x = np.array([1, 2, 1, 3, 1])  # a b a c a
    big, zero = rb.memory_bigram(x, 4, 1000.0), rb.memory_bigram(x, 4, 0.0)
    assert np.allclose(big[0], 0.25) and np.allclose(zero[0], 0.25)  # an empty memory: uniform
    assert np.allclose(big[1], [0, 0, 1, 0])  # 'b' (id 2) is new: the one stored value, x_1 = b
    assert np.allclose(big[2], [0, 0, 1, 0])  # 'a' (id 1) was followed by b once
    assert np.allclose(big[4], [0, 0, 0.5, 0.5])  # 'a' followed by b and c: the bigram
    assert np.allclose(zero[4], [0, 0.5, 0.25, 0.25])  # β = 0: next symbols b, a, c, a
    assert np.isfinite(big).all() and np.allclose(big.sum(axis=1), 1.0)
    beta = 1.0  # in between: matches weigh e^β, the other pairs 1
    w = np.array([np.e, 1.0, np.e, 1.0]) / (2 * np.e + 2)
    assert np.allclose(rb.memory_bigram(x, 4, beta)[4], w @ np.eye(4)[[2, 1, 3, 1]])
    for bad in (np.array([]), np.array([[1]]), np.array([1.5]), np.array([4])):
        with pytest.raises(ValueError):
            rb.memory_bigram(bad, 4, 1.0)
    with pytest.raises(ValueError):
        rb.memory_bigram(x, 4, -1.0)


def test_memory_bigram_is_chapter_02s_causal_retrieval():
    from mosaics_edu.core.memory import causal_retrieval

    x = np.array(ids("abcabbcaacb"))
    keys = torch.nn.functional.one_hot(torch.from_numpy(x), rb.VOCAB_SIZE).double()[None, None]
    values = torch.cat([keys[..., 1:, :], torch.zeros_like(keys[..., :1, :])], dim=-2)  # peek at x_{s+1}
    for beta in (0.7, 5.0):
        y = causal_retrieval(keys, values, beta=beta)[0, 0].numpy()
        assert np.allclose(rb.memory_bigram(x, rb.VOCAB_SIZE, beta)[1:], y[1:])


def test_memory_bigram_on_samples_is_the_unigram_at_beta_0_and_the_bigram_at_large_beta():
    samples = rb.draw_samples(rb.test_automata()[:20])
    x, _ = rb.make_batch(samples)
    for beta, n in ((0.0, 1), (40.0, 2)):
        mem, ngram = rb.MemoryBigram(beta)(x).exp(), rb.InContextNGram(n)(x).exp()
        for row, s in enumerate(samples):
            P = len(s.tokens) - 1  # the input positions (make_batch pads the shorter samples)
            assert torch.allclose(mem[row, :P], ngram[row, :P], atol=1e-6), (beta, row)
    assert "beta=2.0" in repr(rb.MemoryBigram(2.0))
    with pytest.raises(ValueError):
        rb.MemoryBigram(float("inf"))


def test_bigram_is_perfect_on_a_deterministic_cycle_once_it_has_gone_round():
    cycle = rb.Automaton([{"a": 1}, {"b": 2}, {"c": 0}])
    sample = rb.Sample(cycle, ids("abcabcab|abcab|abcabcabca"))
    ref = rb.reference_distribution(sample)
    x, _ = rb.make_batch([sample])
    for n, expect_perfect in ((1, False), (2, True), (3, True)):
        pred = rb.InContextNGram(n)(x)[0].argmax(-1).numpy()  # (T,)
        ok = ref[np.arange(len(ref)), pred] > 0
        assert ok[3:].all() == expect_perfect, n  # after the first full cycle
    assert rb.evaluate_samples(rb.InContextNGram(2), [sample]).accuracy > 0.9


def test_trigram_needs_two_symbols_of_context_where_the_bigram_cannot_decide():
    # x a b and y a c: after 'a' the next symbol depends on the symbol before 'a'
    a = rb.Automaton([{"d": 1, "e": 3}, {"a": 2}, {"b": 0}, {"a": 4}, {"c": 0}])
    sample = rb.draw_samples([a], seed=0, sizes=rb.SampleSizes(10, 10, 12, 12))[0]
    ref = rb.reference_distribution(sample)
    x, _ = rb.make_batch([sample])
    after_a = np.array(sample.tokens[:-1]) == rb.encode("a")[0]
    late = np.arange(len(ref)) >= 60
    scores = {}
    for n in (2, 3):
        pred = rb.InContextNGram(n)(x)[0].argmax(-1).numpy()
        scores[n] = (ref[np.arange(len(ref)), pred] > 0)[after_a & late].mean()
    assert scores[3] == 1.0 and scores[2] < 1.0


def test_leftover_backoff_on_a_hand_computed_prefix():
    # a b | a c | a: after 'a' (seen 3 times, the last one with nothing after it yet) b and c
    # followed once each: 1/3 each, and the leftover 1/3 goes to the only symbol never seen after
    # 'a', which is 'a' itself
    d2 = rb.ngram_distributions(ids("ab|ac|a"), 2, backoff="leftover")
    assert d2[-1] == pytest.approx({A: 1 / 3, B: 1 / 3, C: 1 / 3})
    assert d2[0] == {A: 1.0}  # one symbol read: nothing else can be predicted
    d3 = rb.ngram_distributions(ids("ab|ac|a"), 3, backoff="leftover")
    assert d3[-1] == pytest.approx({A: 1 / 3, B: 1 / 3, C: 1 / 3})  # (start, a): the same counts
    # a a b | a a: c(a) = 4, c(aa) = 2, c(ab) = 1, so a 2/4 and b 1/4; the leftover 1/4 has no
    # symbol left to go to (both were seen after 'a'): renormalised, a 2/3 and b 1/3
    d = rb.ngram_distributions(ids("aab|aa"), 2, backoff="leftover")
    assert d[-1] == pytest.approx({A: 2 / 3, B: 1 / 3})
    unigram = zip(rb.ngram_distributions(ids("ab|ac|a"), 1, backoff="leftover"),
                  rb.ngram_distributions(ids("ab|ac|a"), 1), strict=True)  # fmt: skip
    assert all(got == pytest.approx(want) for got, want in unigram)


def _leftover_from_scratch(tokens: list[int], n: int) -> list[dict[int, float]]:
    """The benchmark's back-off recomputed from scratch at every position, by counting runs of
    symbols in the padded strings read so far (the definition, with no incremental counting)."""
    out = []
    for t in range(1, len(tokens) + 1):
        strings = [[0] * (n - 1) + [int(x) for x in s] for s in _split(tokens[:t])]
        c = Counter(tuple(s[i : i + k]) for s in strings for k in range(1, n + 1)
                    for i in range(len(s) - k + 1))  # fmt: skip
        vocab = sorted({x for s in strings for x in s if x != 0})
        history = strings[-1][len(strings[-1]) - (n - 1) :] if n > 1 else []

        @functools.cache
        def p(k: int, a: int, c=c, vocab=vocab, history=history) -> float:
            if k == 1:
                return c[(a,)] / sum(c[(b,)] for b in vocab)
            h = tuple(history[len(history) - (k - 1) :])
            if c[(*h, a)] > 0:
                return c[(*h, a)] / c[h]
            rest = [b for b in vocab if c[(*h, b)] == 0]
            leftover = 1 - sum(c[(*h, b)] / c[h] for b in vocab if b not in rest)
            return leftover * p(k - 1, a) / sum(p(k - 1, b) for b in rest)

        dist = {a: p(n, a) for a in vocab}
        out.append({a: v / sum(dist.values()) for a, v in dist.items()})
    return out


def _split(tokens: list[int]) -> list[list[int]]:
    strings: list[list[int]] = [[]]
    for x in tokens:
        if x in (rb.SEP, rb.PAD):
            strings.append([])
        else:
            strings[-1].append(x)
    return strings


@pytest.mark.parametrize("n", [2, 3, 4])
def test_leftover_backoff_matches_its_definition_recomputed_from_scratch(n):
    for automaton in rb.test_automata()[:6]:
        tokens = list(rb.draw_samples([automaton], sizes=rb.SampleSizes(3, 4, 1, 8))[0].tokens)
        fast = rb.ngram_distributions(tokens, n, backoff="leftover")
        slow = _leftover_from_scratch(tokens, n)
        for got, want in zip(fast, slow, strict=True):
            assert set(got) == set(want) and got == pytest.approx(want, abs=1e-12)
            assert sum(got.values()) == pytest.approx(1.0)


def test_leftover_backoff_on_the_test_set_is_between_the_unigram_and_a_perfect_learner():
    automata = rb.test_automata()[:100]
    s = {n: rb.evaluate(rb.InContextNGram(n, backoff="leftover"), automata) for n in (1, 2, 3)}
    assert s[1].accuracy < s[2].accuracy < s[3].accuracy
    assert s[1].tvd > s[2].tvd > s[3].tvd > 0.2
    assert "leftover" in repr(rb.InContextNGram(3, backoff="leftover"))


def test_ngram_baselines_on_the_test_set_order_as_expected():
    automata = rb.test_automata()[:100]
    s = {n: rb.evaluate(rb.InContextNGram(n), automata) for n in (1, 2, 3)}
    assert s[1].accuracy < s[2].accuracy < s[3].accuracy
    assert s[1].tvd > s[2].tvd > s[3].tvd


# --------------------------------------------------------------------------------------------
# the LSTM control
# --------------------------------------------------------------------------------------------


def test_lstm_parameter_count_and_budget():
    for d, layers in ((16, 1), (33, 2)):
        model = rb.LSTMLM(rb.LSTMConfig(n_embd=d, n_layer=layers))
        assert count_parameters(model) == rb.lstm_parameters(d, layers)
    budget = count_parameters(GPT(GPTConfig(vocab_size=20, block_size=256, n_layer=2, n_head=4, n_embd=64)))
    cfg = rb.LSTMConfig.for_budget(budget)
    got = rb.lstm_parameters(cfg.n_embd, cfg.n_layer)
    for d in (cfg.n_embd - 1, cfg.n_embd + 1):  # no other width is closer to the budget
        assert abs(rb.lstm_parameters(d, 1) - budget) >= abs(got - budget)


def test_lstm_forward_loss_ignores_masked_targets_and_validates():
    torch.manual_seed(0)
    model = rb.LSTMLM(rb.LSTMConfig(n_embd=8))
    x, y = rb.make_batch(rb.training_set(3, seed=0))
    logits, loss = model(x, y)
    assert logits.shape == (*x.shape, 20)
    keep = y != -1
    manual = torch.nn.functional.cross_entropy(logits[keep], y[keep])
    assert loss.item() == pytest.approx(manual.item(), rel=1e-5)
    with pytest.raises(ValueError, match="vocab_size"):
        model(torch.tensor([[25]]))
    with pytest.raises(TypeError, match="integer token ids"):
        model(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="positive integer"):
        rb.LSTMConfig(n_embd=0)


@pytest.mark.parametrize(
    "kwargs", [{}, dict(n_embd=128, n_head=8), dict(n_embd=32, n_layer=1, lstm_layers=2)]
)
def test_matched_configs_have_equal_parameter_counts(kwargs):
    configs = rb.matched_configs(**kwargs)
    budget = rb.parameter_count(configs["gpt"])
    assert configs["gpt"].block_size == rb.CPU_SIZES.max_tokens - 1  # fits the longest input
    for name, config in configs.items():
        model = rb.build_model(name, config)
        assert count_parameters(model) == rb.parameter_count(config)
        assert abs(count_parameters(model) - budget) <= 0.01 * budget, name


def test_build_model_is_seeded_and_validates():
    one, two = rb.build_model("mosaic", seed=3), rb.build_model("mosaic", seed=3)
    assert all(torch.equal(p, q) for p, q in zip(one.parameters(), two.parameters(), strict=True))
    assert isinstance(rb.build_model("gpt", n_embd=32, n_head=2), GPT)
    with pytest.raises(ValueError, match="unknown model"):
        rb.build_model("rnn")
    with pytest.raises(TypeError, match="GPTConfig"):
        rb.build_model("gpt", rb.LSTMConfig())
    with pytest.raises(ValueError, match="either config"):
        rb.build_model("lstm", rb.LSTMConfig(), n_embd=8)


# --------------------------------------------------------------------------------------------
# JSON format
# --------------------------------------------------------------------------------------------


def test_json_round_trip(tmp_path):
    automata = rb.test_automata()[:20] + [rb.Automaton([{"a": 1, "r": 0}, {"b": 1}])]
    path = rb.save_automata(tmp_path / "mine.json", automata, description="twenty test automata and one more")
    assert rb.load_automata(path) == automata
    doc = json.loads(path.read_text())
    assert doc["format"] == "regbench-automata" and doc["version"] == 1
    assert doc["automata"][-1] == {"transitions": [{"a": 1, "r": 0}, {"b": 1}]}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(format="other"), '"format"'),
        (lambda d: d.update(version=2), '"version"'),
        (lambda d: d.update(extra=1), "unknown field"),
        (lambda d: d.update(automata=[]), '"automata"'),
        (lambda d: d["automata"][1].update(name="x"), r"automata\[1\]"),
        (lambda d: d["automata"][0]["transitions"][1].update(z=0), r'automata\[0\]\.transitions\[1\]\["z"\]'),
        (lambda d: d["automata"][0]["transitions"][0].update(a=7), r"states are the integers 0\.\.1"),
        (lambda d: d["automata"][0]["transitions"].__setitem__(1, {}), "at least one"),
        (lambda d: d["automata"][0].update(transitions="a"), r"automata\[0\]\.transitions"),
    ],
)
def test_json_errors_name_the_field_and_the_fix(change, message):
    doc = rb.automata_to_json([rb.Automaton([{"a": 1}, {"b": 0}]), rb.Automaton([{"c": 0}])])
    change(doc)
    with pytest.raises(ValueError, match=message):
        rb.automata_from_json(doc)


def test_load_automata_reports_missing_and_corrupt_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="save_automata"):
        rb.load_automata(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        rb.load_automata(bad)


# --------------------------------------------------------------------------------------------
# input validation elsewhere
# --------------------------------------------------------------------------------------------


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="no outgoing transition"):
        rb.Automaton([{"a": 1}, {}])
    with pytest.raises(ValueError, match="letter"):
        rb.Automaton([{"z": 0}])
    with pytest.raises(ValueError, match="states are 0..0"):
        rb.Automaton([{"a": 3}])
    with pytest.raises(ValueError, match="non-empty"):
        rb.Automaton([])
    with pytest.raises(ValueError, match="n must be"):
        rb.training_automata(0)
    with pytest.raises(ValueError, match="seed"):
        rb.training_automata(5, seed=-1)
    with pytest.raises(ValueError, match="min_strings <= max_strings"):
        rb.SampleSizes(6, 5, 1, 20)
    with pytest.raises(ValueError, match="2 tokens"):
        rb.SampleSizes(1, 3, 1, 20)
    with pytest.raises(TypeError, match="Generator"):
        rb.draw_raw_table(0)
    with pytest.raises(ValueError, match="separator"):
        rb.Sample(rb.Automaton([{"a": 0}]), ids("a|"))
    with pytest.raises(ValueError, match="empty string"):
        rb.Sample(rb.Automaton([{"a": 0}]), ids("a||a"))
    with pytest.raises(ValueError, match="n must be"):
        rb.InContextNGram(0)
    with pytest.raises(ValueError, match="backoff must be"):
        rb.InContextNGram(2, backoff="katz")
    with pytest.raises(ValueError, match="accepting"):
        rb.minimise([{1: 0}], accepting=[3])
    a = rb.Automaton([{"a": 0}])
    with pytest.raises(ValueError, match="state must be"):
        a.step(1, 1)
    with pytest.raises(TypeError, match="Generator"):
        rb.draw_sample(a, rng=3)
    with pytest.raises(ValueError, match="length"):
        a.sample_string(0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="token ids"):
        rb.ngram_distributions([1, 25], 2)
    with pytest.raises(ValueError, match="n_embd"):
        rb.lstm_parameters(0, 1)
