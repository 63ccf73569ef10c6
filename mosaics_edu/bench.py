"""Benchmarks of the core package, printed as a table of measured ratios.

    python -m mosaics_edu.bench                 # CPU: the CPU sections below (< 3 min)
    python -m mosaics_edu.bench --device cuda --bf16 --compile   # GPU training throughput
    python -m mosaics_edu.bench ... --json results.json          # also save every result

What is measured, side by side in one run. CPU timings are the process's CPU time (one thread by
default), fastest of several interleaved repetitions, so that other processes on a shared machine
move them little:

1. ``leaky``: the O(T) chunked scan against the (T, T) matrix form of the leaky average at
   T = 2048: largest difference, time ratio, and peak tensor memory at several T (the scan's
   grows like T, the matrix's like T²).
2. ``train``: one training step (forward, backward, AdamW) of a Memory Mosaic and of the GPT
   baseline with the same width, depth and context (equal parameter counts up to GPT's position
   table): time ratio.
3. ``generate``: cached against uncached greedy generation of the mosaic up to a context of 512:
   identical tokens, and the speed-up per token.
4. ``gated``: Memory Mosaics v2's gated keys, the chunked scan against the step-by-step
   recursion at T = 2048: largest difference of the unit keys, and the time ratio.
5. ``course``: the sizes learners train at (:data:`COURSE_SIZES`: cpu-tiny, the story models,
   RegBench-mini, paper proportions): per size the step-time ratios mosaic/GPT and v2/v1 (fastest
   and median of one interleaved run) and tokens/s, then cached generation per token of the
   three models, each beside its target (mosaic/GPT <= 1.15, v2/v1 <= 1.3, generation <= 1.5).
6. ``throughput`` (``--device cuda``): training tokens/s of both models with bf16 autocast and
   ``torch.compile``.

Wall-clock timings on a shared machine move with its load; CPU-time ratios measured in one
process move much less.

The FLOPs and peak figures behind model FLOPs utilisation (MFU), which
``python -m mosaics_edu.train`` prints, live in :mod:`mosaics_edu.models.flops`.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from .core.features import leaky_average
from .core.v2.gated_keys import gated_leaky_recurrent, gated_leaky_scan
from .models.lm import GPT, GPTConfig, MemoryMosaicLM, MosaicConfig, count_parameters
from .models.v2 import MemoryMosaicV2LM, MosaicV2Config

__all__ = [
    "peak_tensor_bytes",
    "time_interleaved",
    "bench_leaky",
    "train_stepper",
    "bench_train_step",
    "bench_generation",
    "bench_gated_keys",
    "bench_course_sizes",
    "bench_throughput",
    "interleaved_times",
    "main",
]

# the performance targets: speed-ups (and a ratio of step times) the package must reach
LEAKY_SPEEDUP_TARGET = 5.0
TRAIN_RATIO_TARGET = 1.15
V2_RATIO_TARGET = 1.3  # v2's training step over v1's, at the course sizes
GENERATION_RATIO_TARGET = 1.5  # the mosaic's cached generation per token over the GPT's
GENERATION_SPEEDUP_TARGET = 5.0
GPU_THROUGHPUT_TARGET = 1.15


# --------------------------------------------------------------------------------------------
# measuring tools
# --------------------------------------------------------------------------------------------


class _TensorBytes(TorchDispatchMode):
    """Counts the bytes of live tensors created inside the mode, and their peak."""

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._storages: set[int] = set()

    def _release(self, key: int, nbytes: int) -> None:
        self._storages.discard(key)
        self.live -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.device.type != "meta":
                storage = t.untyped_storage()
                key = storage.data_ptr()
                if key in self._storages or storage.nbytes() == 0:
                    continue  # a view of a tensor already counted
                self._storages.add(key)
                self.live += storage.nbytes()
                self.peak = max(self.peak, self.live)
                weakref.finalize(t, self._release, key, storage.nbytes())
        return out


def peak_tensor_bytes(fn: Callable[[], Any]) -> int:
    """Peak bytes held by the tensors that ``fn`` creates (inputs not counted), measured by
    intercepting every tensor operation. An approximation (a tensor is freed with its first
    owner), good enough to tell O(T) from O(T²)."""
    if not callable(fn):
        raise TypeError("fn must be a callable taking no argument")
    counter = _TensorBytes()
    with counter:
        result = fn()
    del result
    return counter.peak


def time_interleaved(
    fns: dict[str, Callable[[], Any]], repeats: int = 5, warmup: int = 1, stat: str = "min",
    clock: Callable[[], float] = time.process_time,
) -> dict[str, float]:
    """Seconds per call of each function, calls interleaved (a, b, a, b, ...).

    The default ``clock`` is the CPU time of this process: with one thread it counts the work
    done and not the time spent waiting while other processes hold the core, so it stays stable
    on a shared machine (pass ``time.perf_counter`` for wall-clock time, e.g. on a GPU).
    ``stat="min"`` (default) keeps the fastest repetition (the advice of Python's ``timeit``);
    ``"median"`` is the other common choice. Interleaving makes a load change hit both sides.
    """
    if stat not in ("min", "median"):
        raise ValueError(f"stat must be 'min' or 'median', got {stat!r}")
    times = interleaved_times(fns, repeats, warmup, clock)
    reduce = min if stat == "min" else statistics.median
    return {name: reduce(ts) for name, ts in times.items()}


def interleaved_times(
    fns: dict[str, Callable[[], Any]], repeats: int = 5, warmup: int = 1,
    clock: Callable[[], float] = time.process_time,
) -> dict[str, list[float]]:
    """Every repetition's seconds, per function (calls interleaved as in
    :func:`time_interleaved`), so that the fastest and the median come from one run."""
    if repeats < 1 or warmup < 0:
        raise ValueError("repeats must be >= 1 and warmup >= 0")
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = clock()
            fn()
            times[name].append(clock() - t0)
    return times


# --------------------------------------------------------------------------------------------
# the benchmarks
# --------------------------------------------------------------------------------------------


def bench_leaky(
    T: int = 2048, batch: int = 4, n_head: int = 4, head_size: int = 64, repeats: int = 5,
    memory_T: Sequence[int] = (512, 1024, 2048),
) -> dict[str, Any]:
    """Scan vs matrix leaky average: max |difference|, time ratio, peak memory vs T."""
    torch.manual_seed(0)
    decay = torch.exp(-torch.linspace(0.5, 5.0, n_head))  # the per-head decays at init
    x = torch.randn(batch, n_head, T, head_size)
    scan = leaky_average(x, decay, method="scan")
    matrix = leaky_average(x, decay, method="matrix")
    max_diff = (scan - matrix).abs().max().item()
    with torch.no_grad():
        times = time_interleaved(
            {"scan": lambda: leaky_average(x, decay, method="scan"),
             "matrix": lambda: leaky_average(x, decay, method="matrix")},
            repeats=repeats,
        )
    memory = {}
    for t in memory_T:
        xt = torch.randn(1, n_head, t, head_size)
        with torch.no_grad():
            memory[t] = {
                m: peak_tensor_bytes(lambda m=m, xt=xt: leaky_average(xt, decay, method=m))
                for m in ("scan", "matrix")
            }
    ts = sorted(memory)
    doublings = math.log2(ts[-1] / ts[0]) if len(ts) > 1 else 0.0
    growth = {  # memory factor per doubling of T: 2 for O(T), 4 for O(T²)
        m: (memory[ts[-1]][m] / memory[ts[0]][m]) ** (1 / doublings) for m in ("scan", "matrix")
    } if doublings > 0 else {}
    return {
        "T": T, "shape": tuple(x.shape), "max_abs_diff": max_diff,
        "scan_s": times["scan"], "matrix_s": times["matrix"],
        "speedup": times["matrix"] / times["scan"], "peak_bytes": memory,
        "growth_per_doubling": growth,
    }


def bench_gated_keys(
    T: int = 2048, batch: int = 4, n_head: int = 4, head_size: int = 64, repeats: int = 5
) -> dict[str, Any]:
    """v2's gated keys: chunked scan vs the recursion, max |difference| of the unit keys and the
    time ratio. Gates and decays drawn as at init (log g ~ N(0, 1), log λ = -|N(0, 1)|)."""
    g = torch.Generator().manual_seed(0)
    k = torch.randn(batch, n_head, T, head_size, generator=g)
    log_gate = torch.randn(batch, n_head, T, generator=g)
    log_decay = -torch.randn(batch, n_head, T, generator=g).abs()
    with torch.no_grad():
        u_scan, _ = gated_leaky_scan(k, log_gate, log_decay)
        u_rec, _ = gated_leaky_recurrent(k, log_gate, log_decay)
        unit = [u / u.norm(dim=-1, keepdim=True) for u in (u_scan, u_rec)]
        times = time_interleaved(
            {"scan": lambda: gated_leaky_scan(k, log_gate, log_decay),
             "recurrent": lambda: gated_leaky_recurrent(k, log_gate, log_decay)},
            repeats=repeats,
        )
    return {
        "T": T, "shape": tuple(k.shape), "max_abs_diff": (unit[0] - unit[1]).abs().max().item(),
        "scan_s": times["scan"], "recurrent_s": times["recurrent"],
        "speedup": times["recurrent"] / times["scan"],
    }


def _pair(size: dict[str, int], dropout: float = 0.0) -> tuple[MemoryMosaicLM, GPT]:
    torch.manual_seed(0)
    mosaic = MemoryMosaicLM(MosaicConfig(dropout=dropout, **size))
    torch.manual_seed(0)
    gpt = GPT(GPTConfig(dropout=dropout, **size))
    return mosaic, gpt


# The papers' GPT-2-small mosaic holds 50,304 × 768 of its 123.59 M parameters in the (tied)
# embedding: 31 %. A CPU-sized model with the same share spends the same fraction of a step on
# the embedding and the output head as the paper's model does.
PAPER_EMBEDDING_SHARE = 50304 * 768 / 123_588_336


def paper_proportioned_vocab(n_layer: int, n_embd: int) -> int:
    """A vocabulary size (a multiple of 64) giving the embedding the papers' share of parameters."""
    blocks = n_layer * 12 * n_embd**2
    vocab = PAPER_EMBEDDING_SHARE / (1 - PAPER_EMBEDDING_SHARE) * blocks / n_embd
    return 64 * max(1, round(vocab / 64))


# head size 64 and context 512 as in the papers; width and depth cut to CPU size
BENCH_TRAIN_SIZE = dict(
    vocab_size=paper_proportioned_vocab(2, 256), block_size=512, n_layer=2, n_head=4, n_embd=256
)



def train_stepper(model: torch.nn.Module, idx: torch.Tensor, targets: torch.Tensor) -> Callable[[], None]:
    """One training step of ``model`` on a fixed batch (forward, backward, AdamW), as a callable to
    time: the unit every training-step comparison of this module measures."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)

    def step() -> None:
        _, loss = model(idx, targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step

def bench_train_step(
    size: dict[str, int] | None = None, batch: int = 4, seq_len: int | None = None,
    repeats: int = 5,
) -> dict[str, Any]:
    """One AdamW training step, mosaic vs GPT of the same size, on the CPU."""
    size = dict(BENCH_TRAIN_SIZE if size is None else size)
    T = seq_len or size["block_size"]
    mosaic, gpt = _pair(size)
    g = torch.Generator().manual_seed(0)
    idx = torch.randint(0, size["vocab_size"], (batch, T), generator=g)
    targets = torch.randint(0, size["vocab_size"], (batch, T), generator=g)

    steps = {"mosaic": train_stepper(mosaic, idx, targets), "gpt": train_stepper(gpt, idx, targets)}
    times = time_interleaved(steps, repeats=repeats)
    medians = time_interleaved(steps, repeats=repeats, warmup=0, stat="median")
    return {
        "size": size, "batch": batch, "T": T,
        "params_mosaic": count_parameters(mosaic), "params_gpt": count_parameters(gpt),
        "mosaic_s": times["mosaic"], "gpt_s": times["gpt"],
        "ratio": times["mosaic"] / times["gpt"],
        "ratio_median": medians["mosaic"] / medians["gpt"],
    }


# The sizes learners train at, each with its batch and sequence length T:
# - ``cpu-tiny``: the preset of ``python -m mosaics_edu.train --preset cpu-tiny`` (batch 16);
# - ``stories``: the story models of chapters 06 and 07 (tools/train_story_models.sh; the
#   mosaic's persistent memory has 288 pairs per head, paying for the GPT's position table);
# - ``regbench-mini``: RegBench-mini's models (mosaics_edu.course.regbench.train: batch 32, vocabulary
#   20, the mosaic's pmem_size matched to the GPT; T = 86, a typical longest row of a batch);
# - ``paper``: the papers' proportions cut to CPU size (:data:`BENCH_TRAIN_SIZE`, batch 4).
COURSE_SIZES: dict[str, dict[str, Any]] = {
    "cpu-tiny": dict(size=dict(vocab_size=256, block_size=128, n_layer=2, n_head=4, n_embd=64),
                     batch=16, T=128, pmem_size=None),
    "stories": dict(size=dict(vocab_size=1024, block_size=256, n_layer=2, n_head=4, n_embd=64),
                    batch=16, T=256, pmem_size=288),
    "regbench-mini": dict(size=dict(vocab_size=20, block_size=208, n_layer=2, n_head=4, n_embd=64),
                          batch=32, T=86, pmem_size="matched"),
    "paper": dict(size=BENCH_TRAIN_SIZE, batch=4, T=512, pmem_size=None),
}


def course_models(
    name: str | None, size: dict[str, int] | None = None, seed: int = 0
) -> dict[str, torch.nn.Module]:
    """``{"mosaic": v1, "v2": v2, "gpt": GPT}`` at the course size ``name`` (or at ``size``),
    each initialised from ``seed``, dropout 0."""
    pmem: Any = None
    if name is not None:
        spec = COURSE_SIZES[name]
        size, pmem = spec["size"], spec["pmem_size"]
    if size is None:
        raise ValueError("give a course size name or a size")
    if pmem == "matched":
        from .course.regbench.matched import matched_configs  # noqa: PLC0415 (only for this size)

        pmem = matched_configs(n_embd=size["n_embd"], n_layer=size["n_layer"],
                               n_head=size["n_head"])["mosaic"].pmem_size
    out: dict[str, torch.nn.Module] = {}
    for kind, build in (
        ("mosaic", lambda: MemoryMosaicLM(MosaicConfig(**size, pmem_size=pmem))),
        ("v2", lambda: MemoryMosaicV2LM(MosaicV2Config(**size))),
        ("gpt", lambda: GPT(GPTConfig(**size))),
    ):
        torch.manual_seed(seed)
        out[kind] = build()
    return out


BENCH_GENERATION_SIZE = dict(vocab_size=512, block_size=512, n_layer=4, n_head=4, n_embd=128)


def bench_generation(
    size: dict[str, int] | None = None, prompt_len: int = 384, new_tokens: int = 128,
    batch: int = 1, repeats: int = 1,
) -> dict[str, Any]:
    """Greedy generation up to a context of prompt_len + new_tokens, cached vs uncached."""
    size = dict(BENCH_GENERATION_SIZE if size is None else size)
    if prompt_len + new_tokens > size["block_size"]:
        raise ValueError("prompt_len + new_tokens must fit in block_size for this benchmark")
    mosaic, gpt = _pair(size)
    prompt = torch.randint(0, size["vocab_size"], (batch, prompt_len),
                           generator=torch.Generator().manual_seed(1))
    out: dict[str, Any] = {"context": prompt_len + new_tokens, "new_tokens": new_tokens}
    for name, model in (("mosaic", mosaic), ("gpt", gpt)):
        tokens: dict[bool, torch.Tensor] = {}

        def gen(use_cache: bool, model: torch.nn.Module = model, tokens: dict = tokens) -> None:
            tokens[use_cache] = model.generate(prompt, new_tokens, temperature=0.0,
                                               use_cache=use_cache)

        times = time_interleaved({"cached": lambda: gen(True), "uncached": lambda: gen(False)},
                                 repeats=repeats, warmup=0)
        out[name] = {
            "identical": bool(torch.equal(tokens[True], tokens[False])),
            "cached_ms_per_token": 1000 * times["cached"] / new_tokens,
            "uncached_ms_per_token": 1000 * times["uncached"] / new_tokens,
            "speedup": times["uncached"] / times["cached"],
        }
    return out


def bench_course_sizes(
    names: Sequence[str] | None = None, repeats: int = 7, generation: bool = True,
    prompt_len: int = 384, new_tokens: int = 128,
) -> dict[str, Any]:
    """One AdamW training step of v1, v2 and the GPT at each course size (:data:`COURSE_SIZES`,
    each at its batch and T): seconds per step (fastest and median of ``repeats`` interleaved
    repetitions), tokens/s, and the ratios mosaic/GPT and v2/v1. With ``generation``, greedy
    cached generation per token of each model at the :data:`BENCH_GENERATION_SIZE` (context
    ``prompt_len + new_tokens``, the prompt's prefill included)."""
    out: dict[str, Any] = {}
    for name in names or list(COURSE_SIZES):
        spec = COURSE_SIZES[name]
        built = course_models(name)
        g = torch.Generator().manual_seed(0)
        idx = torch.randint(0, spec["size"]["vocab_size"], (spec["batch"], spec["T"]), generator=g)
        reps = max(1, repeats - 2) if name == "paper" else repeats  # its steps take the longest
        times = interleaved_times({k: train_stepper(m, idx, idx) for k, m in built.items()}, repeats=reps)
        fast = {k: min(ts) for k, ts in times.items()}
        median = {k: statistics.median(ts) for k, ts in times.items()}
        tokens = spec["batch"] * spec["T"]
        out[name] = {
            "batch": spec["batch"], "T": spec["T"], "size": spec["size"],
            "step_s": fast, "step_s_median": median,
            "tokens_per_s": {k: tokens / v for k, v in fast.items()},
            "mosaic_gpt": fast["mosaic"] / fast["gpt"],
            "mosaic_gpt_median": median["mosaic"] / median["gpt"],
            "v2_v1": fast["v2"] / fast["mosaic"], "v2_v1_median": median["v2"] / median["mosaic"],
        }
    if generation:
        size = dict(BENCH_GENERATION_SIZE)
        prompt = torch.randint(0, size["vocab_size"], (1, prompt_len),
                               generator=torch.Generator().manual_seed(1))
        built = course_models(None, size=size)
        times = interleaved_times(
            {k: (lambda m=m: m.generate(prompt, new_tokens, temperature=0.0))
             for k, m in built.items()}, repeats=max(1, repeats // 3))
        per_token = {k: min(ts) / new_tokens for k, ts in times.items()}
        out["generation"] = {
            "context": prompt_len + new_tokens, "size": size, "s_per_token": per_token,
            "mosaic_gpt": per_token["mosaic"] / per_token["gpt"],
            "v2_gpt": per_token["v2"] / per_token["gpt"],
        }
    return out


def bench_throughput(
    preset: str = "gpu-small", device: str = "cuda", bf16: bool = True, compile: bool = True,
    batch: int = 16, steps: int = 20, warmup: int = 5, **overrides: Any,
) -> dict[str, Any]:
    """Training tokens/s of both models (bf16 autocast, torch.compile) on ``device``."""
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' asked for but torch.cuda.is_available() is False")
    size = {k: v for k, v in MosaicConfig.preset(preset, **overrides).to_dict().items()
            if k in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd")}
    T = size["block_size"]
    results: dict[str, Any] = {"preset": preset, "device": str(dev), "bf16": bf16,
                               "compile": compile, "batch": batch, "T": T}
    for name, model in zip(("mosaic", "gpt"), _pair(size), strict=True):
        model = model.to(dev)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        run = torch.compile(model) if compile else model
        idx = torch.randint(0, size["vocab_size"], (batch, T), device=dev)

        def step(run: Any = run, opt: torch.optim.Optimizer = opt, idx: torch.Tensor = idx) -> None:
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
                _, loss = run(idx, idx)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        for _ in range(warmup):
            step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - t0
        results[name] = {"params": count_parameters(model),
                         "tokens_per_s": steps * batch * T / elapsed}
    results["ratio"] = results["gpt"]["tokens_per_s"] / results["mosaic"]["tokens_per_s"]
    return results


# --------------------------------------------------------------------------------------------
# the command
# --------------------------------------------------------------------------------------------


def _row(what: str, measured: str, target: str, ok: bool | None) -> str:
    mark = "" if ok is None else ("yes" if ok else "NO")
    return f"| {what:<44} | {measured:<40} | {target:<14} | {mark:<4} |"


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks and print a table. Returns 0 (the table says what met its target)."""
    parser = argparse.ArgumentParser(prog="python -m mosaics_edu.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=None,
                        help="comma-separated subset of: leaky,gated,train,generate,course,"
                        "throughput")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: on a shared machine, two threads "
                        "wait on each other at every operation and the ratios measure the load)")
    parser.add_argument("--device", default="cpu", help="device of the throughput benchmark")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (throughput)")
    parser.add_argument("--compile", action="store_true", help="torch.compile (throughput)")
    parser.add_argument("--preset", default="gpu-small", help="model preset (throughput)")
    parser.add_argument("--batch", type=int, default=16, help="batch size (throughput)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes, one repetition: a smoke test, not a measurement")
    parser.add_argument("--json", default=None, metavar="PATH",
                        help="also write every section's results to this JSON file")
    args = parser.parse_args(argv)

    gpu_style = args.device != "cpu" or args.bf16 or args.compile
    default = "throughput" if gpu_style else "leaky,gated,train,generate,course"
    sections = [s.strip() for s in (args.only or default).split(",") if s.strip()]
    unknown = set(sections) - {"leaky", "gated", "train", "generate", "course", "throughput"}
    if unknown:
        parser.error(f"unknown section(s) {sorted(unknown)}")
    if args.threads < 1:
        parser.error("--threads must be >= 1")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: no CUDA GPU is visible to torch {torch.__version__} "
                     "(torch.cuda.is_available() is False); run on a GPU machine or use --device cpu")
    if args.device == "cpu" or args.threads != 1:
        torch.set_num_threads(args.threads)

    q = args.quick
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU thread(s)"
          + (", QUICK (not a measurement)" if q else ""))
    rows = [_row("benchmark", "measured", "target", None).replace("|    ", "| ok ")]
    rows.append("|" + "|".join("-" * n for n in (46, 42, 16, 6)) + "|")
    t_start = time.perf_counter()
    report: dict[str, Any] = {"torch": torch.__version__, "quick": q, "device": args.device}

    if "leaky" in sections:
        r = report["leaky"] = bench_leaky(T=256 if q else 2048, batch=1 if q else 4,
                                          repeats=1 if q else 5,
                                          memory_T=(64, 128) if q else (512, 1024, 2048))
        rows.append(_row(f"leaky scan vs matrix, T={r['T']}: max abs diff",
                         f"{r['max_abs_diff']:.2e}", "<= 1e-5", r["max_abs_diff"] <= 1e-5))
        rows.append(_row("  time: matrix / scan",
                         f"{r['speedup']:.1f}x ({1e3 * r['matrix_s']:.1f} / "
                         f"{1e3 * r['scan_s']:.1f} ms)", ">= 5x",
                         r["speedup"] >= LEAKY_SPEEDUP_TARGET))
        ts = sorted(r["peak_bytes"])
        for m in ("scan", "matrix"):
            peaks = ", ".join(_mb(r["peak_bytes"][t][m]) for t in ts)
            growth = r["growth_per_doubling"].get(m, float("nan"))
            rows.append(_row(f"  peak memory {m}, T={'/'.join(map(str, ts))}",
                             f"{peaks} (x{growth:.2f}/doubling)",
                             "O(T): ~x2" if m == "scan" else "(T^2: ~x4)",
                             growth < 2.5 if m == "scan" else None))
    if "gated" in sections:
        r = report["gated"] = bench_gated_keys(T=256 if q else 2048, batch=1 if q else 4,
                                               repeats=1 if q else 5)
        rows.append(_row(f"v2 gated keys scan vs recursion, T={r['T']}: max diff",
                         f"{r['max_abs_diff']:.2e}", "<= 1e-5", r["max_abs_diff"] <= 1e-5))
        rows.append(_row("  time: recursion / scan",
                         f"{r['speedup']:.1f}x ({1e3 * r['recurrent_s']:.1f} / "
                         f"{1e3 * r['scan_s']:.1f} ms)", ">= 5x",
                         r["speedup"] >= LEAKY_SPEEDUP_TARGET))
        r = bench_gated_keys(T=256 if q else 2048, batch=1 if q else 4, head_size=16,
                             repeats=1 if q else 5)  # the head size of mosaic-v2 at cpu-tiny
        rows.append(_row("  time: recursion / scan, head size 16",
                         f"{r['speedup']:.1f}x ({1e3 * r['recurrent_s']:.1f} / "
                         f"{1e3 * r['scan_s']:.1f} ms)", "(info)", None))
    if "train" in sections:
        tiny = dict(vocab_size=128, block_size=64, n_layer=1, n_head=2, n_embd=32)
        variants = [("paper proportions", tiny if q else BENCH_TRAIN_SIZE, True),
                    ("blocks only", dict(tiny if q else BENCH_TRAIN_SIZE, vocab_size=64 if q else 512),
                     False)]
        for label, size, judged in variants:
            r = report[f"train ({label})"] = bench_train_step(size=size, batch=2 if q else 4,
                                                              repeats=1 if q else 7)
            s = r["size"]
            share = s["vocab_size"] * s["n_embd"] / r["params_mosaic"]
            rows.append(_row(f"train step, {label}: vocab {s['vocab_size']}",
                             f"embedding {100 * share:.0f}% of {r['params_mosaic'] / 1e6:.2f}M "
                             f"(GPT {r['params_gpt'] / 1e6:.2f}M)",
                             f"d={s['n_embd']} L={s['n_layer']} H={s['n_head']} T={r['T']}", None))
            rows.append(_row("  time: mosaic / GPT (fastest of N)",
                             f"{r['ratio']:.3f} ({1e3 * r['mosaic_s']:.0f} / "
                             f"{1e3 * r['gpt_s']:.0f} ms)", "<= 1.15" if judged else "(info)",
                             r["ratio"] <= TRAIN_RATIO_TARGET if judged else None))
            rows.append(_row("  time: mosaic / GPT (median of N)", f"{r['ratio_median']:.3f}",
                             "(info)", None))
    if "generate" in sections:
        size = dict(vocab_size=128, block_size=64, n_layer=1, n_head=2, n_embd=32) if q else None
        r = report["generate"] = bench_generation(size=size, prompt_len=40 if q else 384,
                                                  new_tokens=16 if q else 128)
        for name in ("mosaic", "gpt"):
            g = r[name]
            rows.append(_row(f"generation {name}, context {r['context']}: same tokens",
                             str(g["identical"]), "True", g["identical"]))
            target = name == "mosaic"
            rows.append(_row("  per token: uncached / cached",
                             f"{g['speedup']:.1f}x ({g['uncached_ms_per_token']:.2f} / "
                             f"{g['cached_ms_per_token']:.2f} ms)",
                             ">= 5x" if target else "(baseline)",
                             g["speedup"] >= GENERATION_SPEEDUP_TARGET if target else None))
    if "course" in sections:
        r = report["course"] = bench_course_sizes(
            ["cpu-tiny"] if q else None, repeats=1 if q else 7,
            prompt_len=40 if q else 384, new_tokens=8 if q else 128)
        for name, c in r.items():
            if name == "generation":
                continue
            tps = c["tokens_per_s"]
            rows.append(_row(f"course size {name}: batch {c['batch']}, T {c['T']}",
                             f"tok/s mosaic {tps['mosaic']:.0f}, v2 {tps['v2']:.0f}, "
                             f"GPT {tps['gpt']:.0f}", "", None))
            rows.append(_row("  step: mosaic / GPT (fastest, median)",
                             f"{c['mosaic_gpt']:.3f}, {c['mosaic_gpt_median']:.3f} "
                             f"({1e3 * c['step_s']['mosaic']:.0f} / {1e3 * c['step_s']['gpt']:.0f} ms)",
                             f"<= {TRAIN_RATIO_TARGET}",
                             max(c["mosaic_gpt"], c["mosaic_gpt_median"]) <= TRAIN_RATIO_TARGET))
            rows.append(_row("  step: v2 / v1 (fastest, median)",
                             f"{c['v2_v1']:.3f}, {c['v2_v1_median']:.3f} "
                             f"({1e3 * c['step_s']['v2']:.0f} ms)", f"<= {V2_RATIO_TARGET}",
                             max(c["v2_v1"], c["v2_v1_median"]) <= V2_RATIO_TARGET))
        if "generation" in r:
            g = r["generation"]
            ms = {k: 1e3 * v for k, v in g["s_per_token"].items()}
            rows.append(_row(f"cached generation per token, context {g['context']}",
                             f"mosaic {ms['mosaic']:.2f}, v2 {ms['v2']:.2f}, GPT {ms['gpt']:.2f} ms",
                             "", None))
            rows.append(_row("  mosaic / GPT", f"{g['mosaic_gpt']:.2f}",
                             f"<= {GENERATION_RATIO_TARGET}",
                             g["mosaic_gpt"] <= GENERATION_RATIO_TARGET))
            rows.append(_row("  v2 / GPT", f"{g['v2_gpt']:.2f}", "(info)", None))
    if "throughput" in sections:
        kw: dict[str, Any] = {}
        if q or args.device == "cpu":
            kw = dict(n_layer=1, n_embd=64, n_head=2, block_size=64, vocab_size=256)
        r = bench_throughput(preset=args.preset, device=args.device, bf16=args.bf16,
                             compile=args.compile, batch=2 if q else args.batch,
                             steps=2 if q else 20, warmup=1 if q else 5, **kw)
        report["throughput"] = r
        rows.append(_row(f"throughput {args.preset} on {r['device']}"
                         f"{' bf16' if args.bf16 else ''}{' compile' if args.compile else ''}",
                         f"{r['mosaic']['tokens_per_s']:.0f} vs {r['gpt']['tokens_per_s']:.0f} "
                         "tok/s", "", None))
        rows.append(_row("  time per token: mosaic / GPT", f"{r['ratio']:.3f}", "<= 1.15",
                         r["ratio"] <= GPU_THROUGHPUT_TARGET))
    print("\n".join(rows))
    print(f"(total {time.perf_counter() - t_start:.0f} s wall clock; CPU timings are process CPU "
          "time, fastest of N interleaved repetitions)")
    if args.json:
        with open(args.json, "w") as f:  # dict keys such as T become strings; tuples, lists
            json.dump(report, f, indent=1, default=str)
        print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
