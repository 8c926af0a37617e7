"""An artifact on disk, as the next stage sees it: plain data, no converter objects."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from ..load.read import sha256_of


@dataclass
class Artifact:
    target: str
    quant: str
    path: Path
    convert_s: float
    input_layout: str = "nchw"                 # nchw | nhwc | image
    notes: list[str] = field(default_factory=list)
    toolchain_s: float = 0.0                   # of convert_s: inside the third-party converter calls

    @property
    def size_bytes(self) -> int:
        return size_on_disk(self.path)

    @property
    def sha256(self) -> str:
        return artifact_sha256(self.path)


def size_on_disk(path: Path) -> int:
    """Of the file, or of all files in a package folder (.mlpackage)."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def artifact_sha256(path: Path) -> str:
    """Of the file, or of a package folder's files in path order (names included)."""
    if not path.is_dir():
        return sha256_of(path)
    digest = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(f.relative_to(path)).encode())
        digest.update(f.read_bytes())
    return digest.hexdigest()
