"""FLOPs per trained token and the peak FLOP/s of a device: the two figures behind model FLOPs
utilisation (MFU), which ``python -m mosaics_edu.train`` prints.

FLOPs per trained token are estimated as ``6 N + 12 L d T`` (:func:`training_flops_per_token`:
N parameters — forward 2N, backward 4N — plus the attention/retrieval score and mix products,
12·L·d·T; the PaLM paper's appendix formula, also used by nanoGPT). The contextual memory costs
what causal attention costs; the persistent memory's tables are parameters, so 6N counts them.
MFU = achieved FLOPs/s divided by the device's peak (:func:`peak_flops`): dense bf16/fp16
tensor-core peaks from the vendors' data sheets (``PEAK_TFLOPS``: H100 SXM 989, A100 312, ...;
half of that for fp32, which runs as TF32), and on CPU an assumed 0.1 TFLOP/s per thread (AVX2:
2 FMA units x 8 fp32 lanes x 2 FLOPs x ~3 GHz). Pass ``--peak-tflops`` to the trainer to use the
true figure of your hardware.
"""

from __future__ import annotations

import torch

__all__ = ["training_flops_per_token", "peak_flops", "PEAK_TFLOPS", "CPU_TFLOPS_PER_THREAD"]


def training_flops_per_token(n_params: int, n_layer: int, n_embd: int, block_size: int) -> float:
    """Training FLOPs per token of a language model: ``6 N + 12 L d T`` (module docstring)."""
    return 6.0 * n_params + 12.0 * n_layer * n_embd * block_size


# Dense bf16/fp16 tensor-core peaks (TFLOP/s), vendors' data sheets, without sparsity.
PEAK_TFLOPS = {
    "H200": 989.0,
    "H100": 989.0,  # SXM; the PCIe card is ~756
    "A100": 312.0,
    "A10": 125.0,
    "L40": 181.0,
    "L4": 121.0,
    "V100": 125.0,
    "T4": 65.0,
    "4090": 165.0,
    "3090": 71.0,
}
CPU_TFLOPS_PER_THREAD = 0.1


def peak_flops(device: torch.device | str, dtype: torch.dtype = torch.bfloat16) -> float:
    """Assumed peak FLOP/s of ``device`` for ``dtype`` (see ``PEAK_TFLOPS``)."""
    device = torch.device(device)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        tflops = next((v for k, v in PEAK_TFLOPS.items() if k in name), 100.0)
        if dtype == torch.float32:
            tflops /= 2  # TF32 tensor cores
        return tflops * 1e12
    return CPU_TFLOPS_PER_THREAD * 1e12 * torch.get_num_threads()
