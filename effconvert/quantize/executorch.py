"""ExecuTorch quantizers, ahead of the XNNPACK lowering:

    fp32   the module as it is
    int8   PT2E static W8A8 with ExecuTorch's XNNPACKQuantizer (per-channel symmetric weights, int8
           activations calibrated on the calibration images, the fallback's layers left float)

fp16 is not offered: measured on FastViT-T8 (executorch 1.5.1), XNNPACK delegated 99 of 146 fp16
nodes — every GELU stayed on the portable kernels, cutting the graph into 18 delegate subgraphs —
and the .pte was no smaller than fp32's (14.5 MB vs 14.4 MB). The partitioner refuses GELU in fp16
by rule (GeluConfig: "GELU does not support fp16"), and erf, the exact decomposition, has no XNNPACK
op. Re-measured with GELU written as its tanh form (1.7e-4 from the exact one in fp32, under fp16's
rounding): every compute op delegated in one subgraph, but 68 dim-order copies left on portable
kernels, 57 dB against fp32 eager, and the file still 14.5 MB: no reason to offer it yet.
"""

from __future__ import annotations

import torch

from ..stopwatch import Stopwatch
from .plan import QuantPlan
from .pt2e import calibrated_int8, keeps_float


def quantized_module(
    module: torch.nn.Module, example: torch.Tensor, plan: QuantPlan, clock: Stopwatch | None = None
) -> torch.nn.Module:
    if plan.quant == "fp32":
        return module
    if plan.quant != "int8":
        raise ValueError(f"ExecuTorch has no {plan.quant} path")
    if plan.calibration is None or len(plan.calibration) == 0:
        raise ValueError("int8 needs calibration images")
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )

    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    quantizer.set_filter_function(keeps_float(frozenset(plan.float_layers)))
    with (clock or Stopwatch()).running():
        return calibrated_int8(module, example, torch.as_tensor(plan.calibration.inputs), quantizer)


def notes(plan: QuantPlan) -> list[str]:
    if plan.quant != "int8":
        return []
    found = [
        f"W8A8 (per-channel weights, XNNPACKQuantizer), calibrated on {len(plan.calibration or ())} images; "
        "float input/output"
    ]
    if plan.float_layers:
        found.append(f"kept in float: {', '.join(plan.float_layers)}")
    return found
