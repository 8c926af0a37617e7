"""What each op of a Core ML program costs, read from its declared types: arithmetic (multiply-adds
of conv, linear and matmul from their weight and output shapes; one op per output element
elsewhere) and memory moved (inputs read + output written, in the declared dtype, each tensor's
last axis padded to the Neural Engine's 64-byte rows — rule 3)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..runtime.mil.program import Operation, Program, TensorSpec
from .ane_rules import PADDING_RULE, Rule, argument, placement

ROW_BYTES = 64
DTYPE_BYTES = {"FLOAT16": 2, "FLOAT32": 4, "INT8": 1, "UINT8": 1, "INT16": 2, "INT32": 4, "BOOL": 1, "INT64": 8}
# Ops that only rename or describe tensors (no data moves on the device).
FREE_OPS = {"const", "shape", "identity"}


@dataclass(frozen=True)
class OpCost:
    name: str
    type: str
    flops: float
    bytes: float  # moved, with last-axis padding
    unpadded_bytes: float
    off_ane: Rule | None


def tensor_bytes(spec: TensorSpec, *, padded: bool = True) -> float:
    shape = spec.static_shape
    if shape is None:
        return 0.0
    size = DTYPE_BYTES.get(spec.dtype, 2)
    if not shape:
        return float(size)
    *rest, last = shape
    row = last * size
    if padded:
        row = math.ceil(row / ROW_BYTES) * ROW_BYTES
    return float(math.prod(rest) * row)


def op_costs(program: Program) -> list[OpCost]:
    specs: dict[str, TensorSpec] = dict(program.inputs)
    specs.update(program.constant_types)
    costs = []
    for op in program.operations:
        for name, spec in op.outputs:
            specs[name] = spec
        if op.type in FREE_OPS or op.type.startswith("constexpr_"):
            continue
        names = [v for args in op.inputs.values() for kind, v in args if kind == "name" and v in specs]
        # Activations move in 64-byte rows; weights are read as stored (their last axis is a kernel width).
        activations = [specs[v] for v in names if v not in program.constant_types] + [s for _, s in op.outputs]
        weights = [specs[v] for v in names if v in program.constant_types]
        outs = [spec for _, spec in op.outputs]
        weight_bytes = sum(tensor_bytes(s, padded=False) for s in weights)
        moved = sum(tensor_bytes(s) for s in activations) + weight_bytes
        plain = sum(tensor_bytes(s, padded=False) for s in activations) + weight_bytes
        costs.append(
            OpCost(
                op.outputs[0][0], op.type, _flops(op, program, outs, specs), moved, plain, placement(op, program, specs)
            )
        )
    return costs


def _flops(op: Operation, program: Program, outs: list[TensorSpec], specs: dict[str, TensorSpec]) -> float:
    out_elements = sum(math.prod(d or 1 for d in (s.shape or ())) for s in outs)
    weight = argument(op, "weight", program)
    if op.type == "conv" and weight is not None:
        return 2.0 * out_elements * math.prod(weight.shape[1:])  # per output: Cin/groups x kh x kw
    if op.type == "linear" and weight is not None:
        return 2.0 * out_elements * weight.shape[-1]
    if op.type == "matmul":
        return 2.0 * out_elements * (_depth(op, program, specs) or 1)
    return float(out_elements)


def _depth(op: Operation, program: Program, specs: dict[str, TensorSpec]) -> int | None:
    """The contracted length of a matmul from x's declared shape (honouring transpose_x)."""
    names = [v for kind, v in op.inputs.get("x", []) if kind == "name"]
    shape = specs[names[0]].shape if names and names[0] in specs else None
    if not shape or shape[-1] is None:
        return None
    transpose = argument(op, "transpose_x", program)
    return shape[-2] if transpose is not None and bool(transpose) else shape[-1]


__all__ = ["PADDING_RULE", "OpCost", "op_costs", "tensor_bytes"]
