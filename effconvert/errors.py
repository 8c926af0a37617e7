"""The one exception family users can cause. Only cli.py catches it and turns it into an exit code.

Exit codes (design.md): 1 a parity gate failed, 2 bad input or usage (nothing written),
3 a conversion failed (the op or module is named).
"""

from __future__ import annotations


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
