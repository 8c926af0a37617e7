"""ONNX Runtime with Qualcomm's QNN execution provider, HTP backend: the runtime an Android app
uses to run a .qnn.onnx on a Snapdragon NPU. On x86 Linux the onnxruntime-qnn wheel's HTP backend
is a simulator: it computes what the HTP computes (its fp16 and integer arithmetic), seconds per
image, and its time is not the phone's.

The QNN EP is a plugin library registered with ONNX Runtime once per process (ONNX Runtime >= 1.24:
`register_execution_provider_library`); a session selects it with the SoC the artifact was
compiled for. Inputs are NCHW normalised tensors, batch 1 per call.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from ..quiet import quiet_native_output
from ..targets import SOCS
from . import DEFAULT_THREADS, RUNTIMES, Batch, RuntimeUnavailable

EP_NAME = "QNNExecutionProvider"
_REGISTERED = threading.Lock()
_registered = False


def qnn_devices() -> list[Any]:
    """The QNN EP's devices, its library registered with ONNX Runtime on first use."""
    global _registered
    import onnxruntime as ort

    with _REGISTERED:
        if not _registered:
            try:
                import onnxruntime_qnn
            except ImportError as exc:
                raise RuntimeUnavailable(
                    "onnxruntime-qnn is not installed: the qnn target needs Qualcomm's QNN execution provider",
                    hint="pip install onnxruntime-qnn",
                ) from exc
            ort.register_execution_provider_library(EP_NAME, onnxruntime_qnn.get_library_path())
            _registered = True
    return [d for d in ort.get_ep_devices() if d.ep_name == EP_NAME]


def session_options(
    soc: str, *, fp16: bool = True, provider: dict[str, str] | None = None, cpu_fallback: bool = True
) -> Any:
    """SessionOptions that place the model on the QNN HTP backend for `soc` (a key of targets.SOCS)."""
    import onnxruntime as ort

    chip = SOCS[soc]
    options = ort.SessionOptions()
    options.log_severity_level = 3  # QNN's warnings about features of Windows devices are noise here
    options.add_provider_for_devices(
        qnn_devices(),
        {
            "backend_type": "htp",
            "soc_model": str(chip.soc_model),
            "htp_arch": str(chip.htp_arch),
            "enable_htp_fp16_precision": "1" if fp16 else "0",
            **(provider or {}),
        },
    )
    if not cpu_fallback:
        options.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    return options


class QnnHtp:
    name = "qnn-htp-simulator"
    device_speed = RUNTIMES[name].device_speed
    input_layout = "nchw"

    def __init__(self, path: Path, threads: int) -> None:
        import onnx
        import onnxruntime as ort

        meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        soc = meta.get("effconvert.soc")
        if soc not in SOCS:
            raise RuntimeUnavailable(
                f"{path.name} names no SoC effconvert knows ({soc!r}): not a qnn artifact of effconvert's"
            )
        self.soc = soc
        with quiet_native_output():  # QNN's libraries log to stdout and stderr when they load
            options = session_options(soc)
            options.intra_op_num_threads = threads  # the CPU EP's, for nodes the HTP did not take
            self.session = ort.InferenceSession(str(path), options)
        self.input = self.session.get_inputs()[0]
        self.input_shape = tuple(d if isinstance(d, int) else 1 for d in self.input.shape)

    def run(self, batch: Batch) -> np.ndarray:
        x = np.ascontiguousarray(batch.inputs, dtype=np.float32)
        outs = [self.session.run(None, {self.input.name: x[i : i + 1]})[0] for i in range(len(x))]
        return np.concatenate(outs).astype(np.float32)


def open(path: Path, *, threads: int | None, input_layout: str | None = None) -> QnnHtp:
    return QnnHtp(path, threads or DEFAULT_THREADS)
