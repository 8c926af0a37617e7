"""EfficientFormerV2's talking heads (timm's Attention2d: a 1x1 Conv2d across the heads of the
attention map, before and after its softmax) as a Linear over the heads axis, for ExecuTorch.

ExecuTorch's XNNPACK delegate (executorch 1.5.1) computes a 1x1 convolution followed by a softmax
over the last axis wrong: it keeps the convolution's output in its channels-last layout and takes
the softmax over the channels instead of the last axis. `Conv2d(8, 8, 1)` then `softmax(-1)` on a
(1, 8, 49, 49) map: max rel err 1.3-3.9 against eager; each op alone is exact (docs/guides/upstream.md
has the reproduction). EfficientFormerV2-S0's fp32 program had max rel err 52 from it; with the
heads mixed by a Linear (the same products: weight[:, :, 0, 0] over the heads axis) 2.0e-6.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn
from torch.nn import functional


class HeadsLinear(nn.Module):
    """A 1x1 Conv2d's arithmetic over axis 1 of (B, heads, N, M), as a Linear on the last axis."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.conv = conv  # shares the weights: nothing is copied, nothing changes in the model

    def forward(self, attn: torch.Tensor) -> torch.Tensor:
        weight = self.conv.weight[:, :, 0, 0]
        mixed = functional.linear(attn.permute(0, 2, 3, 1), weight, self.conv.bias)
        return mixed.permute(0, 3, 1, 2)


@contextlib.contextmanager
def heads_as_linear(model: nn.Module) -> Iterator[int]:
    """While exporting: every talking-heads Conv2d of `model` runs as a HeadsLinear. Yields how many
    attention blocks were rewritten; afterwards the model is as it was (other targets export the
    same model object)."""
    from timm.models.efficientformer_v2 import Attention2d

    patched = [m for m in model.modules() if isinstance(m, Attention2d) and _is_pointwise(m.talking_head1)]
    originals = [(m.talking_head1, m.talking_head2) for m in patched]
    for module, (first, second) in zip(patched, originals, strict=True):
        module.talking_head1 = HeadsLinear(first)  # type: ignore[assignment]  # a Module in a Conv2d slot
        module.talking_head2 = HeadsLinear(second)  # type: ignore[assignment]  # a Module in a Conv2d slot
    try:
        yield len(patched)
    finally:
        for module, (first, second) in zip(patched, originals, strict=True):
            module.talking_head1, module.talking_head2 = first, second


def _is_pointwise(module: nn.Module) -> bool:
    return isinstance(module, nn.Conv2d) and module.kernel_size == (1, 1) and module.groups == 1
