"""Activation ranges of least error: the clip that minimises the squared int8 quantization error
over calibration values, rather than their absolute min/max.

Min/max lets one rare outlier set the step for every value. On make-checkpoint MobileOne-S1 the
64-image Core ML ranges were 2-5x one image's maximum, and each post-ReLU tensor kept 16-25 dB of
signal to quantization noise. PT2E's HistogramObserver (TFLite, ExecuTorch) minimises the same
error; Core ML's calibration (coreml_ranges.py) and the fallback's simulation (sensitivity.py) use
this one.
"""

from __future__ import annotations

import torch

SAMPLES_PER_INPUT = 2048  # values of one tensor kept per calibration input, strided
_FRACTIONS = torch.linspace(0.05, 1.0, 39)  # clips tried, as fractions of the measured range


def strided_sample(value: torch.Tensor, count: int = SAMPLES_PER_INPUT) -> torch.Tensor:
    """About `count` of `value`'s elements, evenly strided (a copy, float32)."""
    flat = value.reshape(-1)
    return flat[:: max(1, flat.numel() // count)].float().clone()


def least_error_range(values: torch.Tensor, low: float, high: float, *, symmetric: bool) -> tuple[float, float]:
    """The (low, high) of least mean squared int8 error over `values`, among fractions of the
    measured [low, high]: symmetric int8 on [-c, c] (Core ML), or affine uint8-like 256 levels on
    [low, high] with zero representable (PT2E, QNN)."""
    low, high = min(low, 0.0), max(high, 0.0)
    if high - low == 0.0:
        return low, high
    lows, highs = _FRACTIONS * low, _FRACTIONS * high
    if symmetric:
        widest = torch.maximum(lows.abs(), highs.abs())
        steps, zeros, bottom, top = widest / 127.0, torch.zeros_like(widest), -127.0, 127.0
    else:
        steps = (highs - lows) / 255.0
        zeros, bottom, top = torch.round(-128.0 - lows / steps), -128.0, 127.0
    steps, zeros = steps.unsqueeze(1), zeros.unsqueeze(1)
    x = values.unsqueeze(0)
    quantized = (torch.clamp(torch.round(x / steps) + zeros, bottom, top) - zeros) * steps
    best = int(torch.argmin(((quantized - x) ** 2).mean(dim=1)))
    return float(lows[best]), float(highs[best])
