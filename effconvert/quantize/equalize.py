"""Scale migration before int8: make each quantized activation's channels share one range.

Every int8 target quantizes a conv/linear input per tensor and its weights per output channel. A
reparameterized network (MobileOne, FastViT's RepMixer) folds branches into one conv, and the
channels of what it writes then reach very different ranges: one per-tensor scale spends most of
its 256 levels on a few wide channels. Between a producer (conv, linear, or a LayerNorm's affine)
and the one conv/linear that reads its output — directly or through a ReLU, which commutes with a
positive scale — channel i can be divided by s_i on the producer's side and multiplied back into
the consumer's weights: exact in float, and it moves range from the activation into the weights
(Nagel et al., "Data-Free Quantization", ICCV 2019; Xiao et al., "SmoothQuant", ICML 2023):

    s_i = a_i^alpha / w_i^(1 - alpha)     a_i: channel i's range on the calibration images
                                          w_i: the consumer's weight range over input channel i

A depthwise consumer scales per output channel, which per-channel weights absorb whole, so there
the activation is equalized fully (s_i = a_i / max a). alpha is chosen by the simulated W8A8 PSNR
of the logits (sensitivity.py's simulation), and the model is left as it is when no alpha beats it:
the report says which, with both numbers. The model handed in is never changed; a migrated copy is
what the int8 conversions and the fallback's simulation use, while validation compares against the
original.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .sensitivity import RANGE_BATCH, each_input, simulated_psnr, split_for_scoring

ALPHAS = (0.25, 0.5, 0.75)  # tried in turn; the simulation picks
MIN_GAIN_DB = 0.1  # below this the original model is kept: a migration that does not help is noise
MAX_RATIO = 1024.0  # the widest spread of s within one pair: keeps a dead channel's weights finite
_CONV, _LINEAR, _NORM = "aten.conv2d.default", "aten.linear.default", "aten.layer_norm.default"
_RELU = ("aten.relu.default", "aten.relu_.default")


@dataclass(frozen=True)
class ScalePair:
    """A producer whose output channels feed one consumer's input channels, and nothing else."""

    producer: str  # module path (conv, linear or LayerNorm)
    consumer: str  # module path (conv or linear)
    through_relu: bool
    depthwise: bool  # the consumer is a depthwise conv


@dataclass(frozen=True)
class Equalization:
    """What the report says: the pairs found, the alpha kept, the simulated PSNR without and with."""

    pairs: int
    applied: bool
    alpha: float | None
    simulated_before_db: float | None
    simulated_after_db: float | None
    reason: str = ""

    def to_json(self) -> dict:
        return {
            "method": "scale migration between a producer and its one conv/linear consumer (through ReLU): "
            "s = a^alpha / w^(1-alpha), depthwise consumers equalized fully; alpha by simulated W8A8 PSNR",
            "pairs": self.pairs,
            "applied": self.applied,
            "alpha": self.alpha,
            "simulated_psnr_db": {"without": self.simulated_before_db, "with": self.simulated_after_db},
            **({"reason": self.reason} if self.reason else {}),
        }

    @classmethod
    def from_json(cls, data: dict) -> Equalization:
        simulated = data.get("simulated_psnr_db") or {}
        return cls(
            data["pairs"],
            data["applied"],
            data.get("alpha"),
            simulated.get("without"),
            simulated.get("with"),
            data.get("reason", ""),
        )

    def summary(self) -> str:
        if not self.pairs:
            return f"no scale migration: {self.reason or 'no producer/consumer pair'}"
        if not self.applied:
            return (
                f"scale migration not kept: {self.pairs} pairs, simulated W8A8 {self.simulated_before_db:.1f} dB "
                f"without, no alpha did better"
            )
        return (
            f"scale migration over {self.pairs} pairs (alpha {self.alpha}): simulated W8A8 "
            f"{self.simulated_before_db:.1f} -> {self.simulated_after_db:.1f} dB"
        )


@torch.no_grad()
def equalized(model: nn.Module, calibration: np.ndarray, *, batch: int = RANGE_BATCH) -> tuple[nn.Module, Equalization]:
    """(the model to quantize, what was done): a migrated copy when it simulates better, else `model`
    (channel ranges over `batch` calibration images, the simulated PSNR over the next `batch` when
    there are enough)."""
    model.eval()
    example = torch.from_numpy(np.asarray(calibration[:1], dtype=np.float32))
    try:
        pairs = scale_pairs(model, example)
    except Exception as exc:  # noqa: BLE001 - a graph this step cannot read costs the migration, not the run
        return model, Equalization(0, False, None, None, None, f"graph not readable: {type(exc).__name__}")
    if not pairs:
        return model, Equalization(0, False, None, None, None, "no producer/consumer pair")
    fit, scoring = split_for_scoring(calibration[: 2 * batch])
    ranges = channel_ranges(model, pairs, torch.from_numpy(np.asarray(fit, dtype=np.float32)))
    before = simulated_psnr(model, scoring, [()], batch=batch)[0]
    best, best_alpha, best_db = model, None, before
    for alpha in ALPHAS:
        candidate = migrated(model, pairs, ranges, alpha)
        score = simulated_psnr(candidate, scoring, [()], batch=batch)[0]
        if score > best_db:
            best, best_alpha, best_db = candidate, alpha, score
    applied = best_alpha is not None and best_db - before >= MIN_GAIN_DB
    if not applied:
        return model, Equalization(len(pairs), False, None, round(before, 2), None)
    return best, Equalization(len(pairs), True, best_alpha, round(before, 2), round(best_db, 2))


def scale_pairs(model: nn.Module, example: torch.Tensor) -> list[ScalePair]:
    """Every producer -> (ReLU ->) consumer pair of `model`'s exported graph, in graph order, where
    the producer's output, the ReLU's and each weight have exactly one user."""
    program = torch.export.export(model, (example,))
    params = program.graph_signature.inputs_to_parameters

    def owner(node) -> str | None:
        """The module path of a parameter placeholder used by one node only."""
        if not isinstance(node, torch.fx.Node) or node.op != "placeholder" or len(node.users) != 1:
            return None
        name = params.get(node.name)
        return name.rsplit(".", 1)[0] if name else None

    modules = dict(model.named_modules())
    found = []
    for node in program.graph.nodes:
        kind = str(node.target)
        if kind not in (_CONV, _LINEAR, _NORM):
            continue
        producer = owner(node.args[2] if kind == _NORM and len(node.args) > 2 else node.args[1])
        if producer is None or (kind == _NORM and not _affine_norm(modules.get(producer))):
            continue
        out, relu = node, False
        if len(out.users) == 1 and str(next(iter(out.users)).target) in _RELU:
            out, relu = next(iter(out.users)), True
        if len(out.users) != 1:
            continue
        reader = next(iter(out.users))
        consumer = owner(reader.args[1]) if str(reader.target) in (_CONV, _LINEAR) else None
        if consumer is None or reader.args[0] is not out:
            continue
        if (kind == _CONV) != (str(reader.target) == _CONV):
            continue  # conv -> conv and linear/norm -> linear share the channel axis; others reshape
        layer = modules.get(consumer)
        depthwise = isinstance(layer, nn.Conv2d) and layer.groups == layer.in_channels == layer.out_channels > 1
        if isinstance(layer, nn.Conv2d) and layer.groups != 1 and not depthwise:
            continue
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            found.append(ScalePair(producer, consumer, relu, depthwise))
    return found


def _affine_norm(module) -> bool:
    return isinstance(module, nn.LayerNorm) and module.weight is not None and module.bias is not None


def channel_ranges(model: nn.Module, pairs: list[ScalePair], images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each consumer's input range per channel (max |x|) over `images`."""
    modules = dict(model.named_modules())

    def per_channel(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if isinstance(layer, nn.Conv2d):
            return x.abs().amax(dim=(0, 2, 3))
        return x.abs().reshape(-1, x.shape[-1]).amax(dim=0)

    return each_input(model, [(p.consumer, modules[p.consumer]) for p in pairs], images, per_channel)


def migrated(model: nn.Module, pairs: list[ScalePair], ranges: dict[str, torch.Tensor], alpha: float) -> nn.Module:
    """A copy of `model` with each pair's scales moved from the activation into the consumer."""
    copied = copy.deepcopy(model)
    modules = dict(copied.named_modules())
    for pair in pairs:
        producer, consumer = modules[pair.producer], modules[pair.consumer]
        activation = ranges[pair.consumer].clamp_min(1e-12)
        if pair.depthwise:
            scale = activation / activation.max()
        else:
            weight = consumer.weight.abs().transpose(0, 1).reshape(consumer.weight.shape[1], -1).amax(dim=1)
            scale = activation.pow(alpha) / weight.clamp_min(1e-12).pow(1 - alpha)
            scale = scale * (activation / scale).max() / activation.max()  # the widest channel keeps its range
        scale = scale.clamp(scale.max() / MAX_RATIO)
        _divide_outputs(producer, scale)
        _multiply_inputs(consumer, scale, pair.depthwise)
    return copied


def _divide_outputs(module: nn.Module, scale: torch.Tensor) -> None:
    weight, bias = _parameters(module)
    weight.div_(scale.reshape(-1, *([1] * (weight.dim() - 1))).to(weight.dtype))
    if bias is not None:
        bias.div_(scale.to(bias.dtype))


def _multiply_inputs(module: nn.Module, scale: torch.Tensor, depthwise: bool) -> None:
    weight, _ = _parameters(module)
    scale = scale.to(weight.dtype)
    if depthwise:
        weight.mul_(scale.reshape(-1, 1, 1, 1))
    elif isinstance(module, nn.Conv2d):
        weight.mul_(scale.reshape(1, -1, 1, 1))
    else:
        weight.mul_(scale.reshape(1, -1))


def _parameters(module: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
    weight, bias = module.weight, getattr(module, "bias", None)
    assert isinstance(weight, torch.Tensor)
    return weight, bias if isinstance(bias, torch.Tensor) else None
