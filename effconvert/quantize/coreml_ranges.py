"""Activation-range statistics from the executor, for W8A8 calibration on Linux.

coremltools' `linear_quantize_activations` calibrates by calling `MLModel.predict` (macOS only).
The same statistics — per named activation, the min and max seen over calibration inputs — come
from running the fp32 program here, with the range of least symmetric-int8 error (ranges.py),
which is what the quantizer is given.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import torch

from ..runtime.mil import MILExecutor
from .ranges import least_error_range, strided_sample


@dataclass(frozen=True)
class ActivationRange:
    min: float
    max: float
    samples: int
    clipped: tuple[float, float] | None = None  # the symmetric int8 range of least squared error

    def quantizer_range(self) -> tuple[float, float]:
        """(rmin, rmax) for the quantizer: the least-error range when measured, else min/max."""
        return self.clipped if self.clipped is not None else (self.min, self.max)


def activation_ranges(executor: MILExecutor, feeds: Iterable[Mapping[str, np.ndarray]]) -> dict[str, ActivationRange]:
    """Min/max and least-error range of every floating-point op output (program inputs included)
    over `feeds`."""
    lows: dict[str, float] = {}
    highs: dict[str, float] = {}
    kept: dict[str, list[torch.Tensor]] = {}
    count = 0
    names = set(executor.program.inputs) | {name for op in executor.program.operations for name, _ in op.outputs}
    for feed in feeds:
        values = executor.run(feed, keep=True)
        count += 1
        for name in names:
            value = values.get(name)
            if torch.is_tensor(value) and value.is_floating_point() and value.numel():
                lo, hi = float(value.min()), float(value.max())
                lows[name] = min(lo, lows.get(name, lo))
                highs[name] = max(hi, highs.get(name, hi))
                kept.setdefault(name, []).append(strided_sample(value))
    return {
        name: ActivationRange(
            lows[name],
            highs[name],
            count,
            least_error_range(torch.cat(kept[name]), lows[name], highs[name], symmetric=True),
        )
        for name in lows
    }
