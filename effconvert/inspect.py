"""`effconvert inspect`: what a checkpoint or an artifact holds, as (field, value) rows."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from .errors import BadInput
from .files import size_on_disk
from .targets import TARGETS, target_of


def inspect_path(path: Path) -> list[tuple[str, str]]:
    path = Path(path)
    if not path.exists():
        raise BadInput(f"not found: {path}")
    if any(path.name.lower().endswith(t.suffix) for t in TARGETS.values()):
        if size_on_disk(path) == 0:
            raise BadInput(f"{path} is empty (0 bytes): not an artifact")
        return _ARTIFACTS[target_of(path).name](path)
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
    if not model.graph.node or not model.graph.input:       # protobuf parses many byte strings as empty
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
    return rows + _metadata_rows(meta)


def _metadata_rows(meta: dict[str, str]) -> list[tuple[str, str]]:
    rows = []
    for key, value in meta.items():
        if key == "effconvert.labels":
            labels = json.loads(value)
            value = f"{len(labels)} labels: {', '.join(labels[:3])}, ..."
        rows.append((key, value))
    return rows


def _inspect_tflite(path: Path) -> list[tuple[str, str]]:
    from ai_edge_litert.interpreter import Interpreter

    from .quiet import quiet_native_stderr
    from .convert.tflite_metadata import read_metadata

    try:
        with quiet_native_stderr():
            interpreter = Interpreter(model_path=str(path))
        meta = read_metadata(path)
    except Exception as exc:  # the interpreter raises ValueError/RuntimeError for a damaged file
        raise BadInput(f"not a readable TFLite model: {path.name}") from exc

    def describe(details) -> str:
        return ", ".join(f"{d['name']} {[int(v) for v in d['shape']]} {d['dtype'].__name__}" for d in details)

    ops = Counter(op["op_name"] for op in interpreter._get_ops_details())
    return [
        ("inputs", describe(interpreter.get_input_details())),
        ("outputs", describe(interpreter.get_output_details())),
        ("ops", ", ".join(f"{k} {v}" for k, v in ops.most_common())),
        ("size", f"{path.stat().st_size / 1e6:.2f} MB"),
    ] + _metadata_rows(meta)


def _inspect_mlpackage(path: Path) -> list[tuple[str, str]]:
    from .quiet import quiet

    with quiet():
        import coremltools as ct

        try:
            spec = ct.utils.load_spec(str(path))
        except Exception as exc:  # protobuf / file errors
            raise BadInput(f"not a readable Core ML package: {path.name}") from exc

    def feature(f) -> str:
        kind = f.type.WhichOneof("Type")
        if kind == "imageType":
            t = f.type.imageType
            return f"{f.name} image {t.width}x{t.height} {ct.proto.FeatureTypes_pb2.ImageFeatureType.ColorSpace.Name(t.colorSpace)}"
        if kind == "multiArrayType":
            t = f.type.multiArrayType
            return f"{f.name} tensor {list(t.shape)} {ct.proto.FeatureTypes_pb2.ArrayFeatureType.ArrayDataType.Name(t.dataType)}"
        return f"{f.name} {kind.replace('Type', '')}"

    function = spec.mlProgram.functions["main"]
    block = function.block_specializations[function.opset]
    ops = Counter(op.type for op in block.operations)
    dtypes = Counter()
    for op in block.operations:
        if op.type == "const":
            value_type = op.attributes["val"].type.tensorType
            dtypes[ct.proto.MIL_pb2.DataType.Name(value_type.dataType)] += 1
    size = size_on_disk(path)
    rows = [
        ("inputs", ", ".join(feature(f) for f in spec.description.input)),
        ("outputs", ", ".join(feature(f) for f in spec.description.output)),
        ("classifier", f"{spec.description.predictedFeatureName} / {spec.description.predictedProbabilitiesName}"),
        ("spec version", f"{spec.specificationVersion} (opset {function.opset})"),
        ("ops", ", ".join(f"{k} {v}" for k, v in ops.most_common() if k != "const")),
        ("constants", ", ".join(f"{k} {v}" for k, v in dtypes.most_common())),
        ("size", f"{size / 1e6:.2f} MB"),
    ]
    from .device import device_report, summary_line

    try:
        rows.append(("device (estimate)", summary_line(device_report(path))))
    except Exception as exc:  # noqa: BLE001 - inspect still shows the rest
        rows.append(("device (estimate)", f"not available: {type(exc).__name__}"))
    return rows + _metadata_rows(dict(spec.description.metadata.userDefined))


def _inspect_pte(path: Path) -> list[tuple[str, str]]:
    from .runtime.executorch import program_summary
    from .convert.metadata import read_provenance

    try:
        summary = program_summary(path)
        meta = read_provenance(path)
    except Exception as exc:  # the flatbuffer reader raises many types for a file that is not a program
        raise BadInput(f"not a readable ExecuTorch program: {path.name}") from exc
    portable = sum(summary.portable_calls.values())
    return [
        ("inputs", ", ".join(f"input {shape} float32" for shape in summary.inputs)),
        ("outputs", str(summary.outputs)),
        ("delegates", ", ".join(f"{name} x{n}" for name, n in summary.backends.items()) or "none"),
        ("coverage", f"{summary.delegate_calls} delegate call(s), {portable} portable-kernel call(s)"
                     + (": " + ", ".join(f"{op} {n}" for op, n in summary.portable_calls.items()) if portable else "")),
        ("methods", ", ".join(summary.methods)),
        ("size", f"{path.stat().st_size / 1e6:.2f} MB"),
    ] + _metadata_rows(meta)


_ARTIFACTS = {"onnx": _inspect_onnx, "tflite": _inspect_tflite, "coreml": _inspect_mlpackage,
              "executorch": _inspect_pte}
