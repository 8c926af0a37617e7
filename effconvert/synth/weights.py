"""Give a freshly built timm model numbers that behave like a trained model's.

A fresh timm FastViT has layer scales of 1e-5, identity BN statistics and a near-zero head: its
logits are ~0.003 and barely depend on the input, so any parity number measured on it is
meaningless (every runtime "agrees" on a constant). Here, deterministically from a seed:
  1. conv/linear weights: variance-preserving (fan-in) normal draws; biases small;
  2. BN affine and layer scales: spread around values seen in trained checkpoints (not init);
     a BN that timm zero-initialises (the end of a residual branch) gets layer-scale-like gains;
  3. BN running statistics: re-estimated on natural-looking images (cumulative average over
     train-mode passes), so eval-mode activations are normalised like a trained network's;
  4. head: scaled so logits are O(1) with a top-1 class that varies across inputs.
The result is not a trained model and every report on it says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..load.preprocessing import Preprocessing
from ..validate.natural_images import natural_images

LAYER_SCALE_RANGE = (0.05, 0.5)  # trained FastViT layer scales sit roughly here
BN_GAMMA_RANGE = (0.5, 1.5)
TARGET_LOGIT_STD = 3.0  # spread of a trained ImageNet head's logits
BN_ESTIMATE_IMAGES = 32
# Random excitation and attention weights make some inputs' gates saturate and some softmaxes
# nearly one-hot; a trained network's are moderate. Measured on the synthetic models: MobileOne-S4's
# six stacked SE gates grew a rare input's logits 36x the typical (0.2 here: 5x), and
# EfficientViT-M5's q.k logits made one input's fp32 error 3e-3 of float64 and flipped its Core ML
# fp16 top-1 (0.4 here: 2.5e-6, like the other inputs).
SE_GATE_GAIN = 0.2  # on the excitation's last layer (the sigmoid's input)
QK_GAIN = 0.4  # on the q and k projections' BN gains (logits x 0.16)


@dataclass(frozen=True)
class WeightStats:
    logit_std: float
    distinct_top1: int  # over `images` inputs
    images: int


@torch.no_grad()
def make_realistic(model: nn.Module, preprocessing: Preprocessing, *, seed: int) -> WeightStats:
    gen = torch.Generator().manual_seed(seed)
    _randomise_parameters(model, gen)
    inputs = _inputs(preprocessing, BN_ESTIMATE_IMAGES, seed)
    _estimate_bn_statistics(model, inputs)
    heads = _classifier_layers(model)
    features = _inputs_of(heads[0], model, inputs)
    _calibrate_head(heads[0], features, gen)
    for extra in heads[1:]:
        # A distillation head of a trained model agrees with the main one, up to small differences.
        extra.weight.copy_(heads[0].weight * (1 + 0.1 * torch.randn(extra.weight.shape, generator=gen)))
        extra.bias.copy_(heads[0].bias)
    logits = model(inputs)
    return WeightStats(float(logits.std()), int(logits.argmax(-1).unique().numel()), len(inputs))


def _classifier_layers(model: nn.Module) -> list[nn.Linear]:
    """The final Linear(s): timm's get_classifier() is a tuple (head, head_dist) when distilled."""
    found = model.get_classifier()  # type: ignore[operator]  # timm models have it; nn.Module does not declare it
    layers = list(found) if isinstance(found, (tuple, list)) else [found]
    layers = [layer for layer in layers if isinstance(layer, nn.Linear)]
    if not layers:
        raise ValueError(f"{type(model).__name__}: no Linear classifier to calibrate")
    return layers


def _inputs_of(layer: nn.Module, model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """What `layer` receives when `model` runs (after any head norm/pool the family applies)."""
    captured = []
    handle = layer.register_forward_hook(lambda m, args, out: captured.append(args[0].detach()))
    try:
        model(inputs)
    finally:
        handle.remove()
    return captured[0]


def _inputs(preprocessing: Preprocessing, n: int, seed: int) -> torch.Tensor:
    from PIL import Image

    h, w = preprocessing.size
    raw = natural_images(n, (int(h * 1.15), int(w * 1.15)), seed=10_000 + seed)
    pixels = np.stack([preprocessing.pixels(Image.fromarray(img)) for img in raw])
    return torch.from_numpy(preprocessing.normalize(pixels))


def _uniform(shape, lo: float, hi: float, gen: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(shape, generator=gen)


def _randomise_parameters(model: nn.Module, gen: torch.Generator) -> None:
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            fan_in = module.weight[0].numel()
            module.weight.copy_(torch.randn(module.weight.shape, generator=gen) / math.sqrt(fan_in))
            if module.bias is not None:
                module.bias.copy_(torch.randn(module.bias.shape, generator=gen) * 0.02)
        elif isinstance(module, nn.modules.batchnorm._BatchNorm) and module.affine:
            # timm zero-initialises the BN that ends a residual branch (EfficientViT-M's
            # bn_weight_init=0); trained, those stay small like layer scales. At full strength
            # every block would amplify, and the network become chaotic in fp32 (not realistic).
            zero_init = bool((module.weight == 0).all())
            gamma_range = LAYER_SCALE_RANGE if zero_init else BN_GAMMA_RANGE
            module.weight.copy_(_uniform(module.weight.shape, *gamma_range, gen))
            module.bias.copy_(torch.randn(module.bias.shape, generator=gen) * 0.1)
        elif isinstance(module, nn.LayerNorm) and module.elementwise_affine:
            module.weight.copy_(_uniform(module.weight.shape, *BN_GAMMA_RANGE, gen))
            module.bias.copy_(torch.randn(module.bias.shape, generator=gen) * 0.1)
    for name, param in model.named_parameters():
        if "layer_scale" in name or name.endswith((".gamma", ".ls")):
            param.copy_(_uniform(param.shape, *LAYER_SCALE_RANGE, gen))
    _temper_gates_and_attention(model)


def _temper_gates_and_attention(model: nn.Module) -> None:
    for module in model.modules():
        kind = type(module).__name__
        if kind in ("SEModule", "SqueezeExcite", "EffectiveSEModule"):
            layers = [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
            layers[-1].weight.mul_(SE_GATE_GAIN)
        elif kind == "CascadedGroupAttention":  # EfficientViT-M: qkv = [q | k | v] per head
            attention: Any = module  # timm's class: its key_dim and qkvs are not nn.Module's
            for qkv in attention.qkvs:
                qkv.bn.weight[: 2 * attention.key_dim].mul_(QK_GAIN)


def _estimate_bn_statistics(model: nn.Module, inputs: torch.Tensor, batch: int = 16) -> None:
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over all batches
    model.train()
    for start in range(0, len(inputs), batch):
        model(inputs[start : start + batch])
    for bn in bns:
        bn.momentum = 0.1
    model.eval()


def _calibrate_head(classifier: nn.Linear, features: torch.Tensor, gen: torch.Generator) -> None:
    """Random directions, scaled to TARGET_LOGIT_STD over these inputs, centred by the bias."""
    weight = torch.randn(classifier.weight.shape, generator=gen)
    spread = (features - features.mean(0, keepdim=True)) @ weight.T
    weight *= TARGET_LOGIT_STD / max(float(spread.std()), 1e-6)
    classifier.weight.copy_(weight)
    bias = -(weight @ features.mean(0)) + torch.randn(classifier.out_features, generator=gen) * 0.5
    classifier.bias.copy_(bias)
