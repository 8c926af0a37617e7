"""MIL op semantics in torch, one function per op type, from coremltools' op definitions
(coremltools/converters/mil/mil/ops/defs/iOS15..iOS18). Each takes the op's resolved inputs as
keyword arguments (tensors, Python lists for tuple inputs, strings) plus `op` (for declared output
types) and returns one value or a tuple, in the op's output order.

Computation is float32; the executor rounds each output to its declared dtype afterwards.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
import torch.nn.functional as F

OpFn = Callable[..., Any]
OPS: dict[str, OpFn] = {}


def op(*names: str) -> Callable[[OpFn], OpFn]:
    def register(fn: OpFn) -> OpFn:
        for name in names:
            if name in OPS:
                raise KeyError(f"MIL op {name!r} is already registered")
            OPS[name] = fn
        return fn
    return register


def _ints(value) -> list[int]:
    return [int(v) for v in (value.flatten().tolist() if torch.is_tensor(value) else value)]


def _axis(axis, rank: int) -> int:
    axis = int(axis)
    return axis + rank if axis < 0 else axis


def _declared_shape(op) -> tuple[int, ...] | None:
    shape = op.outputs[0][1].shape
    return tuple(shape) if shape is not None and all(d is not None for d in shape) else None


# ---- elementwise -----------------------------------------------------------------------------

_BINARY = {
    "add": torch.add, "sub": torch.sub, "mul": torch.mul, "real_div": torch.div,
    "maximum": torch.maximum, "minimum": torch.minimum, "pow": torch.pow,
    "floor_div": lambda x, y: torch.div(x, y, rounding_mode="floor"), "mod": torch.remainder,
    "equal": torch.eq, "not_equal": torch.ne, "greater": torch.gt, "greater_equal": torch.ge,
    "less": torch.lt, "less_equal": torch.le, "logical_and": torch.logical_and,
    "logical_or": torch.logical_or,
}
for _name, _fn in _BINARY.items():
    op(_name)(lambda x, y, op, _fn=_fn: _fn(x, y))

_UNARY = {
    "relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "exp": torch.exp,
    "sqrt": torch.sqrt, "abs": torch.abs, "erf": torch.erf, "floor": torch.floor, "ceil": torch.ceil,
    "square": torch.square, "sign": torch.sign, "sin": torch.sin, "cos": torch.cos,
    "silu": F.silu, "logical_not": torch.logical_not, "round": torch.round,
    "identity": lambda x: x.clone(),
}
for _name, _fn in _UNARY.items():
    op(_name)(lambda x, op, _fn=_fn: _fn(x))


@op("relu6")
def _relu6(x, op):
    return torch.clamp(x, 0.0, 6.0)


@op("log")
def _log(x, op, epsilon=1e-45):
    return torch.log(x + float(epsilon))


@op("rsqrt")
def _rsqrt(x, op, epsilon=1e-12):
    return torch.rsqrt(x + float(epsilon))


@op("inverse")
def _inverse(x, op, epsilon=1e-4):
    return 1.0 / (x + float(epsilon))


@op("clip")
def _clip(x, alpha, beta, op):
    return torch.clamp(x, float(alpha), float(beta))


@op("thresholded_relu")
def _thresholded_relu(x, op, alpha=1.0):
    # MIL: x if x >= alpha else 0 (coremltools emits it for some ReLU patterns, e.g. MIT EfficientViT)
    return torch.where(x >= float(alpha), x, torch.zeros((), dtype=x.dtype))


@op("leaky_relu")
def _leaky_relu(x, op, alpha=0.01):
    return F.leaky_relu(x, float(alpha))


@op("sigmoid_hard")
def _sigmoid_hard(x, op, alpha=0.2, beta=0.5):
    return torch.clamp(float(alpha) * x + float(beta), 0.0, 1.0)


@op("hardswish")
def _hardswish(x, op):
    return x * torch.clamp(x + 3.0, 0.0, 6.0) / 6.0


@op("gelu")
def _gelu(x, op, mode="EXACT"):
    if mode == "EXACT":
        return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))
    if mode == "TANH_APPROXIMATION":
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    if mode == "SIGMOID_APPROXIMATION":
        return x * torch.sigmoid(1.702 * x)
    raise ValueError(f"gelu mode {mode}")


@op("softmax")
def _softmax(x, op, axis=-1):
    return torch.softmax(x, dim=int(axis))


@op("cast")
def _cast(x, dtype, op):
    if dtype in ("fp16", "fp32", "fp64", "bf16"):
        return x.to(torch.float32)
    if dtype == "bool":
        return x != 0
    if dtype.startswith(("int", "uint")):
        return torch.trunc(x.float()).to(torch.int64) if x.is_floating_point() else x.to(torch.int64)
    raise ValueError(f"cast to {dtype}")


@op("select")
def _select(cond, a, b, op):
    return torch.where(cond.bool(), a, b)


# ---- linear algebra --------------------------------------------------------------------------

@op("linear")
def _linear(x, weight, op, bias=None):
    return F.linear(x, weight, bias)


@op("matmul")
def _matmul(x, y, op, transpose_x=False, transpose_y=False):
    if transpose_x:
        x = x.transpose(-1, -2)
    if transpose_y:
        y = y.transpose(-1, -2)
    return torch.matmul(x, y)


@op("einsum")
def _einsum(values, equation, op):
    return torch.einsum(equation, *values)


@op("scaled_dot_product_attention")
def _sdpa(query, key, value, op, attn_mask=None):
    if attn_mask is not None and attn_mask.dtype == torch.bool:
        attn_mask = torch.zeros_like(attn_mask, dtype=query.dtype).masked_fill(~attn_mask, float("-inf"))
    return F.scaled_dot_product_attention(query, key, value, attn_mask=attn_mask)


# ---- convolution and pooling -----------------------------------------------------------------

def _pads(pad_type, pad, input_shape, kernel, strides, dilations) -> list[int]:
    """[before0, after0, before1, after1, ...] per spatial dim. Totals for `same` come from
    coremltools' own `aggregated_pad`; `same` puts an odd extra pixel after (as TF's SAME does),
    `same_lower` before."""
    if pad_type == "custom":
        return _ints(pad) if pad is not None else [0] * (2 * len(kernel))
    if pad_type == "valid":
        return [0] * (2 * len(kernel))
    from coremltools.converters.mil.mil.ops.defs._utils import aggregated_pad

    totals = aggregated_pad(pad_type=pad_type, kernel_shape=kernel, input_shape=input_shape,
                            strides=strides, dilations=dilations)
    pads = []
    for total in totals:
        small, large = int(total) // 2, int(total) - int(total) // 2
        pads += [large, small] if pad_type == "same_lower" else [small, large]
    return pads


def _torch_pad(pads: list[int]) -> list[int]:
    """MIL [b0, a0, b1, a1, ...] (first spatial dim first) -> F.pad order (last dim first)."""
    out = []
    for i in reversed(range(len(pads) // 2)):
        out += [pads[2 * i], pads[2 * i + 1]]
    return out


@op("conv")
def _conv(x, weight, op, bias=None, strides=None, pad_type="valid", pad=None, dilations=None, groups=1):
    spatial = x.dim() - 2
    strides = _ints(strides) if strides is not None else [1] * spatial
    dilations = _ints(dilations) if dilations is not None else [1] * spatial
    kernel = list(weight.shape[2:])
    pads = _pads(pad_type, pad, list(x.shape[2:]), kernel, strides, dilations)
    x = F.pad(x, _torch_pad(pads))
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[spatial]
    return conv(x, weight, bias, stride=strides, dilation=dilations, groups=int(groups))


@op("conv_transpose")
def _conv_transpose(x, weight, op, bias=None, strides=None, pad_type="valid", pad=None,
                    dilations=None, groups=1, output_shape=None):
    spatial = x.dim() - 2
    strides = _ints(strides) if strides is not None else [1] * spatial
    dilations = _ints(dilations) if dilations is not None else [1] * spatial
    fn = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[spatial]
    y = fn(x, weight, bias, stride=strides, dilation=dilations, groups=int(groups))
    pads = _ints(pad) if pad_type == "custom" and pad is not None else [0] * (2 * spatial)
    slices = [slice(None), slice(None)] + [slice(pads[2 * i], y.shape[2 + i] - pads[2 * i + 1]) for i in range(spatial)]
    y = y[tuple(slices)]
    target = _declared_shape(op)
    if target is not None and tuple(y.shape) != target:
        y = y[tuple(slice(0, t) for t in target)]
    return y


def _pool(kind, x, op, kernel_sizes, strides=None, pad_type="valid", pad=None, ceil_mode=False,
          exclude_padding_from_average=False):
    spatial = x.dim() - 2
    kernel = _ints(kernel_sizes)
    strides = _ints(strides) if strides is not None else [1] * spatial
    pads = _pads(pad_type, pad, list(x.shape[2:]), kernel, strides, [1] * spatial)
    symmetric = all(pads[2 * i] == pads[2 * i + 1] and pads[2 * i] <= kernel[i] // 2 for i in range(spatial))
    if kind == "max":
        fn = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[spatial]
        if symmetric:
            return fn(x, kernel, strides, [pads[2 * i] for i in range(spatial)], ceil_mode=bool(ceil_mode))
        return fn(F.pad(x, _torch_pad(pads), value=float("-inf")), kernel, strides, ceil_mode=bool(ceil_mode))
    fn = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}[spatial]
    if symmetric:
        return fn(x, kernel, strides, [pads[2 * i] for i in range(spatial)], ceil_mode=bool(ceil_mode),
                  count_include_pad=not bool(exclude_padding_from_average))
    padded = F.pad(x, _torch_pad(pads))
    total = fn(padded, kernel, strides, ceil_mode=bool(ceil_mode)) * math.prod(kernel)
    if exclude_padding_from_average:
        ones = F.pad(torch.ones_like(x[:, :1]), _torch_pad(pads))
        return total / (fn(ones, kernel, strides, ceil_mode=bool(ceil_mode)) * math.prod(kernel))
    return total / math.prod(kernel)


op("avg_pool")(lambda x, op, **kw: _pool("avg", x, op, **kw))
op("max_pool")(lambda x, op, **kw: _pool("max", x, op, **kw))


# ---- normalisation ---------------------------------------------------------------------------

def _affine(y, gamma, beta, shape=None):
    """Optional per-channel scale and shift after a normalisation (`shape`: how to broadcast)."""
    if gamma is not None:
        y = y * (gamma.reshape(shape) if shape else gamma)
    if beta is not None:
        y = y + (beta.reshape(shape) if shape else beta)
    return y


@op("batch_norm")
def _batch_norm(x, mean, variance, op, gamma=None, beta=None, epsilon=1e-5):
    shape = [1, -1] + [1] * (x.dim() - 2)
    y = (x - mean.reshape(shape)) / torch.sqrt(variance.reshape(shape) + float(epsilon))
    return _affine(y, gamma, beta, shape)


@op("layer_norm")
def _layer_norm(x, op, axes=None, gamma=None, beta=None, epsilon=1e-5):
    dims = [_axis(a, x.dim()) for a in _ints(axes)] if axes is not None else list(range(x.dim()))
    mean = x.mean(dim=dims, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=dims, keepdim=True)
    return _affine((x - mean) / torch.sqrt(var + float(epsilon)), gamma, beta)


@op("instance_norm")
def _instance_norm(x, op, gamma=None, beta=None, epsilon=1e-5):
    return _affine(F.instance_norm(x, eps=float(epsilon)), gamma, beta, [1, -1] + [1] * (x.dim() - 2))


@op("l2_norm")
def _l2_norm(x, op, axes=None, epsilon=1e-6):
    dims = [_axis(a, x.dim()) for a in _ints(axes)] if axes is not None else list(range(1, x.dim()))
    return x / torch.sqrt(torch.clamp((x * x).sum(dim=dims, keepdim=True), min=float(epsilon)))


# ---- reductions ------------------------------------------------------------------------------

def _reduce(fn, x, op, axes=None, keep_dims=False):
    dims = [_axis(a, x.dim()) for a in _ints(axes)] if axes is not None else list(range(x.dim()))
    return fn(x, dims, bool(keep_dims))


op("reduce_mean")(lambda x, op, **kw: _reduce(lambda t, d, k: t.mean(dim=d, keepdim=k), x, op, **kw))
op("reduce_sum")(lambda x, op, **kw: _reduce(lambda t, d, k: t.sum(dim=d, keepdim=k), x, op, **kw))
op("reduce_max")(lambda x, op, **kw: _reduce(lambda t, d, k: t.amax(dim=d, keepdim=k), x, op, **kw))
op("reduce_min")(lambda x, op, **kw: _reduce(lambda t, d, k: t.amin(dim=d, keepdim=k), x, op, **kw))
op("reduce_prod")(lambda x, op, **kw: _reduce(
    lambda t, d, k: torch.prod(t.reshape(*[s for i, s in enumerate(t.shape) if i not in d], -1), -1)
    if not k else _keep(t, d), x, op, **kw))
op("reduce_l2_norm")(lambda x, op, **kw: _reduce(lambda t, d, k: torch.sqrt((t * t).sum(dim=d, keepdim=k)), x, op, **kw))


def _keep(t, dims):
    for d in sorted(dims):
        t = torch.prod(t, dim=d, keepdim=True)
    return t


@op("reduce_argmax")
def _argmax(x, op, axis=-1, keep_dims=False):
    return torch.argmax(x, dim=int(axis), keepdim=bool(keep_dims))


# ---- tensor shape and movement ---------------------------------------------------------------

@op("reshape")
def _reshape(x, shape, op):
    """0 copies an input dim (iOS17: matched from the right), -1 is inferred; the result must match
    the program's declared output shape, which catches a misread rule rather than hiding it."""
    target = _ints(shape)
    if 0 in target:
        rank, n = x.dim(), len(target)
        target = [(x.shape[rank - (n - i)] if 0 <= rank - (n - i) < rank else 1) if t == 0 else t
                  for i, t in enumerate(target)]
    y = x.reshape(target)
    declared = _declared_shape(op)
    if declared is not None and tuple(y.shape) != declared:
        raise ValueError(f"reshape gave {tuple(y.shape)}, the program declares {declared}")
    return y


@op("transpose")
def _transpose(x, perm, op):
    return x.permute(_ints(perm)).contiguous()


@op("squeeze")
def _squeeze(x, op, axes=None):
    if axes is None:
        return x.squeeze()
    for a in sorted((_axis(a, x.dim()) for a in _ints(axes)), reverse=True):
        x = x.squeeze(a)
    return x


@op("expand_dims")
def _expand_dims(x, axes, op):
    rank = x.dim() + len(_ints(axes))
    for a in sorted(_axis(a, rank) for a in _ints(axes)):
        x = x.unsqueeze(a)
    return x


@op("split")
def _split(x, op, axis, num_splits=None, split_sizes=None):
    axis = _axis(axis, x.dim())
    if split_sizes is not None:
        return tuple(torch.split(x, _ints(split_sizes), dim=axis))
    return tuple(torch.chunk(x, int(num_splits), dim=axis))


@op("concat")
def _concat(values, axis, op, interleave=False):
    axis = _axis(axis, values[0].dim())
    if interleave:
        return torch.stack(values, dim=axis + 1).flatten(axis, axis + 1)
    return torch.cat(values, dim=axis)


@op("stack")
def _stack(values, axis, op):
    return torch.stack(values, dim=int(axis))


@op("tile")
def _tile(x, reps, op):
    return x.repeat(_ints(reps))


@op("flatten2d")
def _flatten2d(x, op, axis=1):
    axis = _axis(axis, x.dim())
    return x.reshape(math.prod(x.shape[:axis]), -1)


@op("slice_by_index")
def _slice_by_index(x, begin, end, op, stride=None, begin_mask=None, end_mask=None, squeeze_mask=None):
    rank = x.dim()
    begin, end = _ints(begin), _ints(end)
    stride = _ints(stride) if stride is not None else [1] * rank
    begin_mask = [bool(v) for v in _ints(begin_mask)] if begin_mask is not None else [False] * rank
    end_mask = [bool(v) for v in _ints(end_mask)] if end_mask is not None else [False] * rank
    squeeze = [bool(v) for v in _ints(squeeze_mask)] if squeeze_mask is not None else [False] * rank
    index = []
    for i in range(rank):
        if squeeze[i]:
            index.append(begin[i])
            continue
        b = None if begin_mask[i] else begin[i]
        e = None if end_mask[i] else end[i]
        if stride[i] < 0:
            return _negative_stride_slice(x, begin, end, stride, begin_mask, end_mask, squeeze)
        index.append(slice(b, e, stride[i]))
    return x[tuple(index)].clone()


def _negative_stride_slice(x, begin, end, stride, begin_mask, end_mask, squeeze):
    import numpy as np

    arr = x.numpy()
    index = []
    for i in range(x.dim()):
        if squeeze[i]:
            index.append(begin[i])
        else:
            index.append(slice(None if begin_mask[i] else begin[i], None if end_mask[i] else end[i], stride[i]))
    return torch.from_numpy(np.ascontiguousarray(arr[tuple(index)]))


@op("slice_by_size")
def _slice_by_size(x, begin, size, op):
    index = tuple(slice(b, None if s == -1 else b + s) for b, s in zip(_ints(begin), _ints(size)))
    return x[index].clone()


@op("gather")
def _gather(x, indices, op, axis=0, batch_dims=0, validate_indices=False):
    axis = _axis(axis, x.dim())
    idx = indices.long()
    idx = torch.where(idx < 0, idx + x.shape[axis], idx)
    if int(batch_dims) != 0:
        raise ValueError("gather with batch_dims != 0 is not supported")
    return torch.index_select(x, axis, idx.flatten()).reshape(*x.shape[:axis], *idx.shape, *x.shape[axis + 1:])


@op("gather_along_axis")
def _gather_along_axis(x, indices, op, axis=0, validate_indices=False):
    axis = _axis(axis, x.dim())
    idx = indices.long()
    return torch.gather(x, axis, torch.where(idx < 0, idx + x.shape[axis], idx))


@op("pad")
def _pad(x, pad, op, mode="constant", constant_val=0.0):
    pads = _ints(pad)
    n = len(pads) // 2
    torch_pads = []
    for i in reversed(range(n)):                       # MIL pads the last n dims, in order
        torch_pads += [pads[2 * i], pads[2 * i + 1]]
    if mode == "constant":
        return F.pad(x, torch_pads, value=float(constant_val))
    return F.pad(x, torch_pads, mode={"reflect": "reflect", "replicate": "replicate"}[mode])


@op("fill")
def _fill(shape, op, value=0.0):
    return torch.full(_ints(shape), float(value))


@op("shape")
def _shape(x, op):
    return torch.tensor(list(x.shape), dtype=torch.int64)


@op("range_1d")
def _range_1d(end, start, step, op):
    return torch.arange(float(start), float(end), float(step))


@op("upsample_nearest_neighbor")
def _upsample_nn(x, op, scale_factor_height=1, scale_factor_width=1):
    target = _declared_shape(op)
    size = target[-2:] if target else (int(x.shape[-2] * float(scale_factor_height)),
                                       int(x.shape[-1] * float(scale_factor_width)))
    return F.interpolate(x, size=size, mode="nearest")


@op("upsample_bilinear")
def _upsample_bilinear(x, op, scale_factor_height=1, scale_factor_width=1, align_corners=False,
                       half_pixel_centers=None):
    target = _declared_shape(op)
    size = target[-2:] if target else (int(x.shape[-2] * float(scale_factor_height)),
                                       int(x.shape[-1] * float(scale_factor_width)))
    return F.interpolate(x, size=size, mode="bilinear", align_corners=bool(align_corners))


@op("resize_bilinear")
def _resize_bilinear(x, op, target_size_height=1, target_size_width=1, sampling_mode="DEFAULT"):
    modes = {"ALIGN_CORNERS": True, "STRICT_ALIGN_CORNERS": True}
    return F.interpolate(x, size=(int(target_size_height), int(target_size_width)), mode="bilinear",
                         align_corners=modes.get(sampling_mode, False))


# ---- outputs ---------------------------------------------------------------------------------

@op("classify")
def _classify(probabilities, classes, op):
    probs = probabilities.flatten().tolist()
    labels = list(classes)
    best = max(range(len(probs)), key=probs.__getitem__)
    return labels[best], dict(zip(labels, probs))


# ---- compressed weights and activation quantisation ------------------------------------------
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
    return _torch_out(fn(_np(data, "float32"), _np(scale, "float32"),
                         None if offset is None else _np(offset, "float32")))


@op("constexpr_lut_to_dense")
def _constexpr_lut_to_dense(lut, indices, op, shape=None, vector_axis=None):
    if shape is not None:                                   # iOS16: packed indices + shape
        fn = _defs("iOS16.constexpr_ops").constexpr_lut_to_dense.decompress
        return _torch_out(fn(_np(lut, "float32"), _np(indices, "uint8"), _np(shape, "int64")))
    fn = _defs("iOS18.compression").constexpr_lut_to_dense.decompress
    return _torch_out(fn(_np(indices, "int64"), _np(lut, "float32"), None if vector_axis is None else int(vector_axis)))


@op("constexpr_sparse_to_dense")
def _constexpr_sparse_to_dense(nonzero_data, mask, op, shape=None):
    if shape is not None:                                   # iOS16: bit-packed mask + shape
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
