"""ExecuTorch's own runtime (the pybindings of the C++ runtime an app links), with the XNNPACK
delegate the program was lowered to. Inputs are NCHW normalised tensors, batch 1 per call.

The program file is also read as data (`program_summary`): which instructions call the XNNPACK
delegate and which run ExecuTorch's portable kernels — the artifact's own account of its coverage.
"""

from __future__ import annotations

import builtins
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import BadInput
from ..quiet import quiet, quiet_native_stderr
from . import DEFAULT_THREADS, RUNTIMES, Batch

METADATA_METHOD = "effconvert_metadata"  # the constant method convert/executorch.py writes


class ExecuTorchRuntime:
    name = "executorch-xnnpack"
    device_speed = RUNTIMES[name].device_speed
    input_layout = "nchw"

    def __init__(self, path: Path, threads: int) -> None:
        import torch

        check_pte_header(Path(path))  # ExecuTorch's loader aborts the process on a damaged file
        with quiet(), quiet_native_stderr():  # cpuinfo's probing lines on fd 2
            import executorch.extension.pybindings.portable_lib as portable
            from executorch.runtime import Runtime

            portable._unsafe_reset_threadpool(threads)  # XNNPACK's pool: the --threads of bench
            self.program = Runtime.get().load_program(Path(path))
            self.method = self.program.load_method("forward")
        meta = self.method.metadata
        self.input_shape = tuple(int(d) for d in meta.input_tensor_meta(0).sizes())
        self._torch = torch

    def run(self, batch: Batch) -> np.ndarray:
        x = self._torch.from_numpy(np.ascontiguousarray(batch.inputs, dtype=np.float32))
        outs = [self.method.execute([x[i : i + 1]])[0].numpy().copy() for i in range(len(x))]
        return np.concatenate(outs).astype(np.float32)

    def run_shape(self) -> list[int]:
        """The output shape the program declares (logits: [1, classes])."""
        return [int(d) for d in self.method.metadata.output_tensor_meta(0).sizes()]

    def metadata(self) -> dict[str, str]:
        if METADATA_METHOD not in self.program.method_names:
            return {}
        raw = self.program.load_method(METADATA_METHOD).execute([])[0]
        return json.loads(bytes(raw.numpy().tobytes()).decode("utf-8"))


@dataclass(frozen=True)
class ProgramSummary:
    inputs: list[list[int]]
    outputs: list[list[int]]
    delegate_calls: int  # instructions handing a subgraph to a backend
    backends: dict[str, int]  # backend id -> delegate blobs
    portable_calls: dict[str, int]  # op -> instructions on the portable kernels
    methods: list[str]


PTE_IDENTIFIER = b"ET"  # bytes 4-5 of every .pte (the flatbuffer file identifier "ET12": version after)


def check_pte_header(path: Path) -> None:
    with builtins.open(path, "rb") as f:
        head = f.read(8)
    if len(head) < 8 or head[4:6] != PTE_IDENTIFIER or not head[6:8].isdigit():
        raise BadInput(f"{path.name} is not an ExecuTorch program (no ET file identifier in its header)")


def program_summary(path: Path) -> ProgramSummary:
    """Read the .pte flatbuffer as data: no code runs, nothing is loaded into a runtime."""
    check_pte_header(Path(path))
    with quiet():  # torch's pytree warning on import
        from executorch.exir._serialize._program import deserialize_pte_binary

        parsed = deserialize_pte_binary(Path(path).read_bytes())
    program = getattr(parsed, "program", parsed)
    forward = next(p for p in program.execution_plan if p.name == "forward")
    operators = [op.name for op in forward.operators]
    kinds: Counter[str] = Counter()
    portable: Counter[str] = Counter()
    for chain in forward.chains:
        for instruction in chain.instructions:
            kind = type(instruction.instr_args).__name__
            kinds[kind] += 1
            if kind == "KernelCall":
                portable[operators[instruction.instr_args.op_index]] += 1
    return ProgramSummary(
        inputs=[list(forward.values[i].val.sizes) for i in forward.inputs],
        outputs=[list(forward.values[i].val.sizes) for i in forward.outputs],
        delegate_calls=kinds["DelegateCall"],
        backends=dict(Counter(d.id for d in forward.delegates)),
        portable_calls=dict(portable.most_common()),
        methods=[p.name for p in program.execution_plan],
    )


def open(path: Path, *, threads: int | None, input_layout: str | None = None) -> ExecuTorchRuntime:
    return ExecuTorchRuntime(path, threads or DEFAULT_THREADS)
