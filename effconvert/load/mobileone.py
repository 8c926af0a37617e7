"""MobileOne S0-S4 (apple/ml-mobileone) checkpoint layouts, unfused and reparameterized.

The authors name the stages `stage0` (stem) .. `stage4` and the classifier `linear`; timm's
ByobNet names them `stem`, `stages.0..3`, `head.fc`. Branch names are FastViT's (`rbr_conv`,
`rbr_scale`, `rbr_skip` -> `conv_kxk`, `conv_scale`, `identity`), the S4 squeeze-excite is
`se.{reduce,expand}` (timm `attn.{fc1,fc2}`). Reparameterized files (`*_unfused` vs the default
release) hold one `reparam_conv` per block under the same names in both layouts.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from .family import Family, Layout, identity, register_family
from .rename import Pair, remaps, shift

VARIANTS = tuple(f"mobileone_s{i}" for i in range(5))

apple_to_timm, timm_to_apple = remaps(
    [
        Pair("^stage0.", "^stem."),
        Pair("^stage{i}.", "^stages.{i}.", **shift("i", -1)),
        Pair(".rbr_conv.", ".conv_kxk."),
        Pair(".rbr_scale.", ".conv_scale."),
        Pair(".rbr_skip.", ".identity."),
        Pair(".se.reduce.", ".attn.fc1."),
        Pair(".se.expand.", ".attn.fc2."),
        Pair("^linear.", "^head.fc."),
    ]
)


def _is_apple(state: Mapping[str, torch.Tensor]) -> bool:
    return any(k.startswith("stage0.") for k in state) and "linear.weight" in state


def _is_apple_fused(state: Mapping[str, torch.Tensor]) -> bool:
    return _is_apple(state) and "stage0.reparam_conv.weight" in state


def _is_timm(state: Mapping[str, torch.Tensor]) -> bool:
    return any(k.startswith(("stem.conv_kxk.", "stem.reparam_conv.")) for k in state) and "head.fc.weight" in state


def is_fused(state: Mapping[str, torch.Tensor]) -> bool:
    return "stem.reparam_conv.weight" in state


MOBILEONE = register_family(
    Family(
        name="mobileone",
        variants=VARIANTS,
        layouts=(
            Layout("timm", "timm", None, _is_timm, identity, identity),
            Layout("apple-fused", "apple-ml-mobileone-reparam", True, _is_apple_fused, apple_to_timm, timm_to_apple),
            Layout("apple", "apple-ml-mobileone", False, _is_apple, apple_to_timm, timm_to_apple),
        ),
        is_fused=is_fused,
        reparameterize_to_build=True,
    )
)
