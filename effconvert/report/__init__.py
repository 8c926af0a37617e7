"""report.json (contract in design.md, schema effconvert.report/1), written atomically."""

from __future__ import annotations

import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from .._version import __version__
from ..atomic import write_text_atomic

SCHEMA = "effconvert.report/1"
_VERSIONED = ("torch", "timm", "numpy", "onnx", "onnxruntime", "onnxsim", "coremltools",
              "litert-torch", "ai-edge-litert")


def versions() -> dict[str, str]:
    found = {"effconvert": __version__, "python": platform.python_version()}
    for name in _VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def write_report(report: dict[str, Any], out_dir: Path) -> Path:
    path = Path(out_dir) / "report.json"
    write_text_atomic(path, json.dumps(report, indent=2, allow_nan=True) + "\n")
    return path
