"""Core ML packages: Core ML itself (`MLModel.predict`) on macOS, where coremltools can run
models; our MIL executor (mil/) on Linux, which runs the saved package's program op by op."""

from __future__ import annotations

import contextlib
import platform
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from . import RUNTIMES, Batch, DivergentOp, Runtime, RuntimeUnavailable

MIL_EXECUTOR = "coreml-mil-executor"


def can_predict() -> bool:
    return platform.system() == "Darwin"


def program_input(input_kind: str, pixels: np.ndarray | None, inputs: np.ndarray, i: int) -> np.ndarray:
    """What the program's input receives for image i: 0-255 pixels as NCHW float for an image
    input, the normalised tensor otherwise."""
    if input_kind == "image":
        if pixels is None:
            raise ValueError("an image input needs the pixels of its images")
        return pixels[i : i + 1].transpose(0, 3, 1, 2).astype(np.float32)
    return inputs[i : i + 1].astype(np.float32)


class CoreMLPredict:
    name = "coreml-macos"
    device_speed = RUNTIMES[name].device_speed

    def __init__(self, path: Path) -> None:
        import coremltools as ct

        self.model = ct.models.MLModel(str(path), compute_units=ct.ComputeUnit.CPU_ONLY)
        spec = self.model.get_spec().description.input[0]
        self.input_name = spec.name
        self.input_layout = "image" if spec.type.WhichOneof("Type") == "imageType" else "nchw"
        if self.input_layout == "image":
            t = spec.type.imageType
            self.input_shape: tuple[int, ...] = (1, 3, int(t.height), int(t.width))
        else:
            self.input_shape = tuple(int(d) for d in spec.type.multiArrayType.shape)
        outputs = [o.name for o in self.model.get_spec().description.output]
        self.output_name = "logits" if "logits" in outputs else outputs[0]

    def run(self, batch: Batch) -> np.ndarray:
        from PIL import Image

        outs = []
        for i in range(len(batch)):
            feed: dict[str, Any]
            if self.input_layout == "image" and batch.pixels is not None:
                feed = {self.input_name: Image.fromarray(batch.pixels[i])}
            else:
                feed = {self.input_name: batch.inputs[i : i + 1].astype(np.float32)}
            outs.append(np.asarray(self.model.predict(feed)[self.output_name], dtype=np.float32).reshape(1, -1))
        return np.concatenate(outs)


class CoreMLExecutor:
    """The MIL executor behind the Runtime face, computing in torch on `threads` threads (None: the
    process's torch threads, as they are)."""

    name = MIL_EXECUTOR
    device_speed = RUNTIMES[name].device_speed

    def __init__(self, path: Path, threads: int | None) -> None:
        from .mil import MILExecutor

        self.executor = MILExecutor(path)
        self.threads = threads
        self.input_name = next(iter(self.executor.program.inputs))
        self.input_layout = "image" if self.input_name in self.executor.program.image_inputs else "nchw"
        self.input_shape = tuple(d or 1 for d in self.executor.program.inputs[self.input_name].shape or ())
        outputs = self.executor.program.outputs  # ours name it "logits"; any other: the first
        self.output_name = "logits" if "logits" in outputs else outputs[0]

    def feed(self, batch: Batch, i: int) -> dict[str, np.ndarray]:
        return {self.input_name: program_input(self.input_layout, batch.pixels, batch.inputs, i)}

    def run(self, batch: Batch) -> np.ndarray:
        with torch_threads(self.threads):
            outs = [
                self.executor.run(self.feed(batch, i))[self.output_name].numpy().reshape(1, -1)
                for i in range(len(batch))
            ]
        return np.concatenate(outs).astype(np.float32)

    def first_divergent_op(self, batch: Batch, *, psnr_db: float | None, sample: int) -> DivergentOp | None:
        from .mil.localize import first_divergent_op

        with torch_threads(self.threads):
            return first_divergent_op(self.executor, self.feed(batch, sample), psnr_db=psnr_db, sample=sample)


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """torch's intra-op threads for the executor's run; the caller's setting comes back after."""
    import torch

    before = torch.get_num_threads()
    if threads is not None and before != threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def open(path: Path, *, threads: int | None, input_layout: str | None = None) -> Runtime:
    if can_predict():
        return CoreMLPredict(path)
    from .mil import UnsupportedProgram

    try:
        return CoreMLExecutor(path, threads)
    except UnsupportedProgram as exc:
        raise RuntimeUnavailable(exc.message, hint=exc.hint) from exc
