"""Run the GELUs of a full-integer TFLite model in float, inside XNNPACK.

litert-torch lowers PT2E's dequantize -> gelu -> quantize into an int8 GELU, which XNNPACK has no
kernel for: every GELU then cuts the XNNPACK delegate into another partition, and the int8 model
ran slower than fp32 (FastViT-S12 on this CPU: 20 partitions, 54.5 ms int8 vs 37.8 ms fp32).
Rewritten as DEQUANTIZE -> GELU (float) -> QUANTIZE, all three of which XNNPACK runs, the graph
stays in one delegate partition. Outputs are unchanged: requantized, the float GELU gives what the
int8 lookup table gives (measured: 32.74 dB both ways on FastViT-S12).
"""

from __future__ import annotations

import numpy as np

from .tflite_float_io import _float_twin, _op


def float_gelus(model, schema) -> int:
    """Rewrite every int8 GELU of the unpacked `model` in place; return how many."""
    rewritten = 0
    for subgraph in model.subgraphs:
        operators = []
        for op in subgraph.operators:
            code = model.operatorCodes[op.opcodeIndex]
            source, result = int(op.inputs[0]), int(op.outputs[0])
            if (
                max(code.builtinCode, code.deprecatedBuiltinCode) != schema.BuiltinOperator.GELU
                or subgraph.tensors[source].type != schema.TensorType.INT8
            ):
                operators.append(op)
                continue
            float_in = _float_twin(model, schema, subgraph, source, f"{_name(subgraph, source)}_float")
            float_out = _float_twin(model, schema, subgraph, result, f"{_name(subgraph, result)}_float")
            op.inputs, op.outputs = np.array([float_in]), np.array([float_out])
            operators += [
                _op(model, schema, schema.BuiltinOperator.DEQUANTIZE, source, float_in),
                op,
                _op(model, schema, schema.BuiltinOperator.QUANTIZE, float_out, result),
            ]
            rewritten += 1
        subgraph.operators = operators
    return rewritten


def _name(subgraph, index: int) -> str:
    name = subgraph.tensors[index].name or b""
    return name.decode() if isinstance(name, bytes) else str(name)
