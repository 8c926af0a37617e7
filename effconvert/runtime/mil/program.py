"""Read a saved `.mlpackage` (not an in-memory model) into plain data the executor walks.

The program is `spec.mlProgram.functions["main"]`, block chosen by the function's opset; constants
are decoded once (inline values, or blobs in `weights/weight.bin`, read or — large fp16 and integer
ones — mapped, see MappedConstant). Declared output types are kept: the executor rounds to them (fp16)
and checks its shapes against them.
"""

from __future__ import annotations

import mmap
import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...errors import BadInput

# MIL DataType enum name -> the torch dtype a constant is *stored* in. Constants stay as compact as
# the package stores them (fp16 weights as fp16, int8 as int8): the executor widens each to what ops
# compute in (float32, int64) when an op reads it, so a program's weights cost their size on disk
# once, not twice (fp16) or eight times (int8 as int64).
_FLOATS = {"FLOAT16", "FLOAT32", "FLOAT64", "BFLOAT16"}
_TORCH_DTYPE = {
    "FLOAT16": torch.float16,
    "FLOAT32": torch.float32,
    "FLOAT64": torch.float32,
    "BFLOAT16": torch.bfloat16,
    "INT8": torch.int8,
    "UINT8": torch.uint8,
    "INT16": torch.int16,
    "UINT16": torch.int32,
    "INT32": torch.int32,
    "UINT32": torch.int64,
    "INT64": torch.int64,
    "BOOL": torch.bool,
    "INT4": torch.int8,
    "UINT4": torch.uint8,
    "UINT1": torch.uint8,
    "UINT2": torch.uint8,
    "UINT3": torch.uint8,
    "UINT6": torch.uint8,
}
_NUMPY_DTYPE = {
    torch.float16: np.float16,
    torch.float32: np.float32,
    torch.int8: np.int8,
    torch.uint8: np.uint8,
    torch.int16: np.int16,
    torch.int32: np.int32,
    torch.int64: np.int64,
    torch.bool: np.bool_,
}
_BLOB_READERS = {
    "FLOAT32": "read_float_data",
    "FLOAT16": "read_fp16_data",
    "INT8": "read_int8_data",
    "UINT8": "read_uint8_data",
    "INT16": "read_int16_data",
    "UINT16": "read_uint16_data",
    "INT32": "read_int32_data",
    "UINT32": "read_uint32_data",
    "INT4": "read_int4_data",
    "UINT4": "read_uint4_data",
    "UINT1": "read_uint1_data",
    "UINT2": "read_uint2_data",
    "UINT3": "read_uint3_data",
    "UINT6": "read_uint6_data",
}
# Blobs from this size are mapped, not read (MappedConstant); smaller ones cost less held than re-read.
MAPPED_BYTES = 1 << 16
_MAPPED = {"FLOAT16", "INT8", "UINT8", "INT16", "INT32"}  # widened (copied) by every op that reads them
_WHOLE_BYTES = {
    "FLOAT16": np.float16,
    "FLOAT32": np.float32,
    "INT8": np.int8,
    "UINT8": np.uint8,
    "INT16": np.int16,
    "UINT16": np.uint16,
    "INT32": np.int32,
    "UINT32": np.uint32,
}
MAX_CORE_ML_RANK = 5  # Core ML refuses tensors of higher rank at load time


@dataclass(frozen=True)
class TensorSpec:
    dtype: str  # MIL DataType name: FLOAT16, FLOAT32, INT32, BOOL, STRING, ...
    shape: tuple[int | None, ...] | None  # None = unknown rank; None entries = symbolic dims

    @property
    def rank(self) -> int | None:
        return None if self.shape is None else len(self.shape)

    @property
    def static_shape(self) -> tuple[int, ...] | None:
        """The shape when every dimension is known, else None."""
        if self.shape is None or any(d is None for d in self.shape):
            return None
        return tuple(int(d) for d in self.shape if d is not None)


@dataclass(frozen=True)
class Operation:
    type: str
    inputs: dict[str, list[Any]]  # argument -> list of ("name", str) or ("value", tensor)
    outputs: tuple[tuple[str, TensorSpec], ...]
    index: int


@dataclass
class Program:
    path: Path
    opset: str
    inputs: dict[str, TensorSpec]
    image_inputs: dict[str, str]  # input name -> colour layout (RGB/BGR/GRAYSCALE)
    operations: list[Operation]
    outputs: list[str]
    constants: dict[str, Any] = field(default_factory=dict)
    constant_types: dict[str, TensorSpec] = field(default_factory=dict)  # as declared (FLOAT16, INT8, ...)
    op_histogram: dict[str, int] = field(default_factory=dict)
    classifier: tuple[str, str] | None = None  # (label output, probabilities output)


def load_program(path: Path) -> Program:
    from ...quiet import quiet
    from ...signals import third_party

    path = Path(path)
    with quiet(), third_party():  # coremltools' import swallows KeyboardInterrupt (effconvert/signals.py)
        import coremltools as ct

        try:
            spec = ct.utils.load_spec(str(path))
        except Exception as exc:  # protobuf/file errors
            raise BadInput(f"not a readable Core ML package: {path}") from exc
    if spec.WhichOneof("Type") != "mlProgram":
        raise BadInput(f"{path.name} is not an ML Program (it is a {spec.WhichOneof('Type')})")
    mil = ct.proto.MIL_pb2
    function = spec.mlProgram.functions["main"]
    block = function.block_specializations[function.opset]
    weights = path / "Data" / "com.apple.CoreML" / "weights" / "weight.bin"
    blobs = _Blobs(weights) if weights.exists() else None

    def type_of(value_type) -> TensorSpec:
        kind = value_type.WhichOneof("type")
        if kind != "tensorType":
            return TensorSpec(kind or "UNKNOWN", None)
        t = value_type.tensorType
        dims = tuple(d.constant.size if d.WhichOneof("dimension") == "constant" else None for d in t.dimensions)
        return TensorSpec(mil.DataType.Name(t.dataType), dims)

    def decode(value) -> Any:
        spec_type = type_of(value.type)
        kind = value.WhichOneof("value")
        if kind == "immediateValue" and value.immediateValue.WhichOneof("value") == "list":
            return [decode(v) for v in value.immediateValue.list.values]  # e.g. class labels
        if kind == "immediateValue":
            tensor = value.immediateValue.tensor
            field_name = tensor.WhichOneof("value")
            if field_name == "bytes":  # packed fp16 / small ints
                raw = np.frombuffer(tensor.bytes.values, dtype=_np_dtype(spec_type.dtype))
                return _to_tensor(raw, spec_type)
            values = list(getattr(tensor, field_name).values) if field_name else []
            if spec_type.dtype == "STRING":
                return values if spec_type.shape else values[0]
            return _to_tensor(np.asarray(values), spec_type)
        if kind == "blobFileValue":
            if blobs is None:
                raise BadInput(f"{path.name}: weights/weight.bin is missing")
            mapped = blobs.mapped(value.blobFileValue.offset, spec_type)
            if mapped is not None:
                return mapped
            return _to_tensor(blobs.read(value.blobFileValue.offset, spec_type.dtype), spec_type)
        raise BadInput(f"{path.name}: unsupported constant encoding {kind}")

    inputs = {i.name: type_of(i.type) for i in function.inputs}
    image_inputs = {}
    for feature in spec.description.input:
        if feature.type.WhichOneof("Type") == "imageType":
            image_inputs[feature.name] = ct.proto.FeatureTypes_pb2.ImageFeatureType.ColorSpace.Name(
                feature.type.imageType.colorSpace
            )
    constants: dict[str, Any] = {}
    constant_types: dict[str, TensorSpec] = {}
    operations: list[Operation] = []
    histogram: dict[str, int] = {}
    for index, op in enumerate(block.operations):
        histogram[op.type] = histogram.get(op.type, 0) + 1
        outputs = tuple((o.name, type_of(o.type)) for o in op.outputs)
        if op.type == "const":
            constants[outputs[0][0]] = decode(op.attributes["val"])
            constant_types[outputs[0][0]] = outputs[0][1]
            continue
        args = {}
        for name, value in op.attributes.items():  # iOS16 constexpr ops keep data here
            if name != "name":
                args[name] = [("value", decode(value))]
        for name, argument in op.inputs.items():
            args[name] = [
                ("name", b.name) if b.WhichOneof("binding") == "name" else ("value", decode(b.value))
                for b in argument.arguments
            ]
        operations.append(Operation(op.type, args, outputs, index))
    classifier = None
    if spec.description.predictedFeatureName:
        classifier = (spec.description.predictedFeatureName, spec.description.predictedProbabilitiesName)
    if blobs is not None:
        blobs.close()
    return Program(
        path,
        function.opset,
        inputs,
        image_inputs,
        operations,
        list(block.outputs),
        constants,
        constant_types,
        histogram,
        classifier,
    )


class MappedConstant:
    """A large constant the executor widens from `weight.bin` each time an op reads it, instead of
    holding it: its bytes stay in the file's page cache (shared, as Core ML's own mapped weights are),
    and the process holds an op's weights only while the op runs — S12's 18 MB of fp16 weights
    would otherwise sit in memory beside the float32 copy each op makes anyway. Only types whose
    widening always copies (fp16, small ints) are mapped, so no op ever sees, keeps or writes the
    mapped bytes themselves. The file must not be rewritten in place while a program maps it
    (effconvert replaces packages by rename, which leaves a mapped file as it was)."""

    __slots__ = ("_map", "count", "dtype", "offset", "shape")

    def __init__(
        self, file_map: mmap.mmap, offset: int, count: int, dtype: torch.dtype, shape: tuple[int, ...]
    ) -> None:
        self._map, self.offset, self.count, self.dtype, self.shape = file_map, offset, count, dtype, shape

    def view(self) -> torch.Tensor:
        """The stored values, read-only, over the file map (copy before keeping or writing)."""
        array: np.ndarray = np.frombuffer(
            self._map, dtype=_NUMPY_DTYPE[self.dtype], count=self.count, offset=self.offset
        )
        with warnings.catch_warnings():  # the map is read-only; torch warns, callers only read it
            warnings.simplefilter("ignore", UserWarning)
            return torch.from_numpy(array).reshape(self.shape)

    def tensor(self) -> torch.Tensor:
        """A private copy in the stored dtype."""
        return self.view().clone()

    def release(self) -> None:
        """Drop this constant's pages from the process (the file keeps them; the next read maps them
        again from the page cache)."""
        if not hasattr(self._map, "madvise"):  # Windows: the OS decides
            return
        start = self.offset - self.offset % mmap.PAGESIZE
        end = self.offset + self.count * np.dtype(_NUMPY_DTYPE[self.dtype]).itemsize
        self._map.madvise(mmap.MADV_DONTNEED, start, end - start)

    def __repr__(self) -> str:
        return f"MappedConstant({self.dtype}, {self.shape})"


class _Blobs:
    """weights/weight.bin, read blob by blob into arrays of the stored dtype. Whole-byte types are
    read with plain file reads: coremltools' reader maps the whole file, whose pages then count in
    the process's memory beside the arrays made from them (twice the weights at load). Sub-byte
    types (palette indices, int4) go through coremltools' reader, which unpacks them. Large fp16
    and integer blobs are not read at all: `mapped` describes them over one read-only map of the file."""

    SENTINEL = 0xDEADBEEF  # starts every blob's 64-byte metadata record (MIL blob format v2)

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = path.stat().st_size
        self.file = open(path, "rb")  # noqa: SIM115 - held for the program's life (its weights are mapped from it)
        self._reader = None
        self._map: mmap.mmap | None = None

    def _record(self, offset: int) -> tuple[int, int]:
        """(data offset, size in bytes) of the blob whose metadata starts at `offset`, checked."""
        self.file.seek(offset)
        header = self.file.read(24)
        if len(header) < 24:
            raise BadInput(f"{self.path.parent.parent.parent.parent.name}: damaged weight.bin (blob at {offset})")
        sentinel, _kind, size, data_offset = struct.unpack("<IIQQ", header)
        if sentinel != self.SENTINEL or data_offset + size > self.size:
            raise BadInput(f"{self.path.parent.parent.parent.parent.name}: damaged weight.bin (blob at {offset})")
        return data_offset, size

    def mapped(self, offset: int, spec: TensorSpec) -> MappedConstant | None:
        """The blob as a MappedConstant when it is large and stored as it computes-after-widening
        (fp16, int8/uint8, int16/int32), else None (read it)."""
        shape = spec.static_shape
        if spec.dtype not in _MAPPED or shape is None:
            return None
        count = int(np.prod(shape, dtype=np.int64))
        item = np.dtype(_WHOLE_BYTES[spec.dtype]).itemsize
        if count * item < MAPPED_BYTES:  # small: read() reads its record, once
            return None
        data_offset, size = self._record(offset)
        if size != count * item:
            return None
        if self._map is None:
            self._map = mmap.mmap(self.file.fileno(), 0, access=mmap.ACCESS_READ)
        return MappedConstant(self._map, data_offset, count, _TORCH_DTYPE[spec.dtype], shape)

    def read(self, offset: int, dtype: str) -> np.ndarray:
        if dtype in _WHOLE_BYTES:
            data_offset, size = self._record(offset)
            self.file.seek(data_offset)
            item = np.dtype(_WHOLE_BYTES[dtype]).itemsize
            return np.fromfile(self.file, dtype=_WHOLE_BYTES[dtype], count=size // item)
        if self._reader is None:
            from coremltools.libmilstoragepython import _BlobStorageReader

            self._reader = _BlobStorageReader(str(self.path))
        return np.asarray(getattr(self._reader, _BLOB_READERS[dtype])(offset))

    def close(self) -> None:
        self.file.close()
        self._reader = None


def check_weight_blobs(package: Path, offsets: list[int]) -> None:
    """Each blob the program names is in weight.bin whole (its record's sentinel, its data inside
    the file): a truncated or missing weight.bin is refused without reading the weights."""
    if not offsets:
        return
    weights = Path(package) / "Data" / "com.apple.CoreML" / "weights" / "weight.bin"
    if not weights.is_file():
        raise BadInput(f"{Path(package).name}: weights/weight.bin is missing")
    blobs = _Blobs(weights)
    try:
        for offset in offsets:
            blobs._record(offset)
    finally:
        blobs.close()


def rank_violations(program: Program) -> list[str]:
    """Ops whose declared output rank exceeds what Core ML accepts, named."""
    found = []
    for op in program.operations:
        for name, spec in op.outputs:
            if spec.rank is not None and spec.rank > MAX_CORE_ML_RANK:
                found.append(f"{op.type} '{name}' has rank {spec.rank}")
    return found


def _np_dtype(name: str):
    return {
        "FLOAT16": np.float16,
        "FLOAT32": np.float32,
        "INT8": np.int8,
        "UINT8": np.uint8,
        "INT16": np.int16,
        "UINT16": np.uint16,
        "INT32": np.int32,
        "UINT32": np.uint32,
    }.get(name, np.uint8)


def _to_tensor(data: np.ndarray, spec: TensorSpec) -> torch.Tensor:
    dtype = _TORCH_DTYPE.get(spec.dtype, torch.float32)
    if dtype in _NUMPY_DTYPE and data.dtype != _NUMPY_DTYPE[dtype]:
        data = data.astype(_NUMPY_DTYPE[dtype])  # one conversion, straight to the stored dtype
    data = np.ascontiguousarray(data)
    if not data.flags.writeable:  # views of the weight blob (e.g. palette indices)
        data = data.copy()
    tensor = torch.from_numpy(data).to(dtype)
    if spec.static_shape is not None:
        tensor = tensor.reshape(spec.static_shape)
    return tensor
