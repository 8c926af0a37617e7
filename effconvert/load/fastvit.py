"""FastViT (apple/ml-fastvit, and MobileCLIP's MCi image towers) checkpoint layouts.

Apple's release stores the network as one flat list, `network.N`: for each stage its downsample
(`PatchEmbed`, keys `.proj`), its conditional positional encoding (`RepCPE`, `.pe` or, once
reparameterized, `.reparam_conv`), then its blocks. timm nests the same modules as
`stages.S.{downsample,pos_emb,blocks}`. Leaf names differ too (table below). timm's own
`checkpoint_filter_fn` maps unfused Apple checkpoints only; the reparameterized ones
(`*_reparam.pth.tar`: `reparam_conv`, `lkb_reparam`) are mapped here onto timm's deploy form
(`inference_mode=True`), and every map runs in both directions so make-checkpoint can write the
authors' layouts. Cross-checked against timm's filter in tests/test_load_fastvit.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from .family import Family, Layout, StateDict, identity, register_family

VARIANTS = (
    "fastvit_t8",
    "fastvit_t12",
    "fastvit_s12",
    "fastvit_sa12",
    "fastvit_sa24",
    "fastvit_sa36",
    "fastvit_ma36",
    "fastvit_mci0",
    "fastvit_mci1",
    "fastvit_mci2",
)

# (apple, timm) names of one dotted path segment, wherever it occurs.
_SEGMENT_RENAMES = (
    ("rbr_conv", "conv_kxk"),
    ("rbr_scale", "conv_scale"),
    ("rbr_skip", "identity"),
    ("lkb_origin", "large_conv"),
    ("convffn", "mlp"),
)
_APPLE_TO_TIMM_SEGMENT = dict(_SEGMENT_RENAMES)
_TIMM_TO_APPLE_SEGMENT = {t: a for a, t in _SEGMENT_RENAMES}
_LAYER_SCALE = re.compile(r"^layer_scale(_\d)?$")


# ---- apple -> timm ---------------------------------------------------------------------------


def apple_to_timm(state: StateDict) -> StateDict:
    stage_of = _stage_index_of_network_items(state)
    out: StateDict = {}
    for key, value in state.items():
        out[_apple_key_to_timm(key, stage_of)] = value
    return out


def _stage_index_of_network_items(state: Mapping[str, torch.Tensor]) -> dict[int, int]:
    """network.N -> timm stage: a downsample (`network.N.proj`) opens the next stage."""
    items = sorted({int(m.group(1)) for k in state if (m := re.match(r"network\.(\d+)\.", k))})
    downsamples = {int(m.group(1)) for k in state if (m := re.match(r"network\.(\d+)\.proj\.", k))}
    stage, stage_of = 0, {}
    for n in items:
        if n in downsamples:
            stage += 1
        stage_of[n] = stage
    return stage_of


def _apple_key_to_timm(key: str, stage_of: Mapping[int, int]) -> str:
    parts = key.split(".")
    if parts[0] == "patch_embed":
        parts[0] = "stem"
    elif parts[0] == "conv_exp":
        parts[0] = "final_conv"
    elif parts[0] == "head":  # nn.Linear directly -> ClassifierHead.fc
        parts = ["head", "fc", *parts[1:]]
    elif parts[0] == "network":
        n, rest = int(parts[1]), parts[2:]
        stage = f"stages.{stage_of[n]}"
        if rest[0] == "proj":
            parts = [stage, "downsample", *rest]
        elif rest[0] == "pe":
            parts = [stage, "pos_emb", "pos_enc", *rest[1:]]
        elif rest[0] == "reparam_conv":  # reparameterized RepCPE
            parts = [stage, "pos_emb", *rest]
        else:
            parts = [stage, "blocks", *rest]
    parts = [_APPLE_TO_TIMM_SEGMENT.get(p, p) for p in parts]
    parts = _rename_se(parts, {"reduce": "fc1", "expand": "fc2"})
    parts = ["reparam_conv" if p == "lkb_reparam" else p for p in parts]
    if _LAYER_SCALE.match(parts[-1]):
        parts.append("gamma")
    return ".".join(parts)


# ---- timm -> apple ---------------------------------------------------------------------------


def timm_to_apple(state: StateDict) -> StateDict:
    network_index = _network_index_of_stage_items(state)
    return {_timm_key_to_apple(k, network_index): v for k, v in state.items()}


def _network_index_of_stage_items(state: Mapping[str, torch.Tensor]) -> dict[tuple[int, str], int]:
    """(stage, part) -> N, in Apple's order: each stage's downsample, pos_emb, then blocks."""
    present = {
        (int(m.group(1)), m.group(2))
        for k in state
        if (m := re.match(r"stages\.(\d+)\.(downsample|pos_emb|blocks)\.", k))
    }
    index, n = {}, 0
    for stage in sorted({s for s, _ in present}):
        for part in ("downsample", "pos_emb", "blocks"):
            if (stage, part) in present:
                index[(stage, part)] = n
                n += 1
    return index


def _timm_key_to_apple(key: str, network_index: Mapping[tuple[int, str], int]) -> str:
    parts = key.split(".")
    in_large_kernel = False
    if parts[0] == "stem":
        parts[0] = "patch_embed"
    elif parts[0] == "final_conv":
        parts[0] = "conv_exp"
    elif parts[:2] == ["head", "fc"]:
        parts = ["head", *parts[2:]]
    elif parts[0] == "stages":
        stage, part, rest = int(parts[1]), parts[2], parts[3:]
        n = str(network_index[(stage, part)])
        if part == "downsample":  # rest: proj.0 (large kernel) / proj.1
            in_large_kernel = rest[:2] == ["proj", "0"]
            parts = ["network", n, *rest]
        elif part == "pos_emb":  # rest: pos_enc.* or reparam_conv.*
            parts = ["network", n] + (["pe", *rest[1:]] if rest[0] == "pos_enc" else rest)
        else:
            parts = ["network", n, *rest]
    if parts[-1] == "gamma" and _LAYER_SCALE.match(parts[-2]):
        parts = parts[:-1]
    parts = [_TIMM_TO_APPLE_SEGMENT.get(p, p) for p in parts]
    parts = _rename_se(parts, {"fc1": "reduce", "fc2": "expand"})
    if in_large_kernel:
        parts = ["lkb_reparam" if p == "reparam_conv" else p for p in parts]
    return ".".join(parts)


def _rename_se(parts: list[str], names: Mapping[str, str]) -> list[str]:
    return [names.get(p, p) if i > 0 and parts[i - 1] == "se" else p for i, p in enumerate(parts)]


# ---- detection -------------------------------------------------------------------------------


def _is_apple(state: Mapping[str, torch.Tensor]) -> bool:
    # EfficientFormer's authors also write `patch_embed.` + `network.`; FastViT's stem is MobileOne.
    stem = any(k.startswith(("patch_embed.0.rbr_", "patch_embed.0.reparam_conv.")) for k in state)
    return stem and any(k.startswith("network.") for k in state)


def _is_apple_fused(state: Mapping[str, torch.Tensor]) -> bool:
    return _is_apple(state) and any(k.startswith("patch_embed.0.reparam_conv.") for k in state)


def _is_timm(state: Mapping[str, torch.Tensor]) -> bool:
    return any(k.startswith("stem.0.") for k in state) and any(k.startswith("stages.") for k in state)


def is_fused(state: Mapping[str, torch.Tensor]) -> bool:
    """On timm keys: the deploy form has `reparam_conv` where the training form has branches."""
    return any(k.startswith("stem.0.reparam_conv.") for k in state)


FASTVIT = register_family(
    Family(
        name="fastvit",
        variants=VARIANTS,
        layouts=(
            Layout("timm", "timm", None, _is_timm, identity, identity),
            Layout("apple-fused", "apple-ml-fastvit-reparam", True, _is_apple_fused, apple_to_timm, timm_to_apple),
            Layout("apple", "apple-ml-fastvit", False, _is_apple, apple_to_timm, timm_to_apple),
        ),
        is_fused=is_fused,
        fused_build_kwargs={"inference_mode": True},
        embedded_prefixes=("image_encoder.model.", "module.visual.trunk."),
    )
)
