"""runtime: the one way to run an artifact, for validate, measure (bench), inspect and the apps.

    open_runtime(path) -> Runtime          # the target table (targets.py) picks the module
    runtime.run(Batch) -> logits (N, classes) float32
    runtime.name                           # what the report says executed the artifact

| artifact   | runtime                 | module      |
|------------|-------------------------|-------------|
| .tflite    | LiteRT with XNNPACK     | litert.py   |
| .onnx      | ONNX Runtime (CPU)      | onnxrt.py   |
| .mlpackage | Core ML (macOS only); the MIL executor (mil/) elsewhere | coreml.py |

A Batch carries both forms of the same images — normalised NCHW tensors and 0-255 pixels — and
each runtime takes what its artifact consumes (pixels for an image input, tensors in the
artifact's layout otherwise). This package imports nothing from the pipeline's stages.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import BadInput, EffconvertError
from ..quiet import first_line
from ..targets import target_of

DEFAULT_THREADS = 2

# What each runtime name in a report means, in one line (report.html, the console, bench).
RUNTIME_DESCRIPTIONS = {
    "coreml-macos": "Core ML itself (macOS), running the .mlpackage",
    "coreml-mil-executor": "effconvert's reference interpreter of the saved Core ML program (Linux has no "
                           "Core ML): the program's exact ops and dtypes, not Neural Engine speed",
    "litert": "the LiteRT interpreter with XNNPACK, as on an Android CPU",
    "onnxruntime": "ONNX Runtime, CPU execution provider",
    "executorch-xnnpack": "ExecuTorch's runtime with the XNNPACK delegate, as linked into an app",
    "unvalidated": "not run: see the reason in the verdict",
}


@dataclass(frozen=True)
class Batch:
    inputs: np.ndarray                  # N, 3, H, W float32, normalised (the model's preprocessing)
    pixels: np.ndarray | None = None    # N, H, W, 3 uint8: what an image input receives

    def __len__(self) -> int:
        return len(self.inputs)


class Runtime(Protocol):
    name: str
    input_layout: str                   # "nchw" | "nhwc" | "image"

    def run(self, batch: Batch) -> np.ndarray: ...


class RuntimeUnavailable(EffconvertError):
    """No runtime here can execute this artifact (e.g. an op the MIL executor does not know)."""

    exit_code = 1


def open_runtime(path: Path, *, threads: int = DEFAULT_THREADS, input_layout: str | None = None) -> Runtime:
    """Open `path` on its target's runtime. `input_layout` as the converter wrote it; None reads it
    from the artifact. A file the runtime cannot load is BadInput, named in one line."""
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
