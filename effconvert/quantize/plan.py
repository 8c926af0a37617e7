"""The quantization plan: everything one artifact's quant mode needs, as typed plain data.

It replaces the untyped options dict the exporters used to read: which mode, the calibration
images (int8), the layers the float fallback keeps float, the op types a family keeps fp32 in a
Core ML fp16 program, and whether a TFLite int8 model keeps integer input/output.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .calibration import Calibration


@dataclass(frozen=True)
class QuantPlan:
    quant: str  # a key of targets.QUANTS
    calibration: Calibration | None = None  # int8: never the validation images
    float_layers: tuple[str, ...] = ()  # int8: module paths kept float (the fallback)
    fp32_ops: tuple[str, ...] = ()  # Core ML compressed programs: op types kept fp32
    int8_io: bool = False  # TFLite int8: integer input/output tensors

    def keeping_float(self, layers: tuple[str, ...] | list[str]) -> QuantPlan:
        """The same plan with `layers` kept in float (the fallback's next attempt)."""
        return replace(self, float_layers=tuple(layers))

    @property
    def compressed(self) -> bool:
        """Anything but fp32: Core ML computes such programs in fp16."""
        return self.quant != "fp32"
