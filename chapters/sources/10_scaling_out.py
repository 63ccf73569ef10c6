# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 10 · Scaling out: from one GPU to many
#
# Every model of this course trains on a laptop. The papers' models did not: the first Memory
# Mosaics paper trained its GPT-2-sized models on 64 GPUs, and its sequel trained models of 1.5
# and 10 billion parameters. The same command, `python -m mosaics_edu.train`, runs on one GPU,
# on several under `torchrun`, and on several machines. This chapter is the arithmetic behind it
# (how a batch is shared, why more GPUs change the speed and not the result, what the training
# state costs per GPU), a proof on your CPU that two processes train exactly what one process
# trains, and the commands.
#
# **Prerequisites.** Chapter 05 (the training loop: AdamW, gradient accumulation, the presets and
# the model-FLOPs utilisation, MFU); chapter 04 (where a model's parameters sit); chapter 09 for
# the v2 model's random delay. From PyTorch: `loss.backward()` *adds* gradients into each
# parameter's `.grad`, an optimizer step reads them; float32 and bfloat16 tensors.
#
# **By the end of this chapter you will be able to**
#
# - lay out a global batch over processes and GPUs, and say why the package's global batch does
#   not depend on the number of processes;
# - explain why data-parallel training (DDP) with W processes is the same computation as one
#   process accumulating W times as many micro-batches, and check it on a CPU;
# - compute the training state per GPU under DDP and under FSDP, and tell when a model needs FSDP;
# - choose between bfloat16 and float16, and read a run's throughput and MFU;
# - launch the package's training with `torchrun` on several GPUs or machines.

# %%
import tempfile

import ipywidgets as widgets
import numpy as np

from mosaics_edu import training as train
from mosaics_edu.course import scaling
from mosaics_edu.course.checks import ch10
from mosaics_edu.course.widgets import defaults, interactive_figure
from mosaics_edu.models import MosaicConfig

# %% [markdown]
# ## 1. Data parallelism in one paragraph
#
# Training on W GPUs starts W **processes**, one per GPU, numbered by their **rank** 0 … W−1; W is
# the **world size**. Every process holds a full copy of the model and of the optimizer. At each
# step each process computes the gradients of its share of the batch; then an **all-reduce** — a
# collective operation after which every process holds the same result, here the average of all
# processes' gradients — runs while the backward pass is still going; then every process takes
# the same AdamW step on the same averaged gradients, so the copies stay identical. PyTorch's
# `DistributedDataParallel` (**DDP**) does this wrapping of a model. The all-reduce travels over
# a communication **backend**: **NCCL** (NVIDIA's library, for GPUs, over NVLink or InfiniBand) or
# **gloo** (PyTorch's own, which also runs on CPUs — we use it below).
#
# In this package the **global batch** of one step is `--batch-size` sequences per **micro-batch**
# (what one forward and backward pass processes at once; chapter 05's gradient accumulation adds
# up several before a step) × `--grad-accum` micro-batches, **whatever the number of
# processes**: each of the W processes runs `grad_accum / W` of the micro-batches. Every process
# draws the same seeded stream of micro-batches and trains on its own slice of each step's, so a
# step sees exactly the batch one process would have seen.
#
# **Exercise 10.1 — `batch_layout`** (★, 10 minutes). Return the triple (micro-batches per
# process, sequences per step, tokens per step) for `batch_size` sequences of `block_size` tokens
# per micro-batch, `grad_accum` micro-batches per step and `world_size` processes. When the
# processes cannot share the micro-batches equally, raise a `ValueError` that says so, as the
# command line does.

# %% [markdown] tags=["hints"]
# <details><summary><b>Hint 1</b> (a nudge)</summary>
#
# The global batch does not depend on `world_size`: the processes *share* the `grad_accum`
# micro-batches of a step instead of each running all of them. And when they cannot share them
# equally?
# </details>
#
# <details><summary><b>Hint 2</b> (the approach)</summary>
#
# Refuse first: a remainder when `grad_accum` is divided by `world_size` means the processes
# cannot share the micro-batches equally, so raise a `ValueError` that says so. Otherwise each
# process runs A = `grad_accum // world_size` micro-batches of `batch_size` sequences, a step
# trains `batch_size × A × world_size` sequences (which is `batch_size × grad_accum`), and each
# sequence is `block_size` tokens. Return (A, sequences, tokens) in that order. One micro-batch
# per process (`grad_accum == world_size`) is a valid layout, not an error.
# </details>
#
# <details><summary><b>Hint 3</b> (the key line)</summary>
#
# ```python
# per_process, rest = divmod(grad_accum, world_size)  # rest != 0: raise a ValueError
# ```
# </details>

# %% tags=["exercise"]
def batch_layout(batch_size: int, grad_accum: int, world_size: int, block_size: int) -> tuple[int, int, int]:
    """(micro-batches per process, sequences per step, tokens per step) of one optimizer step."""
    ### BEGIN SOLUTION
    if grad_accum % world_size:
        raise ValueError(f"{world_size} processes cannot share {grad_accum} micro-batches equally")
    per_process = grad_accum // world_size
    sequences = batch_size * per_process * world_size
    return per_process, sequences, sequences * block_size
    ### END SOLUTION


# %% tags=["check"]
ch10.check_batch_layout(batch_layout)

# %% [markdown]
# The first paper's recipe (the package's preset `paper-gpt2-small`) trains on 512 sequences of 512
# tokens per step. With the package's `scaling.batch_layout` (the same function as yours), here
# are four ways to run it; the last is the paper's own layout, 64 GPUs with 8 sequences each and
# no accumulation:

# %%
paper = train.TrainConfig.from_preset("paper-gpt2-small")
T = MosaicConfig.preset("paper-gpt2-small").block_size  # 512 tokens per sequence
layouts = {  # name: (--batch-size, --grad-accum, number of processes)
    "1 GPU": (paper.batch_size, paper.grad_accum, 1),
    "1 node x 8 GPUs": (paper.batch_size, paper.grad_accum, 8),
    "2 nodes x 8 GPUs": (paper.batch_size, paper.grad_accum, 16),
    "8 nodes x 8 GPUs (the paper)": (8, 64, 64),
}
for name, (batch, accum, world) in layouts.items():
    per_process, sequences, tokens = scaling.batch_layout(batch, accum, world, T)
    print(f"{name:>29}: {batch:>2} sequences x {per_process:>2} micro-batches x {world:>2} processes "
          f"= {sequences} sequences = {tokens:,} tokens per step")
    assert sequences == 512 and tokens == 262_144

# %% [markdown]
# A smaller per-GPU batch costs no accuracy here: if a GPU runs out of memory, halve
# `--batch-size` and double `--grad-accum`; the step is the same, only slower. (The v2 paper's
# recipe is larger: 1,024 sequences of 4,096 tokens per step, about 4.2 million tokens, on H100
# GPUs of 80 GB.)
#
# ## 2. The recipe
#
# ```bash
# # one GPU: the gpu-small preset turns torch.compile on (--no-compile turns it off); autocast
# # picks bf16 on GPUs that have it (A100, H100, RTX 30xx and later) and fp16 with loss scaling
# # on older ones (T4, V100); --dtype bfloat16 or --dtype float16 makes the choice yours
# python -m mosaics_edu.train --model mosaic --preset gpu-small --compile
# python -m mosaics_edu.train --model gpt --preset gpu-small --dtype bfloat16
#
# # the first paper's recipe on one node with 8 GPUs: 16 sequences x 4 micro-batches x 8 GPUs = 512
# torchrun --standalone --nproc-per-node 8 -m mosaics_edu.train --model mosaic \
#     --preset paper-gpt2-small --batch-size 16 --grad-accum 32
#
# # 2 nodes x 8 GPUs: the same command on both nodes; HOST is an address of the first node that
# # the second can reach, RUN_ID any name shared by the nodes of this run; --out-dir must be a
# # folder that every node sees (rank 0 writes the checkpoint, every rank reads it on --resume)
# torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29500 \
#     --rdzv-id RUN_ID -m mosaics_edu.train --model mosaic --preset paper-gpt2-small \
#     --out-dir /shared/runs/mosaic-paper
#
# # the first paper's own layout, 8 nodes x 8 GPUs, 8 sequences per GPU and no accumulation
# torchrun --nnodes 8 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29500 \
#     --rdzv-id RUN_ID -m mosaics_edu.train --model mosaic --preset paper-gpt2-small \
#     --batch-size 8 --grad-accum 64 --out-dir /shared/runs/mosaic-paper
#
# # interrupted? the same command with --resume continues from <out-dir>/ckpt.pt, also on
# # a different number of GPUs (same batches; only dropout's random numbers differ)
# torchrun --standalone --nproc-per-node 8 -m mosaics_edu.train --model mosaic \
#     --preset paper-gpt2-small --resume
#
# # the proof on a CPU: 2 processes with the gloo backend instead of NCCL
# torchrun --standalone --nproc-per-node 2 -m mosaics_edu.train --model mosaic --preset cpu-tiny \
#     --grad-accum 2 --threads 1 --backend gloo
# ```
#
# `--stop-after N` ends a run cleanly after step N with a checkpoint (a time-limited job);
# `--peak-tflops` gives the MFU estimate your GPU's true peak. The *rendezvous* flags
# (`--rdzv-*`) are how the processes of several machines find each other before training.
#
# **Precision.** Under autocast the matrix products run in a 16-bit format while the weights stay
# float32. **bfloat16** keeps float32's 8 exponent bits (the same range, fewer digits), so
# gradients neither overflow nor underflow and no loss scaling is needed. **float16** has 5
# exponent bits: small gradients underflow to 0 unless the loss is multiplied by a large factor
# before the backward pass and the gradients divided by it afterwards (PyTorch's `GradScaler`,
# which the package uses with float16). Use bfloat16 where the GPU has it.
#
# **Compilation.** `torch.compile` traces the model's Python once and generates fused GPU kernels
# for it; the first steps are slow (compiling), the later ones faster. On a CPU the package
# leaves it off.
#
# ## 3. Two processes train what one process accumulating twice trains
#
# Take a step of `grad_accum` micro-batches with gradients $g_1, \dots, g_G$ (each the gradient of
# one micro-batch's mean loss). One process accumulating all of them backpropagates
# $\text{loss}_i / G$ for each, so its `.grad` holds
#
# $$\bar g = \frac1G \sum_{i=1}^{G} g_i .$$
#
# With W processes each runs $A = G/W$ micro-batches and backpropagates $\text{loss}_i / A$, then
# the all-reduce averages the W results:
#
# $$\frac1W \sum_{r=0}^{W-1} \frac1A \sum_{i \in \text{process } r} g_i
#   = \frac{1}{WA}\sum_{i=1}^{G} g_i = \bar g .$$
#
# Same gradient, so the same AdamW step, on every process and as in one process. That is the whole
# argument; what remains is the order of the float additions.
#
# **Exercise 10.2 — `ddp_gradients`** (★★, 15 minutes). Simulate one DDP step. `micro_grads` has
# one row per micro-batch (`(grad_accum, P)`, P parameters, in the order the step draws them);
# process r runs rows `r*A … r*A + A − 1`. Return `(world_size, P)`: the gradient each process
# steps with, after each process's accumulation and the all-reduce.

# %% [markdown] tags=["hints"]
# <details><summary><b>Hint 1</b> (a nudge)</summary>
#
# Two means, one after the other: each process first takes the mean of its own A micro-batches'
# gradients (what backpropagating loss / A accumulates), then the all-reduce takes the mean of the
# `world_size` processes' results — one process included, and never a sum. Every process ends
# with the same gradient.
# </details>
#
# <details><summary><b>Hint 2</b> (the approach)</summary>
#
# A = `grad_accum // world_size`. Process r owns rows `r*A` to `r*A + A − 1` inclusive, the slice
# `micro_grads[r*A : r*A + A]` (a slice's end is excluded). Reshaping to `(world_size, A, P)`
# puts every process's rows in one row of the first axis: the mean over axis 1 gives the local
# gradients (W, P), and their mean over axis 0 — over all W processes at once, not pairs of
# them — the all-reduced gradient (P,). Return it once per process, shape `(world_size, P)`, for
# instance with `np.tile(reduced, (world_size, 1))`.
# </details>
#
# <details><summary><b>Hint 3</b> (the key line)</summary>
#
# ```python
# local = micro_grads.reshape(world_size, -1, micro_grads.shape[1]).mean(axis=1)  # (W, P)
# ```
# </details>

# %% tags=["exercise"]
def ddp_gradients(micro_grads: np.ndarray, world_size: int) -> np.ndarray:
    """The gradient each process steps with under DDP. (grad_accum, P) -> (world_size, P)."""
    ### BEGIN SOLUTION
    per_process = micro_grads.shape[0] // world_size
    local = micro_grads.reshape(world_size, per_process, -1).sum(axis=1) / per_process  # (W, P)
    reduced = local.sum(axis=0) / world_size  # (P,): the all-reduce averages the processes
    return np.tile(reduced, (world_size, 1))  # (W, P): the same on every process
    ### END SOLUTION


# %% tags=["check"]
ch10.check_ddp_gradients(ddp_gradients)

# %% [markdown]
# In float32 the two sides are equal only up to rounding, because the additions are grouped
# differently. With one micro-batch per process and two processes they are **exactly** equal: one
# process computes $g_1/2 + g_2/2$, DDP computes $(g_1 + g_2)/2$, and halving is exact in binary
# floating point. With more micro-batches per process the grouping differs and the last bits can
# too. The package's `scaling.ddp_gradients` and `scaling.accumulated_gradient` on random float32
# gradients:

# %%
rng = np.random.default_rng(0)
for grad_accum, world in ((2, 2), (8, 2), (12, 4)):
    g = rng.standard_normal((grad_accum, 100_000)).astype(np.float32)
    ddp, one = scaling.ddp_gradients(g, world), scaling.accumulated_gradient(g)
    exact = bool(np.array_equal(ddp[0], one))
    close = bool(np.allclose(ddp[0], one, rtol=1e-6, atol=1e-6))
    print(f"grad_accum {grad_accum:>2}, {world} processes: bit for bit equal: {exact}; "
          f"equal within 1e-6: {close}")
    assert close and (exact or grad_accum // world > 1)
    if grad_accum == world == 2:
        assert exact

# %% [markdown]
# Now the real thing. The cell below trains the same tiny mosaic three times on your CPU, for 4
# steps each, in fresh processes (about half a minute, most of it starting them):
#
# - **one**: 1 process, `--grad-accum 2` (two micro-batches of 4 sequences per step);
# - **two**: 2 processes under `torchrun` with the gloo backend, `--grad-accum 2` (one micro-batch
#   each);
# - **half**: 1 process, `--grad-accum 1` — half the batch, a control that must differ.
#
# > **Predict before you run.** Will the weights of *one* and *two* be bit for bit equal, equal
# > up to rounding, or visibly different? And *half* against *one*?
#
# <details><summary>What the run showed</summary>
#
# *One* and *two* end with the same weights bit for bit (the largest difference, printed below, is
# asserted to be exactly 0), and with the same logged losses: each process ran one micro-batch, so
# the only division is the exact halving. *Half* trained on a different batch and its weights
# differ far beyond any rounding (asserted: more than 10⁻⁴).
# </details>

# %%
result = scaling.one_vs_two_processes(tempfile.mkdtemp(prefix="ddp_"))
for name, lines in result["printed"].items():
    print(f"--- {name}")
    print("\n".join(lines))
print(f"two processes vs one: weights bit for bit equal: {result['two_vs_one'] == 0.0}")
print(f"half the batch vs one: largest weight difference {result['half_vs_one']:.1e}")
assert result["two_vs_one"] == 0.0 and result["half_vs_one"] > 1e-4
assert result["printed"]["one"][1] == result["printed"]["two"][1]  # same losses, same step

# %% [markdown]
# Because the batches of a step do not depend on the number of processes, `--resume` may change
# it: a run stopped on one GPU can continue on eight. The same holds for the GPT baseline and for
# Memory Mosaics v2, whose random long-term delay $m$ is drawn from the run's seed and the step
# number, so every process draws the same $m$.
#
# **What does the all-reduce cost?** The package's `tools/measure_ddp_cpu.py` trained the mosaic
# and the GPT at `cpu-tiny` size for 30 steps in three set-ups and saved what it measured. Its
# most robust number is the work per token: tokens trained per CPU-second, which other programs
# running at the same time barely change.
#
# > **Predict before you run.** Do 2 gloo processes (one CPU core each) train more or fewer
# > tokens per CPU-second than 1 process on one core?
#
# <details><summary>What the measurement showed</summary>
#
# Fewer, for both models (asserted below): at every step the two processes exchange and add up
# their gradients, and each also draws the other's window positions to keep the data stream
# shared. One process using both cores through two math threads did worst of all (asserted): its
# math library's threads spin while they wait for each other. The trained models were the same in
# all three set-ups (same validation loss, asserted).
# </details>

# %%
import json
from importlib import resources

measured = json.loads((resources.files("mosaics_edu") / "assets" / "ddp_cpu_throughput.json").read_text())
runs = {(run["model"], run["setup"]): run for run in measured["runs"]}
setups = ("1 process, 1 thread", "2 processes (gloo)", "1 process, 2 threads")
print(f"{'model':>7} | {'set-up':>21} | {'tokens per CPU-second':>21} | {'val loss':>8}")
for (model, setup), run in runs.items():
    print(f"{model:>7} | {setup:>21} | {run['tokens_per_cpu_s']:>21,} | {run['val_loss']:>8.4f}")
for model in ("mosaic", "gpt"):
    one, two, threads = (runs[model, s]["tokens_per_cpu_s"] for s in setups)
    print(f"{model}: 2 processes do {two / one:.0%} of the work per CPU-second of 1 process")
    assert two < one and threads < min(one, two)
    assert len({runs[model, s]["val_loss"] for s in setups}) == 1  # the same training
    assert measured[f"{model}_max_weight_diff_2proc_vs_1proc"] == 0.0

# %% [markdown]
# On a CPU the all-reduce is extra work on the same cores (measured above). On GPUs, DDP overlaps
# the all-reduce with the backward pass (NCCL over NVLink or InfiniBand), which is what lets it
# scale; the course has no GPU measurement of how well it scales for these models.
# `python tools/measure_ddp_cpu.py` remakes the file.
#
# ## 4. Memory: when DDP stops being enough
#
# DDP keeps everything on every GPU. Per parameter, training in bf16 autocast with AdamW holds
# float32 weights (4 bytes: autocast casts them to bf16 on the fly, the master copy stays float32),
# float32 gradients (4), DDP's communication buckets (4 more: by default it copies the gradients
# into buckets to all-reduce them) and AdamW's two moments (8): **20 bytes per parameter**, before
# any activation. Activations grow with the per-GPU micro-batch and shrink with `--batch-size`
# (raising `--grad-accum`); the 20 bytes per parameter do not. When they no longer fit, a model
# needs **FSDP** (`torch.distributed.fsdp`, "fully sharded data parallel"), the idea of
# **ZeRO-3**: each of the W GPUs keeps 1/W of the weights, gradients and AdamW moments, and
# gathers one block's full weights only while computing it, so the state costs 16/W bytes per
# parameter per GPU. The package does not implement FSDP; the arithmetic tells you when you
# would need it.
#
# **Exercise 10.3 — `state_gb_per_gpu`** (★, 10 minutes). Return the training state per GPU in
# GB (10⁹ bytes) for `n_params` parameters on `world_size` GPUs, with `strategy` `"ddp"` or
# `"fsdp"`.

# %% [markdown] tags=["hints"]
# <details><summary><b>Hint 1</b> (a nudge)</summary>
#
# Count the bytes one parameter costs, then ask which GPUs hold them: DDP keeps a full copy of
# everything on every GPU, FSDP splits it over the GPUs.
# </details>
#
# <details><summary><b>Hint 2</b> (the approach)</summary>
#
# Per parameter: float32 weights (4 bytes), float32 gradients (4), AdamW's two float32 moments
# (8) and, under DDP only, the communication buckets (4). DDP: 20 bytes × `n_params` on every
# GPU, whatever `world_size` (one GPU included). FSDP: 16 bytes × `n_params` / `world_size` (one
# GPU: nothing to split, still no buckets). Divide the bytes by 10⁹ (GB, not GiB) and return the
# number unrounded.
# </details>
#
# <details><summary><b>Hint 3</b> (the key line)</summary>
#
# ```python
# per_parameter = {"ddp": 4 + 4 + 4 + 8, "fsdp": 4 + 4 + 8}[strategy]  # bytes
# ```
# </details>

# %% tags=["exercise"]
def state_gb_per_gpu(n_params: float, world_size: int, strategy: str) -> float:
    """GB of weights, gradients, buckets and AdamW moments on each GPU."""
    ### BEGIN SOLUTION
    if strategy == "ddp":
        return n_params * (4 + 4 + 4 + 8) / 1e9  # everything on every GPU
    return n_params * (4 + 4 + 8) / world_size / 1e9  # split over the GPUs, no buckets
    ### END SOLUTION


# %% tags=["check"]
ch10.check_state_gb_per_gpu(state_gb_per_gpu)

# %% [markdown]
# Now the models. `scaling.n_params_meta` builds a model on PyTorch's *meta* device — shapes
# only, no memory, no time — and counts its parameters: the course's presets, and the v2
# paper's large model (32 blocks of width 4,096, 32 heads, a SwiGLU persistent memory of width
# 14,336, the 128,256-token vocabulary of Llama 3, context 4,096) as this package builds it.
#
# > **Predict before you run.** Which of these models need FSDP on GPUs of 80 GB, the H100s the
# > v2 paper trained on?
#
# <details><summary>What the table showed</summary>
#
# Only the v2 paper's large model. The course's largest preset needs a few percent of one GPU
# under DDP (asserted: under 5 %); the large model needs more than even a 141 GB H200 holds under
# DDP (asserted), and fits in 8 GPUs with FSDP with room for activations (asserted: under 30 %
# of 80 GB).
# </details>

# %%
GPU_GB = 80  # an H100 (the v2 paper's GPUs) or an A100
sizes = {}
for preset, vocab in (("gpu-small", 4096), ("paper-gpt2-small", 50304)):
    for kind in ("gpt", "mosaic", "mosaic-v2"):
        sizes[f"{preset} {kind}"] = scaling.n_params_meta(kind, preset, vocab_size=vocab)
sizes["v2 paper large (mosaic-v2)"] = scaling.n_params_meta(
    "mosaic-v2", "paper-gpt2-small", vocab_size=128_256, block_size=4096, n_layer=32,
    n_embd=4096, n_head=32, ffn_size=14_336,
)
print(f"{'model':>28} | {'parameters':>10} | {'DDP / GPU':>10} | {'of 80 GB':>8} | {'FSDP over 8 GPUs':>16}")
for name, n in sizes.items():
    ddp_gb, fsdp_gb = scaling.state_gb_per_gpu(n, 8, "ddp"), scaling.state_gb_per_gpu(n, 8, "fsdp")
    count = f"{n / 1e9:.2f} B" if n >= 1e9 else f"{n / 1e6:.1f} M"
    print(f"{name:>28} | {count:>10} | {ddp_gb:>7.2f} GB | {ddp_gb / GPU_GB:>8.1%} | {fsdp_gb:>13.2f} GB")
course_ddp_gb = scaling.state_gb_per_gpu(sizes["paper-gpt2-small mosaic"], 8, "ddp")
large = sizes["v2 paper large (mosaic-v2)"]
large_ddp_gb, large_fsdp_gb = (scaling.state_gb_per_gpu(large, 8, s) for s in ("ddp", "fsdp"))
assert course_ddp_gb < 0.05 * GPU_GB and course_ddp_gb < 0.2 * 16  # a few % of one GPU; fits 16 GB
assert large_ddp_gb > 141 and large_fsdp_gb < 0.3 * GPU_GB  # needs FSDP; sharded over 8 it fits
untied_output = 128_256 * 4096  # a separate output table
print(f"v2 large as built here: {large / 1e9:.1f} B parameters; with a separate output table "
      f"{(large + untied_output) / 1e9:.1f} B. Course preset under DDP: {course_ddp_gb:.1f} GB; "
      f"v2 large under DDP: {large_ddp_gb:.0f} GB, under FSDP over 8 GPUs: {large_fsdp_gb:.0f} GB")

# %% [markdown]
# The course's largest preset fits many times over in one GPU, which is why plain DDP is the right
# tool for every model of this course. The v2 paper's large model, as this package builds it,
# shares one embedding table between input and output; the paper reports 9.9 billion parameters,
# which a separate output table of 128,256 × 4,096 parameters would account for (both counts are
# printed above). Under DDP it needs far more state than any single GPU holds; sharded over 8 GPUs
# with FSDP it fits. Rule of thumb: DDP until 20 bytes × parameters reaches about half the GPU's
# memory (the rest is for activations), then FSDP.
#
# The widget answers the question for your own model and cluster: the parameter count (in
# billions), the number of GPUs, and their memory.

# %%
controls = {
    "params_billion": widgets.FloatLogSlider(value=9.4, base=10, min=-2, max=2, step=0.05,
                                             description="B params"),
    "gpus": widgets.IntSlider(value=8, min=1, max=64, description="GPUs"),
    "gpu_gb": widgets.Dropdown(options=[(k, v) for k, v in scaling.GPU_MEMORY_GB.items()], value=80,
                               description="GPU"),
}
interactive_figure(scaling.memory_view, scaling.draw_memory_view, controls, figsize=(6, 4));

# %% [markdown]
# At the widget's defaults (the v2 paper's large model on 8 GPUs of 80 GB) the figure shows what
# the table printed: DDP's bar rises far above the GPU's memory, FSDP's stays under its half.

# %%
view = scaling.memory_view(**defaults(controls))
print({k: f"{v:.1f} GB per GPU, fits: {view['fits'][k]}" for k, v in view["gb"].items()})
assert view["fits"] == {"ddp": False, "fsdp": True}

# %% [markdown]
# ## 5. Reading a run: throughput and MFU
#
# At the end of a run the command line prints its global batch, its losses, its tokens per second
# and its **model-FLOPs utilisation** (MFU): the floating-point operations per second the training
# achieved, counted as in chapter 05 (6 per parameter per token, plus 12·L·d·T per token for the
# attention-like retrieval over a context of T tokens in L blocks of width d), divided by the
# GPUs' peak. It tells you what fraction of the hardware's peak the model uses; the package's
# estimate is only as good as the peak it assumes (`--peak-tflops` sets it).
#
# ## 6. Checking on a real GPU
#
# The CPU cannot run the GPU code paths (bf16 and fp16 autocast, `torch.compile`, fused attention
# kernels, NCCL). One command runs them on a machine with an NVIDIA GPU and writes
# `runs/gpu_check/summary.md`:
#
# ```bash
# tools/gpu_check.sh            # meant to finish in under 10 minutes on one GPU
# ```
#
# It runs (1) the CUDA-only tests, `python -m pytest tests/training -k gpu`
# (with 2 GPUs or more, also the 2-process NCCL version of the proof above); (2)
# `python -m mosaics_edu.bench --device cuda --bf16 --compile`, the training tokens/s of the
# mosaic and of GPT at `gpu-small` size and their ratio; (3) 300 steps of `gpu-small` for each
# model, with their losses, tokens/s and MFU. Without a GPU it stops at once with exit status 2
# and says why. The course ships no GPU measurement yet: the summary you get is the first word on
# how these models run on your GPU.
#
# ## Summary
#
# - **Data parallelism**: one process per GPU, each with a full copy of the model; DDP averages
#   the gradients with an all-reduce (NCCL on GPUs, gloo on CPUs) so every copy takes the same step.
# - **The global batch** is `batch_size × grad_accum` whatever the number of processes; each of W
#   processes runs `grad_accum / W` micro-batches. The first paper's recipe is 512 sequences of 512
#   tokens per step; the v2 paper's 1,024 of 4,096.
# - **DDP = accumulation**: W processes compute the same averaged gradient as one process
#   accumulating all the micro-batches; with one micro-batch per process on 2 processes the weights
#   came out bit for bit equal on this CPU, and half the batch did not.
# - **Memory**: DDP holds 20 bytes per parameter on every GPU; FSDP (ZeRO-3) 16/W. Every model of
#   the course fits in a small fraction of one GPU under DDP; the v2 paper's large model needs FSDP.
# - **Precision**: bfloat16 keeps float32's range and needs no loss scaling; float16 needs a
#   `GradScaler`.
#
# ## Recap questions
#
# 1. With 4 GPUs and the command `torchrun --nproc-per-node 4 -m mosaics_edu.train --preset
#    paper-gpt2-small --batch-size 16 --grad-accum 32`, how many micro-batches does each GPU run
#    per step, and how many tokens does a step train on?
# 2. Why does DDP with W processes average the processes' gradients rather than add them up?
# 3. Why are the weights of the 2-process and the 1-process run *exactly* equal, and when would
#    they differ by rounding only?
# 4. Why can a 9.4-billion-parameter model not be trained with DDP on 80 GB GPUs even with a
#    micro-batch of one sequence, while FSDP over 8 such GPUs can?
# 5. What goes wrong when a model trains in float16 without a `GradScaler`, and why does bfloat16
#    not need one?
#
# <details><summary>Answers</summary>
#
# 1. 32 / 4 = 8 micro-batches of 16 sequences per GPU; 16 × 8 × 4 = 512 sequences of 512
#    tokens = 262,144 tokens per step, the same step as on one GPU.
# 2. Each process's gradient is already the mean over its own micro-batches; the mean of the W
#    means is the mean over all G micro-batches, the gradient one process would compute. A sum
#    would make the step W times larger, and change with the number of GPUs.
# 3. Each process ran one micro-batch: one process computes g₁/2 + g₂/2, DDP (g₁ + g₂)/2, and
#    halving is exact in binary floating point. With several micro-batches per process, or NCCL's
#    reduction order on GPUs, the additions are grouped differently and the last bits may differ.
# 4. DDP keeps the whole training state on every GPU: about 20 bytes per parameter, close to
#    190 GB, whatever the batch. FSDP splits weights, gradients and AdamW's moments over the 8 GPUs
#    (16 / 8 = 2 bytes per parameter each, about 19 GB) and gathers one block's weights at a time.
# 5. It underflows, not overflows: float16's 5 exponent bits cannot hold the smallest gradients,
#    which become 0; the scaler multiplies the loss before the backward pass and divides the
#    gradients after. bfloat16 has float32's 8 exponent bits, hence its range.
#
# </details>
#
# ## Further reading
#
# - PyTorch documentation: *Getting started with DistributedDataParallel*, *torchrun (Elastic
#   Launch)*, *Automatic Mixed Precision* and *torch.compile*.
# - Li et al., *PyTorch Distributed: Experiences on Accelerating Data Parallel Training* (VLDB
#   2020): DDP's gradient buckets and how the all-reduce overlaps the backward pass.
# - Rajbhandari et al., *ZeRO: Memory Optimizations Toward Training Trillion Parameter Models*
#   (2020); Zhao et al., *PyTorch FSDP: Experiences on Scaling Fully Sharded Data Parallel* (2023).
# - Kalamkar et al., *A Study of BFLOAT16 for Deep Learning Training* (2019); Micikevicius et al.,
#   *Mixed Precision Training* (2018): loss scaling.
# - Zhang, Nolte, Sadhukhan, Chen, Bottou, *Memory Mosaics*, ICLR 2025, and Zhang, Bottou,
#   *Memory Mosaics at Scale*, NeurIPS 2025: the two training recipes this chapter lays out.
#
# Next: **11 · Capstone**, a project of your own built from the package.
