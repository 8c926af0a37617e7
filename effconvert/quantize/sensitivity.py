"""Per-layer int8 sensitivity: how much the logits move when only one layer is quantized.

Each conv/linear is simulated in W8A8 on its own — weights per-output-channel symmetric int8, its
input per-tensor int8 over the calibration images' range of least error (ranges.py) — while every other
layer stays float; the score is the PSNR of the logits against the float model on the
calibration images. The lowest PSNR is the most sensitive layer: the first to keep in float when
an int8 artifact misses its gate (pipeline's fallback). A simulation ranks; only the artifact's
own runtime judges.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch
from torch import nn

from ..numeric import decided_top1, psnr_db
from .ranges import SAMPLES_PER_INPUT, least_error_range, strided_sample

T = TypeVar("T")
SIMULATION_BATCH = 8  # images the logits are compared on
RANGE_BATCH = 32  # images the activation ranges are taken over: the artifact's own come from every
# calibration image, and ranges of least error over 8 clip what the 9th brings (on digits MobileOne-S0
# the simulated W8A8 PSNR on held-out images was 26 dB with 8, 32 dB with 32; its TFLite 31 dB). 16
# halved the steps' cost on FastViT-T8 (71 -> 34 s) but its choices cost digits MobileOne-S0 1.4 points.
JUDGED_RANGE_CAP = 64  # calibration images the ranges of a simulation judged elsewhere are taken over
QUANTIZABLE = (nn.Conv2d, nn.Linear)


@dataclass(frozen=True)
class LayerSensitivity:
    name: str
    kind: str  # "conv" | "linear"
    params: int
    psnr_db: float  # logits with only this layer in int8 vs the float model

    def report_dict(self) -> dict:
        return {"layer": self.name, "kind": self.kind, "params": self.params, "psnr_db": round(self.psnr_db, 2)}


@torch.no_grad()
def layer_sensitivity(
    model: nn.Module, calibration: np.ndarray, batch: int = SIMULATION_BATCH
) -> list[LayerSensitivity]:
    """Every conv/linear of `model`, most sensitive first, simulated on `batch` calibration images
    (bench/sensitivity_stability.py measures how the ranking moves with it)."""
    images, layers, ranges, reference = _simulation(model, calibration, batch)
    result = []
    for name, layer in layers:
        with quantized(layer, *ranges[name]):
            out = model(images)
        result.append(
            LayerSensitivity(
                name,
                "conv" if isinstance(layer, nn.Conv2d) else "linear",
                layer.weight.numel(),
                psnr_db(out.numpy(), reference),
            )
        )
    return sorted(result, key=lambda s: s.psnr_db)


@dataclass(frozen=True)
class Simulated:
    """The logits with a set of layers float and every other conv/linear in simulated W8A8."""

    psnr_db: float
    top1: float  # agreement with the float model over the inputs it decides (numeric.decided_top1)


@torch.no_grad()
def simulated(
    model: nn.Module,
    calibration: np.ndarray,
    float_layers: list[tuple[str, ...]],
    *,
    symmetric: bool = False,
    batch: int = SIMULATION_BATCH,
    reference: nn.Module | None = None,
    judged_on: np.ndarray | None = None,
) -> list[Simulated]:
    """For each set of float layers: PSNR and top-1 of the logits with every other conv/linear in
    simulated W8A8, against the float model (the same simulation as the ranking, all layers at once).
    `symmetric`: activations on [-c, c] as Core ML quantizes them, else affine as PT2E and QNN do.
    `reference`: the float model to compare against when `model` is not it (its biases corrected
    for int8: in float it is meant to differ).
    `judged_on`: images to compare the logits on (the first `batch`) with ranges over every
    calibration image (up to JUDGED_RANGE_CAP), as the artifact is built and validated; else the calibration images, whose
    ranges fit them (make-checkpoint MobileOne-S1: 35.3 dB that way against 31.0 dB on the
    validation inputs, where its Core ML artifact measured 31.2)."""
    # Judged on other images: ranges over every calibration image (up to the cap), logits on those.
    images, layers, ranges, logits = _simulation(
        model,
        calibration,
        batch if judged_on is None else min(len(calibration), JUDGED_RANGE_CAP),
        symmetric=symmetric,
        judged_on=None if judged_on is None else judged_on[:batch],
        reference=reference,
    )
    scores = []
    for keep in float_layers:
        with contextlib.ExitStack() as stack:
            for name, layer in layers:
                if name not in keep:
                    stack.enter_context(quantized(layer, *ranges[name], symmetric=symmetric))
            out = model(images).numpy()
        scores.append(Simulated(psnr_db(out, logits), decided_top1(out, logits)[0]))
    return scores


def simulated_psnr(
    model: nn.Module,
    calibration: np.ndarray,
    float_layers: list[tuple[str, ...]],
    *,
    symmetric: bool = False,
    batch: int = SIMULATION_BATCH,
    reference: nn.Module | None = None,
) -> list[float]:
    """simulated()'s PSNR alone."""
    found = simulated(model, calibration, float_layers, symmetric=symmetric, batch=batch, reference=reference)
    return [s.psnr_db for s in found]


def split_for_scoring(calibration: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(images to fit on, images to score on): a step that fits something on calibration images (the
    migration's channel ranges, bias correction's means) is judged on others when there are enough:
    scored on the images it was fitted to, it looked 3 dB better than it was on held-out images."""
    fit, rest = calibration[:RANGE_BATCH], calibration[RANGE_BATCH : 2 * RANGE_BATCH]
    return (fit, rest) if len(rest) >= SIMULATION_BATCH else (fit, fit)


def _simulation(
    model: nn.Module,
    calibration: np.ndarray,
    batch: int = SIMULATION_BATCH,
    *,
    symmetric: bool = False,
    judged_on: np.ndarray | None = None,
    reference: nn.Module | None = None,
):
    """(images, quantizable layers, each layer's input range, float logits): what both simulations
    start from. Ranges over the first max(batch, RANGE_BATCH) calibration images; the logits (of
    `reference` when given, else of `model`) on `judged_on`, else on the first `batch` of them."""
    model.eval()
    images = torch.from_numpy(np.asarray(calibration[:batch] if judged_on is None else judged_on, dtype=np.float32))
    for_ranges = torch.from_numpy(np.asarray(calibration[: max(batch, RANGE_BATCH)], dtype=np.float32))
    layers = [(name, m) for name, m in model.named_modules() if isinstance(m, QUANTIZABLE)]
    logits = (model if reference is None else reference.eval())(images).numpy()
    return images, layers, input_ranges(model, layers, for_ranges, symmetric), logits


def input_ranges(model, layers, images, symmetric: bool = False) -> dict[str, tuple[float, float]]:
    """Each layer's input range of least int8 error over `images` (ranges.py)."""

    def least_error(layer, x: torch.Tensor) -> tuple[float, float]:
        sample = strided_sample(x, len(x) * SAMPLES_PER_INPUT)
        return least_error_range(sample, float(x.min()), float(x.max()), symmetric=symmetric)

    return each_input(model, layers, images, least_error)


def each_input(
    model: nn.Module,
    layers: list[tuple[str, nn.Module]],
    images: torch.Tensor,
    measure: Callable[[nn.Module, torch.Tensor], T],
) -> dict[str, T]:
    """{name: measure(layer, its input)} for each of `layers`, over one forward pass of `images`."""
    found: dict[str, T] = {}
    hooks = [
        layer.register_forward_pre_hook(lambda m, args, name=name: found.__setitem__(name, measure(m, args[0])))
        for name, layer in layers
    ]
    try:
        model(images)
    finally:
        for hook in hooks:
            hook.remove()
    return found


@contextlib.contextmanager
def quantized(layer: nn.Conv2d | nn.Linear, low: float, high: float, *, symmetric: bool = False) -> Iterator[None]:
    """Within the block, `layer` computes in simulated W8A8: int8 weights, its input on [low, high]."""
    original = layer.weight.data.clone()
    layer.weight.data.copy_(_fake_quant_weight(original))
    hook = layer.register_forward_pre_hook(
        lambda m, args: (_fake_quant_activation(args[0], low, high, symmetric=symmetric),)
    )
    try:
        yield
    finally:
        hook.remove()
        layer.weight.data.copy_(original)


def _fake_quant_weight(w: torch.Tensor) -> torch.Tensor:
    """Per-output-channel symmetric int8 (-127..127), as the PT2E and Core ML weight quantizers do."""
    scale = w.abs().reshape(w.shape[0], -1).amax(dim=1).clamp_min(1e-12) / 127.0
    scale = scale.reshape(-1, *([1] * (w.dim() - 1)))
    return torch.clamp(torch.round(w / scale), -127, 127) * scale


def _fake_quant_activation(x: torch.Tensor, low: float, high: float, *, symmetric: bool = False) -> torch.Tensor:
    """Per-tensor int8 over [low, high]: symmetric on [-c, c], or affine (zero always representable)."""
    if symmetric:
        step = max(abs(low), abs(high), 1e-12) / 127.0
        return torch.clamp(torch.round(x / step), -127, 127) * step
    low, high = min(low, 0.0), max(high, 0.0)
    scale = max(high - low, 1e-12) / 255.0
    zero = round(-128 - low / scale)
    q = torch.clamp(torch.round(x / scale) + zero, -128, 127)
    return (q - zero) * scale
