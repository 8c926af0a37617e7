"""EfficientViT checkpoint layouts: Microsoft's M-series (microsoft/Cream) and MIT's B-series
(mit-han-lab/efficientvit). Two unrelated architectures that share a name; two families here.

Cream M0-M5 (`{'model': ...}`): stages are `blocks1..3`; in stages 2 and 3 the first three
entries are the downsample (residual dw+FFN, PatchMerging, residual dw+FFN), which timm nests as
`stages.S.downsample.{res1,patchmerge,res2}` before `stages.S.blocks`. Conv+BN leaves are `c`/`bn`
(timm `conv`/`bn`), the classifier is BN+Linear `head.{bn,l}` (timm `head.{bn,linear}`), patch
embedding `patch_embed.{0,2,4,6}` (timm `patch_embed.conv1..4`). `attention_bias_idxs` are saved
by the authors and rebuilt by timm (identical values). timm's own remap for these is commented out.

MIT B0-B3 (`{'state_dict': ...}`): `backbone.input_stem.op_list.N`, `backbone.stages.S.op_list.N`
and `head.op_list.N` become timm's `stem.{in_conv,resK}`, `stages.S.blocks.N` and
`head.{in_conv,classifier.*}`; every leaf keeps its name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from .family import Family, Layout, StateDict, identity, never_fused, register_family
from .rename import Pair, remaps, rename_state, rules, shift

M_VARIANTS = tuple(f"efficientvit_m{i}" for i in range(6))
B_VARIANTS = tuple(f"efficientvit_b{i}" for i in range(4))

_DOWNSAMPLE_PARTS = ("res1", "patchmerge", "res2")


# ---- Cream (M-series) ------------------------------------------------------------------------


def _cream_block(m: re.Match) -> str:
    stage, index = int(m[1]) - 1, int(m[2])
    if stage == 0:
        return f"stages.0.blocks.{index}."
    if index < len(_DOWNSAMPLE_PARTS):
        return f"stages.{stage}.downsample.{_DOWNSAMPLE_PARTS[index]}."
    return f"stages.{stage}.blocks.{index - len(_DOWNSAMPLE_PARTS)}."


def _timm_block(m: re.Match) -> str:
    stage, index = int(m[1]), int(m[2])
    offset = 0 if stage == 0 else len(_DOWNSAMPLE_PARTS)
    return f"blocks{stage + 1}.{index + offset}."


# Written once per direction: Cream's `blocks{s}.{i}` is a downsample part for the first few i of
# a stage and a block after them, so the way back is two rules into one (not a Pair table).
_CREAM_TO_TIMM = rules(
    [
        (r"^patch_embed\.(\d+)\.", lambda m: f"patch_embed.conv{int(m[1]) // 2 + 1}."),
        (r"^blocks(\d)\.(\d+)\.", _cream_block),
        (r"\.c\.(weight|bias)$", r".conv.\1"),
        (r"^(head|head_dist)\.l\.", r"\1.linear."),
    ]
)

_TIMM_TO_CREAM = rules(
    [
        (r"^patch_embed\.conv(\d)\.", lambda m: f"patch_embed.{2 * (int(m[1]) - 1)}."),
        (r"^stages\.(\d+)\.blocks\.(\d+)\.", _timm_block),
        (
            r"^stages\.(\d+)\.downsample\.(res1|patchmerge|res2)\.",
            lambda m: f"blocks{int(m[1]) + 1}.{_DOWNSAMPLE_PARTS.index(m[2])}.",
        ),
        (r"\.conv\.(weight|bias)$", r".c.\1"),
        (r"^(head|head_dist)\.linear\.", r"\1.l."),
    ]
)


def cream_to_timm(state: StateDict) -> StateDict:
    return rename_state(state, _CREAM_TO_TIMM, drop=lambda k: k.endswith("attention_bias_idxs"))


def timm_to_cream(state: StateDict) -> StateDict:
    return rename_state(state, _TIMM_TO_CREAM)


# ---- MIT (B-series) --------------------------------------------------------------------------

mit_to_timm, timm_to_mit = remaps(
    [
        Pair("^backbone.input_stem.op_list.0.", "^stem.in_conv."),
        Pair("^backbone.input_stem.op_list.{i}.", "^stem.res{i}.", **shift("i", -1)),
        Pair("^backbone.stages.{s}.op_list.{b}.", "^stages.{s}.blocks.{b}."),
        Pair("^head.op_list.0.", "^head.in_conv."),
        Pair("^head.op_list.2.linear.", "^head.classifier.0."),
        Pair("^head.op_list.2.norm.", "^head.classifier.1."),
        Pair("^head.op_list.3.linear.", "^head.classifier.4."),
    ]
)


# ---- detection -------------------------------------------------------------------------------


def _is_cream(state: Mapping[str, torch.Tensor]) -> bool:
    return "patch_embed.0.c.weight" in state and any(k.startswith("blocks1.") for k in state)


def _is_timm_m(state: Mapping[str, torch.Tensor]) -> bool:
    return "patch_embed.conv1.conv.weight" in state and any(".mixer.m.attn." in k for k in state)


def _is_mit(state: Mapping[str, torch.Tensor]) -> bool:
    return "backbone.input_stem.op_list.0.conv.weight" in state


def _is_timm_b(state: Mapping[str, torch.Tensor]) -> bool:
    return "stem.in_conv.conv.weight" in state and "head.in_conv.conv.weight" in state


EFFICIENTVIT_M = register_family(
    Family(
        name="efficientvit-m",
        variants=M_VARIANTS,
        layouts=(
            Layout("timm", "timm", False, _is_timm_m, identity, identity),
            Layout(
                "cream",
                "microsoft-cream-efficientvit",
                False,
                _is_cream,
                cream_to_timm,
                timm_to_cream,
                needs_buffers=True,
            ),
        ),
        is_fused=never_fused,
        classifier="head.linear",
    )
)

EFFICIENTVIT_B = register_family(
    Family(
        name="efficientvit-b",
        variants=B_VARIANTS,
        layouts=(
            Layout("timm", "timm", False, _is_timm_b, identity, identity),
            Layout("mit", "mit-han-lab-efficientvit", False, _is_mit, mit_to_timm, timm_to_mit),
        ),
        is_fused=never_fused,
        classifier="head.classifier.4",
        # LiteMLA's linear attention: k^T v sums over all tokens reach ~2.5e5 (fp16 max 65504) and are
        # then sliced into numerator/denominator and divided; in fp16 that is inf/inf (measured on b0:
        # 23.7 dB, top-1 0.81 -> 58.6 dB, 1.000 with these kept in fp32).
        coreml_fp32_ops=("matmul", "slice_by_index", "add", "real_div"),
    )
)
