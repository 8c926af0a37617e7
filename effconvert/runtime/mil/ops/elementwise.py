"""MIL ops: elementwise."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .registry import op

_BINARY = {
    "add": torch.add,
    "sub": torch.sub,
    "mul": torch.mul,
    "real_div": torch.div,
    "maximum": torch.maximum,
    "minimum": torch.minimum,
    "pow": torch.pow,
    "floor_div": lambda x, y: torch.div(x, y, rounding_mode="floor"),
    "mod": torch.remainder,
    "equal": torch.eq,
    "not_equal": torch.ne,
    "greater": torch.gt,
    "greater_equal": torch.ge,
    "less": torch.lt,
    "less_equal": torch.le,
    "logical_and": torch.logical_and,
    "logical_or": torch.logical_or,
}
for _name, _fn in _BINARY.items():
    op(_name)(lambda x, y, op, _fn=_fn: _fn(x, y))

_UNARY = {
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "exp": torch.exp,
    "sqrt": torch.sqrt,
    "abs": torch.abs,
    "erf": torch.erf,
    "floor": torch.floor,
    "ceil": torch.ceil,
    "square": torch.square,
    "sign": torch.sign,
    "sin": torch.sin,
    "cos": torch.cos,
    "silu": F.silu,
    "logical_not": torch.logical_not,
    "round": torch.round,
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


def gelu_factor(x, mode: str):
    """1 + erf(x / sqrt 2) (EXACT) or 1 + tanh(...) (TANH_APPROXIMATION): GELU is x * factor * 0.5.
    One new tensor, the rest in place (the written-out formula made five activation-sized
    temporaries, and glibc kept the freed ones: FastViT-S12, 53 MB of the executor's first run)."""
    if mode == "EXACT":
        return torch.div(x, math.sqrt(2.0)).erf_().add_(1.0)
    return torch.pow(x, 3).mul_(0.044715).add_(x).mul_(math.sqrt(2.0 / math.pi)).tanh_().add_(1.0)


@op("gelu")
def _gelu(x, op, mode="EXACT"):
    # Bitwise the same values as 0.5 * x * factor: a power-of-two scale is exact.
    if mode in ("EXACT", "TANH_APPROXIMATION"):
        return gelu_factor(x, mode).mul_(x).mul_(0.5)
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
