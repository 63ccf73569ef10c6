"""The course's glossary: every term, one sentence, and the chapter that teaches it.

``tools/course_pages.py`` writes it as ``book/glossary.md``; ``tests/chapters/test_course_pages.py`` checks
that the page is fresh and that each term's chapter really uses it (``pattern``, a regular
expression matched against that chapter's text, case-sensitive unless it says otherwise).
"""

from __future__ import annotations

from typing import NamedTuple


class Term(NamedTuple):
    term: str
    chapter: str  # the two digits of the chapter that teaches it
    definition: str  # one sentence
    pattern: str  # found in the chapter's markdown


GLOSSARY: list[Term] = [
    Term('ablation', '08',
         'Removing one component of a trained model (a head, a whole memory) and measuring how much the '
         'loss changes, to learn what that component does.',
         '[Aa]blat'),
    Term('all-reduce', '10',
         'A collective operation after which every process holds the same combination (here the average) '
         "of all processes' tensors; DDP uses it on the gradients.",
         'all-reduce'),
    Term('associative memory', '01',
         'A store of key–value pairs that answers a query key with a value, here the kernel-weighted '
         'average of the stored values.',
         'associative memor'),
    Term('bandwidth β', '01',
         "The number that sets how sharply a memory's weights pick the stored keys nearest the query: "
         "small β averages broadly, large β looks up the nearest key (the papers' β is twice the Gaussian "
         'β of chapters 01–02).',
         'bandwidth'),
    Term('β(n), adaptive bandwidth', '09',
         "Memory Mosaics v2's bandwidth β₁·n^α + β₀, which grows with the number n of pairs a memory "
         'holds.',
         'β\\(n\\)'),
    Term('bfloat16 (bf16)', '10',
         "A 16-bit float format with float32's 8 exponent bits (the same range, fewer digits), so training "
         'in it needs no loss scaling.',
         'bfloat16'),
    Term('bootstrap band', '06',
         'A range for a measured curve obtained by recomputing it on many resamples (with replacement) of '
         'the evaluation windows; it shows how much the curve owes to the sample.',
         'bootstrap'),
    Term('C-mem (contextual memory)', '04',
         "Memory units whose key–value pairs come from the context being read; a mosaic block's "
         'replacement for attention.',
         'contextual memory'),
    Term('causal retrieval', '02',
         'Retrieval at position t from the pairs of positions s < t only, so that no prediction reads what '
         'it is asked to predict.',
         'strictly causal|s < t'),
    Term('decay λ', '02',
         'The fraction of the past a leaky average keeps per step: larger λ, longer memory (`decay` in '
         'code).',
         'decay'),
    Term('DDP (distributed data parallel)', '10',
         'Training with one full copy of the model per process (per GPU), the gradients averaged across '
         'processes by an all-reduce at every step.',
         'DDP'),
    Term('direct logit attribution', '08',
         "Splitting a prediction's logit into the additive contributions of the residual stream's "
         'components (embedding, each memory of each block), read through the final LayerNorm held fixed.',
         'logit attribution'),
    Term('FSDP (fully sharded data parallel)', '10',
         'Data parallelism in which each of W GPUs keeps 1/W of the weights, gradients and optimizer state '
         "and gathers a block's weights only while computing it.",
         'FSDP'),
    Term('gated keys', '09',
         "Memory Mosaics v2's keys, a leaky average whose input gate and decay are computed from the "
         'current input, so a key can step over filler tokens.',
         '[Gg]ated key'),
    Term('gloo, NCCL', '10',
         "The two communication backends of PyTorch's distributed training: gloo runs on CPUs (and GPUs), "
         "NCCL is NVIDIA's library for GPUs.",
         'gloo'),
    Term('global batch', '10',
         'The sequences one optimizer step trains on: batch size × micro-batches of accumulation, shared '
         'among the processes.',
         'global batch'),
    Term('gradient accumulation', '05',
         'Adding the gradients of several micro-batches before one optimizer step, to train on a larger '
         'batch than fits in memory at once.',
         'accumulat'),
    Term('head', '04',
         'One memory unit among the `n_head` of a contextual memory (or one attention head of a GPT), with '
         'its own slice of the projections and its own λ and β; index h.',
         'head'),
    Term('in-context learning', '06',
         'Getting better at predicting a sequence from what the sequence itself has shown so far, with no '
         'change to the weights.',
         'in[- ]context'),
    Term('induction head', '02',
         'A mechanism that, having seen “… a b …”, predicts b when a comes again; a memory unit implements '
         'it in one layer.',
         'induction head'),
    Term('key', '02',
         'What a memory stores and is queried with: in a memory unit, a leaky average of the past inputs, '
         'normalised (`keys` in code).',
         '[Kk]eys?'),
    Term('kernel regression (Nadaraya–Watson)', '01',
         'Estimating E[V | K = k] by averaging stored values weighted by a kernel of the distance between '
         'their keys and k.',
         'Nadaraya'),
    Term('leaky key (leaky average)', '02',
         'A key built as k̄_t = k̃_t + λ·k̄_{t−1}, an exponentially fading average of the past that '
         'carries what came before the current input.',
         'leaky'),
    Term('leave-one-out', '01',
         'Scoring a memory on each stored pair answered from the other pairs only, to choose β without '
         'knowing the true function.',
         'leave-one-out'),
    Term('logit lens', '08',
         'Reading a vector inside the model (here a persistent-memory row) through the final LayerNorm and '
         "the output head, as if it were the model's last hidden state.",
         'logit lens'),
    Term('long-term memory', '09',
         "Memory Mosaics v2's contextual memory of the positions at least m steps back, m random during "
         'training.',
         'long-term'),
    Term('memory unit', '02',
         'One associative memory with its key extractor (the past) and value extractor (a one-step peek '
         'ahead), answering at t from the pairs s < t: the building block of a mosaic.',
         'memory unit'),
    Term('MFU (model-FLOPs utilisation)', '05',
         "The floating-point operations per second a training run achieves, counted from the model's size, "
         "divided by the hardware's peak.",
         'MFU'),
    Term('MISE', '09',
         'Mean integrated squared error, the error of a kernel estimator averaged over the whole input '
         'space; its optimal bandwidth shrinks like n^(−1/(p+4)).',
         'MISE'),
    Term('mosaic', '04',
         'A network of many memory units — heads side by side, blocks stacked — trained together.',
         'mosaic'),
    Term('OOD (out of distribution)', '06',
         'Evaluated on text or tasks drawn differently from the training data.',
         'out of distribution|out-of-distribution'),
    Term('P-mem (persistent memory)', '04',
         'A memory whose keys and values are learned tables rather than taken from the context; it '
         "replaces a transformer's MLP.",
         'persistent memory'),
    Term('peek (one-step peek)', '02',
         'The value of position t mixes x_t with the next input x_{t+1}, so retrieving a stored pair says '
         'what came next.',
         'peek'),
    Term('per-position loss', '06',
         "The loss averaged over many windows, position by position: how a model's prediction improves as "
         'its context grows.',
         'position by position|per-position'),
    Term('positional encoding', '04',
         "Information about each token's position added to its embedding; a mosaic needs none, the leaky "
         'keys carry order.',
         'positional encoding'),
    Term('predict before you run', '00',
         'A question before a key experiment: commit to an answer, run the cell, then unfold what the run '
         'showed.',
         'Predict before you run'),
    Term('predictive disentanglement', '03',
         'The split of a prediction task among memory units during training, each unit taking a part it '
         'can predict from few examples.',
         'predictive disentanglement'),
    Term('random delay m', '09',
         "The gap before the long-term memory's pairs, drawn at random at every training step so that the "
         'long-term memory learns position-invariant retrieval.',
         'random delay'),
    Term('RegBench', '07',
         'A benchmark of in-context language learning: continue strings of a random probabilistic '
         'automaton never seen in training.',
         'RegBench'),
    Term('residual stream', '08',
         "The running sum of a block stack's outputs (embedding plus every memory's contribution) that the "
         'final LayerNorm and head read.',
         'residual stream'),
    Term('RoPE (rotary position embedding)', '09',
         "A transformer's way of encoding positions by rotating queries and keys by an angle proportional "
         "to position; the v2 paper's baselines use it.",
         'RoPE'),
    Term('short-term memory', '09',
         "Memory Mosaics v2's contextual memory of the last few positions only.",
         'short-term'),
    Term('softmax attention', '01',
         'The weighted sum of values with weights softmax of query–key dot products; for keys of equal '
         'norm it is Gaussian kernel regression with β set by the scale.',
         'softmax'),
    Term('steamroller', '03',
         "The v1 paper's picture of training: the loss is the area under the per-position learning curve, "
         'so training pushes the curve down from the left.',
         'steamroller'),
    Term('SwiGLU', '09',
         "A gated feed-forward network W₂(SiLU(W₁x) ⊙ W₃x); v2's persistent memory.",
         'SwiGLU'),
    Term('TVD (total-variation distance)', '07',
         'Half the sum of absolute differences between two probability distributions: 0 when equal, 1 when '
         'disjoint.',
         'TVD'),
    Term('value', '02',
         'What a memory stores to answer with: in a memory unit, a peek one step ahead, γ·x_t + '
         '(1−γ)·x_{t+1} (`values` in code).',
         '[Vv]alues?'),
    Term('ZeRO-3', '10',
         'The optimizer-state, gradient and parameter sharding scheme (Rajbhandari et al. 2020) that FSDP '
         'implements.',
         'ZeRO-3'),
]
