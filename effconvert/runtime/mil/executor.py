"""Execute a Core ML ML Program on Linux, op by op, in torch.

Faithfulness model: every op computes in float32 and its output is rounded to the dtype the
program declares (fp16 programs: each op's output is rounded to fp16). This bounds what a device
computes — Core ML's fp16 kernels may accumulate in fp16 inside an op, which this does not
reproduce bit for bit — and reproduces exactly the fp16 storage of every intermediate, the main
error source of fp16 programs.

Memory: an op whose input dies at it computes into that input when it can (ops/inplace.py), and
large outputs are rounded to fp16 in place; both give bitwise the values and layouts of the plain
path (tests/test_mil_inplace.py). `keep=True` holds every value and computes nothing in place.
Large fp16 weights are not held: each op widens them from the package's mapped weight.bin and
their pages are dropped after it (program.MappedConstant). The CLI, the bench's child and the
second process fix glibc's heap thresholds (heap.py) — a process-wide setting the executor itself
never changes: without it the same package's peak differed by up to 23 MB between processes.

Subnormal floats are flushed to zero while a program runs, as the ARM NEON and GPU kernels of a
device do. Without it, fp32 programs on mostly dark images (the digits) ran 37x slower on x86,
whose convolutions take a microcode path for every subnormal operand; no logit changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...errors import EffconvertError
from .ops import OPS, inplace
from .program import MappedConstant, Program, load_program, rank_violations

_HALF = {"FLOAT16"}


class UnsupportedProgram(EffconvertError):
    """The executor cannot run this program (unknown op, or a limit Core ML would refuse)."""

    exit_code = 1


class MILExecutor:
    name = "coreml-mil-executor"

    def __init__(self, path: Path | Program) -> None:
        self.program = path if isinstance(path, Program) else load_program(Path(path))
        unknown = sorted({op.type for op in self.program.operations if op.type not in OPS})
        if unknown:
            raise UnsupportedProgram(
                f"the MIL executor does not implement op(s): {', '.join(unknown)}; Core ML parity was not computed"
            )
        too_big = rank_violations(self.program)
        if too_big:
            raise UnsupportedProgram(
                f"Core ML refuses tensors of rank > 5: {too_big[0]}"
                + (f" (and {len(too_big) - 1} more)" if len(too_big) > 1 else "")
            )
        # Each op's inputs that no later op reads: dropped once it has run, so a forward pass holds
        # the live activations only, not every intermediate (keep=True, for localisation, holds all).
        last_use: dict[str, int] = {}
        for index, op in enumerate(self.program.operations):
            for bindings in op.inputs.values():
                for kind, value in bindings:
                    if kind == "name":
                        last_use[value] = index
        for name in self.program.outputs:
            last_use[name] = len(self.program.operations)
        self._released: list[list[str]] = [[] for _ in self.program.operations]
        for index, op in enumerate(self.program.operations):
            for name, _spec in op.outputs:
                if name not in last_use:  # computed, never read
                    self._released[index].append(name)
        for name, index in last_use.items():
            if index < len(self.program.operations):
                self._released[index].append(name)
        self._constant_storages = frozenset(_storage(v) for v in self.program.constants.values() if torch.is_tensor(v))
        # Values an op may overwrite when they die at it: op outputs (never an input, whose memory
        # may be the caller's array, nor a constant, which every run reads), bound once in the op.
        produced = {name for op in self.program.operations for name, _spec in op.outputs}
        self._reusable: list[tuple[tuple[str, str], ...]] = []
        for index, op in enumerate(self.program.operations):
            names = [value for bindings in op.inputs.values() for kind, value in bindings if kind == "name"]
            dying = set(self._released[index]) & produced
            self._reusable.append(
                tuple(
                    (arg, op.inputs[arg][0][1])
                    for arg in inplace.candidates(op.type)
                    if arg in op.inputs
                    and len(op.inputs[arg]) == 1
                    and op.inputs[arg][0][0] == "name"
                    and op.inputs[arg][0][1] in dying
                    and names.count(op.inputs[arg][0][1]) == 1
                )
            )

    def _overwritable(self, index: int, env: dict[str, Any], live: set[str], pinned: Set[int]) -> str | None:
        """The argument op `index` may compute into: a large float32 value that dies at this op and
        whose memory is not a constant's or an input's, nor shared with another live value (a view
        of it, or one it is a view of). Checked here, for the few candidates, not tracked per op."""
        for arg, name in self._reusable[index]:
            value = env[name]
            if (
                value.dtype != torch.float32
                or value.numel() < inplace.LARGE
                or inplace.flat(value) is None
                or _storage(value) in pinned
            ):
                continue
            storage = _storage(value)
            if not any(
                _storage(env[other]) == storage for other in live if other != name and torch.is_tensor(env[other])
            ):
                return arg
        return None

    def run(self, feeds: Mapping[str, Any], *, round_to_declared: bool = True, keep: bool = False) -> dict[str, Any]:
        flushing = _flushes_denormals()
        torch.set_flush_denormal(True)
        try:
            return self._run(feeds, round_to_declared=round_to_declared, keep=keep)
        finally:
            torch.set_flush_denormal(flushing)  # the caller's setting (torch's default: off) comes back

    @torch.no_grad()
    def _run(self, feeds: Mapping[str, Any], *, round_to_declared: bool = True, keep: bool = False) -> dict[str, Any]:
        """feeds: input name -> array (image inputs: NCHW float pixels 0-255, RGB order).

        Returns the program outputs, or every named value when `keep` (for localisation).
        `round_to_declared=False` runs the same graph without fp16 rounding (the fp32 twin).
        """
        env: dict[str, Any] = dict(self.program.constants)
        for name, spec in self.program.inputs.items():
            if name not in feeds:
                raise KeyError(f"missing input {name!r}")
            value = torch.as_tensor(np.asarray(feeds[name]), dtype=torch.float32)
            if self.program.image_inputs.get(name) == "BGR":
                value = value.flip(1)
            env[name] = _round(value, spec.dtype) if round_to_declared else value
        # The memory of constants and inputs is never overwritten, even once no op reads them any
        # more (a view of one may still be live). live: the op outputs env holds.
        pinned = self._constant_storages | {_storage(env[name]) for name in self.program.inputs}
        live: set[str] = set()
        for index, op in enumerate(self.program.operations):
            mapped: list[MappedConstant] = []
            args = {k: _resolve(v, env, mapped) for k, v in op.inputs.items()}
            target = self._overwritable(index, env, live, pinned) if self._reusable[index] and not keep else None
            try:
                result = inplace.run_in_place(op.type, target, args) if target else None
                if result is None:
                    target = None
                    result = OPS[op.type](op=op, **args)
            except Exception as exc:
                raise UnsupportedProgram(f"MIL op {op.type} ({op.outputs[0][0]}) failed: {exc}") from exc
            results = result if isinstance(result, tuple) else (result,)
            for (name, spec), value in zip(op.outputs, results):
                if round_to_declared and torch.is_tensor(value):
                    value = _round_output(value, spec.dtype, args, target)
                env[name] = value
                live.add(name)
            for constant in mapped:  # its widened copy is in args; its file pages can go
                constant.release()
            if not keep:
                for name in self._released[index]:
                    env.pop(name, None)
                    live.discard(name)
            del args, result, results  # the widened constants and inputs go before the next op
        if keep:
            return env
        return {name: env[name] for name in self.program.outputs}


def _round(value: torch.Tensor, dtype: str) -> torch.Tensor:
    if dtype in _HALF and value.is_floating_point():
        return value.to(torch.float16).to(torch.float32)
    if dtype == "BFLOAT16" and value.is_floating_point():
        return value.to(torch.bfloat16).to(torch.float32)
    return value


def _round_output(value: torch.Tensor, dtype: str, args: dict[str, Any], target: str | None) -> torch.Tensor:
    """_round; in place, a chunk at a time, for a large float32 output the op made itself (not a
    view of an input other ops may still read): through a whole fp16 copy and back it made two
    temporaries of 1.5x the output, whose freed space glibc kept."""
    if dtype in _HALF and value.dtype == torch.float32 and value.numel() >= inplace.LARGE:
        elements = inplace.flat(value)
        if elements is not None and _storage(value) not in _storages(v for a, v in args.items() if a != target):
            for chunk in elements.split(inplace.CHUNK):
                chunk.copy_(chunk.to(torch.float16))
            return value
    return _round(value, dtype)


def _storage(value: torch.Tensor) -> int:
    return value.untyped_storage().data_ptr()


def _storages(values) -> set[int]:
    """The storages some op arguments live in (an output sharing one is a view of an input)."""
    found = set()
    for value in values:
        for item in value if isinstance(value, list) else (value,):
            if torch.is_tensor(item):
                found.add(_storage(item))
    return found


def _resolve(bindings: list, env: dict[str, Any], mapped: list[MappedConstant]) -> Any:
    """One binding -> its value; several (tuple inputs such as concat's `values`) -> a list.
    A mapped constant is widened from its file map and noted in `mapped`."""
    values = []
    for kind, v in bindings:
        value = env[v] if kind == "name" else v
        if isinstance(value, MappedConstant):
            mapped.append(value)
            value = value.view()  # widened below: a copy, never the mapped bytes
        values.append(_widen(value))
    return values if len(values) != 1 else values[0]


_WIDE = {
    torch.float16: torch.float32,
    torch.bfloat16: torch.float32,
    torch.int8: torch.int64,
    torch.uint8: torch.int64,
    torch.int16: torch.int64,
    torch.int32: torch.int64,
}


def _widen(value: Any) -> Any:
    """A constant as ops compute with it (program.py stores them compact): float32 or int64."""
    if torch.is_tensor(value) and value.dtype in _WIDE:
        return value.to(_WIDE[value.dtype])
    return value


def _flushes_denormals() -> bool:
    """Whether the CPU flushes subnormal floats now (torch has no getter for set_flush_denormal)."""
    return bool((torch.tensor([1e-39], dtype=torch.float32) * 2.0).item() == 0.0)
