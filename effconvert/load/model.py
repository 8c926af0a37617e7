"""The loader's output: a timm model plus everything known about where it came from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .preprocessing import Preprocessing


@dataclass
class LoadedModel:
    model: torch.nn.Module  # timm module, eval mode, float32, weights loaded strictly
    arch: str  # timm name, e.g. fastvit_s12
    family: str
    checkpoint: Path
    sha256: str
    source_layout: str  # e.g. apple-ml-fastvit, apple-ml-fastvit-reparam, timm
    fused_on_load: bool  # the checkpoint was already in deploy (reparameterized) form
    num_classes: int
    preprocessing: Preprocessing
    wrapper: str = ""  # where in the file the weights were (state_dict, model, ...)
    arch_from: str = "keys"  # keys | keys+filename | --arch
    synthetic: dict[str, Any] | None = None  # set for make-checkpoint weights (not trained)
    preprocessing_from: str = "timm pretrained_cfg"  # or config.json, or the user's overrides
    labels: tuple[str, ...] | None = None  # label names the checkpoint came with (config.json)
    snapshot: str | None = None  # the snapshot folder or hf-hub id read

    @property
    def params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def summary(self) -> ModelSummary:
        """What the report says about the model (report.json's `model`)."""
        return ModelSummary(
            arch=self.arch,
            family=self.family,
            checkpoint=self.checkpoint.name,
            sha256=self.sha256,
            source_layout=self.source_layout,
            fused_on_load=self.fused_on_load,
            wrapper=self.wrapper,
            arch_from=self.arch_from,
            params=self.params,
            num_classes=self.num_classes,
            input_size=tuple(self.preprocessing.input_size),
            preprocessing=self.preprocessing.as_dict(),
            preprocessing_from=self.preprocessing_from,
            snapshot=self.snapshot,
            weights=(
                f"synthetic: effconvert make-checkpoint (seed {self.synthetic.get('seed')}), not a trained model"
                if self.synthetic
                else "user checkpoint"
            ),
            synthetic=self.synthetic is not None,
        )


@dataclass(frozen=True)
class ModelSummary:
    arch: str
    family: str
    checkpoint: str  # the file's name
    sha256: str
    source_layout: str
    fused_on_load: bool
    wrapper: str
    arch_from: str
    params: int
    num_classes: int
    input_size: tuple[int, ...]
    preprocessing: Mapping[str, Any]
    preprocessing_from: str
    weights: str  # "user checkpoint", or what made the synthetic weights
    snapshot: str | None = None
    synthetic: bool = False  # make-checkpoint weights: task metrics of their head mean little

    def to_json(self) -> dict[str, Any]:
        body = {k: v for k, v in vars(self).items() if k not in ("snapshot", "synthetic")}
        body["input_size"] = list(self.input_size)
        body["preprocessing"] = dict(self.preprocessing)
        return {**body, **({"snapshot": self.snapshot} if self.snapshot else {})}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ModelSummary:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(
            **{
                **known,
                "input_size": tuple(data["input_size"]),
                "synthetic": str(data.get("weights", "")).startswith("synthetic"),
            }
        )
