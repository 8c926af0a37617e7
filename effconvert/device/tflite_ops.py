"""The operators of a .tflite, as plain data: each op's type, its tensors (shape, type, constant or
not) and its builtin options — what a delegate's compatibility rules read. Read from the flatbuffer
through LiteRT's generated schema, without copying the weights.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TensorSpec:
    shape: tuple[int, ...]
    type: str  # FLOAT32, INT32, ...
    constant: bool  # its values are in the file (weights, axes, paddings, shapes)

    @property
    def rank(self) -> int:
        return len(self.shape)


@dataclass(frozen=True)
class Op:
    type: str  # the builtin operator's name, e.g. CONV_2D, or the custom op's name
    name: str  # its first output tensor's name: how a user finds it in a graph viewer
    inputs: tuple[TensorSpec | None, ...]  # None: an optional input left out
    outputs: tuple[TensorSpec, ...]
    options: Mapping[str, Any] = field(default_factory=dict)  # the builtin options, by schema field name
    custom: bool = False

    @property
    def runtime_inputs(self) -> int:
        return sum(1 for t in self.inputs if t is not None and not t.constant)

    @property
    def constant_inputs(self) -> int:
        return sum(1 for t in self.inputs if t is not None and t.constant)


def read_ops(path: Path) -> list[Op]:
    """Every operator of the main subgraph, in execution order."""
    from ai_edge_litert import schema_py_generated as schema

    data = Path(path).read_bytes()
    model = schema.Model.GetRootAs(data, 0)
    operator_names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    type_names = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    option_tables = {v: k for k, v in vars(schema.BuiltinOptions).items() if not k.startswith("_")}
    graph = model.Subgraphs(0)
    graph_inputs = {graph.Inputs(i) for i in range(graph.InputsLength())}

    def spec(index: int) -> TensorSpec | None:
        if index < 0:
            return None
        tensor = graph.Tensors(index)
        buffer = model.Buffers(tensor.Buffer())
        stored = buffer is not None and (buffer.DataLength() > 0 or buffer.Size() > 0)
        return TensorSpec(
            tuple(int(d) for d in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else (),
            type_names.get(tensor.Type(), str(tensor.Type())),
            stored and index not in graph_inputs,
        )

    ops = []
    for i in range(graph.OperatorsLength()):
        operator = graph.Operators(i)
        code = model.OperatorCodes(operator.OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        custom = builtin == schema.BuiltinOperator.CUSTOM
        op_type = (code.CustomCode() or b"CUSTOM").decode() if custom else operator_names.get(builtin, str(builtin))
        outputs = [operator.Outputs(j) for j in range(operator.OutputsLength())]
        name = graph.Tensors(outputs[0]).Name().decode(errors="replace") if outputs else f"op {i}"
        ops.append(
            Op(
                op_type,
                name,
                tuple(spec(operator.Inputs(j)) for j in range(operator.InputsLength())),
                tuple(s for s in (spec(o) for o in outputs) if s is not None),
                _options(schema, operator, option_tables),
                custom,
            )
        )
    return ops


def _options(schema: Any, operator: Any, tables: dict[int, str]) -> dict[str, Any]:
    """The operator's builtin options as {field: value}, read through the schema's accessors."""
    kind = tables.get(operator.BuiltinOptionsType(), "NONE")
    table = operator.BuiltinOptions()
    if kind == "NONE" or table is None or not hasattr(schema, kind):
        return {}
    options = getattr(schema, kind)()
    options.Init(table.Bytes, table.Pos)
    values = {}
    for attribute in dir(options):
        if not attribute[:1].isupper() or attribute.startswith("GetRootAs") or attribute == "Init":
            continue
        if attribute.endswith(("AsNumpy", "IsNone", "Length", "BufferHasIdentifier")):
            continue
        try:
            value = getattr(options, attribute)()
        except TypeError:  # an accessor that takes an index (a vector's element)
            continue
        if isinstance(value, bool | int | float):
            values[attribute] = value
    return values
