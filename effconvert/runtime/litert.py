"""LiteRT (ai-edge-litert's Interpreter) with its default XNNPACK delegate, as on an Android CPU.
An integer input (`--int8-io`) is quantized here as an app must; float I/O passes through."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..quiet import quiet_native_stderr
from . import DEFAULT_THREADS, RUNTIMES, Batch, tensors


class LiteRT:
    name = "litert"
    device_speed = RUNTIMES[name].device_speed

    def __init__(self, path: Path, threads: int, input_layout: str | None) -> None:
        from ai_edge_litert.interpreter import Interpreter

        with quiet_native_stderr():  # XNNPACK's "Created delegate" line
            self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
            self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        shape = tuple(int(d) for d in self.input["shape"])
        # Our artifacts are NHWC unless converted with --layout nchw: the channel axis tells.
        self.input_layout = input_layout or ("nhwc" if shape[-1] == 3 else "nchw")
        self.input_shape = (shape[0], shape[3], shape[1], shape[2]) if self.input_layout == "nhwc" else shape

    def run(self, batch: Batch) -> np.ndarray:
        x = tensors(batch, self.input_layout)
        outs = []
        for i in range(len(x)):
            self.interpreter.set_tensor(self.input["index"], _to_io(x[i : i + 1], self.input))
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


def open(path: Path, *, threads: int | None, input_layout: str | None = None) -> LiteRT:
    return LiteRT(path, threads or DEFAULT_THREADS, input_layout)
