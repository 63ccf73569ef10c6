"""RegBench-mini: in-context language learning on random automata, sized for a 2-core CPU.

RegBench (Akyürek et al. 2024) asks a model to continue strings of a regular language it has
never seen, from a few strings of that language in its context. Each language is a random
automaton; training and test automata are disjoint, so only in-context learning helps.
RegBench-mini keeps the benchmark's automata and metrics exactly and shrinks the samples (see
``shared/reference/regbench.md`` §4 of the course notes).

One idea per module:

- :mod:`.vocab`    : the 20-token vocabulary (``.`` pad, ``a`` … ``r``, ``|`` separator)
- :mod:`.automata` : :class:`Automaton`, trimming, minimisation, the canonical form, the generator
- :mod:`.datasets` : samples, the fixed test / validation sets, nested training sets, batches
- :mod:`.metrics`  : reference distributions, accuracy and TVD, :func:`evaluate`
- :mod:`.jsonio`   : a JSON format for automata (bring your own)
- :mod:`.ngram`    : in-context n-gram baselines, with two back-offs (the longest context seen, and
  the benchmark's: leftover mass to lower orders)
- :mod:`.lstm`     : an LSTM language model of a given size (the non-in-context control)
- :mod:`.matched`  : mosaic, GPT and LSTM configurations with equal parameter counts
- :mod:`.train`    : one resumable training run with its scores as JSON; the command line
  ``python -m mosaics_edu.regbench train --model mosaic|gpt|lstm --n-automata N --seed S``
  (and ``... baselines`` for the n-gram scores)
- :mod:`.sweep`    : the whole sweep of chapter 07 (learning rates, then every N and seed)
- :mod:`.factors`  : the N = 100 runs that change one protocol factor at a time toward the
  paper's (sample sizes, width, steps; best-validation vs last checkpoint), and their table
- :mod:`.fair`     : the N = 100 fair fight: mosaic and GPT tuned with the same budget on
  validation (learning rate × dropout, then seeds), written as ``tuning.json``
- :mod:`.shipped`  : the sweep's results shipped with the package, :func:`load_sweep`,
  :func:`sweep_table`, :func:`load_shipped_model`, :func:`load_tuning`, :func:`load_factors`, and
  the paper's numbers
- :mod:`.draw`     : :func:`~.draw.draw_automaton`, an automaton as circles and labelled arrows
- :mod:`.view`     : chapter 07's widget: a test automaton, its sample, two models' predictions

Quick start::

    from mosaics_edu.course.regbench import InContextNGram, evaluate, test_automata
    print(evaluate(InContextNGram(2), test_automata()))   # accuracy and TVD of the bigram
"""

from .automata import Automaton, draw_raw_table, minimise, random_automaton, reachable_states, trim
from .datasets import (
    CPU_SIZES,
    IGNORE_INDEX,
    N_TEST,
    N_VALIDATION,
    PAPER_SIZES,
    TRAINING_SIZES,
    Sample,
    SampleSizes,
    draw_sample,
    draw_samples,
    make_batch,
    test_automata,
    training_automata,
    training_set,
    validation_automata,
)
from .jsonio import automata_from_json, automata_to_json, load_automata, save_automata
from .lstm import LSTMLM, LSTMConfig, lstm_parameters
from .matched import MODEL_NAMES, build_model, matched_configs, parameter_count
from .metrics import Scores, evaluate, evaluate_samples, reference_distribution
from .ngram import BACKOFFS, InContextNGram, MemoryBigram, memory_bigram, ngram_distributions
from .shipped import (
    PAPER_NUMBERS,
    load_factors,
    load_shipped_model,
    load_sweep,
    load_tuning,
    shipped_result,
    sweep_table,
)
from .vocab import PAD, SEP, SYMBOLS, VOCAB_SIZE, decode, encode

__all__ = [
    "Automaton",
    "draw_raw_table",
    "minimise",
    "random_automaton",
    "reachable_states",
    "trim",
    "CPU_SIZES",
    "IGNORE_INDEX",
    "N_TEST",
    "N_VALIDATION",
    "PAPER_SIZES",
    "TRAINING_SIZES",
    "Sample",
    "SampleSizes",
    "draw_sample",
    "draw_samples",
    "make_batch",
    "test_automata",
    "training_automata",
    "training_set",
    "validation_automata",
    "automata_from_json",
    "automata_to_json",
    "load_automata",
    "save_automata",
    "LSTMLM",
    "LSTMConfig",
    "lstm_parameters",
    "MODEL_NAMES",
    "build_model",
    "matched_configs",
    "parameter_count",
    "Scores",
    "evaluate",
    "evaluate_samples",
    "reference_distribution",
    "BACKOFFS",
    "InContextNGram",
    "ngram_distributions",
    "MemoryBigram",
    "memory_bigram",
    "PAPER_NUMBERS",
    "load_shipped_model",
    "load_sweep",
    "load_tuning",
    "load_factors",
    "shipped_result",
    "sweep_table",
    "PAD",
    "SEP",
    "SYMBOLS",
    "VOCAB_SIZE",
    "decode",
    "encode",
]
