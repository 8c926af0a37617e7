"""ONNX: torch.onnx (dynamo exporter) at a stated opset -> onnxsim -> onnx.checker, metadata inside.

Input `input` NCHW float32 (normalised), output `logits`. Batch 1 unless dynamic_batch.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..atomic import atomic_path
from ..errors import ConversionFailed
from ..quantize import QuantPlan
from ..quantize.onnx import to_fp16
from ..quiet import first_line, quiet
from ..stopwatch import Stopwatch
from ..targets import ExportOptions
from .metadata import ModelInfo

OPSET = 18  # the dynamo exporter's native opset; ONNX Runtime 1.17+ and mobile ORT run it


def export_onnx(
    model: torch.nn.Module,
    sample: torch.Tensor,
    out: Path,
    *,
    quant: str,
    metadata: dict[str, str],
    dynamic_batch: bool = False,
    clock: Stopwatch | None = None,
) -> None:
    clock = clock or Stopwatch()
    with clock.running():  # importing the exporter is part of its cost
        import onnx
    import onnxsim

    dynamic_shapes = {"x": {0: torch.export.Dim("batch", min=1, max=1024)}} if dynamic_batch else None
    try:
        with quiet(), clock.running():
            program = torch.onnx.export(
                model.eval(),
                (sample,),
                dynamo=True,
                opset_version=OPSET,
                input_names=["input"],
                output_names=["logits"],
                dynamic_shapes=dynamic_shapes,
                verbose=False,
            )
        if program is None:
            raise ConversionFailed("ONNX export returned no program")
        proto = program.model_proto
    except ConversionFailed:
        raise
    except Exception as exc:  # the exporter raises many types; the message names the failing op
        raise ConversionFailed(f"ONNX export failed: {first_line(exc)}") from exc
    try:
        simplified, ok = onnxsim.simplify(proto)
        if ok:
            proto = simplified
    except Exception:  # noqa: BLE001 - onnxsim is an optimisation: the unsimplified graph is still valid
        pass
    if quant == "fp16":
        try:
            proto = to_fp16(proto)
        except Exception as exc:
            raise ConversionFailed(f"ONNX fp16 conversion failed: {first_line(exc)}") from exc
    proto.doc_string = f"effconvert {metadata.get('effconvert.arch', '')} {metadata.get('effconvert.quant', '')}"
    del proto.metadata_props[:]
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=value)
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as exc:
        raise ConversionFailed(f"exported ONNX model failed onnx.checker: {first_line(exc)}") from exc
    with atomic_path(out) as tmp:
        onnx.save(proto, str(tmp))


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
    export_onnx(
        model, sample, out, quant=plan.quant, metadata=metadata, dynamic_batch=options.dynamic_batch, clock=clock
    )
    return []


def input_layout(options: ExportOptions) -> str:
    return "nchw"


def read_metadata(path: Path) -> dict[str, str]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}
