"""Read and write the metadata inside a `.tflite` flatbuffer, and name its I/O tensors.

A TFLite model has a `metadata` table of (name, buffer) entries; runtimes ignore names they do not
know. We add an `effconvert` entry holding JSON (provenance, preprocessing, labels) — readable from
Kotlin with the flatbuffers runtime, and by `read_metadata` here — and, beside it, the standard
`TFLITE_METADATA` entry other Android tools read (tflite_standard_metadata.py). The model is
re-packed through the generated schema's object API, as the TFLite Support metadata writer does.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

METADATA_NAME = "effconvert"
STANDARD_NAME = "TFLITE_METADATA"  # the entry MediaPipe Tasks, ML Kit and the Task Library read
_FILE_IDENTIFIER = b"TFL3"


def _schema():
    from ai_edge_litert import schema_py_generated as schema

    return schema


def add_metadata(
    data: bytes, metadata: dict[str, str], *, input_name: str, output_name: str, standard: bytes | None = None
) -> bytes:
    """`data` with effconvert's entry (and `standard`, a ModelMetadata flatbuffer, as TFLITE_METADATA)."""
    import flatbuffers

    schema = _schema()
    model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    _inline_offset_buffers(model, data)
    added = {METADATA_NAME: json.dumps(metadata, sort_keys=True).encode()}
    if standard is not None:
        added[STANDARD_NAME] = standard
    entries = [m for m in (model.metadata or []) if _text(m.name) not in added]
    for name, payload in added.items():
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(payload, dtype=np.uint8)
        model.buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name = name
        entry.buffer = len(model.buffers) - 1
        entries.append(entry)
    model.metadata = entries
    _name_io(model, input_name, output_name)
    builder = flatbuffers.Builder(len(data) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=_FILE_IDENTIFIER)
    return bytes(builder.Output())


def _inline_offset_buffers(model, data: bytes) -> None:
    """Some writers (ai-edge-quantizer) store weights after the flatbuffer, addressed by
    (offset, size); re-packing moves the flatbuffer, so bring them back inside it."""
    for buffer in model.buffers or []:
        if buffer.offset and buffer.offset > 1:
            buffer.data = np.frombuffer(data[buffer.offset : buffer.offset + buffer.size], dtype=np.uint8)
            buffer.offset, buffer.size = 0, 0


def _name_io(model, input_name: str, output_name: str) -> None:
    """Readable tensor and signature names instead of the exporter's `args_0` / `output_0`."""
    graph = model.subgraphs[0]
    for index, name in ((graph.inputs[0], input_name), (graph.outputs[0], output_name)):
        graph.tensors[index].name = name
    for signature in model.signatureDefs or []:
        for tensor_map, name in ((signature.inputs, input_name), (signature.outputs, output_name)):
            if tensor_map and len(tensor_map) == 1:
                tensor_map[0].name = name


def read_metadata(path: Path) -> dict[str, str]:
    schema = _schema()
    model = schema.Model.GetRootAs(Path(path).read_bytes(), 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if _text(entry.Name()) == METADATA_NAME:
            raw = model.Buffers(entry.Buffer()).DataAsNumpy()
            return json.loads(bytes(raw).decode())
    return {}


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")
