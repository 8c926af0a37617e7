"""Converters print progress bars and warnings meant for notebooks; our CLI shows its own progress.
Silence them during a conversion, keeping the text in case the conversion fails."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def quiet() -> Iterator[io.StringIO]:
    captured = io.StringIO()
    previous_disable = logging.root.manager.disable
    with warnings.catch_warnings(), contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            yield captured
        finally:
            logging.disable(previous_disable)


def first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__)[:300]


def quiet_native_stderr() -> contextlib.AbstractContextManager:
    """Redirect file descriptor 2 (C++ logging of TFLite/XNNPACK), which redirect_stderr can't."""
    return _FdRedirect(2)


def quiet_native_output() -> contextlib.ExitStack:
    """Redirect file descriptors 1 and 2: libraries that log to stdout too (QNN's libnative)."""
    stack = contextlib.ExitStack()
    sys.stdout.flush()
    stack.enter_context(_FdRedirect(1))
    stack.enter_context(_FdRedirect(2))
    return stack


class _FdRedirect:
    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __enter__(self):
        sys.stderr.flush()
        self.saved = os.dup(self.fd)
        self.devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(self.devnull, self.fd)
        return self

    def __exit__(self, *exc):
        os.dup2(self.saved, self.fd)
        os.close(self.saved)
        os.close(self.devnull)
        return False
