"""Fold a BatchNorm that follows a conv or linear layer into that layer's weight and bias.

Given:  y = BN(W x + b)   with BN(z) = gamma * (z - mean) / sqrt(var + eps) + beta
Result: y = W' x + b'     with s = gamma / sqrt(var + eps),  W' = s * W (per output channel),
                               b' = s * (b - mean) + beta
(the standard inference-time fold, e.g. RepVGG / timm `_fuse_bn_tensor`; this is the project's one
copy of it.) Matched structures: a container with `conv`/`bn` children that applies them in that
order (timm `ConvNormAct`, Apple's `conv_bn` Sequential), and adjacent (Conv|Linear, BN) pairs in
any `nn.Sequential`. timm's `BatchNormAct2d` keeps its activation and dropout after the fold.
"""

from __future__ import annotations

import torch
from torch import nn

_BN = nn.modules.batchnorm._BatchNorm
_LINEAR_LIKE = (nn.Conv1d, nn.Conv2d, nn.Linear)
# Containers whose forward is known to be conv -> bn (-> act): only these are folded by name.
_CONV_BN_CONTAINERS = {"ConvNormAct", "ConvBnAct", "ConvNorm", "Sequential"}


def fold_bn_params(weight: torch.Tensor, bias: torch.Tensor | None,
                   bn: _BN) -> tuple[torch.Tensor, torch.Tensor]:
    """(W, b) of a layer followed by `bn` -> (W', b') of the single equivalent layer."""
    mean, var = bn.running_mean, bn.running_var
    gamma = bn.weight if bn.affine else torch.ones_like(mean)
    beta = bn.bias if bn.affine else torch.zeros_like(mean)
    scale = gamma / torch.sqrt(var + bn.eps)
    bias = torch.zeros_like(mean) if bias is None else bias
    new_weight = weight * scale.reshape(-1, *([1] * (weight.dim() - 1)))
    return new_weight, (bias - mean) * scale + beta


def fold_into(layer: nn.Module, bn: _BN) -> None:
    if bn.training:
        raise RuntimeError("BN folding needs eval mode (running statistics)")
    if bn.running_mean is None or bn.num_features != layer.weight.shape[0]:
        raise ValueError(f"cannot fold {bn} into {layer}")
    weight, bias = fold_bn_params(layer.weight.detach(), None if layer.bias is None else layer.bias.detach(), bn)
    layer.weight = nn.Parameter(weight)
    layer.bias = nn.Parameter(bias)


def _after_bn(bn: _BN) -> nn.Module:
    """What must still run after a folded BN: timm's BatchNormAct2d carries dropout + activation."""
    rest = [m for m in (getattr(bn, "drop", None), getattr(bn, "act", None))
            if m is not None and not isinstance(m, nn.Identity)]
    return nn.Sequential(*rest) if rest else nn.Identity()


def fold_batchnorms(model: nn.Module) -> list[str]:
    """Fold every BN that follows a conv/linear, in place; return the names of the layers that
    absorbed one (their own outputs now differ from before, by design: they include the BN)."""
    folded: list[str] = []
    for prefix, module in list(model.named_modules()):
        kind = type(module).__name__
        if kind not in _CONV_BN_CONTAINERS:
            continue
        conv, bn = getattr(module, "conv", None), getattr(module, "bn", None)
        if isinstance(conv, _LINEAR_LIKE) and isinstance(bn, _BN) and _applies_conv_then_bn(module):
            fold_into(conv, bn)
            module.bn = _after_bn(bn)
            folded.append(_join(prefix, "conv"))
        if isinstance(module, nn.Sequential):
            folded += [_join(prefix, name) for name in _fold_sequential_pairs(module)]
    return folded


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _applies_conv_then_bn(module: nn.Module) -> bool:
    if isinstance(module, nn.Sequential):
        names = list(module._modules)
        return "conv" in names and "bn" in names and names.index("bn") == names.index("conv") + 1
    aa = getattr(module, "aa", None)              # timm ConvNormAct: anti-aliasing after bn
    return aa is None or isinstance(aa, nn.Identity)


def _fold_sequential_pairs(seq: nn.Sequential) -> list[str]:
    folded = []
    names = list(seq._modules)
    for first, second in zip(names, names[1:]):
        layer, bn = seq._modules[first], seq._modules[second]
        if isinstance(layer, _LINEAR_LIKE) and isinstance(bn, _BN):
            fold_into(layer, bn)
            seq._modules[second] = _after_bn(bn)
            folded.append(first)
    return folded
