"""Every invalid input of the core package raises a clear error, table-driven.

Each row: what is wrong, the call, the error type, and words the message must contain so that
it names the argument and the fix.
"""

import numpy as np
import pytest
import torch

from mosaics_edu.core.features import KeyExtractor, ValueExtractor, leaky_average
from mosaics_edu.core.layers import ContextMemory, MosaicBlock, PersistentMemory
from mosaics_edu.core.memory import kernel_regression, softmax_attention
from mosaics_edu.models import GPT, GPTConfig, MemoryMosaicLM, MosaicConfig, count_parameters

_K, _V, _Q = np.ones((5, 3)), np.ones((5, 2)), np.ones((2, 3))


def _mosaic():
    torch.manual_seed(0)
    return MemoryMosaicLM(MosaicConfig.preset("cpu-tiny", block_size=16))


def _gpt():
    torch.manual_seed(0)
    return GPT(GPTConfig.preset("cpu-tiny", block_size=16))


CASES = [
    # --- associative memory
    ("negative bandwidth", lambda: kernel_regression(_K, _V, _Q, -0.5), ValueError, "beta.*>= 0"),
    ("negative per-head bandwidth",
     lambda: softmax_attention(_K, _V, _Q, np.array(-1.0)), ValueError, "beta"),
    ("empty memory", lambda: kernel_regression(_K[:0], _V[:0], _Q, 1.0), ValueError, "empty"),
    ("keys/values count mismatch", lambda: kernel_regression(_K, _V[:2], _Q, 1.0), ValueError,
     "same number of pairs"),
    ("query size mismatch", lambda: kernel_regression(_K, _V, np.ones((2, 4)), 1.0), ValueError,
     "same feature size"),
    ("keys not an array", lambda: kernel_regression({"a": 1}, _V, _Q, 1.0), TypeError, "keys"),
    ("complex keys", lambda: kernel_regression(torch.ones(5, 3, dtype=torch.complex64), _V, _Q, 1.),
     TypeError, "real"),
    # --- leaky average and extractors
    ("decay outside [0, 1]", lambda: leaky_average(torch.ones(4, 2), 2.0), ValueError, "decay"),
    ("integer input to leaky average", lambda: leaky_average(torch.ones(4, 2, dtype=torch.int64),
                                                             0.5), TypeError, "float"),
    ("1-D input to leaky average", lambda: leaky_average(torch.ones(4), 0.5), ValueError, "T, d"),
    ("unknown leaky method", lambda: leaky_average(torch.ones(4, 2), 0.5, method="fast"),
     ValueError, "method"),
    ("n_embd % n_head (keys)", lambda: KeyExtractor(10, 4), ValueError, "divisible"),
    ("n_embd % n_head (values)", lambda: ValueExtractor(10, 4), ValueError, "divisible"),
    ("wrong width into a layer", lambda: ContextMemory(8, 2)(torch.ones(1, 3, 6)), ValueError,
     "n_embd=8"),
    ("2-D input into a layer", lambda: PersistentMemory(8, 2, 4)(torch.ones(3, 8)), ValueError,
     "batch, time"),
    ("token ids into a layer", lambda: MosaicBlock(8, 2, 4)(torch.ones(1, 3, 8, dtype=torch.long)),
     TypeError, "floating"),
    ("bad pmem_size", lambda: PersistentMemory(8, 2, -3), ValueError, "pmem_size"),
    # --- configurations
    ("n_embd % n_head (config)", lambda: MosaicConfig(n_embd=100, n_head=12), ValueError,
     "divisible"),
    ("n_embd % n_head (GPT config)", lambda: GPTConfig(n_embd=100, n_head=12), ValueError,
     "divisible"),
    ("zero layers", lambda: MosaicConfig(n_layer=0), ValueError, "n_layer"),
    ("float vocab", lambda: GPTConfig(vocab_size=100.0), ValueError, "vocab_size"),
    ("dropout 1", lambda: GPTConfig(dropout=1.0), ValueError, "dropout"),
    ("attention dropout not a flag", lambda: MosaicConfig(attn_dropout=0.1), ValueError,
     "attn_dropout must be True"),
    ("embedding dropout not a flag", lambda: MosaicConfig(embd_dropout="yes"), ValueError,
     "embd_dropout must be True"),
    ("attention dropout rate 1", lambda: ContextMemory(8, 2, attn_dropout=1.0), ValueError,
     "attn_dropout"),
    ("bad pmem_size (config)", lambda: MosaicConfig(pmem_size=0), ValueError, "pmem_size"),
    ("unknown preset", lambda: MosaicConfig.preset("huge"), ValueError, "cpu-tiny"),
    ("unknown override", lambda: GPTConfig.preset("cpu-tiny", n_embed=64), ValueError, "n_embed"),
    ("wrong config class", lambda: MemoryMosaicLM(GPTConfig()), TypeError, "MosaicConfig"),
    ("count_parameters of a non-module", lambda: count_parameters([1, 2]), TypeError, "Module"),
]

for name, make in [("mosaic", _mosaic), ("gpt", _gpt)]:
    CASES += [
        (f"{name}: sequence longer than block",
         lambda make=make: make()(torch.zeros(1, 17, dtype=torch.long)), ValueError, "block_size"),
        (f"{name}: float token ids", lambda make=make: make()(torch.zeros(1, 4)), TypeError,
         "integer token ids"),
        (f"{name}: 1-D ids", lambda make=make: make()(torch.zeros(4, dtype=torch.long)), ValueError,
         "batch, time"),
        (f"{name}: empty sequence", lambda make=make: make()(torch.zeros(1, 0, dtype=torch.long)),
         ValueError, "empty"),
        (f"{name}: id beyond vocab", lambda make=make: make()(torch.full((1, 3), 256)), ValueError,
         "vocab_size"),
        (f"{name}: negative id", lambda make=make: make()(torch.full((1, 3), -2)), ValueError,
         "vocab_size"),
        (f"{name}: targets shape", lambda make=make: make()(torch.zeros(2, 4, dtype=torch.long),
                                                            torch.zeros(2, 3, dtype=torch.long)),
         ValueError, "targets"),
        (f"{name}: float targets", lambda make=make: make()(torch.zeros(2, 4, dtype=torch.long),
                                                            torch.zeros(2, 4)), TypeError,
         "targets"),
        (f"{name}: negative max_new_tokens",
         lambda make=make: make().generate(torch.zeros(1, 2, dtype=torch.long), -1), ValueError,
         "max_new_tokens"),
        (f"{name}: negative temperature",
         lambda make=make: make().generate(torch.zeros(1, 2, dtype=torch.long), 2, temperature=-1),
         ValueError, "temperature"),
        (f"{name}: top_k 0",
         lambda make=make: make().generate(torch.zeros(1, 2, dtype=torch.long), 2, top_k=0),
         ValueError, "top_k"),
        (f"{name}: empty prompt",
         lambda make=make: make().generate(torch.zeros(1, 0, dtype=torch.long), 2), ValueError,
         "non-empty"),
    ]


@pytest.mark.parametrize("what, call, error, words", CASES, ids=[c[0] for c in CASES])
def test_invalid_input_raises_clear_error(what, call, error, words):
    with pytest.raises(error, match=words):
        call()
