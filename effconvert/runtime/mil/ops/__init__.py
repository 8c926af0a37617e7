"""MIL op semantics in torch, one function per op type, from coremltools' op definitions
(coremltools/converters/mil/mil/ops/defs/iOS15..iOS18). Each takes the op's resolved inputs as
keyword arguments (tensors, Python lists for tuple inputs, strings) plus `op` (for declared output
types) and returns one value or a tuple, in the op's output order.

Computation is float32; the executor rounds each output to its declared dtype afterwards.
One module per op group; `OPS` maps every registered op type to its function.
"""

from . import conv, elementwise, linalg, norm, outputs, quant, reduce, shape  # noqa: F401 (registers)
from .registry import OPS, OpFn, op

__all__ = ["OPS", "OpFn", "op"]
