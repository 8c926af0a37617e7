"""Provenance and preprocessing carried inside every artifact, so an app (or a colleague) can tell
where a model came from and how to feed it without a side file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .._version import __version__
from ..load.preprocessing import Preprocessing


@dataclass(frozen=True)
class ModelInfo:
    """Plain data the converters need about the model (no torch module)."""

    arch: str
    checkpoint: str
    sha256: str
    source_layout: str
    num_classes: int
    preprocessing: Preprocessing
    labels: tuple[str, ...]
    labels_source: str
    weights_note: str


def provenance(info: ModelInfo, *, target: str, quant: str) -> dict[str, str]:
    """String key/values: the lowest common denominator of ONNX, Core ML and TFLite metadata."""
    pre = info.preprocessing
    return {
        "effconvert.version": __version__,
        "effconvert.arch": info.arch,
        "effconvert.target": target,
        "effconvert.quant": quant,
        "effconvert.checkpoint": info.checkpoint,
        "effconvert.checkpoint_sha256": info.sha256,
        "effconvert.source_layout": info.source_layout,
        "effconvert.weights": info.weights_note,
        "effconvert.input_size": json.dumps(list(pre.input_size)),
        "effconvert.mean": json.dumps(list(pre.mean)),
        "effconvert.std": json.dumps(list(pre.std)),
        "effconvert.crop_pct": str(pre.crop_pct),
        "effconvert.interpolation": pre.interpolation,
        "effconvert.labels_source": info.labels_source,
        "effconvert.labels": json.dumps(list(info.labels)),
    }


def read_provenance(path: Path) -> dict[str, str]:
    """The effconvert.* metadata an artifact carries (empty if it has none), read by its exporter."""
    from ..targets import target_of
    from . import exporter_of

    return exporter_of(target_of(path).name).read_metadata(Path(path))
