"""Thin modules put around the fused model so each artifact has the interface its platform wants.
They add only layout changes and exact arithmetic, and are part of what parity measures."""

from __future__ import annotations

import torch
from torch import nn

from ..load.preprocessing import Preprocessing


class Normalize(nn.Module):
    """(x - mean) / std on 0..1 pixels, per channel, as an in-graph mul/add.

    Core ML's ImageType has one scale and a per-channel bias; ImageNet's std differs per channel,
    so scale/bias alone cannot express it. Folding into the first conv is not exact either: the
    stem pads with zeros in normalised space, which are not zeros in pixel space. Two elementwise
    ops keep it exact.
    """

    def __init__(self, preprocessing: Preprocessing) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(preprocessing.mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer(
            "inv_std", (1.0 / torch.tensor(preprocessing.std, dtype=torch.float64)).float().view(1, 3, 1, 1)
        )

    mean: torch.Tensor  # buffers (register_buffer above)
    inv_std: torch.Tensor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) * self.inv_std


WRAPPED_MODEL = "model"  # attribute holding the fused model: prefixes its traced parameter names


class ImageClassifier(nn.Module):
    """Pixels (0..1, NCHW; Core ML's ImageType supplies scale 1/255) -> (probabilities, logits)."""

    def __init__(self, model: nn.Module, preprocessing: Preprocessing | None) -> None:
        super().__init__()
        self.normalize = Normalize(preprocessing) if preprocessing is not None else nn.Identity()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.model(self.normalize(x))
        return torch.softmax(logits, dim=-1), logits


class ChannelsLast(nn.Module):
    """NHWC input -> the NCHW model: Android camera pipelines deliver channel-last buffers."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.permute(0, 3, 1, 2))
