"""MIL ops: compressed weights and activation quantisation."""

from __future__ import annotations

import torch

from .registry import _axis, op

# Weight decompression uses coremltools' own `decompress` functions — the library's definition of
# these ops — on the constants read from the package; the executor only supplies the data.


def _np(value, dtype=None):
    import numpy as np

    array = value.numpy() if torch.is_tensor(value) else np.asarray(value)
    return array.astype(dtype) if dtype is not None else array


def _torch_out(array) -> torch.Tensor:
    import numpy as np

    array = np.asarray(array)
    return torch.from_numpy(array.astype(np.float32) if array.dtype.kind == "f" else array.astype(np.int64))


def _defs(module: str):
    import importlib

    return importlib.import_module(f"coremltools.converters.mil.mil.ops.defs.{module}")


@op("constexpr_affine_dequantize")
def _constexpr_affine_dequantize(quantized_data, zero_point, scale, axis, op):
    fn = _defs("iOS16.constexpr_ops").constexpr_affine_dequantize.decompress
    return _torch_out(fn(_np(quantized_data, "float32"), _np(zero_point, "float32"), _np(scale, "float32"), int(axis)))


@op("constexpr_blockwise_shift_scale")
def _constexpr_blockwise_shift_scale(data, scale, op, offset=None):
    fn = _defs("iOS18.compression").constexpr_blockwise_shift_scale.decompress
    return _torch_out(
        fn(_np(data, "float32"), _np(scale, "float32"), None if offset is None else _np(offset, "float32"))
    )


@op("constexpr_lut_to_dense")
def _constexpr_lut_to_dense(lut, indices, op, shape=None, vector_axis=None):
    if shape is not None:  # iOS16: packed indices + shape
        fn = _defs("iOS16.constexpr_ops").constexpr_lut_to_dense.decompress
        return _torch_out(fn(_np(lut, "float32"), _np(indices, "uint8"), _np(shape, "int64")))
    fn = _defs("iOS18.compression").constexpr_lut_to_dense.decompress
    return _torch_out(fn(_np(indices, "int64"), _np(lut, "float32"), None if vector_axis is None else int(vector_axis)))


@op("constexpr_sparse_to_dense")
def _constexpr_sparse_to_dense(nonzero_data, mask, op, shape=None):
    if shape is not None:  # iOS16: bit-packed mask + shape
        fn = _defs("iOS16.constexpr_ops").constexpr_sparse_to_dense.decompress
        return _torch_out(fn(_np(nonzero_data, "float32"), _np(mask, "uint8"), _np(shape, "int64")))
    fn = _defs("iOS18.compression").constexpr_sparse_to_dense.decompress
    return _torch_out(fn(_np(nonzero_data, "float32"), _np(mask, "int64")))


def _per_axis(param, x, axis):
    if param is None:
        return None
    if param.dim() == 0 or axis is None:
        return param
    shape = [1] * x.dim()
    shape[_axis(axis, x.dim())] = -1
    return param.reshape(shape)


_INT_RANGE = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767), "uint16": (0, 65535)}


@op("quantize")
def _quantize(input, scale, output_dtype, op, zero_point=None, axis=None):
    lo, hi = _INT_RANGE[output_dtype]
    scale = _per_axis(scale.float(), input, axis)
    zp = _per_axis(zero_point, input, axis)
    q = torch.round(input / scale) + (zp.float() if zp is not None else 0.0)
    return torch.clamp(q, lo, hi).to(torch.int64)


@op("dequantize")
def _dequantize(input, scale, op, zero_point=None, axis=None):
    scale = _per_axis(scale.float(), input, axis)
    zp = _per_axis(zero_point, input, axis)
    return (input.float() - (zp.float() if zp is not None else 0.0)) * scale
