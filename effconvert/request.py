"""The one place that checks a `Request` (options.py) before the checkpoint is read: every
option's range, every combination, every folder and file named. A refusal is one line and exit 2
with nothing written (design.md); bounds live in limits.py.

Checks that need the checkpoint (the family's input sizes, the labels count, the memory of the
inputs at the model's own size) run right after it is read, still before anything is written.
"""

from __future__ import annotations

import math
from pathlib import Path

from .errors import BadInput, shown
from .labels import read_labels_file
from .limits import MAX_INPUT_BYTES, MAX_SAMPLES, gib, input_bytes
from .load.metadata import image_size_value
from .load.read import check_checkpoint_path
from .load.snapshot import crop_pct_value, is_snapshot
from .load.snapshot import resolve as resolve_snapshot
from .options import OPTIONS, Request, default_out_dir
from .targets import Pairs, check_pairs
from .validate.gates import parse_gate
from .validate.inputs import check_image_folder
from .workspace import check_output_dir

__all__ = ["Request", "check_memory", "check_request", "default_out_dir"]


def check_request(request: Request, *, checkpoint: bool = True) -> Pairs:
    """Every check that needs no checkpoint; the (target, quant) pairs to build. `checkpoint=False`:
    the file does not exist yet (a batch job writes its synthetic checkpoint first)."""
    pairs = check_pairs(request.targets, request.quants, request.palettize)
    for option in OPTIONS:
        value = getattr(request, option.name)
        if option.choices is not None and value is not None and value not in option.choices:
            raise BadInput(
                f"{option.flag} {shown(value)} is not supported",
                hint="choose from: " + ", ".join(str(c) for c in option.choices),
            )
        used = any(quant in option.quants for _, quant in pairs.pairs)
        if option.strict and value != option.default and not used:
            raise BadInput(
                f"{option.flag} applies to --quant {' or '.join(option.quants)} only",
                hint=f"add --quant {option.quants[0]}, or drop {option.flag}",
            )
    if request.gate:
        parse_gate(request.gate)
    image_size_value(request.image_size)
    check_count("--samples", request.samples)
    if pairs.calibrated:
        check_count("--calib-samples", request.calib_samples)
    if request.image_size is not None:
        check_memory(request, request.image_size, request.image_size, pairs.calibrated)
    if not checkpoint:
        pass
    elif is_snapshot(request.checkpoint):
        check_checkpoint_path(resolve_snapshot(request.checkpoint)[0])
    else:
        check_checkpoint_path(Path(request.checkpoint))
    check_preprocessing(request)
    if request.val is not None:
        check_image_folder(Path(request.val), request.samples, "--val")
    if request.calib is not None:
        check_image_folder(Path(request.calib), request.calib_samples, "--calib")
    if request.labels is not None:
        read_labels_file(Path(request.labels))
    check_output_dir(request.output_dir)
    return pairs


def check_preprocessing(request: Request) -> None:
    for flag, values, positive in (("--mean", request.mean, False), ("--std", request.std, True)):
        if values is None:
            continue
        if (
            len(values) != 3
            or not all(math.isfinite(v) and abs(v) < 1e3 for v in values)
            or (positive and min(values) <= 0)
        ):
            raise BadInput(
                f"{flag} {','.join(f'{v:g}' for v in values)} must be 3 "
                f"{'positive ' if positive else ''}numbers, one per RGB channel, on 0..1 pixels",
                hint=f"e.g. {flag} " + ("0.485,0.456,0.406" if flag == "--mean" else "0.229,0.224,0.225"),
            )
    crop_pct_value(request.crop_pct)


def check_count(flag: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SAMPLES:
        raise BadInput(f"{flag} {value} is out of range: from 1 to {MAX_SAMPLES} images")


def check_memory(request: Request, height: int, width: int, calibrated: bool) -> None:
    """Refuse inputs that would not fit, with the number they would need (inputs are held at once)."""
    for flag, count, used in (
        ("--samples", request.samples, True),
        ("--calib-samples", request.calib_samples, calibrated),
    ):
        need = input_bytes(count, height, width)
        if used and need > MAX_INPUT_BYTES:
            raise BadInput(
                f"{flag} {count} at {height}x{width} needs {gib(need)} of float32 inputs, more than "
                f"the {gib(MAX_INPUT_BYTES)} allowed",
                hint=f"at most {MAX_INPUT_BYTES // input_bytes(1, height, width)} images at this size",
            )
