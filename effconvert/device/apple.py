"""The iPhone's Neural Engine, from a Core ML program alone: which ops likely leave it and an A14
latency estimate.

Residency by published rules (ane_rules.py), memory with the ANE's 64-byte rows (features.py), and an
A14 latency estimate from a cost model calibrated on Apple's published numbers only (cost.py). An
estimate, with its measured leave-one-out error — not a measurement.
"""

from __future__ import annotations

from pathlib import Path

from ..runtime.mil.program import load_program
from .ane_rules import PADDING_RULE
from .cost import GPU_SLOWDOWN, SWITCH_S, Calibration, Features, estimate_ms
from .features import op_costs
from .report import DeviceReport, Estimate, OffAccelerator, Residency

DEVICE = "apple-a14-ane"
WHAT = (
    "an estimate from a cost model calibrated on Apple's published A14 latencies of FastViT and "
    "MobileOne (effconvert/device/data/published_a14.csv), not a measurement"
)


def device_report(path: Path) -> DeviceReport:
    program = load_program(Path(path))
    costs = op_costs(program)
    features = Features.of(costs)
    calibration = Calibration.load()
    moved = sum(c.bytes for c in costs)
    plain = sum(c.unpadded_bytes for c in costs)
    off = tuple(
        OffAccelerator(c.name, c.type, c.off_ane.text, c.off_ane.source, c.off_ane.number)
        for c in costs
        if c.off_ane is not None
    )
    residency = Residency("ane", len(costs), features.ane_ops, off)
    latency = Estimate(**estimate_ms(features, calibration))
    segments = features.switches + 1 if costs else 0
    waste = round(1 - plain / moved, 4) if moved else 0.0
    summary = (
        f"A14 estimate {latency.estimate:.2f} ms ({latency.low:.2f}–{latency.high:.2f}, a calibrated model, "
        "not a measurement); "
        f"{residency.on}/{residency.total} ops likely on the Neural Engine"
        + (f", {len(off)} off ({segments} segments)" if off else "")
        + f"; last-axis padding wastes {100 * waste:.0f}% of the bytes moved"
    )
    rules = sorted({f"rule {o.rule}: {o.reason}" for o in off})
    notes = (
        f"iPhone 12 (A14) estimate: {latency.estimate:.2f} ms, band {latency.low:.2f}–{latency.high:.2f} ms — {WHAT}",
        f"Neural Engine: {residency.on} of {residency.total} ops likely on it"
        + (f"; {len(off)} likely off ({'; '.join(rules)}), {segments} segments" if off else "")
        + f"; 64-byte last-axis rows waste {100 * waste:.0f}% of the bytes moved",
    )
    return DeviceReport(
        DEVICE,
        WHAT,
        residency,
        latency,
        summary,
        notes,
        details={
            "segments": segments,
            "padding": {
                "rule": PADDING_RULE.number,
                "source": PADDING_RULE.source,
                "bytes_moved": int(moved),
                "bytes_unpadded": int(plain),
                "waste": waste,
            },
            "gflops": round((features.ane_flops + features.off_flops) / 1e9, 3),
            "calibration": {
                "rows": calibration.loo.get("rows", []),
                "band": calibration.band,
                "leave_one_variant_out_max_error": calibration.loo.get("variant_max_error"),
                "leave_one_family_out_max_error": calibration.loo.get("family_max_error"),
                "priors": {"gpu_slowdown": GPU_SLOWDOWN, "switch_ms": SWITCH_S * 1e3},
            },
        },
    )
