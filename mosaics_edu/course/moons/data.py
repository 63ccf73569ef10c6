"""Three moons: the data of the paper's toy experiment.

Three moons circle a planet with periods drawn from {0.5, 1, ..., 3.5} time units. We observe each
moon as the point (sin, cos) of its phase, so one observation is a 6-vector
``(sin₁, cos₁, sin₂, cos₂, sin₃, cos₃)``. A training sequence is an 800-step window of one triple
of periods, starting at a random time (random phases). The task is to predict the next point.

The whole system repeats after the *full period* (the least common multiple of the three periods);
one moon repeats after its own period. A predictor that treats the system as one block has to wait
a full period before the past holds the present again; one that tracks each moon on its own needs
only the longest single period. That gap is the point of the experiment.

Triples (as in the paper's code): of the 35 triples, the 9 with the smallest full period; ties at
full period 6 are broken as in the official run, which gives the list below. The last one,
(1, 2, 3), is held out for validation. Its periods are 44.4, 88.9 and 133.3 steps and its full
period is 266.7 steps.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import torch

__all__ = [
    "PERIODS", "TRIPLES", "TRAIN_TRIPLES", "VALID_TRIPLE", "BLOCK_SIZE", "STEPS_PER_UNIT",
    "N_TIMES", "PHASE", "VARIANT_TRAIN_TRIPLES", "VARIANT_VALID_TRIPLE",
    "full_period", "all_triples", "observe", "sample_windows", "period_in_steps",
    "grouping_costs_context",
]

PERIODS: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5)
BLOCK_SIZE = 800  # steps in one training window
MIN_PERIODS_IN_BLOCK = 3  # a window holds 3 full periods of the slowest system
N_TIMES = 10_000  # length of the time grid windows are cut from
PHASE = 0.3  # the constant phase offset of the official code

# The 9 triples with the smallest full period, in the official order; the last is for validation.
TRIPLES: tuple[tuple[float, float, float], ...] = (
    (0.5, 1.0, 2.0), (0.5, 1.0, 1.5), (0.5, 1.0, 3.0), (0.5, 1.5, 3.0), (1.0, 1.5, 3.0),
    (0.5, 1.0, 2.5), (1.0, 1.5, 2.0), (0.5, 1.5, 2.0), (1.0, 2.0, 3.0),
)
TRAIN_TRIPLES = TRIPLES[:-1]
VALID_TRIPLE = TRIPLES[-1]


def full_period(periods: tuple[float, ...]) -> float:
    """The least common multiple of periods given with one decimal (the system's full period)."""
    if len(periods) == 0:
        raise ValueError("full_period(periods): pass at least one period, e.g. (1.0, 2.0, 3.0).")
    tenths = []
    for p in periods:
        f = Fraction(p).limit_denominator(1000) * 10
        if p <= 0 or f.denominator != 1:
            raise ValueError(f"full_period: period {p} must be positive with at most one decimal.")
        tenths.append(int(f))
    return math.lcm(*tenths) / 10


def all_triples() -> list[tuple[float, float, float]]:
    """The 35 sorted triples of distinct periods, with their full periods available via full_period."""
    return list(itertools.combinations(PERIODS, 3))


# Steps per time unit: a window of 800 steps holds 3 full periods of the slowest kept triple (6).
STEPS_PER_UNIT = BLOCK_SIZE / max(full_period(t) for t in TRIPLES) / MIN_PERIODS_IN_BLOCK  # 44.44


def period_in_steps(period: float) -> float:
    """A period in time units, converted to steps of the sampling grid (e.g. 3.0 -> 133.3)."""
    return float(period) * STEPS_PER_UNIT


def grouping_costs_context(triple: tuple[float, float, float]) -> bool:
    """True when every pair of moons, tracked by one memory, needs more context than the slowest moon.

    A memory that follows two moons together must wait for their joint period (the pair's LCM);
    a full three-way split waits only for the slowest moon. If some pair has a joint period no
    longer than the slowest moon's period, grouping that pair is free.
    """
    slowest = max(triple)
    return all(full_period(pair) > slowest for pair in itertools.combinations(triple, 2))


# The variant task that tests the explanation: triples where grouping any two moons costs context.
# Among those, keep the ones whose slowest moon fits 3 times in a window as the official grid does,
# and hold out the last one for validation.
_VARIANT = tuple(t for t in all_triples() if grouping_costs_context(t))
VARIANT_TRAIN_TRIPLES = _VARIANT[:-1]
VARIANT_VALID_TRIPLE = _VARIANT[-1]


def observe(times: torch.Tensor, triple: tuple[float, float, float]) -> torch.Tensor:
    """The 6-d observation of three moons at the given times.

    times: (...,) in time units -> (..., 6) ordered (sin₁, cos₁, sin₂, cos₂, sin₃, cos₃).
    """
    if len(triple) != 3 or any(p <= 0 for p in triple):
        raise ValueError(f"observe(triple={triple}): pass three positive periods.")
    cols = []
    for p in triple:
        phase = 2 * math.pi * times / p + PHASE
        cols += [torch.sin(phase), torch.cos(phase)]
    return torch.stack(cols, dim=-1)  # (..., 6)


def sample_windows(
    n: int,
    triples: tuple[tuple[float, float, float], ...] | list[tuple[float, float, float]],
    generator: torch.Generator,
    length: int = BLOCK_SIZE + 1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``n`` windows of ``length`` steps, each from a random triple and a random start.

    Returns (x, triple_index): x of shape (n, length, 6), triple_index of shape (n,). With the
    default length of 801 a model reads x[:, :-1] and is scored on x[:, 1:] (the next point).
    """
    if n < 1:
        raise ValueError(f"sample_windows(n={n}): ask for at least one window.")
    if not isinstance(generator, torch.Generator):
        raise TypeError("sample_windows(generator=...): pass a torch.Generator (seeded) so that "
                        "the windows are reproducible.")
    if len(triples) == 0:
        raise ValueError("sample_windows(triples=...): pass at least one triple of periods.")
    if not 2 <= length <= N_TIMES // 2:
        raise ValueError(f"sample_windows(length={length}): use 2 ≤ length ≤ {N_TIMES // 2}.")
    which = torch.randint(len(triples), (n,), generator=generator)  # (n,)
    # Same start range as the official code: uniform in [0, N_TIMES - 2*BLOCK_SIZE - 1).
    start = torch.randint(N_TIMES - 2 * BLOCK_SIZE - 1, (n,), generator=generator)  # (n,)
    steps = start[:, None] + torch.arange(length)[None, :]  # (n, length)
    times = steps.double() / STEPS_PER_UNIT
    x = torch.empty(n, length, 6, dtype=torch.float64)
    for i, triple in enumerate(triples):
        rows = which == i
        if rows.any():
            x[rows] = observe(times[rows], tuple(triple))
    return x.float(), which
