"""The QNN compiler in a child process: ONNX Runtime's QNN EP compiles a model into an EPContext
model for one SoC, and writes its framework-op trace.

Why a child: the QNN EP aborts the whole process on some graphs instead of refusing them
(onnxruntime-qnn 2.7.0, QNN SDK 2.51: a C++ assertion `__n < this->size()` in std::vector, measured
on torchvision's ConvNeXt, whose classifier exports a Reshape -> Gather -> Transpose chain; see
docs/guides/upstream.md). A crash in the child is a conversion that failed, named in one line;
the run, and the artifacts it already wrote, go on.

    python -m effconvert.convert.qnn_compile < job.json      (source, out, soc, fp16, trace_dir)

The child imports ONNX Runtime only (no torch): it starts in about a second.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from ..errors import ConversionFailed


def compile_in_child(source: Path, out: Path, soc: str, *, fp16: bool, trace_dir: Path) -> None:
    """Compile `source` for `soc` into `out` in a child process; ConversionFailed if it fails or dies."""
    job = {"source": str(source), "out": str(out), "soc": soc, "fp16": fp16, "trace_dir": str(trace_dir)}
    done = subprocess.run(
        [sys.executable, "-m", __name__], input=json.dumps(job), capture_output=True, text=True, check=False
    )
    if done.returncode == 0:
        return
    lines = [line.strip() for line in (done.stderr or "").splitlines() if line.strip() and "LIBNATIVE" not in line]
    said = lines[-1][-300:] if lines else "no message"
    how = f"crashed ({signal.Signals(-done.returncode).name})" if done.returncode < 0 else "failed"
    raise ConversionFailed(
        f"the QNN compiler {how} compiling for {soc}: {said}",
        hint="an upstream QNN EP bug on this graph; try another --soc or --quant, or report "
        "the model (docs: upstream issues)",
    )


def _compile(job: dict[str, str | bool]) -> None:
    import onnxruntime as ort

    from ..runtime.qnn import session_options

    options = session_options(
        str(job["soc"]),
        fp16=bool(job["fp16"]),
        provider={"enable_framework_op_trace": "1", "framework_op_trace_dir": str(job["trace_dir"])},
    )
    options.add_session_config_entry("ep.context_enable", "1")
    options.add_session_config_entry("ep.context_embed_mode", "1")
    options.add_session_config_entry("ep.context_file_path", str(job["out"]))
    ort.InferenceSession(str(job["source"]), options)


if __name__ == "__main__":
    try:
        _compile(json.loads(sys.stdin.read()))
    except Exception as exc:  # noqa: BLE001 - the parent reads the last line of stderr
        print(f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}", file=sys.stderr)
        sys.exit(1)
