"""The one exception family users can cause. Only cli.py catches it and turns it into an exit code.

Exit codes (design.md): 1 a parity gate failed, 2 bad input or usage (nothing written),
3 a conversion failed (the op or module is named).
"""

from __future__ import annotations

import errno
import os


class EffconvertError(Exception):
    """An error with a one-line message and a hint; `exit_code` is what the CLI exits with."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class BadInput(EffconvertError):
    """A file or option the user gave cannot be used (missing, corrupt, unsafe, wrong architecture)."""

    exit_code = 2


class ConversionFailed(EffconvertError):
    """A converter refused the model; the message names the op or module."""

    exit_code = 3


class ArtifactFailed(EffconvertError):
    """An artifact that loads but fails when its runtime executes it (e.g. an impossible reshape)."""

    exit_code = 3


class ParityFailed(EffconvertError):
    """An artifact (or the fusion proof) did not meet its numerical gate."""

    exit_code = 1


class OutOfSpace(EffconvertError):
    """The disk filled up while writing (ENOSPC, EDQUOT): what was under way is removed, not kept."""

    exit_code = 3


def os_error_of(exc: BaseException) -> EffconvertError | None:
    """The user-facing error for an OS limit met anywhere in a run (a converter may wrap the OSError
    or only repeat its words), or None when `exc` is not one."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno is not None:
            known = _known_os_error(current.errno, current.filename)
            if known is not None:
                return known
        current = current.__cause__ or current.__context__
    text = str(exc)
    if "No space left on device" in text or "Disk quota exceeded" in text:
        return _known_os_error(errno.ENOSPC, None)
    if "File name too long" in text:
        return _known_os_error(errno.ENAMETOOLONG, None)
    return None


def _known_os_error(code: int, filename: object) -> EffconvertError | None:
    name = "" if filename is None else str(filename)
    shown = name if len(name) <= 80 else name[:40] + "..." + name[-37:]
    if code == errno.ENAMETOOLONG:
        return BadInput(
            "a file name is too long" + (f": {shown}" if name else ""),
            hint="a name (one part of a path) is at most 255 bytes on Linux and macOS",
        )
    if code in (errno.ENOSPC, errno.EDQUOT):
        return OutOfSpace(
            f"no space left on the disk holding {_mount_of(name) if name else 'the output folder'}; "
            "the artifact under way was removed, nothing partial kept",
            hint="free space (df -h shows each disk) or choose --out on another disk, then rerun",
        )
    return None


def _mount_of(path: str) -> str:
    folder = os.path.abspath(path)
    while not os.path.ismount(folder):
        folder = os.path.dirname(folder)
    return folder


def shown(value: object, limit: int = 80) -> str:
    """A user's value inside a one-line message: as typed when it is short printable text, else its
    repr (newlines and control characters escaped), cut at `limit`."""
    text = str(value)
    if not text.isprintable() or not text.strip() or len(text) > limit:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
