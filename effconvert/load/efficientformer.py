"""EfficientFormer V1 and V2 (snap-research/EfficientFormer) checkpoint layouts.

The authors store each network as one flat list, `network.N`: even N are a stage's blocks, odd N
the downsampling embedding that opens the next stage; timm nests them as
`stages.S.{downsample,blocks}`. V1's remap matches timm's `checkpoint_filter_fn` (cross-checked in
tests); V2 has none in timm, so here is one. V2's leaves differ as well: the authors' conv and BN
are siblings (`mlp.fc1` + `mlp.norm1`, `q.0` + `q.1`), timm wraps them as `ConvNorm`
(`mlp.fc1.conv` + `mlp.fc1.bn`); the authors' layer scales are (C, 1, 1), timm's (C,); their
`attention_bias_idxs` are saved, timm rebuilds them (non-persistent, identical values).
Released checkpoints are distilled (`dist_head`); timm evaluates such a model as the mean of
`head` and `head_dist`, as the authors do.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from .family import Family, Layout, StateDict, identity, never_fused, register_family
from .rename import Pair, remaps, rename_state, rules

V1_VARIANTS = ("efficientformer_l1", "efficientformer_l3", "efficientformer_l7")
V2_VARIANTS = ("efficientformerv2_s0", "efficientformerv2_s1", "efficientformerv2_s2", "efficientformerv2_l")


def _blocks(m: re.Match) -> str:  # V2: network.2s.k -> stages.s.blocks.k
    return f"stages.{int(m[1]) // 2}.blocks.{m[2]}."


def _network_blocks(m: re.Match) -> str:
    return f"network.{2 * int(m[1])}.{m[2]}."


# ---- V1 --------------------------------------------------------------------------------------

_DOWNSAMPLE = {"to_timm": lambda v: {"n": (v["n"] + 1) // 2}, "to_authors": lambda v: {"n": 2 * v["n"] - 1}}

snap_v1_to_timm, timm_to_snap_v1 = remaps(
    [
        Pair("^patch_embed.0.", "^stem.conv1."),
        Pair("^patch_embed.1.", "^stem.norm1."),
        Pair("^patch_embed.3.", "^stem.conv2."),
        Pair("^patch_embed.4.", "^stem.norm2."),
        # stage s's blocks are network.2s; its downsample (before them) is network.2s-1
        Pair(
            "^network.{n}.{k}.",
            "^stages.{n}.blocks.{k}.",
            to_timm=lambda v: {**v, "n": v["n"] // 2},
            to_authors=lambda v: {**v, "n": 2 * v["n"]},
        ),
        Pair("^network.{n}.proj.", "^stages.{n}.downsample.conv.", **_DOWNSAMPLE),
        Pair("^network.{n}.norm.", "^stages.{n}.downsample.norm.", **_DOWNSAMPLE),
        Pair("layer_scale_{i}$", "ls{i}.gamma$"),
        Pair("^dist_head.", "^head_dist."),
    ]
)


# ---- V2 --------------------------------------------------------------------------------------

_CONV_NORM_PARTS = "q|k|v|v_local|stride_conv"

# Written once per direction: V2's downsample names (`proj`/`norm` or `conv`/`bn`) depend on
# whether the stage downsamples with attention, which only the rest of the checkpoint tells.
_V2_TO_TIMM = rules(
    [
        (r"^patch_embed\.0\.", "stem.conv1.conv."),
        (r"^patch_embed\.1\.", "stem.conv1.bn."),
        (r"^patch_embed\.3\.", "stem.conv2.conv."),
        (r"^patch_embed\.4\.", "stem.conv2.bn."),
        (r"^network\.(\d+)\.(\d+)\.", _blocks),
        # a downsample is either conv+BN (`proj`/`norm`) or attention + conv+BN (`attn`, `conv`/`bn`)
        (r"^network\.(\d+)\.(proj|conv)\.", lambda m: f"stages.{(int(m[1]) + 1) // 2}.downsample.conv.conv."),
        (r"^network\.(\d+)\.(norm|bn)\.", lambda m: f"stages.{(int(m[1]) + 1) // 2}.downsample.conv.bn."),
        (r"^network\.(\d+)\.attn\.", lambda m: f"stages.{(int(m[1]) + 1) // 2}.downsample.attn."),
        (r"\.mlp\.fc1\.", ".mlp.fc1.conv."),
        (r"\.mlp\.norm1\.", ".mlp.fc1.bn."),
        (r"\.mlp\.mid\.", ".mlp.mid.conv."),
        (r"\.mlp\.mid_norm\.", ".mlp.mid.bn."),
        (r"\.mlp\.fc2\.", ".mlp.fc2.conv."),
        (r"\.mlp\.norm2\.", ".mlp.fc2.bn."),
        (r"\.q\.local\.0\.", ".q.local."),  # LGQuery (attention downsample)
        (r"\.q\.proj\.0\.", ".q.proj.conv."),
        (r"\.q\.proj\.1\.", ".q.proj.bn."),
        (r"\.(token_mixer|attn)\.proj\.1\.", r".\1.proj.conv."),  # proj = (act, conv, BN)
        (r"\.(token_mixer|attn)\.proj\.2\.", r".\1.proj.bn."),
        (rf"\.(token_mixer|attn)\.({_CONV_NORM_PARTS})\.0\.", r".\1.\2.conv."),
        (rf"\.(token_mixer|attn)\.({_CONV_NORM_PARTS})\.1\.", r".\1.\2.bn."),
        (r"layer_scale_(\d)$", r"ls\1.gamma"),
        (r"^dist_head\.", "head_dist."),
    ]
)


def _timm_to_v2_rules(attention_downsample_stages: set[int]):
    def downsample(kind: str):
        def repl(m: re.Match) -> str:
            stage = int(m[1])
            with_attn = stage in attention_downsample_stages
            name = {"conv": "conv" if with_attn else "proj", "bn": "bn" if with_attn else "norm"}[kind]
            return f"network.{2 * stage - 1}.{name}."

        return repl

    return rules(
        [
            (r"^stem\.conv1\.conv\.", "patch_embed.0."),
            (r"^stem\.conv1\.bn\.", "patch_embed.1."),
            (r"^stem\.conv2\.conv\.", "patch_embed.3."),
            (r"^stem\.conv2\.bn\.", "patch_embed.4."),
            (r"^stages\.(\d+)\.blocks\.(\d+)\.", _network_blocks),
            (r"^stages\.(\d+)\.downsample\.conv\.conv\.", downsample("conv")),
            (r"^stages\.(\d+)\.downsample\.conv\.bn\.", downsample("bn")),
            (r"^stages\.(\d+)\.downsample\.attn\.", lambda m: f"network.{2 * int(m[1]) - 1}.attn."),
            (r"\.mlp\.fc1\.conv\.", ".mlp.fc1."),
            (r"\.mlp\.fc1\.bn\.", ".mlp.norm1."),
            (r"\.mlp\.mid\.conv\.", ".mlp.mid."),
            (r"\.mlp\.mid\.bn\.", ".mlp.mid_norm."),
            (r"\.mlp\.fc2\.conv\.", ".mlp.fc2."),
            (r"\.mlp\.fc2\.bn\.", ".mlp.norm2."),
            (r"\.q\.local\.(weight|bias)$", r".q.local.0.\1"),
            (r"\.q\.proj\.conv\.", ".q.proj.0."),
            (r"\.q\.proj\.bn\.", ".q.proj.1."),
            (r"\.(token_mixer|attn)\.proj\.conv\.", r".\1.proj.1."),
            (r"\.(token_mixer|attn)\.proj\.bn\.", r".\1.proj.2."),
            (rf"\.(token_mixer|attn)\.({_CONV_NORM_PARTS})\.conv\.", r".\1.\2.0."),
            (rf"\.(token_mixer|attn)\.({_CONV_NORM_PARTS})\.bn\.", r".\1.\2.1."),
            (r"ls(\d)\.gamma$", r"layer_scale_\1"),
            (r"^head_dist\.", "dist_head."),
        ]
    )


def snap_v2_to_timm(state: StateDict) -> StateDict:
    return rename_state(
        state,
        _V2_TO_TIMM,
        drop=lambda k: k.endswith("attention_bias_idxs"),  # timm rebuilds them
        reshape=lambda k, v: v.reshape(-1) if k.endswith("gamma") else v,
    )


def timm_to_snap_v2(state: StateDict) -> StateDict:
    attn_stages = {int(m[1]) for k in state if (m := re.match(r"stages\.(\d+)\.downsample\.attn\.", k))}
    return rename_state(
        state,
        _timm_to_v2_rules(attn_stages),
        reshape=lambda k, v: v.reshape(-1, 1, 1) if re.search(r"layer_scale_\d$", k) else v,
    )


# ---- detection -------------------------------------------------------------------------------


def _is_snap(state: Mapping[str, torch.Tensor]) -> bool:
    return "patch_embed.0.weight" in state and any(k.startswith("network.") for k in state)


def _is_snap_v2(state: Mapping[str, torch.Tensor]) -> bool:
    return _is_snap(state) and any(re.match(r"network\.\d+\.\d+\.mlp\.mid\.weight$", k) for k in state)


def _is_snap_v1(state: Mapping[str, torch.Tensor]) -> bool:
    return _is_snap(state) and not _is_snap_v2(state)


def _is_timm_v1(state: Mapping[str, torch.Tensor]) -> bool:
    return "stem.conv1.weight" in state and "stem.norm1.weight" in state


def _is_timm_v2(state: Mapping[str, torch.Tensor]) -> bool:
    return "stem.conv1.conv.weight" in state and any(".mlp.mid.conv." in k for k in state)


EFFICIENTFORMER = register_family(
    Family(
        name="efficientformer",
        variants=V1_VARIANTS,
        layouts=(
            Layout("timm", "timm", False, _is_timm_v1, identity, identity),
            Layout("snap", "snap-efficientformer", False, _is_snap_v1, snap_v1_to_timm, timm_to_snap_v1),
        ),
        is_fused=never_fused,
        classifier="head",
    )
)

# V1 is not input-sized in timm: its attention biases stay at 7x7 tokens whatever `img_size` says,
# so a V1 model only runs at 224x224.
EFFICIENTFORMER_V2 = register_family(
    Family(
        name="efficientformerv2",
        variants=V2_VARIANTS,
        layouts=(
            Layout("timm", "timm", False, _is_timm_v2, identity, identity),
            Layout(
                "snap",
                "snap-efficientformerv2",
                False,
                _is_snap_v2,
                snap_v2_to_timm,
                timm_to_snap_v2,
                needs_buffers=True,
            ),
        ),
        is_fused=never_fused,
        classifier="head",
        input_sized=True,
    )
)
