"""Read a checkpoint file into plain data (tensors, numbers, strings), never running code from it.

`.pth`, `.pth.tar`, `.pt`, `.bin` (zip or legacy pickle) go through `torch.load(weights_only=True)`,
whose unpickler only builds tensors and containers; `.safetensors` has no code path at all.
"""

from __future__ import annotations

import argparse
import errno
import os
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
_SAFE_EXTRA_GLOBALS: list[Any] = [argparse.Namespace]


@dataclass(frozen=True)
class RawCheckpoint:
    """What a checkpoint file holds, before any interpretation."""

    path: Path
    sha256: str
    content: Any  # dict of tensors, or a wrapper dict around one
    file_metadata: dict[str, str] = field(default_factory=dict)  # safetensors header metadata


def check_checkpoint_path(path: Path) -> None:
    """Refuse what cannot be a checkpoint file, from the path alone (nothing is read)."""
    path = Path(path)
    if not path.exists():
        if path.is_symlink():
            try:
                path.resolve(strict=True)
            except RuntimeError:  # Python 3.11 names the loop so
                raise BadInput(f"checkpoint {path} is a symbolic link loop") from None
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise BadInput(f"checkpoint {path} is a symbolic link loop") from None
            raise BadInput(f"checkpoint {path} is a broken symbolic link (to {os.readlink(path)})")
        raise BadInput(f"checkpoint not found: {path}")
    if path.is_dir():
        raise BadInput(f"expected a checkpoint file, got a folder: {path}")
    if not path.is_file():
        raise BadInput(f"checkpoint {path} is not a regular file")
    if path.stat().st_size == 0:
        raise BadInput(f"checkpoint is empty (0 bytes): {path}")
    if not (path.name.endswith(SAFETENSORS_SUFFIX) or path.name.endswith(PICKLE_SUFFIXES)):
        raise BadInput(
            f"unsupported checkpoint format: {path.name}", hint="use .pth, .pth.tar, .pt, .bin, .ckpt or .safetensors"
        )
    if not os.access(path, os.R_OK):
        raise BadInput(f"checkpoint {path} is not readable (permission denied)")


def read_checkpoint(path: Path) -> RawCheckpoint:
    path = Path(path)
    check_checkpoint_path(path)
    _sniff(path)  # before hashing: an 8 GB file of zeros is refused at once, not after reading it all
    try:
        sha = sha256_of(path)
    except OSError as exc:
        raise BadInput(f"cannot read checkpoint {path}: {exc.strerror or exc}") from None
    if path.name.endswith(SAFETENSORS_SUFFIX):
        content, meta = _read_safetensors(path)
        return RawCheckpoint(path, sha, content, meta)
    return RawCheckpoint(path, sha, _read_pickle(path))


def _sniff(path: Path) -> None:
    """Refuse a file whose first bytes are none of the formats read: a zip (torch.save since 1.6,
    TorchScript), a pickle (older torch.save: protocol 2+), a safetensors header (little-endian
    length, then a JSON object)."""
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError as exc:
        raise BadInput(f"cannot read checkpoint {path}: {exc.strerror or exc}") from None
    if path.name.endswith(SAFETENSORS_SUFFIX):
        if len(head) == 9 and 2 <= int.from_bytes(head[:8], "little") < path.stat().st_size and head[8:] == b"{":
            return
        raise BadInput(f"not a readable safetensors file: {path.name} (no safetensors header)")
    if head.startswith(b"PK\x03\x04") or (len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5):
        return
    raise BadInput(
        f"not a readable PyTorch checkpoint: {path.name} (neither a zip archive nor a pickle)",
        hint="the file may be corrupt, truncated or not a checkpoint at all",
    )


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            # safe_open is not iterable (safetensors 0.8): its names come from keys()
            return {k: f.get_tensor(k) for k in f.keys()}, meta  # noqa: SIM118 - not iterable
    except Exception as exc:  # safetensors raises several types for a damaged header
        raise BadInput(f"not a readable safetensors file: {path.name} ({first_line(exc)})") from exc


def _read_pickle(path: Path) -> Any:
    if _is_torchscript(path):
        raise BadInput(
            f"{path.name} is a TorchScript program, not a checkpoint of weights",
            hint="save the weights instead: torch.save(torch.jit.load(f).state_dict(), 'weights.pth')",
        )
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
    except (
        RuntimeError,
        EOFError,
        ValueError,
        zipfile.BadZipFile,
        OSError,
        KeyError,
        IndexError,
        TypeError,
        AttributeError,
        UnicodeDecodeError,
    ) as exc:
        raise BadInput(
            f"not a readable PyTorch checkpoint: {path.name} ({_shorten(first_line(exc))})",
            hint="the file may be corrupt, truncated or not a checkpoint at all",
        ) from exc


def _is_torchscript(path: Path) -> bool:
    """A TorchScript archive is a zip with the program's code and constants next to its data."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return False
    return any(n.endswith("/constants.pkl") for n in names) and any("/code/" in n for n in names)


def _shorten(text: str, limit: int = 120) -> str:
    """At most `limit` characters, cut at a word boundary with an ellipsis, never mid-word."""
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(" ,;:.") + " …"


def _unsafe_global(text: str) -> str:
    for line in text.splitlines():
        if "GLOBAL" in line or "Unsupported global" in line:
            return line.strip().rstrip(".")[:160]
    return "an object torch's weights-only loader does not allow"
