"""convert: a fused model becomes one artifact on disk per (target, quant).

| target     | exporter      | input the artifact takes                    |
|------------|---------------|---------------------------------------------|
| coreml     | coreml.py     | RGB image 0-255 (or `--input tensor`)       |
| tflite     | tflite.py     | float NHWC, normalised (or `--layout nchw`) |
| onnx       | onnx.py       | float NCHW, normalised                      |
| executorch | executorch.py | float NCHW, normalised                      |
| qnn        | qnn.py        | float NCHW, normalised                      |

The target table (targets.py) names each exporter module; every exporter is the `Exporter`
protocol below. Quantization is the plan's (quantize/), applied by the exporter where its toolchain
takes it. Every artifact embeds provenance, preprocessing and labels (metadata.py), and its exporter
reads them back. Nothing here validates an artifact: that is validate/.
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path
from typing import Protocol, cast

import torch

from ..quantize import QuantPlan
from ..signals import third_party
from ..stopwatch import Stopwatch
from ..targets import TARGETS, ExportOptions, artifact_name
from .artifact import Artifact
from .large_kernels import NOT_BANDED_QUANTS, band_large_depthwise, banded_note
from .metadata import ModelInfo, provenance

__all__ = ["Artifact", "ExportOptions", "Exporter", "ModelInfo", "convert", "exporter_of"]


class Exporter(Protocol):
    """What each exporter module (convert/<target row's exporter>.py) provides."""

    def export(
        self,
        model: torch.nn.Module,
        info: ModelInfo,
        sample: torch.Tensor,
        out: Path,
        *,
        plan: QuantPlan,
        options: ExportOptions,
        metadata: dict[str, str],
        clock: Stopwatch,
    ) -> list[str]:
        """Write `out` atomically; return notes for the report."""
        ...

    def input_layout(self, options: ExportOptions) -> str:
        """What the artifact's input takes: "image" (0-255 pixels), "nchw" or "nhwc" tensors."""
        ...

    def read_metadata(self, path: Path) -> dict[str, str]:
        """The effconvert.* metadata the artifact carries (empty if it has none)."""
        ...


def exporter_of(target: str) -> Exporter:
    return cast(Exporter, importlib.import_module(f"{__name__}.{TARGETS[target].exporter}"))


def convert(
    model: torch.nn.Module,
    info: ModelInfo,
    *,
    target: str,
    plan: QuantPlan,
    out_dir: Path,
    sample: torch.Tensor,
    options: ExportOptions | None = None,
) -> Artifact:
    """Write `<arch>_<quant><suffix>` into `out_dir` (atomically) and describe it."""
    options = options or ExportOptions()
    exporter = exporter_of(target)
    banded = 0
    if TARGETS[target].xnnpack and plan.quant not in NOT_BANDED_QUANTS:  # XNNPACK's fast depthwise kernels
        model, banded = band_large_depthwise(model)
    out = Path(out_dir) / artifact_name(info.arch, target, plan.quant)
    clock = Stopwatch()
    start = time.perf_counter()
    with third_party():  # converters swallow KeyboardInterrupt: see effconvert/signals.py
        notes = exporter.export(
            model,
            info,
            sample,
            out,
            plan=plan,
            options=options,
            metadata=provenance(info, target=target, quant=plan.quant),
            clock=clock,
        )
    return Artifact(
        target,
        plan.quant,
        out,
        time.perf_counter() - start,
        exporter.input_layout(options),
        ([banded_note(banded)] if banded else []) + list(notes),
        toolchain_s=clock.seconds,
    )
