"""What a user asks for (`Request`) and the one place that checks all of it before the checkpoint
is read: every option's range, every combination, every folder and file named. A refusal is one
line and exit 2 with nothing written (design.md); bounds live in limits.py.

Checks that need the checkpoint (the family's input sizes, the labels count, the memory of the
inputs at the model's own size) run right after it is read, still before anything is written.
"""

from __future__ import annotations

import math
from dataclasses import KW_ONLY, dataclass, fields
from pathlib import Path

from .convert import ExportOptions
from .errors import BadInput
from .limits import MAX_INPUT_BYTES, MAX_SAMPLES, gib, input_bytes
from .labels import read_labels_file
from .load.metadata import image_size_value
from .load.read import check_checkpoint_path
from .load.snapshot import HUB_PREFIX, crop_pct_value, is_snapshot
from .load.snapshot import resolve as resolve_snapshot
from .targets import check_pairs
from .validate.gates import parse_gate
from .validate.inputs import check_image_folder
from .workspace import check_output_dir


@dataclass(frozen=True)
class Request:
    checkpoint: Path
    targets: tuple[str, ...] = ("onnx",)
    quants: tuple[str, ...] = ("fp32",)
    out_dir: Path | None = None
    _: KW_ONLY                           # the rest by name: 21 positional fields read as noise
    arch: str | None = None
    image_size: int | None = None
    samples: int = 32
    val_dir: Path | None = None
    gate: str | None = None
    fuse: bool = True
    validate: bool = True
    labels_file: Path | None = None
    dynamic_batch: bool = False          # onnx
    layout: str = "nhwc"                 # tflite input layout
    ios: int = 16                        # coreml minimum deployment target
    input_kind: str = "image"            # coreml input: image | tensor
    calib_dir: Path | None = None        # int8: calibration images (built-in set when None)
    calib_samples: int = 64
    int8_io: bool = False                # tflite int8: integer input/output tensors
    palettize: int | None = None         # coreml: also an artifact with N-bit palettized weights
    fallback: bool = True                # int8 missing its gate: sensitive layers back to float
    mean: tuple[float, float, float] | None = None   # preprocessing overrides (a fine-tuned model's own)
    std: tuple[float, float, float] | None = None
    crop_pct: float | None = None
    offered_only: bool = False           # a batch's matrix: a named target skips quants it does not offer

    def export_options(self) -> ExportOptions:
        return ExportOptions(layout=self.layout, ios=self.ios, input_kind=self.input_kind,
                             dynamic_batch=self.dynamic_batch)

    def options(self) -> dict:
        """Everything that shapes the artifacts, as JSON (report.json's `options`; what a batch
        --resume compares): all fields but the checkpoint (its sha256 stands for it) and --out."""
        skip = {"checkpoint", "out_dir", "_"}
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self) if f.name not in skip}

    @property
    def output_dir(self) -> Path:
        return Path(self.out_dir) if self.out_dir else default_out_dir(self.checkpoint)


def _plain(value):
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return str(value) if isinstance(value, Path) else value


def default_out_dir(checkpoint: Path | str) -> Path:
    text = str(checkpoint)
    if text.startswith(HUB_PREFIX):
        return Path("effconvert-out") / text[len(HUB_PREFIX):].replace("/", "--")
    name = Path(checkpoint).name
    for suffix in (".pth.tar", ".safetensors", ".pth", ".pt", ".tar", ".bin", ".ckpt"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return Path("effconvert-out") / name


def check_request(request: Request, *, checkpoint: bool = True) -> list[tuple[str, str]]:
    """Every check that needs no checkpoint; the (target, quant) pairs to build. `checkpoint=False`:
    the file does not exist yet (a batch job writes its synthetic checkpoint first)."""
    pairs = check_pairs(list(request.targets), list(request.quants), request.palettize,
                        offered_only=request.offered_only)
    request.export_options().check()
    if request.gate:
        parse_gate(request.gate)
    image_size_value(request.image_size)
    int8 = any(quant == "int8" for _, quant in pairs)
    check_count("--samples", request.samples)
    if int8:
        check_count("--calib-samples", request.calib_samples)
    if request.image_size is not None:
        check_memory(request, request.image_size, request.image_size, int8)
    if not checkpoint:
        pass
    elif is_snapshot(request.checkpoint):
        check_checkpoint_path(resolve_snapshot(request.checkpoint)[0])
    else:
        check_checkpoint_path(Path(request.checkpoint))
    check_preprocessing(request)
    if request.val_dir is not None:
        check_image_folder(Path(request.val_dir), request.samples, "--val")
    if request.calib_dir is not None:
        if not int8:
            raise BadInput("--calib applies to --quant int8 only", hint="add --quant int8, or drop --calib")
        check_image_folder(Path(request.calib_dir), request.calib_samples, "--calib")
    if request.labels_file is not None:
        read_labels_file(Path(request.labels_file))
    check_output_dir(request.output_dir)
    return pairs


def check_preprocessing(request: Request) -> None:
    for flag, values, positive in (("--mean", request.mean, False), ("--std", request.std, True)):
        if values is None:
            continue
        if len(values) != 3 or not all(math.isfinite(v) and abs(v) < 1e3 for v in values) \
                or (positive and min(values) <= 0):
            raise BadInput(f"{flag} {','.join(f'{v:g}' for v in values)} must be 3 "
                           f"{'positive ' if positive else ''}numbers, one per RGB channel, on 0..1 pixels",
                           hint=f"e.g. {flag} " + ("0.485,0.456,0.406" if flag == "--mean" else "0.229,0.224,0.225"))
    crop_pct_value(request.crop_pct)


def check_count(flag: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SAMPLES:
        raise BadInput(f"{flag} {value} is out of range: from 1 to {MAX_SAMPLES} images")


def check_memory(request: Request, height: int, width: int, int8: bool) -> None:
    """Refuse inputs that would not fit, with the number they would need (inputs are held at once)."""
    for flag, count, used in (("--samples", request.samples, True), ("--calib-samples", request.calib_samples, int8)):
        need = input_bytes(count, height, width)
        if used and need > MAX_INPUT_BYTES:
            raise BadInput(f"{flag} {count} at {height}x{width} needs {gib(need)} of float32 inputs, more than "
                           f"the {gib(MAX_INPUT_BYTES)} allowed",
                           hint=f"at most {MAX_INPUT_BYTES // input_bytes(1, height, width)} images at this size")
