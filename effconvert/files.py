"""Sizes and digests of files and package folders (a `.mlpackage` is a folder): one helper each,
used by load (checkpoint sha256), convert (artifact size), inspect, measure and apps."""

from __future__ import annotations

import hashlib
from pathlib import Path

CHUNK = 1 << 20
HUB_PREFIX = "hf-hub:"  # a checkpoint named by its Hugging Face id, read from the local cache


def sha256_of(path: Path) -> str:
    """Of one file, read in 1 MiB chunks (checkpoints can be GBs)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def files_in(path: Path) -> list[Path]:
    """The files of a package folder in path order (a file is its own one-element list)."""
    path = Path(path)
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]


def size_on_disk(path: Path) -> int:
    """Of the file, or of all files in a package folder."""
    return sum(p.stat().st_size for p in files_in(path))


def artifact_sha256(path: Path) -> str:
    """Of the file, or of a package folder's files in path order (names included)."""
    path = Path(path)
    if not path.is_dir():
        return sha256_of(path)
    digest = hashlib.sha256()
    for f in files_in(path):
        digest.update(str(f.relative_to(path)).encode())
        with open(f, "rb") as handle:
            for chunk in iter(lambda: handle.read(CHUNK), b""):
                digest.update(chunk)
    return digest.hexdigest()
