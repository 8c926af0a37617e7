"""Layer-wise localisation for Core ML fp16 programs: run the same program twice in the MIL
executor — once rounding every op output to its declared fp16, once not (its fp32 twin) — and name
the first op whose output falls below the gate's PSNR. The fp16 rounding of that op's inputs or
outputs is where the error enters; it is the candidate to keep in fp32."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ...numeric import psnr_db as _psnr
from .. import DivergentOp
from .executor import MILExecutor

DEFAULT_OP_PSNR_DB = 35.0


def first_divergent_op(
    executor: MILExecutor, feed: dict[str, np.ndarray], *, psnr_db: float | None, sample: int = 0
) -> DivergentOp | None:
    """`feed`: the program's inputs for input `sample` — the caller picks the one with the largest
    output error, since a fragile op (an fp16 overflow) may show on a few inputs only."""
    threshold = psnr_db if psnr_db is not None else DEFAULT_OP_PSNR_DB
    rounded: dict[str, Any] = executor.run(feed, keep=True)
    twin: dict[str, Any] = executor.run(feed, keep=True, round_to_declared=False)
    for op in executor.program.operations:
        for name, _ in op.outputs:
            a, b = rounded.get(name), twin.get(name)
            if not (torch.is_tensor(a) and a.is_floating_point() and a.numel() > 1):
                continue
            psnr = _psnr(a, b)
            if psnr < threshold:
                return DivergentOp(op.type, name, round(psnr, 2), threshold, sample)
    return None
