"""`effconvert inspect`: what a checkpoint or an artifact holds, as (field, value) rows."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from .errors import BadInput


def inspect_path(path: Path) -> list[tuple[str, str]]:
    path = Path(path)
    if not path.exists():
        raise BadInput(f"not found: {path}")
    if path.suffix == ".onnx":
        return _inspect_onnx(path)
    return _inspect_checkpoint(path)


def _inspect_checkpoint(path: Path) -> list[tuple[str, str]]:
    from .load import load_checkpoint

    loaded = load_checkpoint(path)
    d = loaded.report_dict()
    pre = loaded.preprocessing
    return [
        ("architecture", f"{loaded.arch} ({loaded.family}; from {loaded.arch_from})"),
        ("layout", f"{loaded.source_layout}" + (" (reparameterized)" if loaded.fused_on_load else "")),
        ("wrapper", loaded.wrapper or "(bare state dict)"),
        ("parameters", f"{loaded.params:,}"),
        ("classes", str(loaded.num_classes)),
        ("input", f"{pre.input_size}, mean {pre.mean}, std {pre.std}"),
        ("resize", f"crop_pct {pre.crop_pct}, {pre.interpolation}, {pre.crop_mode} crop"),
        ("weights", d["weights"]),
        ("sha256", loaded.sha256),
    ]


def _inspect_onnx(path: Path) -> list[tuple[str, str]]:
    import onnx

    try:
        model = onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError and others for a damaged file
        raise BadInput(f"not a readable ONNX model: {path.name}") from exc

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
    for key, value in meta.items():
        if key == "effconvert.labels":
            labels = json.loads(value)
            value = f"{len(labels)} labels: {', '.join(labels[:3])}, ..."
        rows.append((key, value))
    return rows
