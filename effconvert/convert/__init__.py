"""convert: a fused model becomes artifacts on disk, one per (target, quant).

| target | quant modes | artifact      | runtime used to validate                         |
|--------|-------------|---------------|--------------------------------------------------|
| onnx   | fp32        | .onnx         | ONNX Runtime (CPU)                               |
| coreml | (targets issue) .mlpackage | MIL executor on Linux, Core ML on macOS |
| tflite | (targets issue) .tflite    | LiteRT interpreter (XNNPACK)            |

The table below (TARGETS) is the single source for option validation: a target/quant pair not in
it is refused before anything is loaded.
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

__all__ = ["Artifact", "ModelInfo", "TARGETS", "Target", "convert", "check_request"]


@dataclass(frozen=True)
class Target:
    name: str
    suffix: str
    quants: tuple[str, ...]
    build: Callable[..., None]          # (model, sample, out, *, metadata, options) -> None


def _build_onnx(model, sample, out, *, metadata, options):
    from .onnx import export_onnx

    export_onnx(model, sample, out, metadata=metadata, dynamic_batch=options.get("dynamic_batch", False))


TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("onnx", ".onnx", ("fp32",), _build_onnx),
)}
ALL_QUANTS = ("fp32", "fp16", "int8-weights", "int8")


def check_request(targets: list[str], quants: list[str]) -> list[tuple[str, str]]:
    """Expand `--target all`, refuse unknown or unsupported pairs; return (target, quant) pairs."""
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
    out = Path(out_dir) / artifact_name(info.arch, target, quant)
    start = time.perf_counter()
    spec.build(model, sample, out, metadata=provenance(info, target=target, quant=quant),
               options=options or {})
    return Artifact(target, quant, out, time.perf_counter() - start)
