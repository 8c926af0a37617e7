"""Runtimes that execute artifacts. Each has the same face — `run(inputs) -> logits` — and takes
from the InputSet what its artifact consumes: pixels for image inputs, normalised tensors in the
artifact's layout otherwise. `name` is what the report says executed the artifact."""

from __future__ import annotations

import platform
from typing import Protocol

import numpy as np

from ..convert.artifact import Artifact
from ..errors import EffconvertError
from .inputs import InputSet

RUNTIME_THREADS = 2


class Runtime(Protocol):
    name: str

    def run(self, inputs: InputSet) -> np.ndarray: ...


class RuntimeUnavailable(EffconvertError):
    exit_code = 1


def _tensors(inputs: InputSet, layout: str) -> np.ndarray:
    x = inputs.inputs.astype(np.float32)
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if layout == "nhwc" else x


class OnnxRuntime:
    name = "onnxruntime"

    def __init__(self, artifact: Artifact) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = RUNTIME_THREADS
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(artifact.path), options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0]
        self.batch = self.input.shape[0] if isinstance(self.input.shape[0], int) else None
        self.layout = artifact.input_layout

    def run(self, inputs: InputSet) -> np.ndarray:
        x = _tensors(inputs, self.layout)
        step = self.batch or len(x)
        return np.concatenate([self.session.run(None, {self.input.name: x[i:i + step]})[0]
                               for i in range(0, len(x), step)])


class LiteRT:
    """ai-edge-litert's Interpreter with its default XNNPACK delegate, as on an Android CPU."""

    name = "litert"

    def __init__(self, artifact: Artifact) -> None:
        from ai_edge_litert.interpreter import Interpreter

        from ..convert.quiet import quiet_native_stderr

        with quiet_native_stderr():                         # XNNPACK's "Created delegate" line
            self.interpreter = Interpreter(model_path=str(artifact.path), num_threads=RUNTIME_THREADS)
            self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.layout = artifact.input_layout

    def run(self, inputs: InputSet) -> np.ndarray:
        x = _tensors(inputs, self.layout)
        outs = []
        for i in range(len(x)):
            self.interpreter.set_tensor(self.input["index"], _to_io(x[i:i + 1], self.input))
            self.interpreter.invoke()
            outs.append(_from_io(self.interpreter.get_tensor(self.output["index"]), self.output))
        return np.concatenate(outs).astype(np.float32)


def _to_io(x: np.ndarray, detail: dict) -> np.ndarray:
    """Quantize like an app must for an integer input (`--int8-io`); float inputs pass through."""
    if np.issubdtype(detail["dtype"], np.integer):
        scale, zero = detail["quantization"]
        info = np.iinfo(detail["dtype"])
        return np.clip(np.round(x / scale) + zero, info.min, info.max).astype(detail["dtype"])
    return x.astype(detail["dtype"])


def _from_io(y: np.ndarray, detail: dict) -> np.ndarray:
    if np.issubdtype(detail["dtype"], np.integer):
        scale, zero = detail["quantization"]
        return (y.astype(np.float32) - zero) * scale
    return y.copy()


class CoreMLPredict:
    """Core ML itself (`MLModel.predict`), only on macOS, where coremltools can run models."""

    name = "coreml-macos"

    def __init__(self, artifact: Artifact) -> None:
        import coremltools as ct

        self.model = ct.models.MLModel(str(artifact.path), compute_units=ct.ComputeUnit.CPU_ONLY)
        self.layout = artifact.input_layout

    def run(self, inputs: InputSet) -> np.ndarray:
        from PIL import Image

        outs = []
        for i in range(len(inputs.inputs)):
            feed = ({"image": Image.fromarray(inputs.pixels[i])} if self.layout == "image"
                    else {"input": inputs.inputs[i:i + 1].astype(np.float32)})
            outs.append(np.asarray(self.model.predict(feed)["logits"], dtype=np.float32).reshape(1, -1))
        return np.concatenate(outs)


class CoreMLExecutor:
    """Our MIL executor (validate/mil): runs the saved package's program on Linux."""

    name = "coreml-mil-executor"

    def __init__(self, artifact: Artifact) -> None:
        from .mil import MILExecutor

        self.executor = MILExecutor(artifact.path)
        self.layout = artifact.input_layout
        self.input_name = next(iter(self.executor.program.inputs))

    def feed(self, inputs: InputSet, i: int) -> dict[str, np.ndarray]:
        from ..convert.coreml import program_input

        return {self.input_name: program_input(self.layout, inputs.pixels, inputs.inputs, i)}

    def run(self, inputs: InputSet) -> np.ndarray:
        outs = [self.executor.run(self.feed(inputs, i))["logits"].numpy().reshape(1, -1)
                for i in range(len(inputs.inputs))]
        return np.concatenate(outs).astype(np.float32)


def coreml_can_predict() -> bool:
    return platform.system() == "Darwin"


def runtime_for(artifact: Artifact) -> Runtime:
    if artifact.target == "onnx":
        return OnnxRuntime(artifact)
    if artifact.target == "tflite":
        return LiteRT(artifact)
    if artifact.target == "coreml":
        if coreml_can_predict():
            return CoreMLPredict(artifact)
        from .mil import UnsupportedProgram

        try:
            return CoreMLExecutor(artifact)
        except UnsupportedProgram as exc:
            raise RuntimeUnavailable(exc.message) from exc
    raise RuntimeUnavailable(f"no runtime can execute {artifact.target} artifacts here")
