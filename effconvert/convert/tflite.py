"""TFLite: litert-torch (PT2E / StableHLO lowering) -> `.tflite` with metadata inside.

Input `input`: float32 NHWC normalised pixels by default (Android camera pipelines deliver
channel-last buffers), `--layout nchw` keeps NCHW. Output `logits`. The quant modes are
quantize/tflite.py's (fp16 and dynamic-range recipes, PT2E W8A8 with float GELUs and float I/O).
Depthwise convs of more than 25 taps are split into centred bands first (convert/__init__.py: the row
says xnnpack), except for int8-weights, where each band would quantize its input again.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..atomic import atomic_path
from ..errors import ConversionFailed
from ..quantize import QuantPlan
from ..quantize import tflite as quantizer
from ..quiet import first_line, quiet, quiet_native_stderr
from ..stopwatch import Stopwatch
from ..targets import ExportOptions
from .metadata import ModelInfo
from .tflite_metadata import add_metadata
from .tflite_metadata import read_metadata as read_metadata
from .tflite_standard_metadata import ImageClassifierMetadata, metadata_buffer, with_associated_files
from .wrappers import ChannelsLast


def export_tflite(
    model: torch.nn.Module,
    sample: torch.Tensor,
    out: Path,
    *,
    metadata: dict[str, str],
    plan: QuantPlan,
    layout: str = "nhwc",
    clock: Stopwatch | None = None,
    standard: ImageClassifierMetadata | None = None,
) -> list[str]:
    """Write `out`; return notes for the report. `standard`: the standard TFLite metadata to add
    (an NHWC image input: what MediaPipe, ML Kit and the Task Library read)."""
    module = ChannelsLast(model).eval() if layout == "nhwc" else model.eval()
    example = sample.permute(0, 2, 3, 1).contiguous() if layout == "nhwc" else sample
    clock = clock or Stopwatch()
    with quiet(), quiet_native_stderr():  # TF/absl log to file descriptor 2
        with clock.running():  # importing the converter is part of its cost
            import litert_torch

        litert_torch.config.show_progress = False
        try:
            module, quant_config = quantizer.quant_config(
                module,
                example,
                plan,
                channels_last=layout == "nhwc",
                module_prefix="model." if layout == "nhwc" else "",
                clock=clock,
            )  # ChannelsLast wraps the model
            with clock.running():
                edge_model = litert_torch.convert(module, (example,), quant_config=quant_config)
        except Exception as exc:  # the converter raises many types; the message names the op
            raise ConversionFailed(f"TFLite conversion failed: {first_line(exc)}") from exc
        with atomic_path(out) as tmp:
            with clock.running():
                edge_model.export(str(tmp))
            data = add_metadata(
                tmp.read_bytes(),
                {**metadata, "effconvert.input_layout": layout, "effconvert.int8_io": str(plan.int8_io).lower()},
                input_name="input",
                output_name="logits",
                standard=metadata_buffer(standard) if standard is not None and layout == "nhwc" else None,
            )
            data = quantizer.finish(data, plan)
            if standard is not None and layout == "nhwc":  # last: the labels archive follows the flatbuffer
                data = with_associated_files(data, standard.labels)
            tmp.write_bytes(data)
    notes = []
    if standard is not None:
        notes.append(
            "standard TFLite metadata (MediaPipe, ML Kit, Task Library): RGB input normalised with mean/std on "
            "0-255 pixels, labels.txt for the output"
            if layout == "nhwc"
            else "no standard TFLite metadata: MediaPipe, ML Kit and the Task Library read NHWC image inputs"
        )
    return notes + quantizer.notes(plan)


def export(
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
    """The target table's entry point (convert/__init__.py)."""
    pre = info.preprocessing
    h, w = pre.size
    standard = ImageClassifierMetadata(
        name=f"{info.arch} image classifier ({plan.quant})",
        description=f"{info.arch} converted by effconvert from {info.checkpoint} ({info.weights_note})",
        version=metadata.get("effconvert.version", ""),
        input_name="input",
        input_description=f"RGB image {w}x{h}: resize the short side to {int(h / pre.crop_pct)} "
        f"({pre.interpolation}), centre-crop {w}x{h}; normalised as (pixel - mean) / std",
        mean=[255.0 * m for m in pre.mean],
        std=[255.0 * s for s in pre.std],
        width=w,
        height=h,
        output_name="logits",
        output_description="class scores before softmax, one per label",
        labels=info.labels,
    )
    return export_tflite(
        model, sample, out, metadata=metadata, plan=plan, layout=options.layout, clock=clock, standard=standard
    )


def input_layout(options: ExportOptions) -> str:
    return options.layout
