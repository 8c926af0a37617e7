"""Architecture inference: which variant's parameter shapes does a (timm-keyed) state dict match?

Each candidate is built on the meta device (no memory, no init cost) with the checkpoint's class
count, and its {name: shape} signature compared with the checkpoint's. Exact matches win; the file
name only breaks ties. Comparing every shape, not a few hand-picked keys, means a depth, width,
attention-stage or MLP-ratio difference can never be mistaken for another variant.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch.overrides import TorchFunctionMode

from .family import Family, build_timm

Signature = dict[str, tuple[int, ...]]


@dataclass(frozen=True)
class Mismatch:
    arch: str
    missing: tuple[str, ...]  # in the model, not in the checkpoint
    unexpected: tuple[str, ...]  # in the checkpoint, not in the model
    wrong_shape: tuple[str, ...]  # "key: checkpoint (a, b) vs model (c, d)"

    @property
    def count(self) -> int:
        return len(self.missing) + len(self.unexpected) + len(self.wrong_shape)

    def describe(self, examples: int = 3) -> str:
        parts = []
        for label, keys in (
            ("missing", self.missing),
            ("unexpected", self.unexpected),
            ("wrong shape", self.wrong_shape),
        ):
            if keys:
                shown = ", ".join(keys[:examples]) + (", ..." if len(keys) > examples else "")
                parts.append(f"{len(keys)} {label} (e.g. {shown})")
        return "; ".join(parts) or "none"


class _SkipInitOnMeta(TorchFunctionMode):
    """In-place ops on meta tensors return their input untouched. Weight init (trunc_normal_ is
    uniform_, erfinv_, mul_, add_, clamp_) has no values to change on the meta device, yet runs
    through torch's Python reference implementations there: 2 of the 3 s it took to build the ten
    FastViT candidates. Shapes, the only thing a signature reads, are unchanged."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if (
            name.endswith("_")
            and not name.endswith("__")
            and args
            and isinstance(args[0], torch.Tensor)
            and args[0].is_meta
        ):
            return args[0]
        return func(*args, **(kwargs or {}))


@functools.cache
def signature(family: Family, arch: str, num_classes: int, fused: bool, image_size: int | None = None) -> Signature:
    with torch.device("meta"), _SkipInitOnMeta():
        model = build_timm(family, arch, num_classes=num_classes, fused=fused, image_size=image_size)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def compare(arch: str, expected: Signature, state: Mapping[str, torch.Tensor]) -> Mismatch:
    missing = tuple(k for k in expected if k not in state)
    unexpected = tuple(k for k in state if k not in expected)
    wrong = tuple(
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {expected[k]}"
        for k in expected
        if k in state and tuple(state[k].shape) != expected[k]
    )
    return Mismatch(arch, missing, unexpected, wrong)


def rank_candidates(
    family: Family,
    state: Mapping[str, torch.Tensor],
    *,
    num_classes: int,
    fused: bool,
    candidates: Sequence[str] | None = None,
    image_size: int | None = None,
) -> list[Mismatch]:
    """Every candidate with its mismatch against the checkpoint, best first."""
    size = image_size if family.input_sized else None  # keeps one cache entry otherwise
    results = [
        compare(arch, signature(family, arch, num_classes, fused, size), state)
        for arch in (candidates or family.variants)
    ]
    return sorted(results, key=lambda m: m.count)


def name_hint(filename: str, variants: Sequence[str]) -> list[str]:
    """Variants named in the file name, longest name first (fastvit_sa12 before fastvit_s12...)."""
    stem = filename.lower().replace("-", "_")
    return sorted((v for v in variants if v in stem), key=len, reverse=True)
