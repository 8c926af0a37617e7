"""What the loader knows about a model family: its variants and the checkpoint layouts it reads.

A family module (fastvit.py, ...) builds one `Family` row and registers it; the loader only reads
this table, so adding a family never touches the loading logic.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from ..targets import ORIGINAL_LAYOUT

StateDict = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Layout:
    """One way a family's checkpoints are written (timm's, or the original authors')."""

    name: str  # CLI name: timm, apple, apple-fused, ...
    label: str  # reported as model.source_layout
    fused: bool | None  # None: either form (decided by the keys)
    matches: Callable[[Mapping[str, torch.Tensor]], bool]
    to_timm: Callable[[StateDict], StateDict]
    from_timm: Callable[[StateDict], StateDict]
    # from_timm also wants timm's non-persistent buffers (e.g. attention_bias_idxs that the
    # authors saved but timm rebuilds), so make-checkpoint can write the authors' exact key set.
    needs_buffers: bool = False


@dataclass(frozen=True, eq=False)  # identity-hashed: a registry row, cached by identity
class Family:
    name: str
    variants: tuple[str, ...]  # timm model names
    layouts: tuple[Layout, ...]  # tried in order; the first that matches wins
    is_fused: Callable[[Mapping[str, torch.Tensor]], bool]  # on timm keys
    fused_build_kwargs: Mapping[str, object] = field(default_factory=dict)
    # No deploy-form constructor (timm's ByobNet): build the training form, then reparameterize.
    reparameterize_to_build: bool = False
    # Prefixes under which the image model sits inside a larger checkpoint (e.g. MobileCLIP).
    embedded_prefixes: tuple[str, ...] = ()
    classifier: str = "head.fc"  # timm name of the final Linear
    # MIL op types a Core ML fp16 program must keep in fp32 for this family (fp32 islands).
    coreml_fp32_ops: tuple[str, ...] = ()
    # timm sizes some parameters by the input (EfficientFormerV2's attention biases, via
    # `img_size`): such a model must be built for the checkpoint's image size, not the default.
    input_sized: bool = False

    @property
    def original(self) -> Layout:
        """The original authors' released layout (unfused): what `--layout original` names."""
        return next(layout for layout in self.layouts if layout.name != "timm" and not layout.fused)

    def layout(self, name: str) -> Layout:
        if name == ORIGINAL_LAYOUT:
            return self.original
        for layout in self.layouts:
            if layout.name == name:
                return layout
        names = ", ".join(known.name for known in self.layouts)
        raise KeyError(f"{self.name} has no layout {name!r} (choose from: {ORIGINAL_LAYOUT}, {names})")


def identity(state: StateDict) -> StateDict:
    """The remap of a layout that is already timm's."""
    return dict(state)


def never_fused(state: Mapping[str, torch.Tensor]) -> bool:
    """Families without a reparameterized release (their conv+BN folding happens in fuse/)."""
    return False


FAMILIES: dict[str, Family] = {}


def register_family(family: Family) -> Family:
    if family.name in FAMILIES:
        raise KeyError(f"family {family.name!r} is already registered")
    clash = {v for f in FAMILIES.values() for v in f.variants} & set(family.variants)
    if clash:
        raise KeyError(f"variants already registered by another family: {sorted(clash)}")
    FAMILIES[family.name] = family
    return family


def family_of_arch(arch: str) -> Family | None:
    for family in FAMILIES.values():
        if arch in family.variants:
            return family
    return None


def all_variants() -> list[str]:
    return [v for f in FAMILIES.values() for v in f.variants]


def build_timm(
    family: Family, arch: str, *, num_classes: int = 1000, fused: bool = False, image_size: int | None = None
) -> torch.nn.Module:
    """timm's model for `arch`, in deploy form when `fused` (works on the meta device too).
    `image_size` matters only to input-sized families; None means timm's default."""
    import timm

    kwargs: dict[str, Any] = dict(family.fused_build_kwargs) if fused else {}
    if family.input_sized and image_size is not None:
        kwargs["img_size"] = image_size
    model = timm.create_model(arch, pretrained=False, num_classes=num_classes, **kwargs)
    if fused and family.reparameterize_to_build:
        from .reparameterize import reparameterize

        with torch.no_grad():
            model = reparameterize(model.eval(), inplace=True)
    return model
