"""One inference call on an artifact's runtime, with an input of the artifact's own shape and type.

The runtime is chosen by the artifact's suffix, as validation chooses it: LiteRT with XNNPACK for
.tflite, ONNX Runtime (CPU) for .onnx, and for .mlpackage the MIL executor (Linux) or Core ML
itself (macOS). Input values are seeded normal noise: latency does not depend on them.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Callable

import numpy as np

from ..convert.quiet import first_line
from ..errors import BadInput

SUFFIX_TARGETS = {".tflite": "tflite", ".onnx": "onnx", ".mlpackage": "coreml"}


def target_of(path: Path) -> str:
    target = SUFFIX_TARGETS.get(Path(path).suffix.lower())
    if target is None:
        raise BadInput(f"cannot benchmark {path}: not a .tflite, .onnx or .mlpackage artifact")
    return target


def invoker_for(path: Path, threads: int) -> tuple[str, Callable[[], object]]:
    """(runtime name, a no-argument call that runs one inference)."""
    path = Path(path)
    if not path.exists():
        raise BadInput(f"artifact not found: {path}")
    target = target_of(path)
    try:
        if target == "tflite":
            return "litert", _litert(path, threads)
        if target == "onnx":
            return "onnxruntime", _onnxruntime(path, threads)
        if platform.system() == "Darwin":
            return "coreml-macos", _coreml(path)
        return "coreml-mil-executor", _mil(path, threads)
    except BadInput:
        raise
    except Exception as exc:  # each runtime raises its own types for a corrupt file
        raise BadInput(f"cannot load {path.name} on its runtime: {first_line(exc)}") from exc


def _noise(shape, dtype) -> np.ndarray:
    x = np.random.default_rng(0).standard_normal(shape)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(x * 30, info.min, info.max).astype(dtype)
    return x.astype(dtype)


def _litert(path: Path, threads: int):
    from ai_edge_litert.interpreter import Interpreter

    from ..convert.quiet import quiet_native_stderr

    with quiet_native_stderr():
        interpreter = Interpreter(model_path=str(path), num_threads=threads)
        interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], _noise(detail["shape"], detail["dtype"]))
    return interpreter.invoke


def _onnxruntime(path: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    first = session.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in first.shape]
    feed = {first.name: _noise(shape, np.float32)}
    return lambda: session.run(None, feed)


def _mil(path: Path, threads: int):
    import torch

    from ..validate.mil import MILExecutor

    torch.set_num_threads(threads)
    executor = MILExecutor(path)
    feeds = {}
    for name, spec in executor.program.inputs.items():
        shape = [d or 1 for d in spec.shape]
        image = name in executor.program.image_inputs
        feeds[name] = np.clip(_noise(shape, np.float32) * 60 + 128, 0, 255) if image else _noise(shape, np.float32)
    return lambda: executor.run(feeds)


def _coreml(path: Path):
    import coremltools as ct
    from PIL import Image

    model = ct.models.MLModel(str(path), compute_units=ct.ComputeUnit.CPU_ONLY)
    spec = model.get_spec().description.input[0]
    if spec.type.WhichOneof("Type") == "imageType":
        size = (spec.type.imageType.width, spec.type.imageType.height)
        feed = {spec.name: Image.fromarray(np.zeros((size[1], size[0], 3), np.uint8))}
    else:
        feed = {spec.name: _noise(tuple(spec.type.multiArrayType.shape), np.float32)}
    return lambda: model.predict(feed)
