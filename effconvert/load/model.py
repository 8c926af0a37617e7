"""The loader's output: a timm model plus everything known about where it came from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .preprocessing import Preprocessing


@dataclass
class LoadedModel:
    model: torch.nn.Module          # timm module, eval mode, float32, weights loaded strictly
    arch: str                       # timm name, e.g. fastvit_s12
    family: str
    checkpoint: Path
    sha256: str
    source_layout: str              # e.g. apple-ml-fastvit, apple-ml-fastvit-reparam, timm
    fused_on_load: bool             # the checkpoint was already in deploy (reparameterized) form
    num_classes: int
    preprocessing: Preprocessing
    wrapper: str = ""               # where in the file the weights were (state_dict, model, ...)
    arch_from: str = "keys"         # keys | keys+filename | --arch
    synthetic: dict[str, Any] | None = None   # set for make-checkpoint weights (not trained)
    preprocessing_from: str = "timm pretrained_cfg"   # or config.json, or the user's overrides
    labels: tuple[str, ...] | None = None      # label names the checkpoint came with (config.json)
    snapshot: str | None = None                # the snapshot folder or hf-hub id read

    @property
    def params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def report_dict(self) -> dict[str, Any]:
        return {
            "arch": self.arch,
            "family": self.family,
            "checkpoint": self.checkpoint.name,
            "sha256": self.sha256,
            "source_layout": self.source_layout,
            "fused_on_load": self.fused_on_load,
            "wrapper": self.wrapper,
            "arch_from": self.arch_from,
            "params": self.params,
            "num_classes": self.num_classes,
            "input_size": list(self.preprocessing.input_size),
            "preprocessing": self.preprocessing.as_dict(),
            "preprocessing_from": self.preprocessing_from,
            **({"snapshot": self.snapshot} if self.snapshot else {}),
            "weights": ("synthetic: effconvert make-checkpoint (seed "
                        f"{self.synthetic.get('seed')}), not a trained model") if self.synthetic
                       else "user checkpoint",
        }
