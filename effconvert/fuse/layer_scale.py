"""Fold a layer scale into the conv/linear that produces its input.

Given:  y = gamma * (W x + b)        (gamma per output channel: timm LayerScale / LayerScale2d)
Result: y = W' x + b'  with  W' = gamma * W (row-wise),  b' = gamma * b
Exact, and it matters for int8: left as a separate MUL, each layer scale sits between quantize /
dequantize pairs, keeps the converter from folding it, and forces layout transposes around it
(FastViT-T8 int8: 10 MULs and 20 TRANSPOSEs that the fp32 graph does not have).

Matched structures are listed per block class, as (producer, scale) child paths, where the
block's forward applies the scale directly to the producer's output (dropout and a BatchNorm
already folded away are identities at inference).
"""

from __future__ import annotations

import torch
from torch import nn

_LINEAR_LIKE = (nn.Conv2d, nn.Linear)

_PRODUCER_THEN_SCALE: dict[str, tuple[tuple[str, str], ...]] = {
    "timm.models.fastvit.RepMixerBlock": (("mlp.fc2", "layer_scale"),),
    "timm.models.fastvit.AttentionBlock": (("token_mixer.proj", "layer_scale_1"), ("mlp.fc2", "layer_scale_2")),
    "timm.models.efficientformer.MetaBlock2d": (("mlp.fc2", "ls2"),),
    "timm.models.efficientformer.MetaBlock1d": (("token_mixer.proj", "ls1"), ("mlp.fc2", "ls2")),
}
# What may sit between the producer and the scale: these children of the producer's parent must
# be identities at inference (a BatchNorm is one only after fold_batchnorms replaced it).
_MUST_BE_IDENTITY = ("norm2", "norm")


def fold_layer_scales(model: nn.Module) -> list[str]:
    """Fold every matched layer scale in place; return the producers that absorbed one."""
    folded = []
    for prefix, block in list(model.named_modules()):
        kind = f"{type(block).__module__}.{type(block).__qualname__}"
        for producer_path, scale_name in _PRODUCER_THEN_SCALE.get(kind, ()):
            scale = getattr(block, scale_name, None)
            gamma = getattr(scale, "gamma", None)
            parent_path, _, producer_name = producer_path.rpartition(".")
            parent = block.get_submodule(parent_path) if parent_path else block
            producer = getattr(parent, producer_name, None)
            if gamma is None or not isinstance(producer, _LINEAR_LIKE) or not _passes_through(parent, producer_name):
                continue
            _scale_rows(producer, gamma.detach().reshape(-1))
            setattr(block, scale_name, nn.Identity())
            folded.append(f"{prefix}.{producer_path}" if prefix else producer_path)
    return folded


def _passes_through(parent: nn.Module, producer_name: str) -> bool:
    """Nothing but identities (dropout at inference, folded norms) after the producer."""
    names = list(parent._modules)
    after = names[names.index(producer_name) + 1 :]
    return all(
        isinstance(parent._modules[n], (nn.Identity, nn.Dropout))
        for n in after
        if n in _MUST_BE_IDENTITY or n.startswith("drop")
    )


def _scale_rows(layer: nn.Conv2d | nn.Linear, gamma: torch.Tensor) -> None:
    if gamma.numel() != layer.weight.shape[0]:
        raise ValueError(f"layer scale of {gamma.numel()} channels cannot fold into {layer}")
    weight = layer.weight.detach()
    layer.weight = nn.Parameter(weight * gamma.to(weight.dtype).reshape(-1, *([1] * (weight.dim() - 1))))
    if layer.bias is not None:
        layer.bias = nn.Parameter(layer.bias.detach() * gamma.to(weight.dtype))
