"""An artifact on disk, as the next stage sees it: plain data, no converter objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..files import artifact_sha256, size_on_disk


@dataclass
class Artifact:
    target: str
    quant: str
    path: Path
    convert_s: float
    input_layout: str = "nchw"  # nchw | nhwc | image
    notes: list[str] = field(default_factory=list)
    toolchain_s: float = 0.0  # of convert_s: inside the third-party converter calls

    @property
    def size_bytes(self) -> int:
        return size_on_disk(self.path)

    @property
    def sha256(self) -> str:
        return artifact_sha256(self.path)
