"""Core ML: an ML Program `.mlpackage` with an image input, a classifier output and provenance.

    fused model -> ImageClassifier wrapper (normalise in-graph, softmax + logits)
    -> torch.jit.trace -> MIL (fp32, or fp16 with fp16-fragile ops kept fp32)
    -> classifier attached in a second pass -> (int8: activations quantized with ranges the MIL
    executor measured on the calibration images) -> (int8, int8-weights: per-channel int8 weights)
    -> metadata -> .mlpackage (atomic)

int8 (W8A8) needs iOS 17's quantize/dequantize ops: a lower `--ios` is raised for that artifact,
and the report says so.

The second pass works around coremltools 9.0 failing (IndexError in `get_func_output`) when a
classifier model has more outputs than the probabilities and `output_types` is set, which it
always is for fp16: converting to MIL first and attaching the classifier to the program avoids it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from ..atomic import atomic_path
from ..errors import BadInput, ConversionFailed
from ..load.preprocessing import Preprocessing
from .coreml_activations import layer_ops, quantize_activations
from .quiet import first_line, quiet
from .stopwatch import Stopwatch
from .wrappers import ImageClassifier

IOS_TARGETS = (16, 17, 18)
W8A8_MIN_IOS = 17
PALETTES = {"pal6": 6, "pal4": 4}           # `--palettize N`: weights as 2^N-entry lookup tables
INPUT_KINDS = ("image", "tensor")
INT8_WEIGHT_THRESHOLD = 2048      # coremltools' default: smaller tensors (biases, norms) stay fp16


def export_coreml(model: torch.nn.Module, preprocessing: Preprocessing, labels: Sequence[str],
                  out: Path, *, metadata: dict[str, str], quant: str, ios: int = 16,
                  input_kind: str = "image", fp32_ops: Sequence[str] = (),
                  calibration: CalibrationImages | None = None, float_layers: Sequence[str] = (),
                  clock: Stopwatch | None = None) -> list[str]:
    """Write `out` (.mlpackage); return notes for the report (e.g. ops kept in fp32).
    `float_layers` (int8 only): module paths whose conv/linear keeps float weights and an unquantized output."""
    if ios not in IOS_TARGETS:
        raise BadInput(f"--ios {ios} is not supported", hint=f"choose from: {', '.join(map(str, IOS_TARGETS))}")
    if input_kind not in INPUT_KINDS:
        raise BadInput(f"--input {input_kind} is not supported", hint="choose from: image, tensor")
    if quant == "int8" and (calibration is None or len(calibration.pixels) == 0):
        raise ConversionFailed("Core ML int8 needs calibration images")
    notes = []
    if quant == "int8" and ios < W8A8_MIN_IOS:
        notes.append(f"minimum deployment target raised from iOS {ios} to iOS {W8A8_MIN_IOS}: "
                     "int8 activations need its quantize/dequantize ops")
        ios = W8A8_MIN_IOS
    compressed = quant != "fp32"                      # fp16 compute around int8 or palettized weights
    clock = clock or Stopwatch()
    with quiet():
        import coremltools as ct

        target = {16: ct.target.iOS16, 17: ct.target.iOS17, 18: ct.target.iOS18}[ios]
        c, h, w = preprocessing.input_size
        wrapper = ImageClassifier(model, preprocessing if input_kind == "image" else None).eval()
        try:
            with clock.running():        # trace + both ct.convert calls: the raw toolchain
                traced = torch.jit.trace(wrapper, torch.rand(1, c, h, w), check_trace=False)
                if input_kind == "image":
                    inputs = [ct.ImageType(name="image", shape=(1, c, h, w), scale=1.0 / 255.0,
                                           bias=[0.0, 0.0, 0.0], color_layout=ct.colorlayout.RGB)]
                else:
                    inputs = [ct.TensorType(name="input", shape=(1, c, h, w))]
                precision = ct.precision.FLOAT32
                if compressed:
                    keep = frozenset(fp32_ops)
                    precision = ct.transform.FP16ComputePrecision(op_selector=lambda op: op.op_type not in keep)
                program = ct.convert(traced, inputs=inputs,
                                     outputs=[ct.TensorType(name="probabilities"), ct.TensorType(name="logits")],
                                     convert_to="milinternal", minimum_deployment_target=target,
                                     compute_precision=precision)
                program.functions["main"].output_types = None
                mlmodel = ct.convert(program, convert_to="mlprogram", minimum_deployment_target=target,
                                     compute_precision=ct.precision.FLOAT32,
                                     classifier_config=ct.ClassifierConfig(list(labels),
                                                                           predicted_probabilities_output="probabilities"))
                kept = {}
                if quant == "int8":
                    kept = layer_ops(mlmodel._mil_program.functions["main"], float_layers)
                    mlmodel = quantize_activations(mlmodel, calibration.feeds(input_kind),
                                                   float_ops=[op for op, _ in kept.values()])
                if quant in ("int8", "int8-weights"):
                    mlmodel = _int8_weights(mlmodel, float_weights=[weight for _, weight in kept.values()])
                if quant in PALETTES:
                    mlmodel = _palettize(mlmodel, PALETTES[quant])
        except BadInput:
            raise
        except Exception as exc:  # coremltools raises many types; the message names the op
            raise ConversionFailed(f"Core ML conversion failed: {first_line(exc)}") from exc
        _describe(mlmodel, metadata, preprocessing, input_kind)
        with atomic_path(out) as tmp, clock.running():
            mlmodel.save(str(tmp))
    if quant == "int8":
        notes.append(f"W8A8: int8 activations (per-tensor symmetric, ranges measured by the MIL executor on "
                     f"{len(calibration.pixels)} calibration images; the classifier's linear stays float)")
        if float_layers:
            notes.append(f"kept in float: {', '.join(float_layers)}")
    if quant in ("int8", "int8-weights"):
        notes.append(f"int8 weights (per-channel symmetric, tensors of >= {INT8_WEIGHT_THRESHOLD} elements), "
                     "fp16 compute")
    if quant in PALETTES:
        notes.append(f"{PALETTES[quant]}-bit palettized weights (k-means lookup table per tensor, tensors of >= "
                     f"{INT8_WEIGHT_THRESHOLD} elements), fp16 compute")
    if compressed and fp32_ops:
        notes.append(f"fp16 program; kept in fp32: {', '.join(sorted(fp32_ops))}")
    return notes


@dataclass(frozen=True)
class CalibrationImages:
    pixels: np.ndarray        # N, H, W, 3 uint8: what an image input receives
    inputs: np.ndarray        # N, 3, H, W float32, normalised: what a tensor input receives

    def feeds(self, input_kind: str) -> Iterator[dict[str, np.ndarray]]:
        name = "image" if input_kind == "image" else "input"
        for i in range(len(self.pixels)):
            yield {name: program_input(input_kind, self.pixels, self.inputs, i)}


def program_input(input_kind: str, pixels: np.ndarray, inputs: np.ndarray, i: int) -> np.ndarray:
    """What the program's input receives for image i: 0-255 pixels as NCHW float for an image
    input, the normalised tensor otherwise."""
    if input_kind == "image":
        return pixels[i:i + 1].transpose(0, 3, 1, 2).astype(np.float32)
    return inputs[i:i + 1].astype(np.float32)


def _int8_weights(mlmodel, float_weights: Sequence[str] = ()):
    """Per-output-channel symmetric int8 weights (coremltools linear_quantize_weights); the
    program dequantizes them with constexpr ops, so compute stays as converted. The consts named
    in `float_weights` stay as they are."""
    from coremltools.optimize.coreml import OpLinearQuantizerConfig, OptimizationConfig, linear_quantize_weights

    config = OptimizationConfig(global_config=OpLinearQuantizerConfig(
        mode="linear_symmetric", dtype="int8", granularity="per_channel", weight_threshold=INT8_WEIGHT_THRESHOLD),
        op_name_configs={name: None for name in float_weights})
    return linear_quantize_weights(mlmodel, config=config)


def _palettize(mlmodel, nbits: int):
    """k-means palettization per tensor (coremltools palettize_weights): iOS 16's
    constexpr_lut_to_dense, so every deployment target can load it."""
    from coremltools.optimize.coreml import OpPalettizerConfig, OptimizationConfig, palettize_weights

    config = OptimizationConfig(global_config=OpPalettizerConfig(
        mode="kmeans", nbits=nbits, granularity="per_tensor", weight_threshold=INT8_WEIGHT_THRESHOLD))
    return palettize_weights(mlmodel, config=config)


def _describe(mlmodel, metadata: dict[str, str], preprocessing: Preprocessing, input_kind: str) -> None:
    pre = preprocessing
    mlmodel.short_description = (f"{metadata.get('effconvert.arch')} image classifier "
                                 f"({metadata.get('effconvert.quant')}), converted by effconvert")
    mlmodel.author = "effconvert"
    mlmodel.version = metadata.get("effconvert.version", "")
    mlmodel.user_defined_metadata.update(metadata)
    h, w = pre.size
    if input_kind == "image":
        mlmodel.input_description["image"] = (
            f"RGB image {w}x{h}, pixels 0-255 (normalisation is inside the model). From a photo: "
            f"resize the short side to {int(h / pre.crop_pct)} ({pre.interpolation}), center-crop {w}x{h}.")
    else:
        mlmodel.input_description["input"] = (
            f"float32 NCHW {pre.input_size}: (pixel/255 - mean) / std, mean {pre.mean}, std {pre.std}")
    mlmodel.output_description["logits"] = "raw class scores before softmax"
