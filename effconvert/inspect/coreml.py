"""`effconvert inspect` of a Core ML package: features, ops, constants, the device estimate and effconvert's metadata."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from ..errors import BadInput
from ..files import size_on_disk


def rows(path: Path) -> tuple[list[tuple[str, str]], dict[str, str]]:
    from ..quiet import quiet

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
    dtypes: Counter[str] = Counter()
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
    return rows, dict(spec.description.metadata.userDefined)
