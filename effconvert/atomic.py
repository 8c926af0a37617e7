"""Atomic writes: build beside the target under a temporary name, rename when complete.

A crash or an error leaves either the previous file or nothing, never a half-written artifact.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path in target's folder; on success it replaces target (file or folder)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    tmp = tmp_dir / target.name
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"nothing was written to {tmp}")
        _remove(target)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Remove what `atomic_path` leaves when its process is killed outright (SIGKILL, OOM): a hidden
    `.<name>.<random>` folder holding at most `<name>`. Call it only while holding the folder's lock."""
    removed = []
    for entry in Path(folder).iterdir() if Path(folder).is_dir() else ():
        if not (entry.is_dir() and not entry.is_symlink() and entry.name.startswith(".")):
            continue
        name, _, suffix = entry.name[1:].rpartition(".")
        if name and len(suffix) == 8 and all(child.name == name for child in entry.iterdir()):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def write_text_atomic(target: Path, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
