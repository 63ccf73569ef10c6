"""The chapter-10 checks: the reference passes, declared mistakes are named, and tables of wrong
answers written here (none of them the check's own mistake functions) fail while correct answers
written differently pass."""

from __future__ import annotations

import math

import numpy as np
import torch
from check_contract import contract_tests, table_tests

from mosaics_edu.course import scaling
from mosaics_edu.course.checks import ch10

EXERCISES = [(ch10.check_batch_layout, scaling.batch_layout, ch10.LAYOUT_MISTAKES),
             (ch10.check_ddp_gradients, scaling.ddp_gradients, ch10.DDP_MISTAKES),
             (ch10.check_state_gb_per_gpu, scaling.state_gb_per_gpu, ch10.STATE_MISTAKES)]
test_reference_passes, test_stub_fails, test_each_mistake_is_diagnosed = contract_tests(EXERCISES)


# ---- exercise 10.1: the global batch ------------------------------------------------------------


def layout_plain(batch_size, grad_accum, world_size, block_size):
    if grad_accum % world_size != 0:
        raise ValueError("grad_accum must be a multiple of world_size")
    a = grad_accum // world_size
    return a, batch_size * a * world_size, batch_size * a * world_size * block_size


def layout_divmod(batch_size, grad_accum, world_size, block_size):
    a, rest = divmod(grad_accum, world_size)
    if rest:
        raise ValueError(f"{world_size} processes cannot share {grad_accum} micro-batches")
    sequences = batch_size * grad_accum  # the same number, written from the global side
    return a, sequences, sequences * block_size


def layout_list(batch_size, grad_accum, world_size, block_size):  # a list and numpy ints are fine
    if grad_accum % world_size:
        raise ValueError("not divisible")
    a = np.int64(grad_accum // world_size)
    return [a, np.int64(batch_size * grad_accum), np.int64(batch_size * grad_accum * block_size)]


def layout_floats(batch_size, grad_accum, world_size, block_size):  # floats equal to the ints
    if grad_accum % world_size:
        raise ValueError("not divisible")
    a = grad_accum / world_size
    return a, batch_size * a * world_size, batch_size * a * world_size * block_size


def layout_no_refusal(batch_size, grad_accum, world_size, block_size):  # floors silently
    a = grad_accum // world_size
    return a, batch_size * a * world_size, batch_size * a * world_size * block_size


def layout_assert(batch_size, grad_accum, world_size, block_size):  # refuses with the wrong error
    assert grad_accum % world_size == 0
    return layout_plain(batch_size, grad_accum, world_size, block_size)


def layout_ceil(batch_size, grad_accum, world_size, block_size):  # rounds up instead of refusing
    a = math.ceil(grad_accum / world_size)
    return a, batch_size * a * world_size, batch_size * a * world_size * block_size


def layout_global_only(batch_size, grad_accum, world_size, block_size):  # ignores world_size
    if grad_accum % world_size:
        raise ValueError("not divisible")
    return grad_accum, batch_size * grad_accum, batch_size * grad_accum * block_size


def layout_per_gpu_tokens(batch_size, grad_accum, world_size, block_size):  # one GPU's tokens
    if grad_accum % world_size:
        raise ValueError("not divisible")
    a = grad_accum // world_size
    return a, batch_size * grad_accum, batch_size * a * block_size


def layout_times_world(batch_size, grad_accum, world_size, block_size):  # grad_accum per process
    if grad_accum % world_size:
        raise ValueError("not divisible")
    return grad_accum, batch_size * grad_accum * world_size, batch_size * grad_accum * world_size * block_size


def layout_dict(batch_size, grad_accum, world_size, block_size):  # another return type
    a = grad_accum // world_size
    sequences = batch_size * grad_accum
    return {"per_process": a, "sequences": sequences, "tokens": sequences * block_size}


def layout_off_by_one_block(batch_size, grad_accum, world_size, block_size):  # counts targets + 1
    if grad_accum % world_size:
        raise ValueError("not divisible")
    a = grad_accum // world_size
    return a, batch_size * grad_accum, batch_size * grad_accum * (block_size + 1)


def layout_too_few_only(batch_size, grad_accum, world_size, block_size):  # refuses only G < W
    if grad_accum < world_size:
        raise ValueError("fewer micro-batches than processes")
    a = grad_accum // world_size
    return a, batch_size * a * world_size, batch_size * a * world_size * block_size


def layout_refuses_one_each(batch_size, grad_accum, world_size, block_size):  # off by one: <=
    if grad_accum <= world_size or grad_accum % world_size:
        raise ValueError("each process needs micro-batches to accumulate")
    a = grad_accum // world_size
    return a, batch_size * grad_accum, batch_size * grad_accum * block_size


WRONG_LAYOUT = [
    ("no-refusal", layout_no_refusal, "raise a ValueError", "indivisible"),
    ("assert", layout_assert, "raised AssertionError", "indivisible"),
    ("ceil", layout_ceil, "raise a ValueError", "indivisible"),
    ("too-few-only", layout_too_few_only, "not just whether grad_accum < world_size", "indivisible"),
    ("refuses-one-each", layout_refuses_one_each, "refuse only when grad_accum % world_size",
     "no-accumulation"),
    ("ignores-world", layout_global_only, "batch_layout"),
    ("one-gpu-tokens", layout_per_gpu_tokens, "batch_layout"),
    ("times-world", layout_times_world, "gave every process all grad_accum micro-batches"),
    ("dict", layout_dict, "batch_layout"),
    ("block-plus-one", layout_off_by_one_block, "batch_layout"),
]
RIGHT_LAYOUT = [("plain", layout_plain), ("divmod", layout_divmod), ("list", layout_list),
                ("floats", layout_floats)]
test_layout_wrong_answer_fails, test_layout_correct_variant_passes = table_tests(
    ch10.check_batch_layout, WRONG_LAYOUT, RIGHT_LAYOUT)


# ---- exercise 10.2: DDP's gradients -------------------------------------------------------------


def ddp_loops(micro_grads, world_size):
    a = len(micro_grads) // world_size
    local = [sum(micro_grads[r * a + i] / a for i in range(a)) for r in range(world_size)]
    mean = sum(local) / world_size
    return np.stack([mean] * world_size)


def ddp_torch(micro_grads, world_size):
    g = torch.as_tensor(micro_grads)
    local = g.view(world_size, -1, g.shape[1]).mean(dim=1)  # (W, P)
    return local.mean(dim=0, keepdim=True).expand(world_size, -1)


def ddp_float32(micro_grads, world_size):
    g = np.asarray(micro_grads, dtype=np.float32)
    return np.tile(g.mean(axis=0), (world_size, 1))  # the argument itself: the mean of everything


def ddp_interleaved(micro_grads, world_size):  # process r takes r, r + W, ...: the same mean
    local = np.stack([micro_grads[r::world_size].mean(axis=0) for r in range(world_size)])
    return np.tile(local.mean(axis=0), (world_size, 1))


def ddp_one_row(micro_grads, world_size):  # forgets to give every process its copy
    return micro_grads.mean(axis=0)


def ddp_sum_all(micro_grads, world_size):  # no scaling anywhere
    return np.tile(micro_grads.sum(axis=0), (world_size, 1))


def ddp_mean_of_first(micro_grads, world_size):  # every process steps with process 0's gradient
    a = len(micro_grads) // world_size
    return np.tile(micro_grads[:a].mean(axis=0), (world_size, 1))


def ddp_wrong_axis(micro_grads, world_size):  # averages over the parameters
    return np.tile(micro_grads.mean(axis=1)[: micro_grads.shape[1]], (world_size, 1))


def ddp_last_micro_batch(micro_grads, world_size):  # keeps only the last micro-batch (no accumulation)
    a = len(micro_grads) // world_size
    last = micro_grads.reshape(world_size, a, -1)[:, -1]
    return np.tile(last.mean(axis=0), (world_size, 1))


def ddp_in_place(micro_grads, world_size):  # divides the caller's array
    micro_grads /= len(micro_grads)
    return np.tile(micro_grads.sum(axis=0), (world_size, 1))


def ddp_half(micro_grads, world_size):
    return np.tile(micro_grads.mean(axis=0), (world_size, 1)).astype(np.float16)


def ddp_median(micro_grads, world_size):  # a robust average is not what DDP computes
    return np.tile(np.median(micro_grads, axis=0), (world_size, 1))


def ddp_neighbour_pairs(micro_grads, world_size):  # each process averages with its neighbour only
    a = len(micro_grads) // world_size
    local = micro_grads.reshape(world_size, a, -1).mean(axis=1)
    return (local + np.roll(local, 1, axis=0)) / 2  # right for 1 or 2 processes, not for 3


def ddp_one_process_sums(micro_grads, world_size):  # "one GPU: no DDP, backward adds the gradients"
    if world_size == 1:
        return micro_grads.sum(axis=0, keepdims=True)
    return ddp_loops(micro_grads, world_size)


def ddp_halves(micro_grads, world_size):  # the 2-process demo's "/ 2", whatever world_size
    a = len(micro_grads) // world_size
    local = micro_grads.reshape(world_size, a, -1).mean(axis=1)
    return np.tile(local.sum(axis=0) / 2, (world_size, 1))


def ddp_slice_one_short(micro_grads, world_size):  # rows r*A … r*A + A - 1 read as a slice's end
    a = len(micro_grads) // world_size
    local = [micro_grads[r * a: r * a + a - 1].mean(axis=0) for r in range(world_size)]
    return np.tile(np.mean(local, axis=0), (world_size, 1))


WRONG_DDP = [
    ("neighbour-pairs", ddp_neighbour_pairs, "not pairs of neighbours", "three-or-more"),
    ("one-process-sums", ddp_one_process_sums, "every failing case is one where world_size = 1",
     "one-process"),
    ("halves", ddp_halves, "divided the processes' summed gradients by 2"),
    ("slice-one-short", ddp_slice_one_short, "left out each process's last micro-batch"),
    ("one-row", ddp_one_row, "shape"),
    ("sum-all", ddp_sum_all, "ddp_gradients"),
    ("first-process", ddp_mean_of_first, "ddp_gradients"),
    ("wrong-axis", ddp_wrong_axis, "ddp_gradients"),
    ("last-micro-batch", ddp_last_micro_batch, "ddp_gradients"),
    ("in-place", ddp_in_place, "in place"),
    ("float16", ddp_half, "float16"),
    ("median", ddp_median, "ddp_gradients"),
]
RIGHT_DDP = [("loops", ddp_loops), ("torch", ddp_torch), ("float32", ddp_float32),
             ("interleaved", ddp_interleaved)]
test_ddp_wrong_answer_fails, test_ddp_correct_variant_passes = table_tests(
    ch10.check_ddp_gradients, WRONG_DDP, RIGHT_DDP)


# ---- exercise 10.3: state per GPU ---------------------------------------------------------------


def state_table(n_params, world_size, strategy):
    per_parameter = {"ddp": 4 + 4 + 4 + 8, "fsdp": 4 + 4 + 8}[strategy]
    return n_params * per_parameter / (world_size if strategy == "fsdp" else 1) / 1e9


def state_branches(n_params, world_size, strategy):
    if strategy == "ddp":
        return 20 * n_params / 1e9
    return 16 * n_params / world_size * 1e-9


def state_numpy(n_params, world_size, strategy):
    bytes_ = np.float32(20.0 if strategy == "ddp" else 16.0 / world_size) * np.float32(n_params)
    return bytes_ / np.float32(1e9)


def state_string_lower(n_params, world_size, strategy):
    return state_table(n_params, world_size, strategy.lower())


def state_mib(n_params, world_size, strategy):  # MB instead of GB
    return state_table(n_params, world_size, strategy) * 1000


def state_fsdp_20(n_params, world_size, strategy):  # FSDP sharded, but with the 20 bytes
    return 20 * n_params / (world_size if strategy == "fsdp" else 1) / 1e9


def state_adam_12(n_params, world_size, strategy):  # 12 bytes of moments
    return n_params * (4 + 4 + 12 + (4 if strategy == "ddp" else 0)) / (
        world_size if strategy == "fsdp" else 1) / 1e9


def state_ignores_world(n_params, world_size, strategy):
    return state_table(n_params, 8, strategy)


def state_both_sharded(n_params, world_size, strategy):
    return n_params * (20 if strategy == "ddp" else 16) / world_size / 1e9


def state_bytes(n_params, world_size, strategy):  # forgets the unit
    return state_table(n_params, world_size, strategy) * 1e9


def state_weights_only(n_params, world_size, strategy):
    return 4 * n_params / (world_size if strategy == "fsdp" else 1) / 1e9


def state_int(n_params, world_size, strategy):  # rounds to whole GB
    return round(state_table(n_params, world_size, strategy))


def state_no_buckets_on_one_gpu(n_params, world_size, strategy):  # "one GPU: nothing to all-reduce"
    if strategy == "ddp" and world_size > 1:
        return 20 * n_params / 1e9
    return 16 * n_params / (world_size if strategy == "fsdp" else 1) / 1e9


def state_fsdp_one_gpu_is_ddp(n_params, world_size, strategy):  # "FSDP on one GPU is plain DDP"
    if strategy == "ddp" or world_size == 1:
        return 20 * n_params / 1e9
    return 16 * n_params / world_size / 1e9


def state_two_decimals(n_params, world_size, strategy):  # rounded as the chapter's table prints it
    return round(state_table(n_params, world_size, strategy), 2)


WRONG_STATE = [
    ("no-buckets-on-one-gpu", state_no_buckets_on_one_gpu, "DDP still keeps its buckets", "one-gpu"),
    ("fsdp-one-gpu-is-ddp", state_fsdp_one_gpu_is_ddp, "nothing to split", "one-gpu"),
    ("two-decimals", state_two_decimals, "return the number unrounded", "small"),
    ("mb", state_mib, "state_gb_per_gpu"),
    ("fsdp-20", state_fsdp_20, "counted DDP's buckets under FSDP too"),
    ("adam-12", state_adam_12, "state_gb_per_gpu"),
    ("ignores-world", state_ignores_world, "state_gb_per_gpu"),
    ("both-sharded", state_both_sharded, "split DDP's state over the GPUs"),
    ("bytes", state_bytes, "state_gb_per_gpu"),
    ("weights-only", state_weights_only, "state_gb_per_gpu"),
    ("rounded", state_int, "state_gb_per_gpu"),
]
RIGHT_STATE = [("table", state_table), ("branches", state_branches), ("float32", state_numpy),
               ("lower", state_string_lower)]
test_state_wrong_answer_fails, test_state_correct_variant_passes = table_tests(
    ch10.check_state_gb_per_gpu, WRONG_STATE, RIGHT_STATE)


def test_cases_are_in_the_regimes_they_name():
    for case in [*ch10.LAYOUT_CASES, ch10.REFUSED_CASE]:
        batch_size, grad_accum, world_size, block_size = case
        for regime in case.regime:
            assert regime in ch10.LAYOUT_REGIMES
            assert {"one-process": world_size == 1, "no-accumulation": grad_accum == world_size,
                    "indivisible": grad_accum % world_size != 0}[regime], regime
        assert (grad_accum % world_size != 0) == (case is ch10.REFUSED_CASE)
    for case in ch10.ddp_cases():
        micro_grads, world_size = case
        for regime in case.regime:
            assert regime in ch10.DDP_REGIMES
            assert {"one-process": world_size == 1, "three-or-more": world_size >= 3,
                    "one-each": len(micro_grads) == world_size}[regime], regime
    for case in ch10.STATE_CASES:
        for regime in case.regime:
            assert regime in ch10.STATE_REGIMES
            assert {"one-gpu": case[1] == 1, "small": scaling.state_gb_per_gpu(*case) < 1}[regime], regime


def test_regime_answers_go_wrong_in_their_regime_alone():
    """A wrong answer labelled with a regime gives the expected answer on every case outside it."""
    tables = [(WRONG_LAYOUT, ch10.LAYOUT_CASES, scaling.batch_layout),
              (WRONG_DDP, ch10.ddp_cases(), scaling.ddp_gradients),
              (WRONG_STATE, ch10.STATE_CASES, scaling.state_gb_per_gpu)]
    for wrong, cases, reference in tables:
        for name, fn, _, regime in (w for w in wrong if len(w) > 3):
            outside = [c for c in cases if regime not in c.regime]
            for case in outside:
                got = fn(*[a.copy() if isinstance(a, np.ndarray) else a for a in case])
                want = reference(*case)
                assert np.allclose(np.asarray(got, dtype=float), np.asarray(want, dtype=float)), (name, case)
            assert len(outside) < len(cases) or regime == "indivisible", name


# ---- the package's reference functions ---------------------------------------------------------


def test_ddp_equals_accumulation_exactly_with_one_micro_batch_per_process():
    """(g1 + g2) / 2 and g1/2 + g2/2 are the same float: halving is exact in binary."""
    g = np.random.default_rng(0).standard_normal((2, 1000)).astype(np.float32)
    assert np.array_equal(scaling.ddp_gradients(g, 2)[0], scaling.accumulated_gradient(g))


def test_bad_inputs_name_the_argument():
    import pytest

    with pytest.raises(ValueError, match="grad_accum=30 is not a multiple of world_size=4"):
        scaling.batch_layout(16, 30, 4, 512)
    with pytest.raises(ValueError, match="world_size must be a positive int"):
        scaling.state_gb_per_gpu(1e9, 0, "ddp")
    with pytest.raises(ValueError, match="strategy must be one of"):
        scaling.state_gb_per_gpu(1e9, 8, "zero3")
    with pytest.raises(ValueError, match="micro_grads must be a float array"):
        scaling.ddp_gradients(np.zeros(4), 2)
    with pytest.raises(ValueError, match="kind must be one of"):
        scaling.n_params_meta("rnn", "cpu-tiny")


def test_memory_view_and_its_drawing():
    import matplotlib.pyplot as plt

    view = scaling.memory_view(params_billion=9.4, gpus=8, gpu_gb=80)
    assert math.isclose(view["gb"]["ddp"], 188.0) and math.isclose(view["gb"]["fsdp"], 18.8)
    assert view["fits"] == {"ddp": False, "fsdp": True}
    fig = plt.figure()
    scaling.draw_memory_view(view, fig)
    assert fig.axes and "9.4 billion parameters on 8 GPU(s)" in fig.axes[0].get_title()
    plt.close(fig)
