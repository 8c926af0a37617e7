"""`effconvert make-checkpoint`: a deterministic checkpoint in timm's or the authors' layout."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import timm
import torch

from ..atomic import atomic_path
from ..errors import BadInput
from ..load import Preprocessing, all_variants, family_of_arch
from ..load.family import Family
from ..load.reparameterize import reparameterize
from .weights import WeightStats, make_realistic


@dataclass(frozen=True)
class MadeCheckpoint:
    path: Path
    arch: str
    layout: str
    seed: int
    stats: WeightStats


def layouts_of(arch: str) -> list[str]:
    return [layout.name for layout in _family(arch).layouts]


def make_checkpoint(arch: str, out: Path, *, layout: str = "timm", seed: int = 0) -> MadeCheckpoint:
    family = _family(arch)
    try:
        target = family.layout(layout)
    except KeyError as exc:
        raise BadInput(str(exc.args[0])) from None
    model, stats = realistic_model(arch, seed=seed)
    if target.fused:
        model = reparameterize(model)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if target.needs_buffers:
        state.update({k: v.clone() for k, v in model.named_buffers() if k not in state})
    state = target.from_timm(state)
    info = {
        "synthetic": True,
        "arch": arch,
        "seed": seed,
        "layout": target.name,
        "note": "effconvert make-checkpoint: not a trained model",
    }
    write_state(Path(out), state, info)
    return MadeCheckpoint(Path(out), arch, target.name, seed, stats)


def realistic_model(arch: str, *, seed: int = 0) -> tuple[torch.nn.Module, WeightStats]:
    torch.manual_seed(seed)
    model = timm.create_model(arch, pretrained=False)
    stats = make_realistic(model, Preprocessing.from_timm(arch), seed=seed)
    return model.eval(), stats


def write_state(out: Path, state: dict[str, torch.Tensor], info: dict) -> None:
    """Write atomically; `.safetensors` carries `info` as string metadata, pickles as a plain dict."""
    with atomic_path(out) as tmp:
        if out.name.endswith(".safetensors"):
            from safetensors.torch import save_file

            meta = {f"effconvert.{k}": str(v).lower() if isinstance(v, bool) else str(v) for k, v in info.items()}
            save_file({k: v.contiguous() for k, v in state.items()}, str(tmp), metadata=meta)
        else:
            torch.save({"state_dict": state, "effconvert": info}, tmp)


def _family(arch: str) -> Family:
    family = family_of_arch(arch)
    if family is None:
        raise BadInput(f"unknown architecture {arch!r}", hint=f"supported: {', '.join(all_variants())}")
    return family
