"""device: what a Core ML program will likely do on an iPhone's Neural Engine, from the file alone.

    device_report(path) -> {"device": "apple-a14-ane", "latency_ms": {...}, "ops": {...}, "segments": k, ...}

Residency by published rules (ane_rules.py), memory with the ANE's 64-byte rows (features.py), and an
A14 latency estimate from a cost model calibrated on Apple's published numbers only (cost.py). An
estimate, with its measured leave-one-out error — not a measurement.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import BadInput
from ..runtime.mil.program import load_program
from .ane_rules import PADDING_RULE
from .cost import GPU_SLOWDOWN, SWITCH_S, Calibration, Features, estimate_ms
from .features import op_costs

DEVICE = "apple-a14-ane"
WHAT = ("an estimate from a cost model calibrated on Apple's published A14 latencies of FastViT and "
        "MobileOne (../shared/device/published_a14.csv), not a measurement")


def device_report(path: Path) -> dict:
    path = Path(path)
    if not path.name.endswith(".mlpackage"):
        raise BadInput(f"{path.name}: the device estimate reads a Core ML .mlpackage")
    program = load_program(path)
    costs = op_costs(program)
    features = Features.of(costs)
    calibration = Calibration.load()
    moved = sum(c.bytes for c in costs)
    plain = sum(c.unpadded_bytes for c in costs)
    runs = features.switches + 1 if costs else 0
    return {
        "device": DEVICE,
        "latency_ms": estimate_ms(features, calibration),
        "what": WHAT,
        "ops": {"total": len(costs), "ane": features.ane_ops,
                "off_ane": [{"op": c.name, "type": c.type, "rule": c.off_ane.number, "reason": c.off_ane.text,
                             "source": c.off_ane.source} for c in costs if c.off_ane is not None]},
        "segments": runs,
        "padding": {"rule": PADDING_RULE.number, "source": PADDING_RULE.source, "bytes_moved": int(moved),
                    "bytes_unpadded": int(plain), "waste": round(1 - plain / moved, 4) if moved else 0.0},
        "gflops": round((features.ane_flops + features.off_flops) / 1e9, 3),
        "calibration": {"rows": calibration.loo.get("rows", []), "band": calibration.band,
                        "leave_one_variant_out_max_error": calibration.loo.get("variant_max_error"),
                        "leave_one_family_out_max_error": calibration.loo.get("family_max_error"),
                        "priors": {"gpu_slowdown": GPU_SLOWDOWN, "switch_ms": SWITCH_S * 1e3}},
    }


def summary_line(report: dict) -> str:
    lat = report["latency_ms"]
    off = len(report["ops"]["off_ane"])
    return (f"A14 estimate {lat['estimate']:.2f} ms ({lat['low']:.2f}–{lat['high']:.2f}); "
            f"{report['ops']['ane']}/{report['ops']['total']} ops likely on the Neural Engine"
            + (f", {off} off ({report['segments']} segments)" if off else "")
            + f"; last-axis padding wastes {100 * report['padding']['waste']:.0f}% of the bytes moved")
