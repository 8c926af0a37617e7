"""MIL ops: convolution and pooling."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from .registry import _declared_shape, _ints, op


def _pads(pad_type, pad, input_shape, kernel, strides, dilations) -> list[int]:
    """[before0, after0, before1, after1, ...] per spatial dim. Totals for `same` come from
    coremltools' own `aggregated_pad`; `same` puts an odd extra pixel after (as TF's SAME does),
    `same_lower` before."""
    if pad_type == "custom":
        return _ints(pad) if pad is not None else [0] * (2 * len(kernel))
    if pad_type == "valid":
        return [0] * (2 * len(kernel))
    from coremltools.converters.mil.mil.ops.defs._utils import aggregated_pad

    totals = aggregated_pad(
        pad_type=pad_type, kernel_shape=kernel, input_shape=input_shape, strides=strides, dilations=dilations
    )
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
    if any(pads):  # F.pad copies even when it pads nothing (every 1x1 conv)
        x = F.pad(x, _torch_pad(pads))
    if int(groups) == 1 and kernel == [1] * spatial and strides == [1] * spatial and not any(pads):
        return _pointwise(x, weight, bias)
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[spatial]
    return conv(x, weight, bias, stride=strides, dilation=dilations, groups=int(groups))


def _pointwise(x, weight, bias):
    """A 1x1 convolution as the matrix product it is, (O, C) @ (C, H*W) per image: oneDNN's conv
    reordered the weight into a blocked copy on every call (S12's 2048x512 weight: 4 MB more at
    that op). Same sums, in another order: within float32 rounding of F.conv2d."""
    n, channels = x.shape[:2]
    matrix = weight.reshape(weight.shape[0], channels)
    columns = x.reshape(n, channels, -1)
    y = (
        torch.matmul(matrix, columns)
        if bias is None
        else torch.baddbmm(bias.reshape(1, -1, 1), matrix.expand(n, -1, -1), columns)
    )
    return y.reshape(n, weight.shape[0], *x.shape[2:])


@op("conv_transpose")
def _conv_transpose(
    x, weight, op, bias=None, strides=None, pad_type="valid", pad=None, dilations=None, groups=1, output_shape=None
):
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


def _pool(
    kind,
    x,
    op,
    kernel_sizes,
    strides=None,
    pad_type="valid",
    pad=None,
    ceil_mode=False,
    exclude_padding_from_average=False,
):
    spatial = x.dim() - 2
    kernel = _ints(kernel_sizes)
    strides = _ints(strides) if strides is not None else [1] * spatial
    pads = _pads(pad_type, pad, list(x.shape[2:]), kernel, strides, [1] * spatial)
    symmetric = all(pads[2 * i] == pads[2 * i + 1] and pads[2 * i] <= kernel[i] // 2 for i in range(spatial))
    if kind == "max":
        fn: Callable[..., torch.Tensor] = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[spatial]
        if symmetric:
            return fn(x, kernel, strides, [pads[2 * i] for i in range(spatial)], ceil_mode=bool(ceil_mode))
        return fn(F.pad(x, _torch_pad(pads), value=float("-inf")), kernel, strides, ceil_mode=bool(ceil_mode))
    fn = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}[spatial]
    if symmetric:
        return fn(
            x,
            kernel,
            strides,
            [pads[2 * i] for i in range(spatial)],
            ceil_mode=bool(ceil_mode),
            count_include_pad=not bool(exclude_padding_from_average),
        )
    padded = F.pad(x, _torch_pad(pads))
    total = fn(padded, kernel, strides, ceil_mode=bool(ceil_mode)) * math.prod(kernel)
    if exclude_padding_from_average:
        ones = F.pad(torch.ones_like(x[:, :1]), _torch_pad(pads))
        return total / (fn(ones, kernel, strides, ceil_mode=bool(ceil_mode)) * math.prod(kernel))
    return total / math.prod(kernel)


op("avg_pool")(lambda x, op, **kw: _pool("avg", x, op, **kw))
op("max_pool")(lambda x, op, **kw: _pool("max", x, op, **kw))
