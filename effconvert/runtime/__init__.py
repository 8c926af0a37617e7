"""runtime: the one way to run an artifact, for validate, measure (bench), inspect and the apps.

    open_runtime(path) -> Runtime          # the target table (targets.py) names the module
    runtime.run(Batch) -> logits (N, classes) float32
    runtime.name                           # what the report says executed the artifact

| artifact   | runtime                                                 | module        |
|------------|---------------------------------------------------------|---------------|
| .mlpackage | Core ML (macOS only); the MIL executor (mil/) elsewhere | coreml.py     |
| .tflite    | LiteRT with XNNPACK                                     | litert.py     |
| .onnx      | ONNX Runtime (CPU)                                      | onnxrt.py     |
| .pte       | ExecuTorch's runtime with the XNNPACK delegate          | executorch.py |
| .qnn.onnx  | ONNX Runtime + QNN, HTP backend (a simulator on x86)    | qnn.py        |

A Batch carries both forms of the same images — normalised NCHW tensors and 0-255 pixels — and
each runtime takes what its artifact consumes (pixels for an image input, tensors in the
artifact's layout otherwise). This package imports nothing from the pipeline's stages.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from ..errors import BadInput, EffconvertError
from ..quiet import first_line
from ..targets import target_of

DEFAULT_THREADS = 2


@dataclass(frozen=True)
class RuntimeInfo:
    description: str  # what the name in a report means, in one line (report.html, the console, bench)
    device_speed: bool  # its time is the device's own kind of speed (not an interpreter's or a simulator's)


RUNTIMES: dict[str, RuntimeInfo] = {
    "coreml-macos": RuntimeInfo("Core ML itself (macOS, CPU only), running the .mlpackage", False),
    "coreml-mil-executor": RuntimeInfo(
        "effconvert's reference interpreter of the saved Core ML program (Linux has no Core ML): the program's "
        "exact ops and dtypes, not Neural Engine speed",
        False,
    ),
    "litert": RuntimeInfo("the LiteRT interpreter with XNNPACK, as on an Android CPU", True),
    "onnxruntime": RuntimeInfo("ONNX Runtime, CPU execution provider", True),
    "executorch-xnnpack": RuntimeInfo("ExecuTorch's runtime with the XNNPACK delegate, as linked into an app", True),
    "qnn-htp-simulator": RuntimeInfo(
        "ONNX Runtime with Qualcomm's QNN execution provider, its HTP backend simulated on x86 (the compiled "
        "context binary a phone loads: the NPU's arithmetic, not its speed)",
        False,
    ),
    "unvalidated": RuntimeInfo("not run: see the reason in the verdict", False),
}


@dataclass(frozen=True)
class Batch:
    inputs: np.ndarray  # N, 3, H, W float32, normalised (the model's preprocessing)
    pixels: np.ndarray | None = None  # N, H, W, 3 uint8: what an image input receives

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, part: slice) -> Batch:
        """Some of the images, in both forms."""
        return Batch(self.inputs[part], None if self.pixels is None else self.pixels[part])


class Runtime(Protocol):
    """What every runtime module's `open` returns."""

    name: str  # a key of RUNTIMES: what the report says executed the artifact
    input_layout: str  # "nchw" | "nhwc" | "image"
    input_shape: tuple[int, ...]  # N, C, H, W of one call
    device_speed: bool  # its time is the device's own kind of speed (not an interpreter's or a simulator's)

    def run(self, batch: Batch) -> np.ndarray: ...


@dataclass(frozen=True)
class DivergentOp:
    """Where a failing program's error enters: the first op whose output falls below the gate."""

    op: str  # the op type
    output: str  # the tensor it writes
    psnr_db: float
    threshold_db: float
    sample: int  # which input was traced


@runtime_checkable
class Localizing(Protocol):
    """A runtime that can name the first op where a compressed program diverges from its float twin."""

    def first_divergent_op(self, batch: Batch, *, psnr_db: float | None, sample: int) -> DivergentOp | None: ...


class RuntimeUnavailable(EffconvertError):
    """No runtime here can execute this artifact (e.g. an op the MIL executor does not know)."""

    exit_code = 1


def open_runtime(path: Path, *, threads: int | None = None, input_layout: str | None = None) -> Runtime:
    """Open `path` on its target's runtime. `threads`: the runtime's threads (None: DEFAULT_THREADS,
    or for the MIL executor, which computes in torch, the process's torch threads as they are).
    `input_layout` as the converter wrote it; None reads it from the artifact. A file the runtime
    cannot load is BadInput, named in one line."""
    path = Path(path)
    if not path.exists():
        raise BadInput(f"artifact not found: {path}")
    target = target_of(path)
    module = importlib.import_module(f"{__name__}.{target.runtime}")
    try:
        return module.open(path, threads=threads, input_layout=input_layout)
    except EffconvertError:
        raise
    except Exception as exc:  # each runtime raises its own types for a damaged file
        raise BadInput(f"cannot load {path.name} on its runtime: {first_line(exc)}") from exc


def noise_batch(shape: tuple[int, ...], seed: int = 0) -> Batch:
    """One seeded input of `shape` (N, 3, H, W) in both forms: latency does not depend on values."""
    rng = np.random.default_rng(seed)
    inputs = rng.standard_normal(shape).astype(np.float32)
    pixels = rng.integers(0, 256, (shape[0], shape[2], shape[3], shape[1]), dtype=np.uint8)
    return Batch(inputs, pixels)


def tensors(batch: Batch, layout: str) -> np.ndarray:
    """The normalised inputs in the artifact's layout (NHWC for a channels-last TFLite input)."""
    x = batch.inputs.astype(np.float32)
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if layout == "nhwc" else x
