"""A14 latency estimate: a cost model with three fitted parameters over a Core ML program's ops.

    t = s_fixed + Σ_ANE ops (flops·s_flop + s_op) + Σ_off ops GPU_SLOWDOWN·(same) + switches·SWITCH_S

s_fixed, s_flop and s_op are fitted (non-negative least squares on relative error) on the rows of
data/published_a14.csv only — Apple's own FastViT and MobileOne numbers — by
bench/device_calibration.py, which writes a14_calibration.json with the leave-one-out errors. The
structure was chosen by leave-one-variant-out error on those rows among {flops, bytes moved with
64-byte rows, ops, a fixed cost}: bytes got a zero weight once flops were in (worst LOO 23 % with
them, 21 % without), so padding is reported as a residency diagnostic, not priced. The
off-Neural-Engine terms are priors, not fitted (the calibration file has no off-ANE measurement), and
widen the band. An estimate always comes with its band, never as a bare number.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .features import OpCost

CALIBRATION_FILE = Path(__file__).parent / "data" / "a14_calibration.json"
# Priors (not fitted): an op off the Neural Engine runs on the GPU at roughly a quarter of the
# ANE's rate (A14: 11 TOPS ANE, about 2.5 TFLOPS fp16 GPU), and each ANE<->GPU switch copies its
# tensors through memory (hollance/neural-engine other.md: "a few hundred microseconds" at worst).
GPU_SLOWDOWN = 4.0
SWITCH_S = 50e-6


@dataclass(frozen=True)
class Features:
    ane_flops: float
    ane_bytes: float
    ane_ops: int
    off_flops: float
    off_bytes: float
    off_ops: int
    switches: int

    @classmethod
    def of(cls, costs: list[OpCost]) -> Features:
        ane = [c for c in costs if c.off_ane is None]
        off = [c for c in costs if c.off_ane is not None]
        runs = sum(1 for i, c in enumerate(costs) if i == 0 or (c.off_ane is None) != (costs[i - 1].off_ane is None))
        return cls(
            sum(c.flops for c in ane),
            sum(c.bytes for c in ane),
            len(ane),
            sum(c.flops for c in off),
            sum(c.bytes for c in off),
            len(off),
            max(runs - 1, 0),
        )

    def row(self) -> list[float]:
        """The fitted parameters' coefficients (s_flop, s_op, s_fixed)."""
        return [self.ane_flops + GPU_SLOWDOWN * self.off_flops, self.ane_ops + GPU_SLOWDOWN * self.off_ops, 1.0]


@dataclass(frozen=True)
class Calibration:
    s_flop: float
    s_op: float
    s_fixed: float
    band: float  # relative half-width: the worst leave-one-variant-out error
    loo: dict  # the leave-one-out tables, as bench/device_calibration.py wrote them

    @classmethod
    def load(cls, path: Path = CALIBRATION_FILE) -> Calibration:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(data["s_flop"], data["s_op"], data["s_fixed"], data["band"], data.get("loo", {}))


def predict_s(features: Features, params: tuple[float, float, float]) -> float:
    return sum(x * p for x, p in zip(features.row(), params)) + features.switches * SWITCH_S


def fit(rows: list[tuple[Features, float]]) -> tuple[float, float, float]:
    """Non-negative least squares on relative error: minimise Σ (predicted / published - 1)²."""
    import numpy as np
    from scipy.optimize import nnls

    a = np.array([[v / seconds for v in f.row()] for f, seconds in rows])
    b = np.array([1.0 - f.switches * SWITCH_S / seconds for f, seconds in rows])
    scale = a.max(axis=0)
    scale[scale == 0] = 1.0
    solution, _ = nnls(a / scale, b)
    s_flop, s_op, s_fixed = (float(v) for v in solution / scale)
    return s_flop, s_op, s_fixed


def estimate_ms(features: Features, calibration: Calibration) -> dict[str, float]:
    """The estimate and its band: the calibration's worst leave-one-out error, widened by the share
    of ops priced with the (unfitted) off-Neural-Engine priors — up to 2x either way when all are."""
    seconds = predict_s(features, (calibration.s_flop, calibration.s_op, calibration.s_fixed))
    total = features.ane_ops + features.off_ops
    widen = 1 + (features.off_ops / total if total else 0.0)
    ms = seconds * 1e3
    return {
        "estimate": round(ms, 3),
        "low": round(ms * (1 - calibration.band) / widen, 3),
        "high": round(ms * (1 + calibration.band) * widen, 3),
    }
