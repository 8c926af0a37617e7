"""Checkpoints as users have them from the Hugging Face Hub: a timm snapshot folder (`config.json`
plus `model.safetensors` or `pytorch_model.bin`, the layout timm's `push_to_hf_hub` / `save_for_hf`
writes) or an `hf-hub:ORG/NAME` id resolved from the local Hugging Face cache, never the network.

`config.json` is untrusted data like the weights: each field used is type- and range-checked, and
a bad one is refused naming the field (exit 2).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BadInput
from ..files import HUB_PREFIX
from ..limits import MAX_IMAGE_SIZE, MIN_IMAGE_SIZE
from ..numeric import rgb
from ..parsing import json_data

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
CONFIG_FILE = "config.json"
MIN_STD = 1e-3  # a std divides the pixels: below this it multiplies them by more than 1000
MAX_CONFIG_BYTES = 16 << 20
INTERPOLATIONS = ("bicubic", "bilinear", "nearest")


@dataclass(frozen=True)
class SnapshotConfig:
    """What a timm hub config.json says about the weights beside it."""

    source: str  # the folder or hf-hub id, for the report
    architecture: str | None = None
    num_classes: int | None = None
    input_size: tuple[int, int, int] | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    crop_pct: float | None = None
    interpolation: str | None = None
    label_names: tuple[str, ...] | None = None


def is_snapshot(path: str | Path) -> bool:
    return str(path).startswith(HUB_PREFIX) or Path(path).is_dir()


def resolve(path: str | Path) -> tuple[Path, SnapshotConfig]:
    """(weights file, config) of a snapshot folder or an hf-hub id."""
    text = str(path)
    folder = _from_cache(text[len(HUB_PREFIX) :]) if text.startswith(HUB_PREFIX) else Path(path)
    named = [folder / name for name in WEIGHT_FILES if os.path.lexists(folder / name)]
    weights = next((p for p in named if p.is_file()), None)
    if weights is None and named:  # there, but not a file: say what it is (read.py's own words)
        from .read import check_checkpoint_path

        check_checkpoint_path(named[0])
    if weights is None:
        raise BadInput(
            f"expected a checkpoint file, got a folder: {folder}",
            hint=f"a Hugging Face / timm snapshot folder holds {CONFIG_FILE} and one of {', '.join(WEIGHT_FILES)}",
        )
    config_path = folder / CONFIG_FILE
    if not config_path.is_file():
        return weights, SnapshotConfig(source=text)
    return weights, read_config(config_path, source=text)


def _from_cache(repo_id: str) -> Path:
    """The newest cached snapshot of `repo_id`; offline by construction (local_files_only)."""
    if not repo_id or repo_id.count("/") != 1 or any(part in ("", ".", "..") for part in repo_id.split("/")):
        raise BadInput(f"{HUB_PREFIX}{repo_id} is not a Hub model id", hint="e.g. hf-hub:timm/fastvit_t8.apple_in1k")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        # HF_HUB_CACHE read here, not at huggingface_hub's import, so a caller's setting always holds.
        return Path(snapshot_download(repo_id, local_files_only=True, cache_dir=os.environ.get("HF_HUB_CACHE")))
    except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
        raise BadInput(
            f"{HUB_PREFIX}{repo_id} is not in the local Hugging Face cache, and effconvert never downloads",
            hint=f"on a machine with internet: hf download {repo_id}; or pass the snapshot folder",
        ) from None


def read_config(path: Path, *, source: str) -> SnapshotConfig:
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise BadInput(f"{path} is larger than {MAX_CONFIG_BYTES:,} bytes: not a model config")
    data = json_data(path.read_bytes(), str(path))
    if not isinstance(data, dict):
        raise BadInput(f"{path}: expected a JSON object, got {type(data).__name__}")
    pre = data.get("pretrained_cfg", {})
    if not isinstance(pre, dict):
        raise BadInput(f"{path}: pretrained_cfg must be an object")
    field = lambda name: f"{path.name} {name}"  # noqa: E731 - names the field in messages
    input_size = _ints(pre.get("input_size"), 3, field("pretrained_cfg.input_size"))
    if input_size is not None and not (
        input_size[0] == 3 and all(MIN_IMAGE_SIZE <= s <= MAX_IMAGE_SIZE for s in input_size[1:])
    ):
        raise BadInput(
            f"{field('pretrained_cfg.input_size')} {list(input_size)} is out of range: "
            f"[3, H, W] with H, W from {MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE}"
        )
    num_classes = data.get("num_classes")
    if num_classes is not None and (
        not isinstance(num_classes, int) or isinstance(num_classes, bool) or not 1 <= num_classes <= 1_000_000
    ):
        raise BadInput(f"{field('num_classes')} {num_classes!r} is not a class count")
    labels = data.get("label_names")
    if isinstance(labels, dict):  # timm allows {index: name}
        labels = [labels[k] for k in sorted(labels, key=lambda k: int(k) if str(k).isdigit() else 0)]
    if labels is not None and not (isinstance(labels, list) and all(isinstance(x, str) for x in labels)):
        raise BadInput(f"{field('label_names')} must be a list of strings")
    arch = data.get("architecture")
    if arch is not None and not isinstance(arch, str):
        raise BadInput(f"{field('architecture')} must be a string")
    interpolation = pre.get("interpolation")
    if interpolation is not None and interpolation not in INTERPOLATIONS:
        raise BadInput(
            f"{field('pretrained_cfg.interpolation')} {interpolation!r} is not one of {', '.join(INTERPOLATIONS)}"
        )
    return SnapshotConfig(
        source=source,
        architecture=arch,
        num_classes=num_classes,
        input_size=(input_size[0], input_size[1], input_size[2]) if input_size is not None else None,
        mean=_floats(pre.get("mean"), field("pretrained_cfg.mean")),
        std=_floats(pre.get("std"), field("pretrained_cfg.std"), positive=True),
        crop_pct=crop_pct_value(pre.get("crop_pct"), field("pretrained_cfg.crop_pct")),
        interpolation=interpolation,
        label_names=tuple(labels) if labels else None,
    )


def crop_pct_value(value: Any, what: str = "--crop-pct") -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.05 <= float(value) <= 1.0:
        raise BadInput(f"{what} {value!r} is out of range: a fraction from 0.05 to 1 (timm's eval crop)")
    return float(value)


def _ints(value: Any, n: int, what: str) -> tuple[int, ...] | None:
    if value is None:
        return None
    if not (
        isinstance(value, list)
        and len(value) == n
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        raise BadInput(f"{what} must be a list of {n} whole numbers, got {str(value)[:80]}")
    return tuple(value)


def _floats(value: Any, what: str, *, positive: bool = False) -> tuple[float, float, float] | None:
    if value is None:
        return None
    ok = (
        isinstance(value, list)
        and len(value) == 3
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) < 1e3 and v == v for v in value)
    )
    if not ok or (positive and min(value) < MIN_STD):
        raise BadInput(
            f"{what} must be 3 {f'numbers of at least {MIN_STD} (a std divides pixels)' if positive else 'numbers'}"
            f" (one per RGB channel), got {str(value)[:80]}"
        )
    return rgb(value)
