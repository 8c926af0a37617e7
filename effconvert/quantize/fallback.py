"""The float-fallback policy: when an int8 artifact misses its gate, which layers go back to float.

The most int8-sensitive layers (sensitivity.py) first, in growing counts 1, 2, 4, ... up to a
quarter of the quantizable layers: beyond that, int8 is the wrong mode for the model and the
report says the gate was missed rather than shipping a mostly-float "int8" artifact.

A conversion costs minutes, a simulated forward pass a fraction of a second: the count is chosen
by prediction, not by trying. Each count's PSNR is simulated (every other layer in W8A8 in
PyTorch); the simulation's offset from the real runtime is measured once, on the all-int8
artifact that missed its gate; the smallest count predicted to clear the gate by MARGIN_DB is
converted. If the runtime disagrees, the offset is re-measured at that count and one more count
is converted — at most two fallback conversions. The pipeline runs them; this module decides.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from .sensitivity import LayerSensitivity

MAX_FRACTION = 0.25
MARGIN_DB = 1.0  # predicted PSNR must clear the gate by this much
MAX_CONVERSIONS = 2  # fallback conversions at most


@dataclass(frozen=True)
class Prediction:
    float_layers: int
    simulated_psnr_db: float

    def predicted(self, offset_db: float) -> float:
        return self.simulated_psnr_db + offset_db


def candidates(ranking: Sequence[LayerSensitivity]) -> list[tuple[str, ...]]:
    """Every float-layer set the policy allows, smallest first (no layer, then 1, 2, 4, ...)."""
    return [(), *attempts(ranking)]


def choose(predictions: Sequence[Prediction], offset_db: float, gate_psnr: float | None, above: int = 0) -> int:
    """The fewest float layers (more than `above`) predicted to clear the gate; the most the
    policy allows when none is."""
    allowed = [p for p in predictions if p.float_layers > above]
    if not allowed:
        return above
    for p in allowed:
        if gate_psnr is None or p.predicted(offset_db) >= gate_psnr + MARGIN_DB:
            return p.float_layers
    return allowed[-1].float_layers


def attempts(ranking: Sequence[LayerSensitivity]) -> Iterator[tuple[str, ...]]:
    """The float-layer sets to try, smallest first."""
    limit = max(1, int(len(ranking) * MAX_FRACTION))
    count = 1
    while count <= limit:
        yield tuple(s.name for s in ranking[:count])
        count *= 2
