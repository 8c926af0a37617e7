"""Give a full-integer TFLite model float input and output, so apps keep feeding floats.

litert-torch folds the boundary quantize/dequantize of a PT2E static model into int8 I/O tensors;
an app would then have to quantize with the input's scale/zero point itself. Here the graph gets
a QUANTIZE op in front (float `input` -> the int8 tensor) and a DEQUANTIZE op behind (int8 ->
float `logits`), both run by XNNPACK. Edited through the schema's object API, like the metadata.
"""

from __future__ import annotations

import numpy as np


def _schema():
    from ai_edge_litert import schema_py_generated as schema

    return schema


def _opcode_index(model, schema, builtin: int) -> int:
    for i, code in enumerate(model.operatorCodes):
        if max(code.builtinCode, code.deprecatedBuiltinCode) == builtin:
            return i
    code = schema.OperatorCodeT()
    code.builtinCode = builtin
    code.deprecatedBuiltinCode = min(builtin, 127)
    code.version = 1
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def _float_twin(model, schema, subgraph, index: int, name: str) -> int:
    twin = schema.TensorT()
    twin.shape = list(subgraph.tensors[index].shape)
    twin.shapeSignature = subgraph.tensors[index].shapeSignature
    twin.type = schema.TensorType.FLOAT32
    twin.name = name.encode()
    buffer = schema.BufferT()
    model.buffers.append(buffer)
    twin.buffer = len(model.buffers) - 1
    subgraph.tensors.append(twin)
    return len(subgraph.tensors) - 1


def with_float_io(data: bytes, *, input_name: str = "input", output_name: str = "logits") -> bytes:
    import flatbuffers

    schema = _schema()
    model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    subgraph = model.subgraphs[0]
    [int_in], [int_out] = subgraph.inputs, subgraph.outputs
    if subgraph.tensors[int_in].type != schema.TensorType.INT8:
        return data                                          # already float at the boundary
    float_in = _float_twin(model, schema, subgraph, int_in, input_name)
    float_out = _float_twin(model, schema, subgraph, int_out, output_name)
    subgraph.tensors[int_in].name = f"{input_name}_int8".encode()
    subgraph.tensors[int_out].name = f"{output_name}_int8".encode()
    quantize, dequantize = schema.OperatorT(), schema.OperatorT()
    quantize.opcodeIndex = _opcode_index(model, schema, schema.BuiltinOperator.QUANTIZE)
    quantize.inputs, quantize.outputs = np.array([float_in]), np.array([int_in])
    dequantize.opcodeIndex = _opcode_index(model, schema, schema.BuiltinOperator.DEQUANTIZE)
    dequantize.inputs, dequantize.outputs = np.array([int_out]), np.array([float_out])
    subgraph.operators = [quantize, *subgraph.operators, dequantize]
    subgraph.inputs, subgraph.outputs = np.array([float_in]), np.array([float_out])
    for signature in model.signatureDefs or []:
        for entry in signature.inputs or []:
            if entry.tensorIndex == int_in:
                entry.tensorIndex = float_in
        for entry in signature.outputs or []:
            if entry.tensorIndex == int_out:
                entry.tensorIndex = float_out
    builder = flatbuffers.Builder(len(data) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
