"""Folder names made from user data (a checkpoint's file name, a plan's name = ...).

A name becomes a path component under --out: it must not climb out of it (`..`, separators), hide
(a leading dot), carry bytes a file system refuses (NUL, control characters) or pass the 255-byte
limit of a name on Linux and macOS once effconvert adds its own suffixes. A name derived from a
file is made safe; a name the user wrote is refused when it is not (they chose it: we say why).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import BadInput

NAME_BYTES = 255  # NAME_MAX of ext4, APFS, NTFS (in UTF-8 bytes on the first two)
OUR_SUFFIX_BYTES = 55  # the longest we add to a folder name (temporary and lock suffixes) ...
MAX_NAME_BYTES = NAME_BYTES - OUR_SUFFIX_BYTES  # ... leaves this much for the user's part
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]")


def derived_name(text: str, fallback: str = "checkpoint") -> str:
    """A safe folder name from a file's name: separators and control bytes become `_`, leading dots
    and spaces go, the result is cut to MAX_NAME_BYTES (whole characters); nothing left -> fallback."""
    name = _UNSAFE.sub("_", text).lstrip(". ").rstrip(" ")
    name = name.encode("utf-8", "replace")[:MAX_NAME_BYTES].decode("utf-8", "ignore")
    return name or fallback


def plain_name(text: str, where: str) -> str:
    """The user's own name for a folder, refused (one line saying why) unless it is plain."""
    why = (
        "is empty"
        if not text.strip()
        else "contains a path separator or a control character"
        if _UNSAFE.search(text)
        else "starts with a dot"
        if text.startswith(".")
        else f"is {len(text.encode('utf-8', 'replace')):,} bytes (at most {MAX_NAME_BYTES})"
        if len(text.encode("utf-8", "replace")) > MAX_NAME_BYTES
        else None
    )
    if why:
        shown = text if len(text) <= 60 else text[:57] + "..."
        raise BadInput(f"{where} {shown!r} {why}: it must be a plain folder name")
    return text


def confined(path: Path, root: Path, where: str) -> Path:
    """`path`, checked to resolve inside `root` (a symbolic link or `..` in the name cannot climb out)."""
    real_root = Path(os.path.realpath(root))
    real = Path(os.path.realpath(path))
    if real != real_root and real_root not in real.parents:
        raise BadInput(f"{where} {str(path)!r} would write outside {str(root)!r}")
    return path
