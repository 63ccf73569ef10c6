"""Where a training step's time goes: the top operators by self CPU time, per model and size.

    python tools/profile_models.py                          # every course size, v1, v2, GPT
    python tools/profile_models.py --sizes cpu-tiny --top 8 --models mosaic,gpt
    python tools/profile_models.py --generate               # one cached generation step too

For each model at each size (:data:`mosaics_edu.bench.COURSE_SIZES`), a few forward + backward
passes run under ``torch.profiler`` (one thread, after a warm-up) and the operators are listed by
self CPU time, the forward's and the backward's apart (autograd's ``...Backward`` nodes and the
kernels they call make the backward). The totals give the share of each; the ``python`` line
is the step's time outside any operator (the interpreter, module calls).
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile, record_function

from mosaics_edu.bench import BENCH_GENERATION_SIZE, COURSE_SIZES, course_models


def _table(prof: profile, phase: str, top: int, steps: int) -> tuple[list[str], float]:
    """The ``top`` operators of the ``phase`` region by self CPU time (ms per step)."""
    # the operators inside the phase region: walk each event's parents up to the region's marker
    def in_phase(e) -> bool:  # noqa: ANN001
        p = e.cpu_parent
        while p is not None:
            if p.name == phase:
                return True
            p = p.cpu_parent
        return False

    totals: dict[str, float] = {}
    wall = 0.0
    for e in prof.events():
        if e.name == phase:
            wall += e.cpu_time_total
        elif in_phase(e):
            totals[e.name] = totals.get(e.name, 0.0) + e.self_cpu_time_total
    rows = sorted(totals.items(), key=lambda kv: -kv[1])[:top]
    lines = [f"    {name[:48]:<48} {us / 1e3 / steps:8.3f} ms" for name, us in rows]
    return lines, wall / 1e3 / steps


def profile_step(model: torch.nn.Module, idx: torch.Tensor, steps: int, top: int) -> list[str]:
    """Forward and backward of ``model`` on ``idx`` (targets = idx): the top ops of each phase."""
    model.train()

    def one() -> None:
        with record_function("forward"):
            _, loss = model(idx, idx)
        with record_function("backward"):
            loss.backward()
        model.zero_grad(set_to_none=True)

    for _ in range(2):
        one()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            one()
    out = []
    for phase in ("forward", "backward"):
        lines, total = _table(prof, phase, top, steps)
        out.append(f"  {phase}: {total:.2f} ms per step")
        out.extend(lines)
    return out


def profile_generation(model: torch.nn.Module, context: int, steps: int, top: int) -> list[str]:
    """One cached generation step at ``context``: the top ops of ``_step``."""
    model.eval()
    vocab = model.config.vocab_size
    idx = torch.randint(0, vocab, (1, context), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        _, cache = model._prefill(idx)
        token = idx[:, -1:]

        def one() -> None:
            with record_function("generate"):
                model._step(token, cache)

        for _ in range(3):
            one()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(steps):
                one()
    lines, total = _table(prof, "generate", top, steps)
    return [f"  cached step at context {context}: {total:.3f} ms per token"] + lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="cpu-tiny,stories,paper",
                        help=f"comma-separated subset of {sorted(COURSE_SIZES)}")
    parser.add_argument("--models", default="mosaic,v2,gpt", help="subset of mosaic,v2,gpt")
    parser.add_argument("--top", type=int, default=10, help="operators listed per phase")
    parser.add_argument("--steps", type=int, default=3, help="profiled steps")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--generate", action="store_true",
                        help="also profile one cached generation step (context 512)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    for size in [s.strip() for s in args.sizes.split(",") if s.strip()]:
        spec = COURSE_SIZES[size]
        built = course_models(size)
        g = torch.Generator().manual_seed(0)
        idx = torch.randint(0, spec["size"]["vocab_size"], (spec["batch"], spec["T"]), generator=g)
        print(f"\n== {size}: batch {spec['batch']}, T {spec['T']}, {spec['size']}")
        for name in names:
            t0 = time.process_time()
            print(f"-- {name}")
            print("\n".join(profile_step(built[name], idx, args.steps, args.top)))
            print(f"  (profiling took {time.process_time() - t0:.1f} s CPU)")
    if args.generate:
        size = dict(BENCH_GENERATION_SIZE)
        built = course_models(None, size=size)
        print(f"\n== generation, {size}")
        for name in names:
            print(f"-- {name}")
            print("\n".join(profile_generation(built[name], 511, 20, args.top)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

