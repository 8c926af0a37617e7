"""The standard TFLite metadata that MediaPipe Tasks, ML Kit and the TFLite Task Library read: the
input's normalization and colour space, the tensors' names and descriptions, and the labels as an
associated file — beside effconvert's own `effconvert` entry (tflite_metadata.py).

Written from the published metadata schema (metadata_schema.fbs, file identifier "M001", the schema
MediaPipe and TFLite Support ship): a `ModelMetadata` flatbuffer in the model's `TFLITE_METADATA`
metadata entry, and the associated files packed as a zip archive appended to the model (how those
libraries pack and find them; the flatbuffer is read from the start of the file, the zip from its
end). No maintained writer is installable here: TFLite Support (archived) needs protobuf < 4, which
onnx and coremltools refuse, and MediaPipe 1.2.2's Python metadata writer lacks its compiled
module. tests/test_targets.py reads the result back with MediaPipe's ImageClassifier.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass

ENTRY_NAME = "TFLITE_METADATA"  # the metadata entry readers look for
LABELS_FILE = "labels.txt"
_IDENTIFIER = b"M001"
_MIN_PARSER_VERSION = "1.0.0"  # the oldest parser that reads every field written here
# Enum and union values of metadata_schema.fbs.
_RGB = 1
_TENSOR_AXIS_LABELS = 2
_IMAGE_PROPERTIES = 2  # ContentProperties union
_NORMALIZATION_OPTIONS = 1  # ProcessUnitOptions union


@dataclass(frozen=True)
class ImageClassifierMetadata:
    name: str
    description: str
    version: str
    input_name: str
    input_description: str
    mean: Sequence[float]  # on 0..255 pixels: the input is (pixel - mean) / std
    std: Sequence[float]
    width: int
    height: int
    output_name: str
    output_description: str
    labels: Sequence[str]


def metadata_buffer(meta: ImageClassifierMetadata) -> bytes:
    """The `ModelMetadata` flatbuffer of an image classifier."""
    import flatbuffers

    b = flatbuffers.Builder(1024)

    def table(slots: list[tuple[str, int, object]]) -> int:
        """slots: (kind, field index, value) with kind "offset", "uint8" or "uint32"."""
        b.StartObject(max(slot for _, slot, _ in slots) + 1)
        for kind, slot, value in slots:
            if kind == "offset":
                b.PrependUOffsetTRelativeSlot(slot, value, 0)
            elif kind == "uint8":
                b.PrependUint8Slot(slot, value, 0)
            else:
                b.PrependUint32Slot(slot, value, 0)
        return int(b.EndObject())

    def offsets(items: list[int]) -> int:
        b.StartVector(4, len(items), 4)
        for item in reversed(items):
            b.PrependUOffsetTRelative(item)
        return int(b.EndVector())

    def floats(values: Sequence[float]) -> int:
        b.StartVector(4, len(values), 4)
        for value in reversed(values):
            b.PrependFloat32(float(value))
        return int(b.EndVector())

    # Leaves first: a flatbuffer's children are written before their parents.
    labels_file = table(
        [
            ("offset", 0, b.CreateString(LABELS_FILE)),
            ("offset", 1, b.CreateString("class names, one per line, in logit order")),
            ("uint8", 2, _TENSOR_AXIS_LABELS),
        ]
    )
    size = table([("uint32", 0, meta.width), ("uint32", 1, meta.height)])
    image = table([("uint8", 0, _RGB), ("offset", 1, size)])
    content = table([("uint8", 0, _IMAGE_PROPERTIES), ("offset", 1, image)])
    mean, std = floats(meta.mean), floats(meta.std)
    normalization = table([("offset", 0, mean), ("offset", 1, std)])
    process_unit = table([("uint8", 0, _NORMALIZATION_OPTIONS), ("offset", 1, normalization)])
    input_tensor = table(
        [
            ("offset", 0, b.CreateString(meta.input_name)),
            ("offset", 1, b.CreateString(meta.input_description)),
            ("offset", 3, content),
            ("offset", 4, offsets([process_unit])),
        ]
    )
    output_tensor = table(
        [
            ("offset", 0, b.CreateString(meta.output_name)),
            ("offset", 1, b.CreateString(meta.output_description)),
            ("offset", 6, offsets([labels_file])),
        ]
    )
    subgraph = table([("offset", 2, offsets([input_tensor])), ("offset", 3, offsets([output_tensor]))])
    model = table(
        [
            ("offset", 0, b.CreateString(meta.name)),
            ("offset", 1, b.CreateString(meta.description)),
            ("offset", 2, b.CreateString(meta.version)),
            ("offset", 3, offsets([subgraph])),
            ("offset", 4, b.CreateString("effconvert")),
            ("offset", 7, b.CreateString(_MIN_PARSER_VERSION)),
        ]
    )
    b.Finish(model, file_identifier=_IDENTIFIER)
    return bytes(b.Output())


def with_associated_files(model: bytes, labels: Sequence[str]) -> bytes:
    """The model with its associated files (the labels) packed as a zip archive after it: opened in
    append mode over the model, so the archive's offsets count from the start of the file, as the
    readers expect."""
    buffer = io.BytesIO(model)
    with zipfile.ZipFile(buffer, "a", compression=zipfile.ZIP_STORED) as files:
        info = zipfile.ZipInfo(LABELS_FILE, date_time=(1980, 1, 1, 0, 0, 0))  # no timestamp: same bytes each run
        files.writestr(info, "\n".join(labels) + "\n")
    return buffer.getvalue()
