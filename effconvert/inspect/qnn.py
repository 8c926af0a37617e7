"""`effconvert inspect` of a .qnn.onnx: its I/O, the SoC it was compiled for, the context binary,
what the HTP runs and what stays on the CPU (the compiler's own account, kept in the artifact)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from ..errors import BadInput


def rows(path: Path) -> tuple[list[tuple[str, str]], dict[str, str]]:
    import onnx

    from ..convert.qnn import RESIDENCY_KEY

    try:
        model = onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError and others for a damaged file
        raise BadInput(f"not a readable ONNX model: {path.name}") from exc

    def shape(value_info: onnx.ValueInfoProto) -> str:
        dims = [d.dim_param or str(d.dim_value) for d in value_info.type.tensor_type.shape.dim]
        return f"{value_info.name} [{', '.join(dims)}]"

    contexts = [n for n in model.graph.node if n.op_type == "EPContext"]
    if not contexts:
        raise BadInput(f"{path.name} holds no compiled QNN context (no EPContext node)")
    binary = sum(len(a.s) for n in contexts for a in n.attribute if a.name == "ep_cache_context")
    sdk = next((a.s.decode() for n in contexts for a in n.attribute if a.name == "ep_sdk_version"), "?")
    meta = {p.key: p.value for p in model.metadata_props}
    residency = json.loads(meta.pop(RESIDENCY_KEY, "{}"))
    cpu = Counter(n.op_type for n in model.graph.node if n.op_type != "EPContext")
    rows = [
        ("inputs", ", ".join(shape(i) for i in model.graph.input)),
        ("outputs", ", ".join(shape(o) for o in model.graph.output)),
        ("compiled for", f"{meta.get('effconvert.soc', '?')} (QNN SDK {sdk})"),
        ("context binary", f"{len(contexts)} EPContext node(s), {binary / 1e6:.2f} MB embedded"),
    ]
    if residency:
        rows.append(
            (
                "HTP residency",
                f"{residency['htp_nodes']} of {residency['total_nodes']} ONNX nodes on the "
                f"HTP, {len(residency['cpu_nodes'])} on the CPU",
            )
        )
        rows.append(("HTP ops", ", ".join(f"{k} {v}" for k, v in residency["qnn_ops"].items())))
    rows.append(("CPU nodes", ", ".join(f"{k} {v}" for k, v in cpu.most_common()) or "none"))
    rows.append(("size", f"{path.stat().st_size / 1e6:.2f} MB"))
    return rows, meta
