"""convert: a fused model becomes one artifact on disk per (target, quant).

| target | exporter   | input the artifact takes                  |
|--------|------------|-------------------------------------------|
| coreml | coreml.py  | RGB image 0-255 (or `--input tensor`)     |
| tflite | tflite.py  | float NHWC, normalised (or `--layout nchw`) |
| onnx   | onnx.py    | float NCHW, normalised                    |

The target table (targets.py) names each exporter; quantization is the plan's (quantize/), applied
by the exporter where its toolchain takes it. Every artifact embeds provenance, preprocessing and
labels (metadata.py). Nothing here runs an artifact: that is runtime/ and validate/.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import BadInput
from ..quantize import QuantPlan
from ..stopwatch import Stopwatch
from ..targets import INPUT_KINDS, IOS_TARGETS, TARGETS, TFLITE_LAYOUTS, artifact_name  # options re-exported
from .artifact import Artifact
from .metadata import ModelInfo, provenance

__all__ = ["Artifact", "ExportOptions", "ModelInfo", "convert", "INPUT_KINDS", "IOS_TARGETS", "TFLITE_LAYOUTS"]




@dataclass(frozen=True)
class ExportOptions:
    """Per-target settings that are not about quantization."""

    layout: str = "nhwc"            # tflite input layout: nhwc | nchw
    ios: int = 16                   # coreml minimum deployment target
    input_kind: str = "image"       # coreml input: image | tensor
    dynamic_batch: bool = False     # onnx

    def check(self) -> None:
        """Refuse a value no exporter accepts, before anything is loaded (one line, exit 2)."""
        for flag, value, allowed in (("--ios", self.ios, IOS_TARGETS), ("--layout", self.layout, TFLITE_LAYOUTS),
                                     ("--input", self.input_kind, INPUT_KINDS)):
            if value not in allowed:
                raise BadInput(f"{flag} {value} is not supported",
                               hint="choose from: " + ", ".join(str(a) for a in allowed))

    def input_layout(self, target: str) -> str:
        """What the artifact's input takes: "image" (0-255 pixels), "nchw" or "nhwc" tensors."""
        if target == "coreml":
            return "image" if self.input_kind == "image" else "nchw"
        if target == "tflite":
            return self.layout
        return "nchw"


def convert(model: torch.nn.Module, info: ModelInfo, *, target: str, plan: QuantPlan, out_dir: Path,
            sample: torch.Tensor, options: ExportOptions = ExportOptions()) -> Artifact:
    """Write `<arch>_<quant><suffix>` into `out_dir` (atomically) and describe it."""
    spec = TARGETS[target]
    exporter = importlib.import_module(f"{__name__}.{spec.exporter}")
    out = Path(out_dir) / artifact_name(info.arch, target, plan.quant)
    clock = Stopwatch()
    start = time.perf_counter()
    notes = exporter.export(model, info, sample, out, plan=plan, options=options,
                            metadata=provenance(info, target=target, quant=plan.quant), clock=clock)
    return Artifact(target, plan.quant, out, time.perf_counter() - start, options.input_layout(target), list(notes),
                    toolchain_s=clock.seconds)
