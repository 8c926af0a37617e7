"""`effconvert inspect` of an ONNX model: inputs, outputs, opset, ops and effconvert's metadata."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from ..errors import BadInput


def rows(path: Path) -> tuple[list[tuple[str, str]], dict[str, str]]:
    import onnx

    try:
        model = onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError and others for a damaged file
        raise BadInput(f"not a readable ONNX model: {path.name}") from exc
    if not model.graph.node or not model.graph.input:  # protobuf parses many byte strings as empty
        raise BadInput(f"not an ONNX model: {path.name} has no graph")

    def shape(value_info) -> str:
        dims = [d.dim_param or str(d.dim_value) for d in value_info.type.tensor_type.shape.dim]
        return f"{value_info.name} [{', '.join(dims)}]"

    ops = Counter(n.op_type for n in model.graph.node)
    meta = {p.key: p.value for p in model.metadata_props}
    rows = [
        ("inputs", ", ".join(shape(i) for i in model.graph.input)),
        ("outputs", ", ".join(shape(o) for o in model.graph.output)),
        ("opset", ", ".join(f"{o.domain or 'ai.onnx'} {o.version}" for o in model.opset_import)),
        ("ops", ", ".join(f"{k} {v}" for k, v in ops.most_common())),
        ("size", f"{path.stat().st_size / 1e6:.2f} MB"),
    ]
    return rows, meta
