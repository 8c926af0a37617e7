"""Core ML quantizers: int8 weights, W8A8 (calibrated on Linux) and palettized weights.

`compress(mlmodel, plan)` applies what the plan asks for to a float ML Program:

    int8          activations (below) + per-channel int8 weights, float layers left alone
    int8-weights  per-channel int8 weights (constexpr dequantize), fp16 compute
    pal6 / pal4   k-means palettized weights (a 64- or 16-entry lookup table per tensor)

W8A8 on Linux: coremltools' activation-quantization passes, fed with ranges we measure.

coremltools' `linear_quantize_activations` gets its per-tensor min/max by calling
`MLModel.predict`, which exists only on macOS. The passes that then insert the quantize/dequantize
pairs only need those ranges, so here they come from running the float program on our MIL
executor over the calibration inputs (coreml_ranges.py). Everything else is
coremltools' own: the same passes, the same patterns, the same concat rule.

Layers the caller names (`float_layers`, module paths of the fused model: the float fallback of an
artifact that missed its gate) stay float as well, activations and weights. The PyTorch frontend
names each weight const after its parameter (`model.<module path>.weight`, `_to_fp16` once cast),
which is how a module path finds its conv/linear op.

The op that writes a program output (the classifier's linear) stays float: the passes cannot put a
quantize/dequantize pair behind a block output, and 8-bit logits would cost the most accuracy. So
do the family's fp32 islands (EfficientViT's attention): their tensors cannot take the passes' fp16
scales, and they are fp32 because fp16 was measured not to be enough for them.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from .plan import QuantPlan

INT8_WEIGHT_THRESHOLD = 2048  # coremltools' default: smaller tensors (biases, norms) stay fp16
PALETTES = {"pal6": 6, "pal4": 4}  # `--palettize N`: weights as 2^N-entry lookup tables


def compress(mlmodel, plan: QuantPlan, *, input_kind: str, module_prefix: str):
    """Return `mlmodel` with the plan's weights and activations quantized (fp32 and fp16 unchanged).
    `module_prefix`: the attribute under which the converted wrapper holds the model, so that a
    float layer's module path finds its weight const."""
    kept: dict[str, tuple[str, str]] = {}
    if plan.quant == "int8":
        if plan.calibration is None or len(plan.calibration) == 0:
            raise ValueError("Core ML int8 needs calibration images")
        kept = layer_ops(mlmodel._mil_program.functions["main"], plan.float_layers, module_prefix)
        mlmodel = quantize_activations(
            mlmodel, plan.calibration.feeds(input_kind), float_ops=[op for op, _ in kept.values()]
        )
    if plan.quant in ("int8", "int8-weights"):
        mlmodel = int8_weights(mlmodel, float_weights=[weight for _, weight in kept.values()])
    if plan.quant in PALETTES:
        mlmodel = palettize(mlmodel, PALETTES[plan.quant])
    return mlmodel


def notes(plan: QuantPlan) -> list[str]:
    """What the report says this quantizer did."""
    found = []
    if plan.quant == "int8":
        found.append(
            f"W8A8: int8 activations (per-tensor symmetric, ranges measured by the MIL executor on "
            f"{len(plan.calibration or ())} calibration images; the classifier's linear stays float)"
        )
        if plan.float_layers:
            found.append(f"kept in float: {', '.join(plan.float_layers)}")
    if plan.quant in ("int8", "int8-weights"):
        found.append(
            f"int8 weights (per-channel symmetric, tensors of >= {INT8_WEIGHT_THRESHOLD} elements), fp16 compute"
        )
    if plan.quant in PALETTES:
        found.append(
            f"{PALETTES[plan.quant]}-bit palettized weights (k-means lookup table per tensor, tensors "
            f"of >= {INT8_WEIGHT_THRESHOLD} elements), fp16 compute"
        )
    return found


def int8_weights(mlmodel, float_weights: Sequence[str] = ()):
    """Per-output-channel symmetric int8 weights (coremltools linear_quantize_weights); the
    program dequantizes them with constexpr ops, so compute stays as converted. The consts named
    in `float_weights` stay as they are."""
    from coremltools.optimize.coreml import OpLinearQuantizerConfig, OptimizationConfig, linear_quantize_weights

    config = OptimizationConfig(
        global_config=OpLinearQuantizerConfig(
            mode="linear_symmetric", dtype="int8", granularity="per_channel", weight_threshold=INT8_WEIGHT_THRESHOLD
        ),
        op_name_configs={name: None for name in float_weights},
    )
    return linear_quantize_weights(mlmodel, config=config)


def palettize(mlmodel, nbits: int):
    """k-means palettization per tensor (coremltools palettize_weights): iOS 16's
    constexpr_lut_to_dense, so every deployment target can load it."""
    from coremltools.optimize.coreml import OpPalettizerConfig, OptimizationConfig, palettize_weights

    config = OptimizationConfig(
        global_config=OpPalettizerConfig(
            mode="kmeans", nbits=nbits, granularity="per_tensor", weight_threshold=INT8_WEIGHT_THRESHOLD
        )
    )
    return palettize_weights(mlmodel, config=config)


def layer_ops(function, layers: Iterable[str], module_prefix: str) -> dict[str, tuple[str, str]]:
    """{module path: (conv/linear op name, weight const name)} for each of `layers` in `function`.
    Raises if a layer has no op: a silently quantized "float" layer would be a lie in the report."""
    by_weight = {}
    for op in function.operations:
        weight = op.inputs.get("weight") if op.op_type in ("conv", "linear") else None
        if weight is not None and weight.op is not None:
            by_weight[_sanitized(weight.name.removesuffix("_to_fp16"))] = (op.name, weight.op.name)
    missing = [name for name in layers if _sanitized(f"{module_prefix}.{name}.weight") not in by_weight]
    if missing:
        raise ValueError(f"no Core ML op for layer(s) {', '.join(missing)}")
    return {name: by_weight[_sanitized(f"{module_prefix}.{name}.weight")] for name in layers}


def _sanitized(name: str) -> str:
    """A saved program's names have every non-word character replaced by '_' (coremltools'
    NameSanitizer), an unsaved one keeps the frontend's dots: compare both the same way."""
    return re.sub(r"\W", "_", name)


def quantize_activations(mlmodel, feeds: Iterable[Mapping[str, np.ndarray]], float_ops: Iterable[str] = ()):
    """Return `mlmodel` (float ML Program) with int8 activations calibrated on `feeds`; the ops
    named in `float_ops` (see layer_ops) keep float inputs and outputs.

    Private coremltools APIs (no public equivalent): the public `linear_quantize_activations`
    measures activation ranges with `MLModel.predict`, which runs on macOS only, and leaks a
    temporary package per op group (apple/coremltools#2670). So the ranges are measured by the MIL
    executor and handed to coremltools' own insertion passes through PASS_REGISTRY and
    `model_utils._apply_graph_pass`, reading the program from `mlmodel._mil_program`. The Linux
    calibration itself has no upstream issue yet: docs/guides/upstream.md names it."""
    from coremltools import _SPECIFICATION_VERSION_IOS_17
    from coremltools.converters.mil.frontend.milproto import load as milproto_load
    from coremltools.converters.mil.mil.passes.graph_pass import PassOption
    from coremltools.converters.mil.mil.passes.pass_registry import PASS_REGISTRY
    from coremltools.models import utils as model_utils
    from coremltools.optimize.coreml import OpLinearQuantizerConfig, OptimizationConfig

    stats = _measured_stats(mlmodel, feeds)
    outputs = {o.name for o in mlmodel.get_spec().description.output}
    main = mlmodel._mil_program.functions["main"]
    kept = {op.name: None for op in main.operations if _stays_float(op, outputs)}
    kept.update(dict.fromkeys(float_ops))
    _share_concat_ranges(main, stats)
    config = OptimizationConfig(
        global_config=OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8"), op_name_configs=kept
    )
    passes = []
    for name in (
        "compression::insert_prefix_quantize_dequantize_pair",
        "compression::insert_suffix_quantize_dequantize_pair",
    ):
        graph_pass = PASS_REGISTRY[name]
        graph_pass.set_options([PassOption("config", config)])
        graph_pass.set_options([PassOption("activation_stats", stats)])
        passes.append(graph_pass)
    passes.append(PASS_REGISTRY["common::dequantize_quantize_pair_elimination"])
    return model_utils._apply_graph_pass(
        mlmodel,
        passes,
        spec_version=_SPECIFICATION_VERSION_IOS_17,
        pymil_load_func=milproto_load.load,
        skip_model_load=True,
    )


def _stays_float(op, outputs: set[str]) -> bool:
    """The op writing a program output, and ops of the family's fp32 islands: coremltools'
    passes give every quantize an fp16 scale, which an fp32 tensor cannot take."""
    from coremltools.converters.mil.mil import types

    if any(o.name in outputs for o in op.outputs):
        return True
    values = [*op.outputs]
    for value in op.inputs.values():
        values.extend(value if isinstance(value, (list, tuple)) else [value])
    return any(types.is_tensor(v.sym_type) and v.dtype == types.fp32 for v in values if hasattr(v, "sym_type"))


def _measured_stats(mlmodel, feeds) -> dict[str, dict[str, np.float32]]:
    """{tensor: {"rmin", "rmax"}} from the float program run by the MIL executor."""
    from ..runtime.mil import MILExecutor
    from .coreml_ranges import activation_ranges

    with tempfile.TemporaryDirectory(prefix="effconvert-calib-") as tmp:
        path = Path(tmp) / "float.mlpackage"
        mlmodel.save(str(path))
        ranges = activation_ranges(MILExecutor(path), feeds)
    if not ranges:
        raise ValueError("no calibration input reached the program")
    return {
        name: dict(zip(("rmin", "rmax"), map(np.float32, r.quantizer_range()), strict=True))
        for name, r in ranges.items()
    }


def _share_concat_ranges(function, stats: dict) -> None:
    """Inputs and output of a concat get one range (coremltools' rule, so the pair is shared)."""
    groups: list[set[str]] = []
    for op in function.operations:
        if op.op_type != "concat":
            continue
        names = {v.name for v in op.values} | {op.outputs[0].name}
        for group in [g for g in groups if g & names]:
            names |= group
            groups.remove(group)
        groups.append(names)
    for group in groups:
        known = [stats[n] for n in group if n in stats]
        if not known:
            continue
        shared = {"rmin": min(s["rmin"] for s in known), "rmax": max(s["rmax"] for s in known)}
        for name in group:
            if name in stats:
                stats[name] = dict(shared)
