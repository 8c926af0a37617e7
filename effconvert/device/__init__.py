"""device: what an artifact will likely do on a phone's accelerator, from the file alone — which ops
the accelerator takes, and a latency estimate calibrated on published measurements (an estimate,
with its measured error; never a measurement).

    device_report(path) -> DeviceReport      # the target table names the device module

| target | module        | accelerator                     | estimate                                  |
|--------|---------------|---------------------------------|-------------------------------------------|
| coreml | apple.py      | Neural Engine (published rules) | A14 (iPhone 12), cost.py                  |
| tflite | android_gpu.py| LiteRT's GPU delegate (its rules)| none (no published GPU measurements)     |
| qnn    | snapdragon.py | Hexagon HTP (the QNN compiler)  | the artifact's SoC (Galaxy S24/S25)       |
"""

from __future__ import annotations

import importlib
from pathlib import Path

from ..errors import BadInput
from ..files import check_artifact
from ..targets import TARGETS, target_of
from .report import DeviceReport, Estimate, OffAccelerator, Residency

__all__ = ["DeviceReport", "Estimate", "OffAccelerator", "Residency", "device_report", "has_device"]


def has_device(target: str) -> bool:
    return TARGETS[target].device is not None


def device_report(path: Path) -> DeviceReport:
    target = target_of(path)
    if target.device is None:
        with_device = [t for t in TARGETS.values() if t.device]
        raise BadInput(
            f"{Path(path).name}: no device model for {target.name} artifacts",
            hint="the device report reads " + " or ".join(t.suffix for t in with_device) + " artifacts",
        )
    check_artifact(Path(path))
    module = importlib.import_module(f"{__name__}.{target.device}")
    report: DeviceReport = module.device_report(Path(path))
    return report
