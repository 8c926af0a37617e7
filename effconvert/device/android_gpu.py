"""An Android phone's GPU through LiteRT's GPU delegate, from a .tflite alone: which ops the delegate
would take and which it would leave on the CPU, each with the rule (gpu_rules.py). No latency
estimate: there are no published GPU measurements to calibrate one on.

A graph the delegate does not take whole is split: each CPU op costs a GPU -> CPU -> GPU round trip,
which often makes the GPU slower than XNNPACK on the CPU — so `whole` is the figure that matters.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from .gpu_rules import SOURCE, why_not
from .report import DeviceReport, OffAccelerator, Residency
from .tflite_ops import read_ops

WHAT = (
    "LiteRT's GPU delegate (OpenCL/OpenGL on Android): which ops it would take, by its own compatibility "
    "rules; no latency estimate (no published GPU measurements to calibrate one on)"
)


def device_report(path: Path) -> DeviceReport:
    ops = read_ops(Path(path))
    off = []
    for op in ops:
        reason = why_not(op)
        if reason is not None:
            off.append(OffAccelerator(op.name, op.type, reason, SOURCE))
    residency = Residency("gpu", len(ops), len(ops) - len(off), tuple(off))
    kinds = Counter(op.type for op in ops)
    if off:
        where = (
            f"GPU delegate: {residency.on}/{residency.total} ops; left on the CPU: "
            + ", ".join(f"{t} x{n}" for t, n in residency.by_type().items())
            + f" — the graph is split into GPU and CPU parts ({_partitions(ops)} GPU part(s))"
        )
    else:
        where = f"GPU delegate: takes all {residency.total} ops (one GPU graph)"
    notes = (where, f"{WHAT}.")
    details = {"op_types": dict(kinds.most_common()), "whole": not off, "gpu_partitions": _partitions(ops)}
    return DeviceReport("android-gpu-litert", WHAT, residency, None, where, notes, details)


def _partitions(ops: list) -> int:
    """Runs of consecutive delegated ops in execution order: the GPU graphs the delegate would build."""
    runs, inside = 0, False
    for op in ops:
        taken = why_not(op) is None
        runs += taken and not inside
        inside = taken
    return runs
