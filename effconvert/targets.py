"""The one table of targets: what each can be asked for, what it writes, what runs it.

| target | quant modes                                | artifact    | validated on                                  |
|--------|--------------------------------------------|-------------|-----------------------------------------------|
| coreml | fp32, fp16, int8-weights, int8, pal6, pal4 | .mlpackage  | Core ML on macOS; the MIL executor on Linux   |
| tflite | fp32, fp16, int8-weights, int8             | .tflite     | LiteRT interpreter (XNNPACK)                  |
| onnx   | fp32, fp16                                 | .onnx       | ONNX Runtime (CPU)                            |
| executorch | fp32, int8                             | .pte        | ExecuTorch runtime, XNNPACK delegate          |

Option checking, `--help` text, conversion (the exporter named here), validation, inspect, bench
and the apps all read this table. It is plain data: exporters and runtimes are named by module so
that reading the table imports neither torch nor any converter (a bad option costs milliseconds).
A new target is one row here, one exporter module under convert/ and one runtime module under
runtime/.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import BadInput

# Every quant mode, in the order help and reports list them, with what it means.
QUANTS: dict[str, str] = {
    "fp32": "float32 weights and compute",
    "fp16": "half-precision weights and compute",
    "int8-weights": "int8 weights, float compute",
    "int8": "int8 weights and activations, calibrated (--calib)",
    "pal6": "6-bit palettized weights (Core ML; also --palettize 6)",
    "pal4": "4-bit palettized weights (Core ML; also --palettize 4)",
}


@dataclass(frozen=True)
class Target:
    name: str
    suffix: str
    quants: tuple[str, ...]
    exporter: str            # module under effconvert.convert with export(model, info, ...)
    runtime: str             # module under effconvert.runtime with open(path, ...)
    description: str
    # Quant modes deliberately not offered, with the measured reason the refusal quotes.
    refused: tuple[tuple[str, str], ...] = ()


TARGETS: dict[str, Target] = {}

# Per-target export options (convert/ checks them; the CLI's help lists them from here).
IOS_TARGETS = (16, 17, 18)          # Core ML minimum deployment targets
TFLITE_LAYOUTS = ("nhwc", "nchw")   # TFLite input layout
INPUT_KINDS = ("image", "tensor")   # Core ML input
# The checkpoint layouts load/ reads and make-checkpoint writes (tests/test_cli.py checks this list
# against the family table, which needs torch to import; the CLI's help must not).
CHECKPOINT_LAYOUTS = ("timm", "apple", "apple-fused", "snap", "cream", "mit")


def _register(target: Target) -> None:
    if target.name in TARGETS:                       # a duplicate row is a bug, not a preference
        raise KeyError(f"target {target.name!r} already registered")
    TARGETS[target.name] = target


for _row in (
    Target("coreml", ".mlpackage", ("fp32", "fp16", "int8-weights", "int8", "pal6", "pal4"), "coreml", "coreml",
           "Core ML ML Program (iPhone, Neural Engine)"),
    Target("tflite", ".tflite", ("fp32", "fp16", "int8-weights", "int8"), "tflite", "litert",
           "TFLite / LiteRT flatbuffer (Android, XNNPACK)"),
    Target("onnx", ".onnx", ("fp32", "fp16"), "onnx", "onnxrt", "ONNX (ONNX Runtime)"),
    Target("executorch", ".pte", ("fp32", "int8"), "executorch", "executorch",
           "ExecuTorch program, XNNPACK delegate (Android / iOS CPU)",
           refused=(("fp16", "measured: XNNPACK leaves every GELU in fp16 on ExecuTorch's portable kernels "
                             "(99 of 146 nodes delegated on FastViT-T8) and the .pte is no smaller than fp32"),)),
):
    _register(_row)


def target_of(path: Path) -> Target:
    """The target whose artifacts end like `path` (.mlpackage, .tflite, .onnx)."""
    name = Path(path).name.lower()
    for target in TARGETS.values():
        if name.endswith(target.suffix):
            return target
    suffixes = [t.suffix for t in TARGETS.values()]
    raise BadInput(f"{Path(path).name} is not a {', '.join(suffixes[:-1])} or {suffixes[-1]} artifact")


def split_list(values: list[str] | tuple[str, ...]) -> list[str]:
    """`--target coreml,tflite` and `--target coreml --target tflite` mean the same."""
    return [part.strip() for value in values for part in str(value).split(",") if part.strip()]


def check_pairs(targets: list[str], quants: list[str], palettize: int | None = None, *,
                offered_only: bool = False) -> list[tuple[str, str]]:
    """Expand `all`, refuse unknown or unsupported pairs; return (target, quant) pairs in order.
    `palettize` (bits) adds one Core ML artifact with palettized weights (quant `pal<bits>`).
    `offered_only`: a named target skips the quants it does not offer, as `all` does (a batch's
    matrix records those cells as not offered)."""
    targets, quants = split_list(targets), split_list(quants)
    names = list(TARGETS) if "all" in targets else targets
    for name in names:
        if name not in TARGETS:
            raise BadInput(f"unknown target {name!r}", hint=f"choose from: {', '.join(TARGETS)}, all")
    for quant in quants:
        if quant not in QUANTS:
            raise BadInput(f"unknown quant {quant!r}", hint=f"choose from: {', '.join(QUANTS)}")
    pairs = []
    for name in dict.fromkeys(names):
        for quant in dict.fromkeys(quants):
            if quant in TARGETS[name].quants:
                pairs.append((name, quant))
            elif name in targets and not offered_only:   # named explicitly; `all` means every target that can
                why = dict(TARGETS[name].refused).get(quant)
                raise BadInput(f"{name} does not support --quant {quant}" + (f" ({why})" if why else ""),
                               hint=f"{name} supports: {', '.join(TARGETS[name].quants)}")
    if not pairs:
        raise BadInput(f"no target supports --quant {', '.join(quants)}",
                       hint="; ".join(f"{t.name}: {', '.join(t.quants)}" for t in TARGETS.values()))
    if palettize is not None:
        if f"pal{palettize}" not in TARGETS["coreml"].quants:
            raise BadInput(f"--palettize {palettize} is not supported", hint="choose from: 4, 6")
        if "coreml" not in names:
            raise BadInput("--palettize applies to Core ML", hint="add --target coreml")
        if ("coreml", f"pal{palettize}") not in pairs:
            pairs.append(("coreml", f"pal{palettize}"))
    return pairs


def artifact_name(arch: str, target: str, quant: str) -> str:
    return f"{arch}_{quant}{TARGETS[target].suffix}"
