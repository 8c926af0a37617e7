"""Read a checkpoint file into plain data (tensors, numbers, strings), never running code from it.

`.pth`, `.pth.tar`, `.pt`, `.bin` (zip or legacy pickle) go through `torch.load(weights_only=True)`,
whose unpickler only builds tensors and containers; `.safetensors` has no code path at all.
"""

from __future__ import annotations

import argparse
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import BadInput
from ..files import sha256_of
from ..quiet import first_line

PICKLE_SUFFIXES = (".pth", ".pth.tar", ".pt", ".bin", ".ckpt", ".tar")
SAFETENSORS_SUFFIX = ".safetensors"

# Inert classes that training scripts routinely put in checkpoints next to the weights (timm's
# CheckpointSaver stores the argparse Namespace under 'args'). Rebuilding them sets attributes only;
# nothing else outside torch's weights-only set is ever constructed.
_SAFE_EXTRA_GLOBALS = [argparse.Namespace]


@dataclass(frozen=True)
class RawCheckpoint:
    """What a checkpoint file holds, before any interpretation."""

    path: Path
    sha256: str
    content: Any                      # dict of tensors, or a wrapper dict around one
    file_metadata: dict[str, str] = field(default_factory=dict)  # safetensors header metadata


def read_checkpoint(path: Path) -> RawCheckpoint:
    path = Path(path)
    if not path.exists():
        raise BadInput(f"checkpoint not found: {path}")
    if path.is_dir():
        raise BadInput(f"expected a checkpoint file, got a folder: {path}")
    if path.stat().st_size == 0:
        raise BadInput(f"checkpoint is empty (0 bytes): {path}")
    sha = sha256_of(path)
    if path.name.endswith(SAFETENSORS_SUFFIX):
        content, meta = _read_safetensors(path)
        return RawCheckpoint(path, sha, content, meta)
    if not path.name.endswith(PICKLE_SUFFIXES):
        raise BadInput(
            f"unsupported checkpoint format: {path.name}",
            hint="use .pth, .pth.tar, .pt or .safetensors",
        )
    return RawCheckpoint(path, sha, _read_pickle(path))


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            return {k: f.get_tensor(k) for k in f.keys()}, meta
    except Exception as exc:  # safetensors raises several types for a damaged header
        raise BadInput(f"not a readable safetensors file: {path.name} ({first_line(exc)})") from exc


def _read_pickle(path: Path) -> Any:
    try:
        with torch.serialization.safe_globals(_SAFE_EXTRA_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True, mmap=False)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "GLOBAL" in text or "Unsupported global" in text:
            raise BadInput(
                f"refused to load {path.name}: it needs arbitrary unpickling "
                f"({_unsafe_global(text)}), which could run code from the file",
                hint="re-save only the weights: torch.save(model.state_dict(), 'weights.pth'), "
                "or convert to .safetensors",
            ) from exc
        raise BadInput(
            f"not a readable PyTorch checkpoint: {path.name} (invalid pickle data)",
            hint="the file may be corrupt, truncated or not a checkpoint at all",
        ) from exc
    except (RuntimeError, EOFError, ValueError, zipfile.BadZipFile, OSError, KeyError,
            IndexError, TypeError, AttributeError, UnicodeDecodeError) as exc:
        raise BadInput(
            f"not a readable PyTorch checkpoint: {path.name} ({first_line(exc)[:120]})",
            hint="the file may be corrupt, truncated or not a checkpoint at all",
        ) from exc


def _unsafe_global(text: str) -> str:
    for line in text.splitlines():
        if "GLOBAL" in line or "Unsupported global" in line:
            return line.strip().rstrip(".")[:160]
    return "an object torch's weights-only loader does not allow"
