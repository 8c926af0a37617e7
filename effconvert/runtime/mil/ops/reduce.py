"""MIL ops: reductions."""

from __future__ import annotations

import torch

from .registry import _axis, _ints, op


def _reduce(fn, x, op, axes=None, keep_dims=False):
    dims = [_axis(a, x.dim()) for a in _ints(axes)] if axes is not None else list(range(x.dim()))
    return fn(x, dims, bool(keep_dims))


op("reduce_mean")(lambda x, op, **kw: _reduce(lambda t, d, k: t.mean(dim=d, keepdim=k), x, op, **kw))
op("reduce_sum")(lambda x, op, **kw: _reduce(lambda t, d, k: t.sum(dim=d, keepdim=k), x, op, **kw))
op("reduce_max")(lambda x, op, **kw: _reduce(lambda t, d, k: t.amax(dim=d, keepdim=k), x, op, **kw))
op("reduce_min")(lambda x, op, **kw: _reduce(lambda t, d, k: t.amin(dim=d, keepdim=k), x, op, **kw))
op("reduce_prod")(
    lambda x, op, **kw: _reduce(
        lambda t, d, k: (
            torch.prod(t.reshape(*[s for i, s in enumerate(t.shape) if i not in d], -1), -1) if not k else _keep(t, d)
        ),
        x,
        op,
        **kw,
    )
)
op("reduce_l2_norm")(
    lambda x, op, **kw: _reduce(lambda t, d, k: torch.sqrt((t * t).sum(dim=d, keepdim=k)), x, op, **kw)
)


def _keep(t, dims):
    for d in sorted(dims):
        t = torch.prod(t, dim=d, keepdim=True)
    return t


@op("reduce_argmax")
def _argmax(x, op, axis=-1, keep_dims=False):
    return torch.argmax(x, dim=int(axis), keepdim=bool(keep_dims))
