"""Qualcomm HTP quantization: QDQ ONNX as the QNN execution provider expects it, from ONNX Runtime's
own QNN recipe (`onnxruntime.quantization.execution_providers.qnn.get_qnn_qdq_config`).

    fp16   no quantization: the fp32 graph, compiled with the HTP's fp16 precision
    int8   W8A8: per-channel uint8 weights, uint8 activations (MinMax over the calibration images)
    w8a16  per-channel uint8 weights, uint16 activations — what Qualcomm ships for transformers

The float fallback keeps the most sensitive layers' activations in 16 bits (their inputs and
outputs overridden to uint16; ONNX Runtime inserts the 8<->16-bit conversions the HTP runs): the
HTP has no float ops inside a quantized graph to fall back to, 16-bit activations are its way.

Layers are the fused model's module paths (quantize/sensitivity.py); an ONNX node belongs to the
layer whose weight it reads (`<layer>.weight`, the initializer name torch.onnx keeps).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..quiet import quiet
from .plan import QuantPlan

ACTIVATIONS = {"int8": "QUInt8", "w8a16": "QUInt16"}  # onnxruntime.quantization.QuantType members


def quantize_qdq(model_path: Path, out: Path, plan: QuantPlan) -> list[str]:
    """Write the QDQ model of `model_path` (fp32 ONNX, no metadata) to `out`; notes for the report."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantType, quantize
    from onnxruntime.quantization.execution_providers.qnn import get_qnn_qdq_config

    if plan.calibration is None or len(plan.calibration) == 0:
        raise ValueError(f"{plan.quant} needs calibration images")
    calibration = plan.calibration

    class Images(CalibrationDataReader):
        def __init__(self, name: str) -> None:
            self.name = name
            self.rewind()

        def rewind(self) -> None:
            self.images: Iterator[np.ndarray] = iter(calibration.inputs[i : i + 1] for i in range(len(calibration)))

        def get_next(self) -> dict[str, np.ndarray] | None:
            image = next(self.images, None)
            return None if image is None else {self.name: image.astype(np.float32)}

    model = onnx.load(str(model_path))
    overrides = _sixteen_bit(model, plan.float_layers) if plan.quant == "int8" else {}
    with quiet():
        config = get_qnn_qdq_config(
            model,
            Images(model.graph.input[0].name),
            activation_type=getattr(QuantType, ACTIVATIONS[plan.quant]),
            weight_type=QuantType.QUInt8,
            per_channel=True,
            init_overrides=overrides or None,
        )
        quantize(model, out, config)
    return notes(plan)


def _sixteen_bit(model: Any, layers: tuple[str, ...]) -> dict[str, list[dict[str, Any]]]:
    """Tensor overrides that keep `layers`' input and output activations in uint16."""
    from onnxruntime.quantization import QuantType

    weights = {f"{layer}.weight": layer for layer in layers}
    initializers = {i.name for i in model.graph.initializer}
    tensors: dict[str, list[dict[str, Any]]] = {}
    for node in model.graph.node:
        if any(name in weights for name in node.input):
            for name in [*node.input, *node.output]:
                if name and name not in initializers:
                    tensors[name] = [{"quant_type": QuantType.QUInt16}]
    missing = set(weights) - {n for node in model.graph.node for n in node.input}
    if missing:
        raise ValueError(f"no ONNX node reads {sorted(missing)[0]}: the fallback's layers must be convs or linears")
    return tensors


def notes(plan: QuantPlan) -> list[str]:
    if plan.quant == "fp16":
        return ["fp32 graph compiled with the HTP's fp16 precision (enable_htp_fp16_precision)"]
    activations = {"int8": "uint8", "w8a16": "uint16"}[plan.quant]
    assert plan.calibration is not None
    found = [
        f"QDQ (ONNX Runtime's QNN recipe): per-channel uint8 weights, {activations} activations, "
        f"calibrated on {len(plan.calibration)} images; float input/output"
    ]
    if plan.float_layers:
        found.append(f"activations kept in 16 bits around: {', '.join(plan.float_layers)}")
    return found
