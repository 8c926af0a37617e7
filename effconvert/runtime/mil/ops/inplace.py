"""In-place twins of the elementwise ops whose input dies at them.

The executor calls a twin instead of the op when the op's `x` (or, for add and mul, `y`) is read by
no later op and no other live value shares its storage: the output then reuses the input's memory
instead of allocating an activation-sized tensor beside it. Each twin gives bitwise the values of
its op (same kernels; add and mul are commutative in IEEE arithmetic; GELU's factors are multiplied
in another order, x * e * 0.5 == e * x * 0.5, a product of two values then a power of two) in the
memory layout the op would give (the next op's kernel depends on it).

GELU works through its input in chunks with the op's own factor (elementwise.gelu_factor), so its
one temporary is a chunk, not the whole tensor.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .elementwise import gelu_factor

CHUNK = 1 << 18  # elements per step: a 1 MB float32 temporary (faster than 256 KB, measured)
LARGE = 1 << 14  # elements from which computing in place is worth its checks

Twin = Callable[..., torch.Tensor]


def flat(x: torch.Tensor) -> torch.Tensor | None:
    """A 1-D view of all of x's elements in memory order, when x is laid out densely (contiguous or
    channels-last, the layouts convolutions give), else None. Elementwise work on it is work on x."""
    if x.is_contiguous():
        return x.view(-1)
    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
        return x.permute(0, 2, 3, 1).view(-1)
    return None


def _gelu_(x: torch.Tensor, mode: str = "EXACT") -> torch.Tensor | None:
    elements = flat(x)
    if mode not in ("EXACT", "TANH_APPROXIMATION") or elements is None:
        return None
    for chunk in elements.split(CHUNK):
        chunk.mul_(gelu_factor(chunk, mode)).mul_(0.5)
    return x


UNARY: dict[str, Twin] = {
    "relu": torch.relu_,
    "sigmoid": torch.sigmoid_,
    "tanh": torch.tanh_,
    "exp": torch.exp_,
    "sqrt": torch.sqrt_,
    "abs": torch.abs_,
    "erf": torch.erf_,
    "square": torch.square_,
    "sin": torch.sin_,
    "cos": torch.cos_,
}
BINARY: dict[str, Twin] = {
    "add": torch.Tensor.add_,
    "sub": torch.Tensor.sub_,
    "mul": torch.Tensor.mul_,
    "real_div": torch.Tensor.div_,
}
COMMUTATIVE = {"add", "mul"}


def run_in_place(op_type: str, target: str, args: dict) -> torch.Tensor | None:
    """The op computed into args[target] (which must be the float32 tensor that dies here), or None
    when this op and these arguments have no in-place twin (the caller then runs the op itself)."""
    x = args[target]
    if op_type == "gelu" and target == "x":
        return _gelu_(x, args.get("mode", "EXACT"))
    if op_type in UNARY and target == "x" and set(args) == {"x"}:
        return UNARY[op_type](x)
    if op_type in BINARY and set(args) == {"x", "y"}:
        other = args["y" if target == "x" else "x"]
        if target == "y" and op_type not in COMMUTATIVE:
            return None
        if torch.is_tensor(other) and not _keeps_layout(x, other, first=target == "x"):
            return None
        if not torch.is_tensor(other) and not isinstance(other, (int, float)):
            return None
        return BINARY[op_type](x, other)
    return None


def _keeps_layout(x: torch.Tensor, other: torch.Tensor, *, first: bool) -> bool:
    """Whether x <op>= other leaves the output in the memory layout the op itself would give it.
    Layout is not cosmetic: the next op's kernel depends on it (a depthwise conv on a channels-last
    tensor rounds differently from the same values laid out contiguous). The op's output follows
    the full-size operands' layout, the first one's when two disagree; a broadcast operand is
    ignored only when x comes first (torch.add(o, x) may lay out differently from x, tested)."""
    if (
        other.dtype != torch.float32
        or other.dim() > x.dim()
        or any(o != 1 and o != s for o, s in zip(reversed(other.shape), reversed(x.shape)))
    ):
        return False  # the output would be larger than x
    if other.numel() == 1:
        return True
    if other.shape == x.shape:
        return other.stride() == x.stride()
    return first


def candidates(op_type: str) -> tuple[str, ...]:
    """The arguments an op could be computed into, in the order to try them."""
    if op_type == "gelu" or op_type in UNARY:
        return ("x",)
    if op_type in BINARY:
        return ("x", "y") if op_type in COMMUTATIVE else ("x",)
    return ()
