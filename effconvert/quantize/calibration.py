"""Calibration images for int8: the same images in the two forms the quantizers consume."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..runtime.coreml import program_input


@dataclass(frozen=True)
class Calibration:
    inputs: np.ndarray  # N, 3, H, W float32, normalised: what a tensor input receives
    pixels: np.ndarray  # N, H, W, 3 uint8: what an image input receives
    source: str  # the --calib folder, or the built-in set
    builtin: bool  # True when no --calib was given

    def __len__(self) -> int:
        return len(self.inputs)

    def feeds(self, input_kind: str) -> Iterator[dict[str, np.ndarray]]:
        """One Core ML program feed per image ("image" input: pixels; "tensor": normalised)."""
        name = "image" if input_kind == "image" else "input"
        for i in range(len(self)):
            yield {name: program_input(input_kind, self.pixels, self.inputs, i)}
