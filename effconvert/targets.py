"""The one table of targets: what each can be asked for, what it writes, what runs and explains it.

| target     | quant modes                                | artifact    | validated on                                 |
|------------|--------------------------------------------|-------------|----------------------------------------------|
| coreml     | fp32, fp16, int8-weights, int8, pal6, pal4 | .mlpackage  | Core ML on macOS; the MIL executor on Linux  |
| tflite     | fp32, fp16, int8-weights, int8             | .tflite     | LiteRT interpreter (XNNPACK)                 |
| onnx       | fp32, fp16                                 | .onnx       | ONNX Runtime (CPU)                           |
| executorch | fp32, int8                                 | .pte        | ExecuTorch runtime, XNNPACK delegate         |
| qnn        | fp16, int8, w8a16                          | .qnn.onnx   | ONNX Runtime + QNN HTP (simulated on x86)    |

Every per-target decision is a field of a row: option checking, `--help`, conversion (the exporter
module), validation (the runtime module), inspect, the device report, bench and the apps all read
this table, and no code outside a target's own modules compares a target's name. Modules are named,
not imported, so reading the table imports neither torch nor any converter (a bad option costs
milliseconds). A new target is one row here plus its modules:

    convert/<exporter>.py    export(...), read_metadata(path), input_layout(options)
    runtime/<runtime>.py     open(path, *, threads, input_layout) -> Runtime
    inspect/<inspector>.py   rows(path) -> [(field, value)]
    device/<device>.py       device_report(path) (only targets with a device model)
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
    "w8a16": "int8 weights, 16-bit activations, calibrated (--calib)",
    "pal6": "6-bit palettized weights (Core ML; also --palettize 6)",
    "pal4": "4-bit palettized weights (Core ML; also --palettize 4)",
}
# Quant modes whose activations are quantized: they need calibration images.
CALIBRATED = ("int8", "w8a16")
# The one the float fallback serves: w8a16 is itself what an int8 layer falls back to on the HTP.
FALLBACK_QUANT = "int8"

# Per-target export options: the values each accepts (options.py checks them, help lists them).
IOS_TARGETS = (16, 17, 18)  # Core ML minimum deployment targets
TFLITE_LAYOUTS = ("nhwc", "nchw")  # TFLite input layout
INPUT_KINDS = ("image", "tensor")  # Core ML input
# The checkpoint layouts load/ reads and make-checkpoint writes (tests/test_cli.py checks this list
# against the family table, which needs torch to import; the CLI's help must not).
CHECKPOINT_LAYOUTS = ("timm", "apple", "apple-fused", "snap", "cream", "mit")
ORIGINAL_LAYOUT = "original"  # each family's original authors' released (unfused) layout


@dataclass(frozen=True)
class Soc:
    """A Snapdragon SoC the qnn target compiles for: QNN's SoC model number and HTP architecture
    (QAIRT SDK's supported-devices table; pytorch/executorch backends/qualcomm/serialization/qc_schema.py)."""

    name: str
    marketing: str
    soc_model: int
    htp_arch: int
    phone: str


SOCS: dict[str, Soc] = {
    s.name: s
    for s in (
        Soc("SM8550", "Snapdragon 8 Gen 2", 43, 73, "Samsung Galaxy S23"),
        Soc("SM8650", "Snapdragon 8 Gen 3", 57, 75, "Samsung Galaxy S24"),
        Soc("SM8750", "Snapdragon 8 Elite", 69, 79, "Samsung Galaxy S25"),
    )
}
DEFAULT_SOC = "SM8650"


@dataclass(frozen=True)
class ExportOptions:
    """Per-target settings that are not about quantization (each exporter reads its own)."""

    layout: str = "nhwc"  # tflite input layout: nhwc | nchw
    ios: int = 16  # coreml minimum deployment target
    input_kind: str = "image"  # coreml input: image | tensor
    dynamic_batch: bool = False  # onnx
    soc: str = DEFAULT_SOC  # qnn: the Snapdragon SoC the context binary is compiled for
    npu_only: bool = False  # qnn: refuse an artifact any of whose nodes would run on the CPU


@dataclass(frozen=True)
class Budget:
    """A validation budget for a runtime that takes seconds per input: as many inputs as fit in
    `seconds` at the pace of the second input (the first is the warm-up), never fewer than
    `minimum` (nor more than asked for)."""

    minimum: int
    seconds: float
    why: str

    def inputs(self, per_input_s: float, asked: int) -> int:
        return max(self.minimum, min(asked, int(self.seconds / max(per_input_s, 1e-6))))

    def note(self, used: int, asked: int, per_input_s: float) -> str:
        return (
            f"{used} of {asked} inputs: {self.why} ({per_input_s:.1f} s per input; "
            f"a budget of {self.seconds:g} s, at least {self.minimum})"
        )


@dataclass(frozen=True)
class Target:
    name: str
    suffix: str
    quants: tuple[str, ...]
    exporter: str  # module under effconvert.convert
    runtime: str  # module under effconvert.runtime
    inspector: str  # module under effconvert.inspect
    description: str
    # Quant modes deliberately not offered, with the measured reason the skip note quotes.
    refused: tuple[tuple[str, str], ...] = ()
    # The Request options that shape its artifacts beyond the quant (help groups them by target).
    options: tuple[str, ...] = ()
    # The sample apps (effconvert app PLATFORM) that run its artifacts.
    platforms: tuple[str, ...] = ()
    # Module under effconvert.device: the accelerator residency and latency estimate of an artifact.
    device: str | None = None
    # Compressed programs keep the family's fp16-fragile op types in fp32 (load/family.py).
    keeps_fp32_ops: bool = False
    # `--target all` includes it. A target validated on a simulator is asked for by name.
    in_all: bool = True
    # Its CPU runtime is XNNPACK: the graph rewrites for XNNPACK's kernels apply (convert/large_kernels.py).
    xnnpack: bool = False
    # How many validation inputs a runtime that takes seconds per image runs.
    validation_budget: Budget | None = None
    # Its int8 activations are symmetric (zero at code 0), not affine: the fallback simulates the same.
    symmetric_activations: bool = False
    # Its int8 biases are corrected for the simulated mean error (quantize/bias_correction.py). Not
    # where the simulation's means are not the runtime's: on Core ML (digits MobileOne-S0, MIL
    # executor) a correction simulated at +0.4 dB measured -1.6 dB.
    corrects_biases: bool = True

    def why_not(self, quant: str) -> str:
        return dict(self.refused).get(quant, f"{self.name} offers {', '.join(self.quants)}")


TARGETS: dict[str, Target] = {}


def _register(target: Target) -> None:
    if target.name in TARGETS:  # a duplicate row is a bug, not a preference
        raise KeyError(f"target {target.name!r} already registered")
    TARGETS[target.name] = target


for _row in (
    Target(
        "coreml",
        ".mlpackage",
        ("fp32", "fp16", "int8-weights", "int8", "pal6", "pal4"),
        exporter="coreml",
        runtime="coreml",
        inspector="coreml",
        symmetric_activations=True,
        corrects_biases=False,
        description="Core ML ML Program (iPhone, Neural Engine)",
        options=("ios", "input", "palettize"),
        platforms=("ios",),
        device="apple",
        keeps_fp32_ops=True,
    ),
    Target(
        "tflite",
        ".tflite",
        ("fp32", "fp16", "int8-weights", "int8"),
        exporter="tflite",
        runtime="litert",
        inspector="tflite",
        description="TFLite / LiteRT flatbuffer (Android, XNNPACK)",
        options=("layout", "int8_io"),
        platforms=("android",),
        device="android_gpu",
        xnnpack=True,
    ),
    Target(
        "onnx",
        ".onnx",
        ("fp32", "fp16"),
        exporter="onnx",
        runtime="onnxrt",
        inspector="onnx",
        description="ONNX (ONNX Runtime)",
        options=("dynamic_batch",),
    ),
    Target(
        "executorch",
        ".pte",
        ("fp32", "int8"),
        exporter="executorch",
        runtime="executorch",
        inspector="executorch",
        description="ExecuTorch program, XNNPACK delegate (Android / iOS CPU)",
        refused=(
            (
                "fp16",
                "measured: XNNPACK leaves every GELU in fp16 on ExecuTorch's portable kernels "
                "(99 of 146 nodes delegated on FastViT-T8) and the .pte is no smaller than fp32, "
                "even with GELU in its tanh form",
            ),
        ),
        platforms=("android",),
        xnnpack=True,
    ),
    Target(
        "qnn",
        ".qnn.onnx",
        ("fp16", "int8", "w8a16"),
        exporter="qnn",
        runtime="qnn",
        inspector="qnn",
        description="ONNX with a compiled Qualcomm HTP context binary (Snapdragon NPU, ONNX Runtime QNN)",
        refused=(("fp32", "the Hexagon HTP computes in fp16 or integers: ask for fp16"),),
        options=("soc", "npu_only"),
        platforms=("android",),
        device="snapdragon",
        in_all=False,
        validation_budget=Budget(16, 120.0, "the QNN HTP simulator takes seconds per image on x86"),
    ),
):
    _register(_row)


def target_of(path: Path | str) -> Target:
    """The target whose artifacts end like `path` (the longest suffix: .qnn.onnx before .onnx)."""
    name = Path(path).name.lower()
    found = [t for t in TARGETS.values() if name.endswith(t.suffix)]
    if found:
        return max(found, key=lambda t: len(t.suffix))
    suffixes = [t.suffix for t in TARGETS.values()]
    raise BadInput(f"{Path(path).name} is not a {', '.join(suffixes[:-1])} or {suffixes[-1]} artifact")


def split_list(values: list[str] | tuple[str, ...]) -> list[str]:
    """`--target coreml,tflite` and `--target coreml --target tflite` mean the same."""
    return [part.strip() for value in values for part in str(value).split(",") if part.strip()]


@dataclass(frozen=True)
class Pairs:
    """The (target, quant) pairs a request builds, in order, and one note per pair it skips."""

    pairs: tuple[tuple[str, str], ...]
    skipped: tuple[str, ...] = ()

    @property
    def calibrated(self) -> bool:
        return any(quant in CALIBRATED for _, quant in self.pairs)


def check_pairs(
    targets: list[str] | tuple[str, ...], quants: list[str] | tuple[str, ...], palettize: int | None = None
) -> Pairs:
    """Expand `all`, refuse unknown names; every target x quant it offers is a pair, and each pair it
    does not offer is skipped with a note saying why. Refused only when no pair is left.
    `palettize` (bits) adds one Core ML artifact with palettized weights (quant `pal<bits>`)."""
    targets, quants = split_list(targets), split_list(quants)
    for name in targets:
        if name != "all" and name not in TARGETS:
            raise BadInput(f"unknown target {name!r}", hint=f"choose from: {', '.join(TARGETS)}, all")
    for quant in quants:
        if quant not in QUANTS:
            raise BadInput(f"unknown quant {quant!r}", hint=f"choose from: {', '.join(QUANTS)}")
    named = [n for n in targets if n != "all"]
    names = list(dict.fromkeys([t.name for t in TARGETS.values() if t.in_all] + named if "all" in targets else named))
    pairs, skipped = [], []
    for name in names:
        for quant in dict.fromkeys(quants):
            if quant in TARGETS[name].quants:
                pairs.append((name, quant))
            elif name in named:  # `all` means every target that offers the quant: no note for the rest
                skipped.append(f"{name} {quant} skipped: {TARGETS[name].why_not(quant)}")
    if palettize is not None:
        coreml = [t for t in TARGETS.values() if f"pal{palettize}" in t.quants]
        if not coreml:
            raise BadInput(f"--palettize {palettize} is not supported", hint="choose from: 4, 6")
        if coreml[0].name not in names:
            raise BadInput(f"--palettize applies to {coreml[0].name}", hint=f"add --target {coreml[0].name}")
        if (coreml[0].name, f"pal{palettize}") not in pairs:
            pairs.append((coreml[0].name, f"pal{palettize}"))
    if not pairs:
        offered = "; ".join(f"{t.name}: {', '.join(t.quants)}" for t in TARGETS.values() if t.name in names)
        raise BadInput(
            f"no target asked for offers --quant {', '.join(quants)}"
            + (f" ({skipped[0]})" if len(skipped) == 1 else ""),
            hint=f"offered: {offered}",
        )
    return Pairs(tuple(pairs), tuple(skipped))


def artifact_name(arch: str, target: str, quant: str) -> str:
    return f"{arch}_{quant}{TARGETS[target].suffix}"
