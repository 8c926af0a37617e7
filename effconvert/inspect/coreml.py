"""`effconvert inspect` of a Core ML package: features, ops, constants, the device estimate and effconvert's metadata."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from ..errors import BadInput
from ..files import size_on_disk
from ..runtime.mil.program import check_weight_blobs


def rows(path: Path) -> tuple[list[tuple[str, str]], dict[str, str]]:
    from ..quiet import quiet
    from ..signals import third_party

    with quiet(), third_party():  # coremltools' import swallows KeyboardInterrupt (effconvert/signals.py)
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
    blobs: list[int] = []
    for op in block.operations:
        if op.type == "const":
            value = op.attributes["val"]
            dtypes[ct.proto.MIL_pb2.DataType.Name(value.type.tensorType.dataType)] += 1
            if value.WhichOneof("value") == "blobFileValue":
                blobs.append(value.blobFileValue.offset)
    check_weight_blobs(path, blobs)  # a truncated weight.bin is refused, as device and bench refuse it
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
