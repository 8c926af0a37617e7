"""Snapdragon HTP latency estimate: a linear cost model over what a compiled program computes,
fitted per (SoC, precision) on Qualcomm AI Hub's published measurements only.

    t = Σ_k  w_k · feature_k        (w_k >= 0, fitted by non-negative least squares on relative error)

Features (FEATURES) come from the artifact's graph record (convert/onnx_graph.py) and the compiler's
op mix (the framework-op trace). Which of them a (SoC, precision) uses is chosen by
bench/snapdragon_calibration.py by leave-one-model-out error among candidate sets — never by the
fit itself — and written with its error table to data/snapdragon_calibration.json. The band of an
estimate is that leave-one-model-out error's 90th percentile, either way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CALIBRATION_FILE = Path(__file__).parent / "data" / "snapdragon_calibration.json"

# Feature name -> how it is read from (graph record, compiler trace). Units keep the fitted weights
# near 1e-3..1 ms: GMACs, millions of elements, MB, hundreds of ops.
FEATURES = {
    "fixed": lambda g, t: 1.0,
    "gmacs": lambda g, t: g["macs"] / 1e9,
    "melementwise": lambda g, t: g["elementwise"] / 1e6,
    "activation_mb": lambda g, t: g["activation_mb"],
    "weight_mb": lambda g, t: g["weight_mb"],
    "hops": lambda g, t: sum(t["qnn_ops"].values()) / 100,
    "transposes": lambda g, t: t["qnn_ops"].get("Transpose", 0) / 10,
    "cpu_nodes": lambda g, t: len(t["cpu_nodes"]),
    # The compiled op mix by kind: attention's activation-by-activation products, its norms and
    # softmaxes, layout reshapes, convolutions — the HTP's cost per op differs by kind.
    "matmuls": lambda g, t: t["qnn_ops"].get("MatMul", 0) / 10,
    "layernorms": lambda g, t: t["qnn_ops"].get("LayerNorm", 0) / 10,
    "softmaxes": lambda g, t: t["qnn_ops"].get("Softmax", 0) / 10,
    "reshapes": lambda g, t: t["qnn_ops"].get("Reshape", 0) / 100,
    "convs": lambda g, t: (t["qnn_ops"].get("Conv2d", 0) + t["qnn_ops"].get("DepthWiseConv2d", 0)) / 100,
}


def features_of(graph: Mapping[str, Any], trace: Mapping[str, Any]) -> dict[str, float]:
    return {name: float(read(graph, trace)) for name, read in FEATURES.items()}


@dataclass(frozen=True)
class Fit:
    features: tuple[str, ...]
    weights: tuple[float, ...]
    band: float  # relative half-width: the leave-one-model-out |error|'s 90th percentile
    loo: Mapping[str, Any] = field(default_factory=dict)  # median / p90 error and the rows
    ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)  # each feature over the rows

    def outside(self, x: Mapping[str, float]) -> list[str]:
        """The features of `x` outside the calibration models' range, each with that range."""
        return [
            f"{f} {x[f]:.3g} (calibrated {low:.3g}–{high:.3g})"
            for f, (low, high) in self.ranges.items()
            if f != "fixed" and not low <= x[f] <= high
        ]

    def predict_ms(self, x: Mapping[str, float]) -> float:
        return sum(w * x[f] for f, w in zip(self.features, self.weights, strict=True))


@dataclass(frozen=True)
class SnapdragonCalibration:
    fits: Mapping[str, Fit]  # "SM8650 fp16" -> its fit
    source: str = ""

    @classmethod
    def load(cls, path: Path = CALIBRATION_FILE) -> SnapdragonCalibration:
        if not Path(path).exists():
            return cls({})
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        fits = {
            key: Fit(
                tuple(f["features"]),
                tuple(f["weights"]),
                f["band"],
                f.get("loo", {}),
                {name: (low, high) for name, (low, high) in f.get("ranges", {}).items()},
            )
            for key, f in data["fits"].items()
        }
        return cls(fits, data.get("source", ""))

    def missing(self, soc: str, quant: str) -> str:
        have = ", ".join(sorted(self.fits)) or "none"
        return f"the published measurements calibrate {have}"


# Our quant modes -> AI Hub's precision names in published_snapdragon.csv.
PUBLISHED_PRECISION = {"fp16": "float", "int8": "w8a8", "w8a16": "w8a16"}


def key(soc: str, quant: str) -> str:
    return f"{soc} {quant}"


def fit(rows: list[tuple[dict[str, float], float]], features: tuple[str, ...]) -> tuple[float, ...]:
    """Non-negative least squares on relative error: minimise Σ (predicted / published - 1)²."""
    import numpy as np
    from scipy.optimize import nnls

    a = np.array([[x[f] / ms for f in features] for x, ms in rows])
    b = np.ones(len(rows))
    scale = np.abs(a).max(axis=0)
    scale[scale == 0] = 1.0
    solution, _ = nnls(a / scale, b)
    return tuple(float(v) for v in solution / scale)


def estimate_ms(
    graph: Mapping[str, Any], trace: Mapping[str, Any], soc: str, quant: str, calibration: SnapdragonCalibration
) -> dict[str, Any] | None:
    """The estimate and its band, or None when no published rows calibrate (soc, quant)."""
    chosen = calibration.fits.get(key(soc, quant))
    if chosen is None:
        return None
    x = features_of(graph, trace)
    ms = chosen.predict_ms(x)
    return {
        "latency_ms": {
            "estimate": round(ms, 3),
            "low": round(ms * (1 - chosen.band), 3),
            "high": round(ms * (1 + chosen.band), 3),
        },
        "calibration": {
            "fit": key(soc, quant),
            "features": list(chosen.features),
            "band": chosen.band,
            "leave_one_model_out": {k: v for k, v in chosen.loo.items() if k != "rows"},
            "source": calibration.source,
        },
        "extrapolated": chosen.outside(x),
    }
