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


def _op(model, schema, builtin: int, source: int, result: int):
    op = schema.OperatorT()
    op.opcodeIndex = _opcode_index(model, schema, builtin)
    op.inputs, op.outputs = np.array([source]), np.array([result])
    return op


def rewrite_int8_model(data: bytes, *, float_io: bool) -> bytes:
    """The int8 graph edits, on one unpacked copy: float GELUs (tflite_float_gelu.py), then float
    input/output unless the app asked for integer I/O."""
    import flatbuffers

    from .tflite_float_gelu import float_gelus

    schema = _schema()
    model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    changed = float_gelus(model, schema) > 0
    if float_io:
        changed = add_float_io(model, schema) or changed
    if not changed:
        return data
    builder = flatbuffers.Builder(len(data) + 65536)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def add_float_io(model, schema, *, input_name: str = "input", output_name: str = "logits") -> bool:
    """Add QUANTIZE before an int8 input and DEQUANTIZE after an int8 output; False if neither."""
    subgraph = model.subgraphs[0]
    [int_in], [int_out] = subgraph.inputs, subgraph.outputs
    # Each end separately: a graph can end in float already (EfficientFormer's distilled head
    # averages two dequantized logits), and a DEQUANTIZE of a float tensor fails to prepare.
    quantize_in = subgraph.tensors[int_in].type == schema.TensorType.INT8
    dequantize_out = subgraph.tensors[int_out].type == schema.TensorType.INT8
    if not (quantize_in or dequantize_out):
        return False
    before, after, remap = [], [], {}
    if quantize_in:
        float_in = _float_twin(model, schema, subgraph, int_in, input_name)
        subgraph.tensors[int_in].name = f"{input_name}_int8".encode()
        before.append(_op(model, schema, schema.BuiltinOperator.QUANTIZE, float_in, int_in))
        remap[int_in] = float_in
    if dequantize_out:
        float_out = _float_twin(model, schema, subgraph, int_out, output_name)
        subgraph.tensors[int_out].name = f"{output_name}_int8".encode()
        after.append(_op(model, schema, schema.BuiltinOperator.DEQUANTIZE, int_out, float_out))
        remap[int_out] = float_out
    subgraph.operators = [*before, *subgraph.operators, *after]
    subgraph.inputs = np.array([remap.get(int_in, int_in)])
    subgraph.outputs = np.array([remap.get(int_out, int_out)])
    for signature in model.signatureDefs or []:
        for entry in [*(signature.inputs or []), *(signature.outputs or [])]:
            entry.tensorIndex = remap.get(entry.tensorIndex, entry.tensorIndex)
    return True
