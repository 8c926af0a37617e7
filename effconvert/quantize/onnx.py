"""ONNX fp16: fp16 weights and compute, float32 input/output so apps feed the same tensors as fp32.
ONNX Runtime's CPU provider inserts casts around ops it has no fp16 kernel for."""

from __future__ import annotations

from ..quiet import quiet


def to_fp16(proto):
    from onnxconverter_common import float16

    with quiet():
        return float16.convert_float_to_float16(proto, keep_io_types=True)
