"""load: a checkpoint file becomes a timm model plus what we know about it.

read (safe) -> unwrap -> detect family & layout -> remap to timm keys -> infer arch
-> build timm model (deploy form if the file is reparameterized) -> strict load
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import BadInput

# Importing a family module registers it in FAMILIES.
from . import efficientformer as _efficientformer  # noqa: F401 - imported to register the family
from . import efficientvit as _efficientvit  # noqa: F401 - imported to register the family
from . import fastvit as _fastvit  # noqa: F401 - imported to register the family
from . import metadata, snapshot
from . import mobileone as _mobileone  # noqa: F401 - imported to register the family
from .family import FAMILIES, Family, Layout, StateDict, all_variants, build_timm, family_of_arch
from .infer import compare, name_hint, rank_candidates
from .metadata import CheckpointMetadata, image_size_value
from .model import LoadedModel
from .preprocessing import Preprocessing
from .read import RawCheckpoint, read_checkpoint
from .sizes import check_input_size
from .unwrap import Unwrapped, unwrap

__all__ = [
    "FAMILIES",
    "LoadedModel",
    "Preprocessing",
    "all_variants",
    "build_model",
    "family_of_arch",
    "load_checkpoint",
]


def load_checkpoint(path: Path | str, *, arch: str | None = None, image_size: int | None = None) -> LoadedModel:
    """`path`: a checkpoint file, a Hugging Face / timm snapshot folder, or `hf-hub:ORG/NAME` (local
    cache only). A snapshot's config.json supplies the architecture, preprocessing and label names."""
    config = None
    if snapshot.is_snapshot(path):
        weights, config = snapshot.resolve(path)
    else:
        weights = Path(path)
    raw = read_checkpoint(weights)
    family, layout, unwrapped = _detect(raw)
    state = layout.to_timm(unwrapped.state)
    _check_finite(state)
    fused = family.is_fused(state)
    num_classes = _num_classes(family, state)
    if config is not None:
        _agrees_with_weights(config, num_classes)
    meta = _metadata(raw, unwrapped)
    image_size = image_size_value(image_size)
    if image_size is None:
        image_size = meta.image_size  # e.g. the 64x64 digits model
    if (
        image_size is None
        and config is not None
        and config.input_size is not None
        and config.input_size[1] == config.input_size[2]
    ):
        image_size = config.input_size[1]
    requested, requested_from = arch, "--arch"
    if requested is None and config is not None and config.architecture:
        requested, requested_from = config.architecture.split(".")[0], "config.json"
    if image_size is not None:
        check_input_size(family, requested if requested in family.variants else family.variants[0], image_size)
    arch, arch_from = _choose_arch(
        family,
        state,
        raw.path.name,
        num_classes=num_classes,
        fused=fused,
        requested=requested,
        image_size=image_size,
        requested_from=requested_from,
    )
    model = build_model(arch, num_classes=num_classes, fused=fused, image_size=image_size)
    _load_strict(model, state, arch)
    label = layout.label if layout.fused is not None or not fused else f"{layout.label}-reparam"
    preprocessing, preprocessing_from = Preprocessing.from_timm(arch, image_size=image_size), "timm pretrained_cfg"
    if config is not None and any(
        v is not None for v in (config.mean, config.std, config.crop_pct, config.interpolation)
    ):
        preprocessing, preprocessing_from = (
            preprocessing.with_overrides(
                mean=config.mean, std=config.std, crop_pct=config.crop_pct, interpolation=config.interpolation
            ),
            "config.json pretrained_cfg",
        )
    labels = config.label_names if config is not None and config.label_names else None
    return LoadedModel(
        model=model,
        arch=arch,
        family=family.name,
        checkpoint=raw.path,
        sha256=raw.sha256,
        source_layout=label,
        fused_on_load=fused,
        num_classes=num_classes,
        preprocessing=preprocessing,
        preprocessing_from=preprocessing_from,
        labels=labels,
        wrapper=unwrapped.wrapper,
        arch_from=arch_from,
        synthetic=meta.as_dict() if meta.synthetic else None,
        snapshot=config.source if config is not None else None,
    )


def build_model(
    arch: str, *, num_classes: int = 1000, fused: bool = False, image_size: int | None = None
) -> torch.nn.Module:
    family = family_of_arch(arch)
    if family is None:
        raise BadInput(f"unknown architecture {arch!r}", hint=f"supported: {', '.join(all_variants())}")
    return build_timm(family, arch, num_classes=num_classes, fused=fused, image_size=image_size).eval()


def _detect(raw: RawCheckpoint) -> tuple[Family, Layout, Unwrapped]:
    for family in FAMILIES.values():
        unwrapped = unwrap(raw.content, embedded_prefixes=family.embedded_prefixes)
        for layout in family.layouts:
            if layout.matches(unwrapped.state):
                return family, layout, unwrapped
    unwrapped = unwrap(raw.content)
    example = ", ".join(list(unwrapped.state)[:3])
    known = "; ".join(f"{f.name} ({', '.join(layout.label for layout in f.layouts)})" for f in FAMILIES.values())
    raise BadInput(
        f"{raw.path.name}: no supported model layout recognised (keys like {example})",
        hint=f"supported families and layouts: {known}",
    )


def _check_finite(state: StateDict) -> None:
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise BadInput(
            f"checkpoint has NaN/Inf values in {len(bad)} tensors (e.g. {bad[0]})",
            hint="the training run diverged or the file is damaged",
        )


def _agrees_with_weights(config: snapshot.SnapshotConfig, num_classes: int) -> None:
    """config.json describes the weights beside it: a class count or label list that contradicts
    them is a mix-up of files, refused rather than silently dropped."""
    if config.num_classes is not None and config.num_classes != num_classes:
        raise BadInput(
            f"{snapshot.CONFIG_FILE} num_classes {config.num_classes} contradicts the weights "
            f"(their classifier has {num_classes} classes)",
            hint="the config and the weights come from different models",
        )
    if config.label_names and len(config.label_names) != num_classes:
        raise BadInput(
            f"{snapshot.CONFIG_FILE} label_names has {len(config.label_names)} names, "
            f"the weights have {num_classes} classes",
            hint="fix label_names, or pass --labels FILE with one name per class",
        )


def _num_classes(family: Family, state: StateDict) -> int:
    weight = state.get(f"{family.classifier}.weight")
    return int(weight.shape[0]) if weight is not None else 0


def _choose_arch(
    family: Family,
    state: StateDict,
    filename: str,
    *,
    num_classes: int,
    fused: bool,
    requested: str | None,
    image_size: int | None = None,
    requested_from: str = "--arch",
) -> tuple[str, str]:
    if requested is not None:
        said = f"--arch {requested}" if requested_from == "--arch" else f"{requested_from} architecture {requested}"
        if requested not in family.variants:
            other = family_of_arch(requested)
            where = f"a {other.name} architecture" if other else "not a supported architecture"
            raise BadInput(
                f"{said} is {where}, but the checkpoint is {family.name}",
                hint=f"{family.name} variants: {', '.join(family.variants)}",
            )
        mismatch = rank_candidates(
            family, state, num_classes=num_classes, fused=fused, candidates=[requested], image_size=image_size
        )[0]
        if mismatch.count:
            raise BadInput(
                f"checkpoint does not fit {said}: {mismatch.describe()}",
                hint=_best_guess_hint(family, state, num_classes, fused, image_size),
            )
        return requested, requested_from
    ranked = rank_candidates(family, state, num_classes=num_classes, fused=fused, image_size=image_size)
    exact = [m.arch for m in ranked if m.count == 0]
    if len(exact) == 1:
        return exact[0], "keys"
    if len(exact) > 1:
        hinted = [a for a in name_hint(filename, exact)]
        if hinted:
            return hinted[0], "keys+filename"
        raise BadInput(f"checkpoint matches several architectures: {', '.join(exact)}", hint="choose one with --arch")
    closest = ranked[:3]
    listing = "; ".join(f"{m.arch}: {m.count} differences" for m in closest)
    raise BadInput(
        f"no {family.name} variant matches this checkpoint (closest: {closest[0].arch}: {closest[0].describe()})",
        hint=_input_size_hint(family, closest[0])
        or f"closest variants: {listing}; the weights are of an architecture effconvert does not support",
    )


def _best_guess_hint(family: Family, state: StateDict, num_classes: int, fused: bool, image_size: int | None) -> str:
    ranked = rank_candidates(family, state, num_classes=num_classes, fused=fused, image_size=image_size)
    exact = [m.arch for m in ranked if m.count == 0]
    if exact:
        return f"the keys match {', '.join(exact)}"
    return _input_size_hint(family, ranked[0]) or f"closest: {', '.join(m.arch for m in ranked[:3])}"


def _input_size_hint(family: Family, closest) -> str | None:
    """Only attention biases differ: the model was trained at another input size (the size cannot
    be read back from the shapes: any size that rounds to the same token grid fits)."""
    if (
        family.input_sized
        and closest.wrong_shape
        and not (closest.missing or closest.unexpected)
        and all("attention_biases" in k for k in closest.wrong_shape)
    ):
        return (
            f"{closest.arch}'s attention biases are sized by the input: pass the training resolution with --image-size"
        )
    return None


def _load_strict(model: torch.nn.Module, state: StateDict, arch: str) -> None:
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    mismatch = compare(arch, expected, state)
    if mismatch.count:
        raise BadInput(f"checkpoint does not load strictly into {arch}: {mismatch.describe()}")
    model.load_state_dict(state, strict=True)
    model.float().eval()


def _metadata(raw: RawCheckpoint, unwrapped: Unwrapped) -> CheckpointMetadata:
    if raw.file_metadata:
        return metadata.from_safetensors(raw.file_metadata)
    return metadata.from_pickle(unwrapped.extras.get("effconvert"))
