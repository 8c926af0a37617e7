"""MIL ops: tensor shape and movement."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .registry import _axis, _declared_shape, _ints, op


@op("reshape")
def _reshape(x, shape, op):
    """0 copies an input dim (iOS17: matched from the right), -1 is inferred; the result must match
    the program's declared output shape, which catches a misread rule rather than hiding it."""
    target = _ints(shape)
    if 0 in target:
        rank, n = x.dim(), len(target)
        target = [
            (x.shape[rank - (n - i)] if 0 <= rank - (n - i) < rank else 1) if t == 0 else t
            for i, t in enumerate(target)
        ]
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
    return torch.index_select(x, axis, idx.flatten()).reshape(*x.shape[:axis], *idx.shape, *x.shape[axis + 1 :])


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
    for i in reversed(range(n)):  # MIL pads the last n dims, in order
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
    size = (
        target[-2:]
        if target
        else (int(x.shape[-2] * float(scale_factor_height)), int(x.shape[-1] * float(scale_factor_width)))
    )
    return F.interpolate(x, size=size, mode="nearest")


@op("upsample_bilinear")
def _upsample_bilinear(
    x, op, scale_factor_height=1, scale_factor_width=1, align_corners=False, half_pixel_centers=None
):
    target = _declared_shape(op)
    size = (
        target[-2:]
        if target
        else (int(x.shape[-2] * float(scale_factor_height)), int(x.shape[-1] * float(scale_factor_width)))
    )
    return F.interpolate(x, size=size, mode="bilinear", align_corners=bool(align_corners))


@op("resize_bilinear")
def _resize_bilinear(x, op, target_size_height=1, target_size_width=1, sampling_mode="DEFAULT"):
    modes = {"ALIGN_CORNERS": True, "STRICT_ALIGN_CORNERS": True}
    return F.interpolate(
        x,
        size=(int(target_size_height), int(target_size_width)),
        mode="bilinear",
        align_corners=modes.get(sampling_mode, False),
    )
