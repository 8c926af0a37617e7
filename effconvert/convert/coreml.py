"""Core ML: an ML Program `.mlpackage` with an image input, a classifier output and provenance.

    fused model -> ImageClassifier wrapper (normalise in-graph, softmax + logits)
    -> torch.jit.trace -> MIL (fp32, or fp16 with the family's fp16-fragile ops kept fp32)
    -> classifier attached in a second pass -> the plan's quantizer (quantize/coreml.py: int8
    activations and weights, palettized weights) -> metadata -> .mlpackage (atomic)

int8 (W8A8) needs iOS 17's quantize/dequantize ops: a lower `--ios` is raised for that artifact,
and the report says so.

The second pass works around coremltools 9.0 failing (IndexError in `get_func_output`) when a
classifier model has more outputs than the probabilities and `output_types` is set, which it
always is for fp16: converting to MIL first and attaching the classifier to the program avoids it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from ..atomic import atomic_path
from ..errors import BadInput, ConversionFailed
from ..load.preprocessing import Preprocessing
from ..quantize import QuantPlan
from ..quantize import coreml as quantizer
from ..quiet import first_line, quiet
from ..stopwatch import Stopwatch
from ..targets import ExportOptions
from .metadata import ModelInfo
from .wrappers import WRAPPED_MODEL, ImageClassifier

W8A8_MIN_IOS = 17


def export_coreml(
    model: torch.nn.Module,
    preprocessing: Preprocessing,
    labels: Sequence[str],
    out: Path,
    *,
    metadata: dict[str, str],
    plan: QuantPlan,
    ios: int = 16,
    input_kind: str = "image",
    clock: Stopwatch | None = None,
) -> list[str]:
    """Write `out` (.mlpackage); return notes for the report (e.g. ops kept in fp32)."""
    quant = plan.quant
    if quant == "int8" and (plan.calibration is None or len(plan.calibration) == 0):
        raise ConversionFailed("Core ML int8 needs calibration images")
    notes = []
    if quant == "int8" and ios < W8A8_MIN_IOS:
        notes.append(
            f"minimum deployment target raised from iOS {ios} to iOS {W8A8_MIN_IOS}: "
            "int8 activations need its quantize/dequantize ops"
        )
        ios = W8A8_MIN_IOS
    fp32_ops = plan.fp32_ops
    compressed = quant != "fp32"  # fp16 compute around int8 or palettized weights
    clock = clock or Stopwatch()
    with quiet():
        with clock.running():  # importing the converter is part of what a raw script pays
            import coremltools as ct

        target = {16: ct.target.iOS16, 17: ct.target.iOS17, 18: ct.target.iOS18}[ios]
        c, h, w = preprocessing.input_size
        wrapper = ImageClassifier(model, preprocessing if input_kind == "image" else None).eval()
        try:
            with clock.running():  # trace + both ct.convert calls: the raw toolchain
                traced = torch.jit.trace(wrapper, torch.rand(1, c, h, w), check_trace=False)
                if input_kind == "image":
                    inputs = [
                        ct.ImageType(
                            name="image",
                            shape=(1, c, h, w),
                            scale=1.0 / 255.0,
                            bias=[0.0, 0.0, 0.0],
                            color_layout=ct.colorlayout.RGB,
                        )
                    ]
                else:
                    inputs = [ct.TensorType(name="input", shape=(1, c, h, w))]
                precision = ct.precision.FLOAT32
                if compressed:
                    keep = frozenset(fp32_ops)
                    precision = ct.transform.FP16ComputePrecision(op_selector=lambda op: op.op_type not in keep)
                program = ct.convert(
                    traced,
                    inputs=inputs,
                    outputs=[ct.TensorType(name="probabilities"), ct.TensorType(name="logits")],
                    convert_to="milinternal",
                    minimum_deployment_target=target,
                    compute_precision=precision,
                )
                program.functions["main"].output_types = None
                mlmodel = ct.convert(
                    program,
                    convert_to="mlprogram",
                    minimum_deployment_target=target,
                    compute_precision=ct.precision.FLOAT32,
                    classifier_config=ct.ClassifierConfig(list(labels), predicted_probabilities_output="probabilities"),
                )
                mlmodel = quantizer.compress(mlmodel, plan, input_kind=input_kind, module_prefix=WRAPPED_MODEL)
        except BadInput:
            raise
        except Exception as exc:  # coremltools raises many types; the message names the op
            raise ConversionFailed(f"Core ML conversion failed: {first_line(exc)}") from exc
        _describe(mlmodel, metadata, preprocessing, input_kind)
        with atomic_path(out) as tmp, clock.running():
            mlmodel.save(str(tmp))
    notes += quantizer.notes(plan)
    if compressed and fp32_ops:
        notes.append(f"fp16 program; kept in fp32: {', '.join(sorted(fp32_ops))}")
    return notes


def _describe(mlmodel, metadata: dict[str, str], preprocessing: Preprocessing, input_kind: str) -> None:
    pre = preprocessing
    mlmodel.short_description = (
        f"{metadata.get('effconvert.arch')} image classifier "
        f"({metadata.get('effconvert.quant')}), converted by effconvert"
    )
    mlmodel.author = "effconvert"
    mlmodel.version = metadata.get("effconvert.version", "")
    mlmodel.user_defined_metadata.update(metadata)
    h, w = pre.size
    if input_kind == "image":
        mlmodel.input_description["image"] = (
            f"RGB image {w}x{h}, pixels 0-255 (normalisation is inside the model). From a photo: "
            f"resize the short side to {int(h / pre.crop_pct)} ({pre.interpolation}), center-crop {w}x{h}."
        )
    else:
        mlmodel.input_description["input"] = (
            f"float32 NCHW {pre.input_size}: (pixel/255 - mean) / std, mean {pre.mean}, std {pre.std}"
        )
    mlmodel.output_description["logits"] = "raw class scores before softmax"


def export(
    model: torch.nn.Module,
    info: ModelInfo,
    sample: torch.Tensor,
    out: Path,
    *,
    plan: QuantPlan,
    options: ExportOptions,
    metadata: dict[str, str],
    clock: Stopwatch,
) -> list[str]:
    """The target table's entry point (convert/__init__.py)."""
    return export_coreml(
        model,
        info.preprocessing,
        info.labels,
        out,
        metadata=metadata,
        plan=plan,
        ios=options.ios,
        input_kind=options.input_kind,
        clock=clock,
    )


def input_layout(options: ExportOptions) -> str:
    return "image" if options.input_kind == "image" else "nchw"


def read_metadata(path: Path) -> dict[str, str]:
    with quiet():
        import coremltools as ct

        return dict(ct.utils.load_spec(str(path)).description.metadata.userDefined)
