"""Fold a BatchNorm that follows a conv or linear layer into that layer's weight and bias.

Given:  y = BN(W x + b)   with BN(z) = gamma * (z - mean) / sqrt(var + eps) + beta
Result: y = W' x + b'     with s = gamma / sqrt(var + eps),  W' = s * W (per output channel),
                               b' = s * (b - mean) + beta
(the standard inference-time fold, e.g. RepVGG / timm `_fuse_bn_tensor`; this is the project's one
copy of it.) Matched structures: a container with `conv`/`bn` children that applies them in that
order (tables below), adjacent (Conv|Linear, BN) pairs in any `nn.Sequential`, and a BN that
feeds a Linear (EfficientViT-M's classifier). timm's `BatchNormAct2d` keeps its activation and dropout after the fold.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

_BN = nn.modules.batchnorm._BatchNorm
_LINEAR_LIKE = (nn.Conv1d, nn.Conv2d, nn.Linear)

# Containers whose forward applies child `layer` then child `bn` with nothing in between, keyed
# by class (generic timm layers) or module-qualified class (family-specific ones, whose bare
# names such as `Downsample` mean different things elsewhere in timm).
_LAYER_THEN_BN: dict[str, tuple[tuple[str, str], ...]] = {
    "ConvNormAct": (("conv", "bn"), ("conv", "norm")),  # timm layers; MIT EfficientViT
    "ConvBnAct": (("conv", "bn"),),
    "ConvNorm": (("conv", "bn"),),  # EfficientFormerV2, EfficientViT-M
    "Sequential": (("conv", "bn"),),  # Apple's conv_bn
    "timm.models.efficientformer.Stem4": (("conv1", "norm1"), ("conv2", "norm2")),
    "timm.models.efficientformer.Downsample": (("conv", "norm"),),
    "timm.models.efficientformer.ConvMlpWithNorm": (("fc1", "norm1"), ("fc2", "norm2")),
}
# Containers whose forward applies BN then (dropout, identity at inference) then a Linear.
_BN_THEN_LINEAR: dict[str, tuple[tuple[str, str], ...]] = {
    "timm.models.efficientvit_msra.NormLinear": (("bn", "linear"),),  # EfficientViT-M's BN_Linear head
}


def fold_bn_params(weight: torch.Tensor, bias: torch.Tensor | None, bn: _BN) -> tuple[torch.Tensor, torch.Tensor]:
    """(W, b) of a layer followed by `bn` -> (W', b') of the single equivalent layer."""
    mean, var = _statistics(bn)
    gamma = bn.weight if bn.affine else torch.ones_like(mean)
    beta = bn.bias if bn.affine else torch.zeros_like(mean)
    scale = gamma / torch.sqrt(var + bn.eps)
    bias = torch.zeros_like(mean) if bias is None else bias
    new_weight = weight * scale.reshape(-1, *([1] * (weight.dim() - 1)))
    return new_weight, (bias - mean) * scale + beta


def _statistics(bn: _BN) -> tuple[torch.Tensor, torch.Tensor]:
    """(running mean, running var): what an eval-mode BN normalises with."""
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError(f"{bn} tracks no running statistics: it cannot be folded")
    return bn.running_mean, bn.running_var


def fold_into(layer: nn.Conv1d | nn.Conv2d | nn.Linear, bn: _BN) -> None:
    if bn.training:
        raise RuntimeError("BN folding needs eval mode (running statistics)")
    if bn.running_mean is None or bn.num_features != layer.weight.shape[0]:
        raise ValueError(f"cannot fold {bn} into {layer}")
    weight, bias = fold_bn_params(layer.weight.detach(), None if layer.bias is None else layer.bias.detach(), bn)
    layer.weight = nn.Parameter(weight)
    layer.bias = nn.Parameter(bias)


def _after_bn(bn: _BN) -> nn.Module:
    """What must still run after a folded BN: timm's BatchNormAct2d carries dropout + activation."""
    rest = [
        m
        for m in (getattr(bn, "drop", None), getattr(bn, "act", None))
        if m is not None and not isinstance(m, nn.Identity)
    ]
    return nn.Sequential(*rest) if rest else nn.Identity()


def fold_bn_into_following(layer: nn.Linear, bn: _BN) -> None:
    """BN then Linear:  W (s x + t) + b  =  (W s) x + (b + W t),  s = gamma / sqrt(var + eps),
    t = beta - mean * s (s scales the Linear's input columns)."""
    if bn.training or bn.running_mean is None or bn.num_features != layer.in_features:
        raise ValueError(f"cannot fold {bn} into the following {layer}")
    mean, var = _statistics(bn)
    gamma = bn.weight if bn.affine else torch.ones_like(mean)
    beta = bn.bias if bn.affine else torch.zeros_like(mean)
    scale = gamma / torch.sqrt(var + bn.eps)
    shift = beta - mean * scale
    weight = layer.weight.detach()
    bias = torch.zeros(layer.out_features, dtype=weight.dtype) if layer.bias is None else layer.bias.detach()
    layer.weight = nn.Parameter(weight * scale)
    layer.bias = nn.Parameter(bias + weight @ shift)


def _kind(module: nn.Module) -> list[str]:
    return [type(module).__name__, f"{type(module).__module__}.{type(module).__qualname__}"]


def fold_batchnorms(model: nn.Module) -> list[str]:
    """Fold every BN that sits next to a conv/linear, in place; return the names of the layers
    that absorbed one (their own outputs now differ from before, by design: they include the BN)."""
    folded: list[str] = []
    for prefix, module in list(model.named_modules()):
        kinds = _kind(module)
        for layer_name, bn_name in next((_LAYER_THEN_BN[k] for k in kinds if k in _LAYER_THEN_BN), ()):
            layer, bn = getattr(module, layer_name, None), getattr(module, bn_name, None)
            if (
                isinstance(layer, _LINEAR_LIKE)
                and isinstance(bn, _BN)
                and _applies_in_order(module, layer_name, bn_name)
            ):
                fold_into(layer, bn)
                setattr(module, bn_name, _after_bn(bn))
                folded.append(_join(prefix, layer_name))
        for bn_name, layer_name in next((_BN_THEN_LINEAR[k] for k in kinds if k in _BN_THEN_LINEAR), ()):
            bn, layer = getattr(module, bn_name, None), getattr(module, layer_name, None)
            if isinstance(layer, nn.Linear) and isinstance(bn, _BN):
                fold_bn_into_following(layer, bn)
                setattr(module, bn_name, nn.Identity())
                folded.append(_join(prefix, layer_name))
        if isinstance(module, nn.Sequential):
            folded += [_join(prefix, name) for name in _fold_sequential_pairs(module)]
    return folded


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _applies_in_order(module: nn.Module, layer_name: str, bn_name: str) -> bool:
    if isinstance(module, nn.Sequential):
        names = list(module._modules)
        return names.index(bn_name) == names.index(layer_name) + 1
    aa = getattr(module, "aa", None)  # timm ConvNormAct: anti-aliasing after bn
    return aa is None or isinstance(aa, nn.Identity)


def _fold_sequential_pairs(seq: nn.Sequential) -> list[str]:
    folded = []
    names = list(seq._modules)
    for first, second in itertools.pairwise(names):
        layer, bn = seq._modules[first], seq._modules[second]
        if isinstance(layer, _LINEAR_LIKE) and isinstance(bn, _BN):
            fold_into(layer, bn)
            seq._modules[second] = _after_bn(bn)
            folded.append(first)
    return folded
