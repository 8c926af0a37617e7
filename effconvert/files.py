"""Sizes and digests of files and package folders (a `.mlpackage` is a folder): one helper each,
used by load (checkpoint sha256), convert (artifact size), inspect, measure and apps."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from .errors import BadInput

CHUNK = 1 << 20
PACKAGE_MANIFEST = "Manifest.json"  # every .mlpackage (the only artifact that is a folder) has one
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


def check_artifact(path: Path, what: str = "artifact") -> None:
    """Refuse, before anything reads it, an artifact that is missing, empty, or not made of plain
    files: a link inside a package (it could point at /dev/zero, which a reader would read forever)
    or a device, FIFO or socket in place of the file."""
    path = Path(path)
    try:
        os.lstat(path)  # a name too long is an OSError of its own (ENAMETOOLONG), not "not found"
    except FileNotFoundError:
        raise BadInput(f"{what} not found: {path}") from None
    try:
        top = path.stat()
    except OSError as exc:
        raise BadInput(f"{path}: {'a symbolic link loop' if exc.errno == 40 else exc.strerror or exc}") from None
    if stat.S_ISDIR(top.st_mode):
        for folder, dirs, names in os.walk(path):
            for name in dirs + names:
                entry = Path(folder) / name
                mode = entry.lstat().st_mode
                if stat.S_ISLNK(mode):
                    raise BadInput(
                        f"{path.name}: {entry.relative_to(path)} is a symbolic link; a package holds its own files"
                    )
                if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                    raise BadInput(f"{path.name}: {entry.relative_to(path)} is not a regular file")
    elif not stat.S_ISREG(top.st_mode):
        raise BadInput(f"{path} is not a regular file (a device, FIFO or socket): not an artifact")
    if size_on_disk(path) == 0:
        raise BadInput(f"{path} is empty (0 bytes): not an artifact")
    if stat.S_ISDIR(top.st_mode) and not (path / PACKAGE_MANIFEST).is_file():
        # checked before coremltools is imported (seconds) to say so
        raise BadInput(f"{path.name} has no {PACKAGE_MANIFEST}: not a complete Core ML package")
