"""Which input sizes a variant can run at, found by running it on the meta device (shapes only: no
memory, no arithmetic, ~0.1 s). Rules written by hand go stale; timm's own forward does not.

E.g. EfficientFormer-L1's attention biases are sized for a 7x7 last stage (input 193..224 only), and
EfficientFormerV2's strided attention accepts 160 or 192 but not 176.
"""

from __future__ import annotations

import functools

import torch

from ..errors import BadInput
from ..limits import MAX_IMAGE_SIZE, MIN_IMAGE_SIZE
from ..quiet import quiet
from .family import Family, build_timm


def check_input_size(family: Family, arch: str, size: int) -> None:
    if runs_at(family, arch, size):
        return
    near = sorted(
        (
            s
            for s in range(max(MIN_IMAGE_SIZE, size - 64 - size % 8), min(MAX_IMAGE_SIZE, size + 64) + 1, 8)
            if runs_at(family, arch, s)
        ),
        key=lambda s: (abs(s - size), s),
    )[:3]
    raise BadInput(
        f"{arch} cannot run at --image-size {size}: its layers do not fit that input",
        hint=f"sizes near it that work: {', '.join(map(str, sorted(near)))}" if near else f"use {arch}'s native size",
    )


@functools.cache
def runs_at(family: Family, arch: str, size: int) -> bool:
    try:
        with quiet(), torch.device("meta"), torch.no_grad():
            model = build_timm(family, arch, num_classes=10, image_size=size).eval()
            model(torch.empty(1, 3, size, size))
    except (RuntimeError, ValueError, AssertionError, IndexError, TypeError):
        return False
    return True
