"""Three models of the same size for a fair RegBench comparison: mosaic, GPT and LSTM.

The comparison is only fair if every model has (almost) the same number of parameters. The GPT
sets the budget: it needs a position table as long as the longest input (``block_size`` =
the longest sample minus one). Then, as the Memory Mosaics code does for this benchmark, the
mosaic's persistent-memory size ``pmem_size`` is chosen so that its count is closest to the
GPT's (each extra persistent pair costs 2·n_embd parameters per block), and the LSTM's width so
that its count is closest too. :func:`matched_configs` returns the three configurations,
:func:`build_model` builds one of them.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ...models.lm import GPT, GPTConfig, MemoryMosaicLM, MosaicConfig, count_parameters
from .datasets import CPU_SIZES, SampleSizes
from .lstm import LSTMLM, LSTMConfig
from .vocab import VOCAB_SIZE

__all__ = ["MODEL_NAMES", "matched_configs", "build_model", "parameter_count"]

MODEL_NAMES = ("mosaic", "gpt", "lstm")
Config = MosaicConfig | GPTConfig | LSTMConfig


def parameter_count(config: Config) -> int:
    """Parameters of the model ``config`` describes, counted on the meta device (no memory)."""
    with torch.device("meta"):
        return count_parameters(_build(config))


def _build(config: Config) -> nn.Module:
    if isinstance(config, MosaicConfig):
        return MemoryMosaicLM(config)
    if isinstance(config, GPTConfig):
        return GPT(config)
    if isinstance(config, LSTMConfig):
        return LSTMLM(config)
    raise TypeError(f"config must be a MosaicConfig, GPTConfig or LSTMConfig, got {type(config).__name__}")


def matched_configs(
    n_embd: int = 64,
    n_layer: int = 2,
    n_head: int = 4,
    lstm_layers: int = 1,
    dropout: float = 0.0,
    sizes: SampleSizes = CPU_SIZES,
) -> dict[str, Config]:
    """``{"mosaic": ..., "gpt": ..., "lstm": ...}`` configurations of (nearly) equal size.

    The GPT and the mosaic share ``n_embd``, ``n_layer``, ``n_head`` and ``dropout``; the GPT's
    ``block_size`` fits the longest input of ``sizes``; the mosaic's ``pmem_size`` and the LSTM's
    width (``lstm_layers`` layers) are then chosen to match the GPT's parameter count.
    """
    if not isinstance(sizes, SampleSizes):
        raise TypeError(f"sizes must be a SampleSizes (e.g. CPU_SIZES), got {type(sizes).__name__}")
    common: dict[str, Any] = dict(
        vocab_size=VOCAB_SIZE, block_size=sizes.max_tokens - 1, n_layer=n_layer, n_head=n_head,
        n_embd=n_embd, dropout=dropout,
    )  # fmt: skip
    gpt = GPTConfig(**common)  # validates the shared fields
    budget = parameter_count(gpt)
    base = MosaicConfig(**common)
    per_pair = parameter_count(MosaicConfig(**common, pmem_size=base.pmem_size + 1)) - parameter_count(base)
    pmem = max(1, round(base.pmem_size + (budget - parameter_count(base)) / per_pair))
    mosaic = MosaicConfig(**common, pmem_size=pmem)
    lstm = LSTMConfig.for_budget(budget, n_layer=lstm_layers, dropout=dropout)
    return {"mosaic": mosaic, "gpt": gpt, "lstm": lstm}


def build_model(name: str, config: Config | None = None, seed: int = 0, **kwargs: Any) -> nn.Module:
    """The model ``name`` (``mosaic``, ``gpt`` or ``lstm``), initialised from ``seed``.

    ``config`` defaults to ``matched_configs(**kwargs)[name]``.
    """
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown model {name!r}; choose one of {MODEL_NAMES}")
    if config is None:
        config = matched_configs(**kwargs)[name]
    elif kwargs:
        raise ValueError(f"give either config or matched_configs arguments, not both (got {sorted(kwargs)})")
    expected = {"mosaic": MosaicConfig, "gpt": GPTConfig, "lstm": LSTMConfig}[name]
    if not isinstance(config, expected):
        raise TypeError(f"model {name!r} needs a {expected.__name__}, got {type(config).__name__}")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    torch.manual_seed(seed)
    return _build(config)
