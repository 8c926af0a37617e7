"""report/: the typed report (schema.py) and its renderings — report.json (contract in design.md,
schema effconvert.report/1, written atomically), report.html (html.py), the console (console.py)."""

from __future__ import annotations

import json
import platform
from importlib import metadata
from pathlib import Path

from .._version import __version__
from ..atomic import write_text_atomic
from .schema import SCHEMA, Report

__all__ = ["SCHEMA", "Report", "versions", "write_report"]

_VERSIONED = (
    "torch",
    "timm",
    "numpy",
    "onnx",
    "onnxruntime",
    "onnxsim",
    "coremltools",
    "litert-torch",
    "ai-edge-litert",
    "executorch",
    "onnxruntime-qnn",
)


def versions() -> dict[str, str]:
    found = {"effconvert": __version__, "python": platform.python_version()}
    for name in _VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def write_report(report: Report, out_dir: Path) -> Path:
    path = Path(out_dir) / "report.json"
    write_text_atomic(path, json.dumps(report.to_json(), indent=2, allow_nan=True) + "\n")
    return path
