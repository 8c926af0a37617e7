"""`effconvert inspect`: what a checkpoint or an artifact holds, as (field, value) rows.

Each target's artifacts are read by its own module (the target table names it): inspect/<inspector>.py,
`rows(path) -> (rows, effconvert metadata)`; a target with a device model adds its device line. A
checkpoint is read by load/ as a conversion would read it.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from ..errors import BadInput
from ..files import check_artifact
from ..parsing import json_data
from ..targets import TARGETS, target_of

__all__ = ["inspect_path", "metadata_rows"]


def inspect_path(path: Path) -> list[tuple[str, str]]:
    path = Path(path)
    if any(path.name.lower().endswith(t.suffix) for t in TARGETS.values()):
        check_artifact(path)
        target = target_of(path)
        module = importlib.import_module(f"{__name__}.{target.inspector}")
        rows, metadata = module.rows(path)
        if target.device is not None:
            rows.append(("device (estimate)", _device_line(path)))
        return rows + metadata_rows(metadata)
    return _inspect_checkpoint(path)


def _device_line(path: Path) -> str:
    from ..device import device_report

    try:
        return device_report(path).summary
    except Exception as exc:  # noqa: BLE001 - inspect still shows the rest
        return f"not available: {type(exc).__name__}: {exc}"[:300]


def _inspect_checkpoint(path: Path) -> list[tuple[str, str]]:
    from ..load import load_checkpoint

    loaded = load_checkpoint(path)
    pre = loaded.preprocessing
    return [
        ("architecture", f"{loaded.arch} ({loaded.family}; from {loaded.arch_from})"),
        ("layout", f"{loaded.source_layout}" + (" (reparameterized)" if loaded.fused_on_load else "")),
        ("wrapper", loaded.wrapper or "(bare state dict)"),
        ("parameters", f"{loaded.params:,}"),
        ("classes", str(loaded.num_classes)),
        ("input", f"{pre.input_size}, mean {pre.mean}, std {pre.std}"),
        ("resize", f"crop_pct {pre.crop_pct}, {pre.interpolation}, {pre.crop_mode} crop"),
        ("weights", loaded.summary().weights),
        ("sha256", loaded.sha256),
    ]


def metadata_rows(meta: dict[str, str]) -> list[tuple[str, str]]:
    rows = []
    for key, value in meta.items():
        if key == "effconvert.labels":  # the artifact's own words: shown as they are unless a list of names
            labels = _json_or_none(value)
            if isinstance(labels, list) and all(isinstance(x, str) for x in labels):
                value = f"{len(labels)} labels: {', '.join(labels[:3])}, ..."
            else:
                value = f"(not a JSON list of names) {value[:80]!r}"
        rows.append((key, value))
    return rows


def _json_or_none(text: str) -> object:
    try:
        return json_data(text, "effconvert.labels")
    except BadInput:
        return None
