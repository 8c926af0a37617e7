"""ONNX Runtime, CPU execution provider. Inputs are NCHW normalised tensors."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import DEFAULT_THREADS, RUNTIMES, Batch, tensors


class OnnxRuntime:
    name = "onnxruntime"
    device_speed = RUNTIMES[name].device_speed
    input_layout = "nchw"

    def __init__(self, path: Path, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 4  # errors reach the user as exceptions, once
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0]
        self.batch = self.input.shape[0] if isinstance(self.input.shape[0], int) else None
        self.input_shape = tuple(d if isinstance(d, int) else 1 for d in self.input.shape)

    def run(self, batch: Batch) -> np.ndarray:
        x = tensors(batch, self.input_layout)
        step = self.batch or len(x)
        return np.concatenate(
            [self.session.run(None, {self.input.name: x[i : i + step]})[0] for i in range(0, len(x), step)]
        ).astype(np.float32)


def open(path: Path, *, threads: int | None, input_layout: str | None = None) -> OnnxRuntime:
    return OnnxRuntime(path, threads or DEFAULT_THREADS)
