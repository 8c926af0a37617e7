"""Runtimes that execute artifacts. Every one has the same face — `run(inputs) -> logits` on
NCHW float32 batches — so validation treats them alike; `name` is what the report says ran."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from ..convert.artifact import Artifact
from ..errors import EffconvertError

RUNTIME_THREADS = 2


class Runtime(Protocol):
    name: str

    def run(self, inputs: np.ndarray) -> np.ndarray: ...


class OnnxRuntime:
    name = "onnxruntime"

    def __init__(self, path: Path) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = RUNTIME_THREADS
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0]
        self.batch = self.input.shape[0] if isinstance(self.input.shape[0], int) else None

    def run(self, inputs: np.ndarray) -> np.ndarray:
        step = self.batch or len(inputs)
        outs = [self.session.run(None, {self.input.name: inputs[i:i + step].astype(np.float32)})[0]
                for i in range(0, len(inputs), step)]
        return np.concatenate(outs)


class RuntimeUnavailable(EffconvertError):
    exit_code = 1


def runtime_for(artifact: Artifact) -> Runtime:
    if artifact.target == "onnx":
        return OnnxRuntime(artifact.path)
    raise RuntimeUnavailable(f"no runtime can execute {artifact.target} artifacts here")
