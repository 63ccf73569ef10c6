"""Three moons: the paper's toy experiment on predictive disentanglement.

Modules: ``data`` (triples, observations, windows), ``model`` (one layer of memory units with
complex-linear maps), ``train`` (the recipe + snapshots: ``train_moons``), ``evaluate`` (generation error, per
position loss, which moon a unit reads), ``io`` (atomic save, safe load), ``runs`` (train +
evaluate + save: what ``python -m mosaics_edu.moons`` does), ``subnormal`` (training and evaluation
compute with subnormal numbers flushed to zero: sharp kernels made them several times slower).
"""

from .data import (
    STEPS_PER_UNIT,
    TRAIN_TRIPLES,
    TRIPLES,
    VALID_TRIPLE,
    VARIANT_TRAIN_TRIPLES,
    VARIANT_VALID_TRIPLE,
    full_period,
    observe,
    period_in_steps,
    sample_windows,
)
from .evaluate import (
    CLEAN_SHARE,
    crossing_point,
    generate,
    generation_error,
    is_clean_split,
    moon_shares,
    position_error,
    position_loss,
)
from .io import load_run, save_run
from .model import BETA, MoonMemory, block_magnitudes, to_complex_linear
from .runs import EvalSettings, evaluate_run, train_and_save
from .train import MoonsConfig, train_moons

__all__ = [
    "STEPS_PER_UNIT", "TRAIN_TRIPLES", "TRIPLES", "VALID_TRIPLE", "VARIANT_TRAIN_TRIPLES",
    "VARIANT_VALID_TRIPLE", "full_period", "observe", "period_in_steps", "sample_windows",
    "CLEAN_SHARE", "crossing_point", "generate", "generation_error", "is_clean_split",
    "moon_shares", "position_error", "position_loss", "load_run", "save_run", "BETA",
    "MoonMemory", "block_magnitudes", "to_complex_linear", "EvalSettings", "evaluate_run",
    "train_and_save", "MoonsConfig", "train_moons",
]
