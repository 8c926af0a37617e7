"""The manifest an app reads beside its model, built from the artifact itself (its embedded
metadata and its real input/output signature), never from what we believe we converted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..files import artifact_sha256
from ..errors import BadInput


def _common(meta: dict[str, str], path: Path) -> dict[str, Any]:
    missing = [k for k in ("effconvert.arch", "effconvert.mean", "effconvert.labels") if k not in meta]
    if missing:
        raise BadInput(f"{path.name} has no effconvert metadata ({', '.join(missing)} missing)",
                       hint="convert it with effconvert first")
    return {
        "arch": meta["effconvert.arch"],
        "quant": meta.get("effconvert.quant", ""),
        "target": meta.get("effconvert.target", ""),
        "artifact": path.name,
        "sha256": artifact_sha256(path),
        "checkpoint_sha256": meta.get("effconvert.checkpoint_sha256", ""),
        "weights": meta.get("effconvert.weights", ""),
        "effconvert_version": meta.get("effconvert.version", ""),
        "labels": json.loads(meta["effconvert.labels"]),
        "preprocessing": {
            "input_size": json.loads(meta["effconvert.input_size"]),
            "mean": json.loads(meta["effconvert.mean"]),
            "std": json.loads(meta["effconvert.std"]),
            "crop_pct": float(meta["effconvert.crop_pct"]),
            "interpolation": meta["effconvert.interpolation"],
        },
    }


def coreml_manifest(path: Path) -> dict[str, Any]:
    from ..quiet import quiet

    with quiet():
        import coremltools as ct

        spec = ct.utils.load_spec(str(path))
    manifest = _common(dict(spec.description.metadata.userDefined), path)
    [feature] = spec.description.input
    kind = feature.type.WhichOneof("Type")
    if kind == "imageType":
        image = feature.type.imageType
        shape = [1, 3, int(image.height), int(image.width)]
        layout, normalization = "image", "in-model"
    else:
        shape = [int(d) for d in feature.type.multiArrayType.shape]
        layout, normalization = "nchw", "app"
    outputs = {o.name: o for o in spec.description.output}
    logits = outputs["logits"].type.multiArrayType
    manifest.update(input_name=feature.name, input_layout=layout, input_shape=shape,
                    output_name="logits", output_shape=[int(d) for d in logits.shape],
                    classifier_outputs=[spec.description.predictedFeatureName,
                                        spec.description.predictedProbabilitiesName])
    manifest["preprocessing"]["normalization"] = normalization
    return manifest


def tflite_manifest(path: Path) -> dict[str, Any]:
    from ai_edge_litert.interpreter import Interpreter

    from ..quiet import quiet_native_stderr
    from ..convert.tflite_metadata import read_metadata

    meta = read_metadata(path)
    with quiet_native_stderr():
        interpreter = Interpreter(model_path=str(path))
    [inp], [out] = interpreter.get_input_details(), interpreter.get_output_details()
    manifest = _common(meta, path)
    manifest.update(runtime="litert", input_name=inp["name"],
                    input_layout=meta.get("effconvert.input_layout", "nhwc"),
                    input_shape=[int(d) for d in inp["shape"]], input_dtype=inp["dtype"].__name__,
                    output_name=out["name"], output_shape=[int(d) for d in out["shape"]])
    manifest["preprocessing"]["normalization"] = "app"
    return manifest


def executorch_manifest(path: Path) -> dict[str, Any]:
    """From the program itself: its metadata method and its forward signature."""
    from ..runtime.executorch import ExecuTorchRuntime, program_summary

    runtime = ExecuTorchRuntime(path, threads=1)
    summary = program_summary(path)
    manifest = _common(runtime.metadata(), path)
    [shape] = summary.inputs
    logits = runtime.run_shape()
    manifest.update(runtime="executorch", input_name="input", input_layout="nchw", input_shape=shape,
                    input_dtype="float32", output_name="logits", output_shape=logits,
                    delegates=summary.backends)
    manifest["preprocessing"]["normalization"] = "app"
    return manifest


def qnn_manifest(path: Path) -> dict[str, Any]:
    """From the compiled model itself: its metadata, its input/output signature, the SoC it was
    compiled for and the nodes that stay on the CPU."""
    import onnx

    from ..convert.qnn import RESIDENCY_KEY

    model = onnx.load(str(path), load_external_data=False)
    meta = {p.key: p.value for p in model.metadata_props}
    manifest = _common(meta, path)
    [inp], [out] = model.graph.input, model.graph.output
    dims = lambda value: [d.dim_value for d in value.type.tensor_type.shape.dim]  # noqa: E731 - one shape reader
    residency = json.loads(meta.get(RESIDENCY_KEY, "{}"))
    manifest.update(runtime="onnxruntime-qnn", input_name=inp.name, input_layout="nchw", input_shape=dims(inp),
                    input_dtype="float32", output_name=out.name, output_shape=dims(out), soc=meta["effconvert.soc"],
                    cpu_nodes=[c["type"] for c in residency.get("cpu_nodes", [])])
    manifest["preprocessing"]["normalization"] = "app"
    return manifest
