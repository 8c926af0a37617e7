"""What an ONNX graph computes, from its declared shapes: the work and data of each op, summed by
kind. The qnn exporter stores it in the artifact (a compiled context binary no longer shows its
graph), and device/snapdragon.py prices it. Read from the float graph: a QDQ graph computes the
same ops, its weights behind DequantizeLinear nodes.

    macs            multiply-accumulates of Conv, Gemm and MatMul (from weight and output shapes)
    elementwise     output elements of every other op (activations, adds, norms, softmax, ...)
    activation_mb   bytes each op reads and writes, in the precision the graph runs at
    weight_mb       bytes of the weights, as stored in that precision
    ops             op counts by type (QDQ nodes, which the HTP folds into its ops, left out)
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

FREE = {"QuantizeLinear", "DequantizeLinear", "Constant", "Identity", "Shape"}
# Bytes per activation and per weight element on the HTP, per quant mode.
PRECISION = {"fp16": (2, 2), "int8": (1, 1), "w8a16": (2, 1)}


def graph_stats(path: Path, quant: str) -> dict[str, Any]:
    import onnx

    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    graph = model.graph
    shapes: dict[str, list[int]] = {}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        dims = [d.dim_value if d.HasField("dim_value") else 1 for d in value.type.tensor_type.shape.dim]
        shapes[value.name] = dims
    initializers = {i.name: list(i.dims) for i in graph.initializer}
    act_bytes, weight_bytes = PRECISION.get(quant, (2, 2))
    macs = elementwise = moved = weights = 0.0
    ops: Counter[str] = Counter()
    for node in graph.node:
        if node.op_type in FREE:
            continue
        ops[node.op_type] += 1
        out = math.prod(shapes.get(node.output[0], [0])) if node.output else 0
        weight = next((initializers[i] for i in node.input if i in initializers and len(initializers[i]) >= 2), None)
        if node.op_type == "Conv" and weight is not None:
            macs += out * math.prod(weight[1:])
        elif node.op_type in ("Gemm", "MatMul"):
            macs += out * (_weight_depth(node, weight) if weight is not None else _depth(node, shapes))
        else:
            elementwise += out
        for name in node.input:
            if name in initializers:
                weights += math.prod(initializers[name]) * weight_bytes
            elif name in shapes:
                moved += math.prod(shapes[name]) * act_bytes
        moved += out * act_bytes
    return {
        "macs": macs,
        "elementwise": elementwise,
        "activation_mb": round(moved / 1e6, 3),
        "weight_mb": round(weights / 1e6, 3),
        "ops": dict(ops.most_common()),
    }


def _weight_depth(node: Any, weight: list[int]) -> int:
    """The contracted length of a Gemm/MatMul with a weight: Gemm's B is (N, K) when transB is set."""
    trans_b = any(a.name == "transB" and a.i for a in node.attribute)
    return weight[-1] if node.op_type == "Gemm" and trans_b else weight[-2]


def _depth(node: Any, shapes: dict[str, list[int]]) -> int:
    """A MatMul of two activations (attention): the contracted length, from the first input's last axis."""
    first = shapes.get(node.input[0]) or [1]
    return first[-1] or 1
