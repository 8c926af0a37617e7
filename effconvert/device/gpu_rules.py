"""Whether LiteRT's GPU delegate takes a TFLite op: the delegate's own compatibility rules, restated.

The GPU delegate decides op by op with CheckGpuDelegateCompatibility (LiteRT,
tflite/tools/versioning/gpu_compatibility.cc; its default, non-enhanced broadcasting): an op type it
has no parser for stays on the CPU, and an op it has one for stays there when a rule below fails.
These are those rules, in our words, for the op types LiteRT has them for; each failure message
names the rule. LiteRT's Python ModelAnalyzer once reported the same per op, but its GPU check is
deprecated and now says every model is compatible (tensorflow/tensorflow#77042; measured with
ai-edge-litert 2.3.0 on graphs with CUMSUM and STABLEHLO_SORT) — so the rules are read here.
"""

from __future__ import annotations

from collections.abc import Callable

from .tflite_ops import Op, TensorSpec

SOURCE = "LiteRT GPU delegate compatibility rules (tflite/tools/versioning/gpu_compatibility.cc)"

SIGN_BIT = 5  # ActivationFunctionType.SIGN_BIT: the one fused activation the delegate cannot apply

ONE_OPERAND = {
    *("ABS", "CEIL", "COS", "ELU", "EXP", "FLOOR", "GELU", "LOG", "LOGICAL_NOT", "LOGISTIC"),
    *("NEG", "ROUND", "RSQRT", "SIGN", "SIN", "SQRT", "SQUARE", "TANH"),
}
TWO_OPERANDS = {
    *("ATAN2", "DIV", "EQUAL", "FLOOR_DIV", "FLOOR_MOD", "GREATER", "GREATER_EQUAL", "LOGICAL_AND"),
    *("LOGICAL_OR", "LESS", "LESS_EQUAL", "MAXIMUM", "MINIMUM", "NOT_EQUAL", "POW"),
    *("SQUARED_DIFFERENCE", "SUB"),
}
ALWAYS = {"CONCATENATION", "PACK", "PRELU", "RELU", "RELU6", "RELU_N1_TO_1", "LEAKY_RELU", "SPLIT", "SPLIT_V"}
REDUCTIONS = {"REDUCE_ALL", "REDUCE_ANY", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD", "SUM"}
CUSTOM = {"Convolution2DTransposeBias", "MaxPoolingWithArgmax2D", "MaxUnpooling2D", "Resampler"}


def why_not(op: Op) -> str | None:
    """None if the GPU delegate takes `op`; else the rule it fails, in one line."""
    if op.custom:
        return None if op.type in CUSTOM else f"custom op {op.type} has no GPU implementation"
    if op.type in ALWAYS:
        return None
    if op.type in ONE_OPERAND:
        return _operands(op, runtime=1, constant=0)
    if op.type in TWO_OPERANDS:
        two = _operands(op, runtime=2, constant=0)
        return (two and _operands(op, runtime=1, constant=1) and "takes 1 or 2 operands") or _activation(op)
    rule = RULES.get(op.type)
    if rule is None:
        return f"{op.type} is not an op the GPU delegate implements"
    return rule(op)


def _operands(op: Op, *, runtime: int, constant: int) -> str | None:
    if op.runtime_inputs != runtime or op.constant_inputs != constant or len(op.outputs) != 1:
        return (
            f"expects {runtime} runtime and {constant} constant input(s) and 1 output; has "
            f"{op.runtime_inputs}, {op.constant_inputs} and {len(op.outputs)}"
        )
    return None


def _activation(op: Op) -> str | None:
    return "a fused SIGN_BIT activation" if op.options.get("FusedActivationFunction") == SIGN_BIT else None


def _broadcast(a: TensorSpec, b: TensorSpec) -> str | None:
    """Two tensors of different ranks (both above 1): only 3D to 4D with batch 1, [1,1] to 4D with
    batch 1, and [b,c] to [b,x,y,c] broadcast."""
    if a.rank <= 1 or b.rank <= 1 or a.rank == b.rank:
        return None
    long, short = (a, b) if a.rank >= b.rank else (b, a)
    ok = (long.rank == 4 and short.rank == 3 and long.shape[0] == 1) or (
        long.rank == 4
        and short.rank == 2
        and (
            (long.shape[0] == 1 and short.shape == (1, 1))
            or (long.shape[0] == short.shape[0] and long.shape[3] == short.shape[1])
        )
    )
    return None if ok else f"broadcasting {list(a.shape)} with {list(b.shape)}"


def _add(op: Op) -> str | None:
    if len(op.inputs) != 2 or None in op.inputs:
        return "ADD takes two input tensors"
    a, b = op.inputs
    assert a is not None and b is not None
    return _broadcast(a, b)


def _mul(op: Op) -> str | None:
    if len(op.inputs) != 2 or None in op.inputs:
        return "MUL takes two input tensors"
    a, b = op.inputs
    assert a is not None and b is not None
    return _broadcast(a, b) or _activation(op)


def _convolution(op: Op) -> str | None:
    if op.runtime_inputs > 2 or len(op.outputs) != 1:
        return "a convolution takes 1 or 2 runtime inputs and 1 output"
    options = op.options
    if min(options.get("StrideH", 1), options.get("StrideW", 1)) <= 0:
        return "strides must be positive"
    if min(options.get("DilationHFactor", 1), options.get("DilationWFactor", 1)) <= 0:
        return "dilations must be positive"
    return _activation(op)


def _depthwise(op: Op) -> str | None:
    problem = _convolution(op)
    if problem:
        return problem
    source, weights = op.inputs[0], op.inputs[1]
    out = op.outputs[0]
    if source is None or weights is None or source.rank != 4 or weights.rank != 4 or out.rank != 4:
        return "input, filter and output must be 4D"
    multiplier = op.options.get("DepthMultiplier", 1)
    if weights.shape[3] != out.shape[3] or out.shape[3] != source.shape[3] * multiplier:
        return "output channels must be the filter's, and the input's times the depth multiplier"
    return None


def _pool(op: Op) -> str | None:
    options = op.options
    if op.runtime_inputs != 1 or len(op.outputs) != 1:
        return "pooling takes 1 input and 1 output"
    sizes = (options.get("FilterHeight", 1), options.get("FilterWidth", 1), options.get("StrideH", 1))
    if min(*sizes, options.get("StrideW", 1)) <= 0:
        return "kernel and strides must be positive"
    return _activation(op)


def _fully_connected(op: Op) -> str | None:
    if op.options.get("WeightsFormat", 0) != 0:
        return "shuffled weights (a non-default weights format)"
    if op.runtime_inputs > 2:
        return "more than 2 runtime inputs"
    if op.options.get("KeepNumDims") and op.inputs[0] is not None and op.inputs[0].rank != op.outputs[0].rank:
        return "keep_num_dims with input and output of different ranks"
    return None


def _axes(op: Op) -> str | None:
    axes = op.inputs[1] if len(op.inputs) > 1 else None
    if axes is None or not axes.constant:
        return f"{op.type} takes constant axes only"
    return None if axes.type == "INT32" else f"{op.type} takes int32 axes, not {axes.type}"


def _mean(op: Op) -> str | None:
    return _operands(op, runtime=1, constant=1) or _axes(op)


def _reduction(op: Op) -> str | None:
    if op.runtime_inputs != 1 or len(op.outputs) != 1:
        return f"{op.type} takes 1 runtime input and 1 output"
    return _axes(op)


def _pad(op: Op) -> str | None:
    if op.type == "MIRROR_PAD" and op.options.get("Mode", 0) != 0:
        return "MIRROR_PAD in SYMMETRIC mode (only REFLECT)"
    if op.runtime_inputs != 1 or len(op.outputs) != 1 or len(op.inputs) < 2 or op.inputs[1] is None:
        return "PAD takes 1 runtime input, its paddings and 1 output"
    paddings = op.inputs[1].shape
    if len(paddings) != 2 or paddings[0] not in (3, 4) or paddings[1] != 2:
        return f"paddings of shape {list(paddings)} (a 3D or 4D tensor's: 3x2 or 4x2)"
    return None


def _slice(op: Op) -> str | None:
    if len(op.inputs) < 3 or op.inputs[0] is None:
        return "SLICE takes 3 inputs"
    rank = op.inputs[0].rank
    return None if rank in (3, 4) else f"SLICE of a {rank}D tensor (3D or 4D only)"


def _strided_slice(op: Op) -> str | None:
    for mask in ("EllipsisMask", "NewAxisMask", "ShrinkAxisMask"):
        if op.options.get(mask):
            return f"STRIDED_SLICE with a {mask[:-4].lower()} mask"
    if len(op.inputs) < 4 or op.inputs[0] is None:
        return "STRIDED_SLICE takes 4 inputs"
    rank = op.inputs[0].rank
    return None if rank in (3, 4) else f"STRIDED_SLICE of a {rank}D tensor (3D or 4D only)"


def _softmax(op: Op) -> str | None:
    return None if op.options.get("Beta", 1.0) == 1.0 else "SOFTMAX with beta != 1"


def _resize_bilinear(op: Op) -> str | None:
    if op.options.get("AlignCorners") and op.options.get("HalfPixelCenters"):
        return "align_corners and half_pixel_centers together"
    return _one_in_one_out(op)


def _one_in_one_out(op: Op) -> str | None:
    if op.runtime_inputs != 1 or len(op.outputs) != 1:
        return f"{op.type} takes 1 runtime input and 1 output"
    return None


def _batch_matmul(op: Op) -> str | None:
    return None if len(op.inputs) == 2 and len(op.outputs) == 1 else "BATCH_MATMUL takes 2 inputs and 1 output"


def _gather(op: Op) -> str | None:
    if _operands(op, runtime=2, constant=0) and _operands(op, runtime=1, constant=1):
        return "GATHER takes 1 or 2 operands"
    indices = op.inputs[1]
    if indices is None or indices.rank != 1:
        return "GATHER with indices that are not 1D"
    return None if indices.type == "INT32" else "GATHER with indices that are not int32"


def _cast(op: Op) -> str | None:
    problem = _one_in_one_out(op)
    if problem or op.inputs[0] is None:
        return problem
    pair = (op.inputs[0].type, op.outputs[0].type)
    floats = ("FLOAT16", "FLOAT32")
    if (
        (pair[0] == "BOOL" and pair[1] in floats)
        or (pair[0] in floats and pair[1] == "BOOL")
        or (pair[0] in ("FLOAT32", "INT32") and pair[1] in ("FLOAT32", "INT32"))
    ):
        return None
    return f"CAST from {pair[0]} to {pair[1]}"


def _dequantize(op: Op) -> str | None:
    if len(op.inputs) != 1 or len(op.outputs) != 1:
        return "DEQUANTIZE takes 1 input and 1 output"
    source = op.inputs[0]
    return "DEQUANTIZE of int16" if source is not None and source.type == "INT16" else None


RULES: dict[str, Callable[[Op], str | None]] = {
    "ADD": _add,
    "MUL": _mul,
    "AVERAGE_POOL_2D": _pool,
    "MAX_POOL_2D": _pool,
    "BATCH_MATMUL": _batch_matmul,
    "CONV_2D": _convolution,
    "TRANSPOSE_CONV": _convolution,
    "DEPTHWISE_CONV_2D": _depthwise,
    "FULLY_CONNECTED": _fully_connected,
    "MEAN": _mean,
    **dict.fromkeys(REDUCTIONS, _reduction),
    **dict.fromkeys(("PAD", "PADV2", "MIRROR_PAD"), _pad),
    "SLICE": _slice,
    "STRIDED_SLICE": _strided_slice,
    "SOFTMAX": _softmax,
    "RESIZE_BILINEAR": _resize_bilinear,
    **dict.fromkeys(
        ("RESHAPE", "TRANSPOSE", "HARD_SWISH", "TILE", "QUANTIZE", "RESIZE_NEAREST_NEIGHBOR"), _one_in_one_out
    ),
    "GATHER": _gather,
    "CAST": _cast,
    "DEQUANTIZE": _dequantize,
}
