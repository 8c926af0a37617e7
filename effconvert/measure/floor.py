"""The hardware floor: a model's FLOPs at the rate this CPU multiplies fp32 matrices.

No runtime can beat FLOPs / sgemm rate for a model made of convolutions and matmuls (depthwise
convs, norms and softmaxes run far below the sgemm rate), so latency x (floor / latency) says
how much of the machine each runtime uses.
"""

from __future__ import annotations

import functools

import torch

from .timing import time_calls

# The best of a few square sizes: small ones do not fill the cores, large ones spill the caches.
SGEMM_SIZES = (512, 1024, 2048)


def sgemm_gflops(threads: int, *, sizes: tuple[int, ...] = SGEMM_SIZES, runs: int = 10) -> float:
    """Best median fp32 matrix-multiply rate over `sizes` with `threads` threads, in GFLOP/s."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    rates = []
    try:
        gen = torch.Generator().manual_seed(0)
        for size in sizes:
            a = torch.randn(size, size, generator=gen)
            b = torch.randn(size, size, generator=gen)
            timing = time_calls(functools.partial(torch.mm, a, b), runs=runs, warmup=2)
            rates.append(2 * size**3 / (timing.median_ms / 1000) / 1e9)
    finally:
        torch.set_num_threads(previous)
    return max(rates)


@torch.no_grad()
def model_flops(model: torch.nn.Module, sample: torch.Tensor) -> int:
    """FLOPs (2 per multiply-add) of one forward pass, counted by torch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        model(sample)
    return int(counter.get_total_flops())
