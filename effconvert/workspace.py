"""Where a run writes: the output folder (checked before anything is written, locked while a run
writes into it) and a private temporary folder (removed when the run ends, however it ends).

Converters leave temporary files behind: coremltools' `tmp*.mlpackage` folders are removed only by
an atexit hook (apple/coremltools#2670), so an interrupted or killed run leaks them. A run that points `tempfile` at its own folder and removes it cleans up
after them as well as after itself.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import BadInput

LOCK_NAME = ".effconvert.lock"
TEMP_PREFIX = "effconvert-run-"


def check_output_dir(path: Path, flag: str = "--out") -> None:
    """Refuse an output folder that cannot be created or written, without creating anything."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise BadInput(f"{flag} {path} is a file, not a folder", hint="choose a folder path")
    existing = path
    while not existing.exists():
        if existing.is_symlink():
            raise BadInput(f"{flag} {path}: {existing} is a broken symbolic link")
        existing = existing.parent
    if not existing.is_dir():
        raise BadInput(f"{flag} {path} cannot be created: {existing} is a file")
    try:  # a probe: os.access is wrong for root and for /proc
        with tempfile.TemporaryFile(dir=existing, prefix=".effconvert-probe-"):
            pass
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise BadInput(f"{flag} {path} is not writable: {existing}: {reason.lower()}") from None


def _held(lock_path: Path) -> bool | None:
    """Whether a live run holds `lock_path` (None: there is no lock file). Nothing is created."""
    try:
        handle = open(lock_path, "rb")  # noqa: SIM115 - closed in the finally below
    except OSError:
        return None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released with the handle
    except OSError as exc:
        return exc.errno in (errno.EAGAIN, errno.EACCES)
    finally:
        handle.close()
    return False


def check_not_in_use(out_dir: Path) -> None:
    """Refuse at once (before loading: seconds to minutes) a folder another run holds; nothing is
    created. `output_lock` still decides: a run may take the folder between the two."""
    if _held(Path(out_dir) / LOCK_NAME):
        raise _in_use(Path(out_dir))


def remove_dead_lock(out_dir: Path) -> bool:
    """Remove the lock file a killed run left (nobody holds it); True when the folder is free."""
    lock_path = Path(out_dir) / LOCK_NAME
    if _held(lock_path):
        return False
    lock_path.unlink(missing_ok=True)
    return True


def _in_use(out_dir: Path) -> BadInput:
    return BadInput(
        f"output folder in use by another effconvert run: {out_dir}",
        hint="wait for it to finish, or choose another --out",
    )


@contextlib.contextmanager
def output_lock(out_dir: Path) -> Iterator[None]:
    """Hold `out_dir` for one run: a second run into the same folder is refused, not interleaved."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lock_path = out_dir / LOCK_NAME
    handle = open(lock_path, "a+")  # noqa: SIM115 - held while the run writes; closed in the finally below
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        handle.close()
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            raise _in_use(out_dir) from None
        raise
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            lock_path.unlink()
        handle.close()


@contextlib.contextmanager
def private_tempdir() -> Iterator[Path]:
    """Point `tempfile` (and child processes, via TMPDIR) at a fresh folder; remove it at the end."""
    folder = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
    previous, previous_env = tempfile.tempdir, os.environ.get("TMPDIR")
    tempfile.tempdir = str(folder)
    os.environ["TMPDIR"] = str(folder)
    try:
        yield folder
    finally:
        tempfile.tempdir = previous
        if previous_env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = previous_env
        shutil.rmtree(folder, ignore_errors=True)
