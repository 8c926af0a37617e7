"""MIL ops: normalisation."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .registry import _axis, _ints, op


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
