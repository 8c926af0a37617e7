"""The float-fallback policy: when an int8 artifact misses its gate, which layers go back to float,
and when no attempt is worth converting.

The most int8-sensitive layers (sensitivity.py) first, in growing counts 1, 2, 4, ... up to a
quarter of the quantizable layers: beyond that, int8 is the wrong mode for the model and the
report says the gate was missed rather than shipping a mostly-float "int8" artifact.

A conversion costs minutes, a simulated forward pass a fraction of a second: the count is chosen
by prediction, not by trying. Each count is simulated (every other layer in W8A8 in PyTorch, the
target's activation scheme) for the metrics that failed — PSNR, top-1 over decided inputs, or both:
the fallback aims at what failed, not at PSNR when only top-1 did. The simulation's offset from the
runtime is measured on the all-int8 artifact, per metric; the smallest count predicted to clear
every failed check (PSNR by MARGIN_DB) is converted. When even the largest count is predicted to
fall short by more than the simulation's error (STOP_DB, STOP_TOP1), nothing is converted and the
report says so with the predicted numbers. If the runtime disagrees with a prediction, the offsets
are re-measured at that count and one more count may be converted — at most two fallback
conversions. The pipeline runs them; this module decides.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from .sensitivity import LayerSensitivity

MAX_FRACTION = 0.25
MARGIN_DB = 1.0  # predicted PSNR must clear the gate by this much
MAX_CONVERSIONS = 2  # fallback conversions at most
# Short of the gate by more than this at the most float layers allowed: no conversion is spent.
# The simulation's measured error against a runtime, after the offset, was within 3 dB and 0.1 of
# top-1 on the models measured (docs/guides/quantizing.md).
STOP_DB = 3.0
STOP_TOP1 = 0.15


@dataclass(frozen=True)
class Prediction:
    float_layers: int
    simulated_psnr_db: float
    simulated_top1: float = 1.0  # over the simulation's decided inputs

    def predicted(self, offset_db: float) -> float:
        return self.simulated_psnr_db + offset_db

    def predicted_top1(self, offset: float) -> float:
        return min(1.0, max(0.0, self.simulated_top1 + offset))


@dataclass(frozen=True)
class Aim:
    """The failed checks the fallback aims to clear (None: that check passed, or has no gate)."""

    psnr_db: float | None = None
    top1: float | None = None


@dataclass(frozen=True)
class Offsets:
    """Runtime minus simulation, per metric, measured on the last artifact validated."""

    psnr_db: float = 0.0
    top1: float = 0.0


@dataclass(frozen=True)
class Choice:
    float_layers: int | None  # None: stop, converting nothing more
    why_stop: str = ""


def candidates(ranking: Sequence[LayerSensitivity]) -> list[tuple[str, ...]]:
    """Every float-layer set the policy allows, smallest first (no layer, then 1, 2, 4, ...)."""
    return [(), *attempts(ranking)]


def choose(predictions: Sequence[Prediction], offsets: Offsets, aim: Aim, above: int = 0) -> Choice:
    """The fewest float layers (more than `above`) predicted to clear every aimed check; the most
    allowed when none is but it is within the simulation's error; else stop, saying why."""
    allowed = [p for p in predictions if p.float_layers > above]
    if not allowed:
        return Choice(None, "no larger float-layer count is allowed")
    for p in allowed:
        if _clears(p, offsets, aim):
            return Choice(p.float_layers)
    most = allowed[-1]
    short = []
    if aim.psnr_db is not None and most.predicted(offsets.psnr_db) < aim.psnr_db - STOP_DB:
        short.append(f"PSNR {most.predicted(offsets.psnr_db):.1f} dB (gate {aim.psnr_db:g})")
    if aim.top1 is not None and most.predicted_top1(offsets.top1) < aim.top1 - STOP_TOP1:
        short.append(f"top-1 {most.predicted_top1(offsets.top1):.2f} (gate {aim.top1:g})")
    if short:
        return Choice(
            None,
            f"predicted {' and '.join(short)} with {most.float_layers} layers in float, the most allowed: "
            "no attempt within the budget can pass",
        )
    return Choice(most.float_layers)


def _clears(p: Prediction, offsets: Offsets, aim: Aim) -> bool:
    psnr_ok = aim.psnr_db is None or p.predicted(offsets.psnr_db) >= aim.psnr_db + MARGIN_DB
    top1_ok = aim.top1 is None or p.predicted_top1(offsets.top1) >= aim.top1
    return psnr_ok and top1_ok


def attempts(ranking: Sequence[LayerSensitivity]) -> Iterator[tuple[str, ...]]:
    """The float-layer sets to try, smallest first."""
    limit = max(1, int(len(ranking) * MAX_FRACTION))
    count = 1
    while count <= limit:
        yield tuple(s.name for s in ranking[:count])
        count *= 2
