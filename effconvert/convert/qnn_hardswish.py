"""HardSwish back as one node before QNN compiles the graph.

ONNX Runtime's QNN preprocessing optimizes the graph on the CPU EP, which inlines every HardSwish as
HardSigmoid(x; 1/6, 1/2) followed by Mul(x, ·). The QNN EP then fuses that pair back into the HTP's
HardSwish — and in onnxruntime-qnn 2.7.0 the fused op multiplies by x once more when the Mul reads
x first, which is the order the inliner writes: measured on EfficientViT-B0's stem (Conv ->
HardSigmoid -> Mul(x, h)), the HTP returned x² · HardSigmoid(x); with the operands swapped, x ·
HardSigmoid(x). The fusion's operand check is onnxruntime/onnxruntime-qnn#535. A HardSwish node is
what the exporter wrote, and the QNN EP maps it directly (checked: the whole B0 at 68.8 dB in fp16).
"""

from __future__ import annotations

import onnx
from onnx import helper

HARD_SWISH_ALPHA = 1.0 / 6.0
HARD_SWISH_BETA = 0.5


def restore_hardswish(model: onnx.ModelProto) -> int:
    """Replace each HardSigmoid(x; 1/6, 1/2) whose one consumer is Mul(x, ·) or Mul(·, x) by
    HardSwish(x), in place; how many were replaced."""
    graph = model.graph
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    outputs = {o.name for o in graph.output}
    replaced: dict[int, onnx.NodeProto | None] = {}  # id(node) -> its replacement (None: removed)
    for node in graph.node:
        if node.op_type != "HardSigmoid" or not _is_hard_swish_gate(node):
            continue
        gate, source = node.output[0], node.input[0]
        users = consumers.get(gate, [])
        if len(users) != 1 or gate in outputs:
            continue
        mul = users[0]
        if mul.op_type != "Mul" or sorted(mul.input) != sorted([gate, source]) or id(mul) in replaced:
            continue
        replaced[id(node)] = None
        replaced[id(mul)] = helper.make_node(
            "HardSwish", [source], [mul.output[0]], name=f"{mul.name or mul.output[0]}_hardswish"
        )
    if not replaced:
        return 0
    kept = [replaced.get(id(n), n) for n in graph.node]
    del graph.node[:]
    graph.node.extend(n for n in kept if n is not None)
    return sum(1 for n in replaced.values() if n is not None)


def _is_hard_swish_gate(node: onnx.NodeProto) -> bool:
    attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    alpha = attributes.get("alpha", 0.2)  # ONNX's defaults: a plain HardSigmoid is not HardSwish's gate
    beta = attributes.get("beta", 0.5)
    return abs(alpha - HARD_SWISH_ALPHA) < 1e-6 and abs(beta - HARD_SWISH_BETA) < 1e-6
