"""The MIL op registry and the helpers every op group shares.

Each op group module (elementwise, linalg, conv, norm, reduce, shape, outputs, quant) registers
its ops here with `@op(name)`; importing the `ops` package imports them all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

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
