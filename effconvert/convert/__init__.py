"""convert: a fused model becomes artifacts on disk, one per (target, quant).

| target | quant modes | artifact    | input                        | runtime used to validate            |
|--------|-------------|-------------|------------------------------|-------------------------------------|
| coreml | fp32, fp16, int8-weights, int8, pal6, pal4 | .mlpackage | RGB image 0-255 (or tensor) | Core ML on macOS; the MIL executor on Linux |
| tflite | fp32, fp16, int8-weights, int8 | .tflite | float NHWC, normalised | LiteRT interpreter (XNNPACK) |
| onnx   | fp32, fp16  | .onnx       | float NCHW, normalised       | ONNX Runtime (CPU)                  |

TARGETS is the single source for option validation: a target/quant pair not in it is refused
before anything is loaded. Every artifact embeds provenance, preprocessing and labels.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ..errors import BadInput
from .artifact import Artifact
from .metadata import ModelInfo, provenance
from .stopwatch import Stopwatch

__all__ = ["Artifact", "ModelInfo", "TARGETS", "Target", "convert", "check_request"]


@dataclass(frozen=True)
class Target:
    name: str
    suffix: str
    quants: tuple[str, ...]
    input_layout: Callable[[dict], str]  # options -> "image" | "nchw" | "nhwc"
    build: Callable[..., list[str]]      # (model, info, sample, out, *, quant, metadata, options, clock) -> notes


def _build_onnx(model, info, sample, out, *, quant, metadata, options, clock):
    from .onnx import export_onnx

    export_onnx(model, sample, out, quant=quant, metadata=metadata,
                dynamic_batch=options.get("dynamic_batch", False), clock=clock)
    return []


def _build_tflite(model, info, sample, out, *, quant, metadata, options, clock):
    from .tflite import export_tflite

    calibration = options.get("calibration")
    notes = export_tflite(model, sample, out, quant=quant, metadata=metadata, layout=options.get("layout", "nhwc"),
                          calibration=None if calibration is None else torch.as_tensor(calibration),
                          int8_io=options.get("int8_io", False),
                          float_layers=tuple(options.get("float_layers", ())), clock=clock)
    if quant == "int8":
        io = "int8 input/output" if options.get("int8_io") else "float input/output around the int8 graph"
        notes.append(f"W8A8 (per-channel weights), calibrated on {len(calibration)} images; {io}")
        if options.get("float_layers"):
            notes.append(f"kept in float: {', '.join(options['float_layers'])}")
    if quant == "int8-weights":
        notes.append("dynamic-range int8: int8 weights, float activations")
    return notes


def _build_coreml(model, info, sample, out, *, quant, metadata, options, clock):
    from .coreml import CalibrationImages, export_coreml

    calibration = None
    if options.get("calibration") is not None:
        calibration = CalibrationImages(options["calibration_pixels"], options["calibration"])
    return export_coreml(model, info.preprocessing, info.labels, out, metadata=metadata, quant=quant,
                         ios=options.get("ios", 16), input_kind=options.get("input_kind", "image"),
                         fp32_ops=options.get("fp32_ops", ()), calibration=calibration,
                         float_layers=tuple(options.get("float_layers", ())), clock=clock)


TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("coreml", ".mlpackage", ("fp32", "fp16", "int8-weights", "int8", "pal6", "pal4"),
           lambda o: "image" if o.get("input_kind", "image") == "image" else "nchw", _build_coreml),
    Target("tflite", ".tflite", ("fp32", "fp16", "int8-weights", "int8"), lambda o: o.get("layout", "nhwc"),
           _build_tflite),
    Target("onnx", ".onnx", ("fp32", "fp16"), lambda o: "nchw", _build_onnx),
)}
ALL_QUANTS = ("fp32", "fp16", "int8-weights", "int8", "pal6", "pal4")


def check_request(targets: list[str], quants: list[str], palettize: int | None = None) -> list[tuple[str, str]]:
    """Expand `--target all`, refuse unknown or unsupported pairs; return (target, quant) pairs.
    `palettize` (bits) adds one Core ML artifact with palettized weights (quant `pal<bits>`)."""
    pairs = _pairs(targets, quants)
    if palettize is not None:
        if f"pal{palettize}" not in TARGETS["coreml"].quants:
            raise BadInput(f"--palettize {palettize} is not supported", hint="choose from: 4, 6")
        if "coreml" not in targets and "all" not in targets:
            raise BadInput("--palettize applies to Core ML", hint="add --target coreml")
        if ("coreml", f"pal{palettize}") not in pairs:
            pairs.append(("coreml", f"pal{palettize}"))
    return pairs


def _pairs(targets: list[str], quants: list[str]) -> list[tuple[str, str]]:
    names = list(TARGETS) if "all" in targets else targets
    for name in names:
        if name not in TARGETS:
            raise BadInput(f"unknown target {name!r}", hint=f"choose from: {', '.join(TARGETS)}, all")
    for quant in quants:
        if quant not in ALL_QUANTS:
            raise BadInput(f"unknown quant {quant!r}", hint=f"choose from: {', '.join(ALL_QUANTS)}")
    pairs = []
    for name in dict.fromkeys(names):
        for quant in dict.fromkeys(quants):
            if quant not in TARGETS[name].quants:
                raise BadInput(f"{name} does not support --quant {quant} yet",
                               hint=f"{name} supports: {', '.join(TARGETS[name].quants)}")
            pairs.append((name, quant))
    return pairs


def artifact_name(arch: str, target: str, quant: str) -> str:
    return f"{arch}_{quant}{TARGETS[target].suffix}"


def convert(model: torch.nn.Module, info: ModelInfo, *, target: str, quant: str, out_dir: Path,
            sample: torch.Tensor, options: dict | None = None) -> Artifact:
    spec = TARGETS[target]
    options = options or {}
    out = Path(out_dir) / artifact_name(info.arch, target, quant)
    clock = Stopwatch()
    start = time.perf_counter()
    notes = spec.build(model, info, sample, out, quant=quant,
                       metadata=provenance(info, target=target, quant=quant), options=options, clock=clock)
    return Artifact(target, quant, out, time.perf_counter() - start, spec.input_layout(options), list(notes),
                    toolchain_s=clock.seconds)
