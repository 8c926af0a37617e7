"""Which ops of a saved Core ML program are likely to leave the Neural Engine, by published rules.

No complete public list exists (placement depends on the chip, the OS and tensor sizes:
apple/coremltools#1780); each rule here carries its source, from data/ane_rules.md (its sources inside), and a
verdict is "likely", never a fact. On macOS, MLComputePlan reports the real placement.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..runtime.mil.program import MappedConstant, Operation, Program, TensorSpec


@dataclass(frozen=True)
class Rule:
    number: int
    text: str
    source: str


RULES = {
    r.number: r
    for r in (
        Rule(
            1,
            "tensor rank above 5 (Core ML refuses rank 6 altogether)",
            "apple/coremltools#1723, #1330; apple/coreai-models neural_engine_rules.md",
        ),
        Rule(
            2,
            "fp32 compute or an fp32 constant: the Neural Engine computes fp16/int8",
            "apple/coreai-models neural_engine_rules.md; coremltools docs, typed execution",
        ),
        Rule(
            5,
            "gather, dilated convolution, pooling with kernel > 13 or stride > 2, upsampling > 2x",
            "hollance/neural-engine docs/unsupported-layers.md; apple/coremltools#1780",
        ),
        Rule(6, "topk and ops consuming its indices", "roboflow/rf-detr PR #1495 (MLComputePlan)"),
        Rule(7, "gather_nd with a 3-D result", "apple/coreai-models common_issues.md"),
    )
}
# Rule 3 (64-byte last-axis rows) is a cost, not a placement: features.py pads the bytes it moves.
PADDING_RULE = Rule(
    3,
    "the last axis is laid out in 64-byte rows (a last dim below 32 fp16 elements is padded)",
    "apple/coreai-models neural_engine_rules.md; Apple ML research, Deploying Transformers on the Apple Neural Engine",
)

FLOAT32 = "FLOAT32"
# Casts at the program's edges convert the fp32 I/O Core ML hands over; they are not the model's compute.
EDGE_OPS = ("cast",)


def placement(op: Operation, program: Program, specs: dict[str, TensorSpec]) -> Rule | None:
    """The rule that sends `op` off the Neural Engine, or None (likely runs on it)."""
    for _, spec in op.outputs:
        if spec.rank is not None and spec.rank > 5:
            return RULES[1]
    if op.type in EDGE_OPS and _at_edge(op, program):
        return None
    out_dtypes = {spec.dtype for _, spec in op.outputs}
    if FLOAT32 in out_dtypes or any(
        program.constant_types.get(name, TensorSpec("", None)).dtype == FLOAT32
        and _is_tensor(program.constant_types[name])
        for name in _names(op)
    ):
        return RULES[2]
    if op.type in ("gather", "gather_along_axis") or (op.type == "gather_nd" and _out_rank(op) == 3):
        return RULES[7] if op.type == "gather_nd" else RULES[5]
    if op.type == "topk":
        return RULES[6]
    if op.type == "conv" and _max_value(op, "dilations", program) > 1:
        return RULES[5]
    if op.type in ("max_pool", "avg_pool", "l2_pool") and (
        _max_value(op, "kernel_sizes", program) > 13 or _max_value(op, "strides", program) > 2
    ):
        return RULES[5]
    if (
        op.type.startswith("upsample")
        and max(_max_value(op, "scale_factor_height", program), _max_value(op, "scale_factor_width", program)) > 2
    ):
        return RULES[5]
    return None


def _names(op: Operation) -> list[str]:
    return [value for args in op.inputs.values() for kind, value in args if kind == "name"]


def _at_edge(op: Operation, program: Program) -> bool:
    return any(name in program.inputs for name in _names(op)) or any(name in program.outputs for name, _ in op.outputs)


def _is_tensor(spec: TensorSpec) -> bool:
    """A weight, not a scalar parameter (an fp32 epsilon or scale on an fp16 op is cast in place)."""
    return spec.shape is not None and any((d or 1) > 1 for d in spec.shape)


def _out_rank(op: Operation) -> int:
    return max((spec.rank or 0) for _, spec in op.outputs)


def argument(op: Operation, arg: str, program: Program):
    """An op's argument value: inline, or the constant it names (parameters are usually consts)."""
    for kind, value in op.inputs.get(arg, []):
        if kind == "name":
            value = program.constants.get(value)
        if value is not None:
            return value.tensor() if isinstance(value, MappedConstant) else value
    return None


def _max_value(op: Operation, arg: str, program: Program) -> float:
    value = argument(op, arg, program)
    try:
        return float(value.max())
    except (AttributeError, TypeError, ValueError, RuntimeError):
        return float(value) if isinstance(value, (int, float)) else 0.0
