"""ExecuTorch: torch.export -> XNNPACK partitioner -> `.pte` program, metadata inside.

Input `input`: float32 NCHW normalised pixels (what the PyTorch model takes). Output: logits.
effconvert's provenance, preprocessing and labels travel inside the program as a constant method,
`effconvert_metadata`, returning the JSON as UTF-8 bytes (a uint8 tensor): the .pte format has no
key/value metadata, and a constant method keeps the artifact one file an app reads with one call
(`module.execute("effconvert_metadata")`).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..atomic import atomic_path
from ..errors import ConversionFailed
from ..quantize import QuantPlan
from ..quantize import executorch as quantizer
from ..quiet import first_line, quiet, quiet_native_stderr
from ..runtime.executorch import METADATA_METHOD  # the name the runtime reads back
from ..stopwatch import Stopwatch
from ..targets import ExportOptions
from .group_attention import group_attention_for_export
from .metadata import ModelInfo
from .talking_heads import heads_as_linear


def metadata_tensor(metadata: dict[str, str]) -> torch.Tensor:
    return torch.frombuffer(bytearray(json.dumps(metadata, sort_keys=True).encode()), dtype=torch.uint8)


def export_executorch(
    model: torch.nn.Module,
    sample: torch.Tensor,
    out: Path,
    *,
    metadata: dict[str, str],
    plan: QuantPlan,
    clock: Stopwatch | None = None,
) -> list[str]:
    clock = clock or Stopwatch()
    with quiet(), quiet_native_stderr():
        with clock.running():  # importing the exporter is part of its cost
            from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
            from executorch.exir import to_edge_transform_and_lower

        try:
            with heads_as_linear(model) as rewritten, group_attention_for_export(model) as regrouped:
                with torch.no_grad():  # fills timm's attention-bias caches (EfficientFormer, -V2): exported
                    model.eval()(sample)  # as constants, not as a gather ExecuTorch runs on portable kernels
                module = quantizer.quantized_module(model, sample, plan, clock=clock)
                with clock.running():
                    program = torch.export.export(module, (sample,))
                    edge = to_edge_transform_and_lower(
                        program,
                        partitioner=[XnnpackPartitioner()],
                        constant_methods={
                            METADATA_METHOD: metadata_tensor({**metadata, "effconvert.input_layout": "nchw"})
                        },
                    )
            coverage = delegation(edge)
            with clock.running():
                buffer = edge.to_executorch().buffer
        except Exception as exc:  # the exporter raises many types; the message names the op
            raise ConversionFailed(f"ExecuTorch export failed: {first_line(exc)}") from exc
    with atomic_path(out) as tmp:
        tmp.write_bytes(buffer)
    kept = ", ".join(f"{op} x{n}" for op, n in coverage["portable_ops"].items())
    notes = [
        f"XNNPACK delegated {coverage['delegated']} of {coverage['delegated'] + coverage['portable']} nodes "
        f"in {coverage['subgraphs']} subgraph(s)" + (f"; on portable kernels: {kept}" if kept else "")
    ]
    if rewritten:
        notes.append(
            f"{rewritten} attention block(s): talking heads mixed by a Linear, not a 1x1 conv (XNNPACK's "
            "conv + softmax(-1) is wrong; docs/guides/upstream.md)"
        )
    if regrouped:
        notes.append(
            f"{regrouped} cascaded group attention block(s): biases gathered beforehand, splits as slices, "
            "products as bmm (every op on XNNPACK)"
        )
    return notes + quantizer.notes(plan)


def delegation(edge) -> dict:
    """How much of the program XNNPACK took: delegated / portable node counts, the subgraphs, and
    the op types left on ExecuTorch's portable kernels (getitem, a tuple access, is not an op)."""
    from executorch.devtools.backend_debug import get_delegation_info

    info = get_delegation_info(edge.exported_program().graph_module)
    portable = {
        op: int(s.non_delegated)
        for op, s in sorted(info.delegation_by_operator.items())
        if s.non_delegated and op != "getitem"
    }
    delegated = sum(int(s.delegated) for op, s in info.delegation_by_operator.items() if op != "getitem")
    return {
        "delegated": delegated,
        "portable": sum(portable.values()),
        "subgraphs": int(info.num_delegated_subgraphs),
        "portable_ops": portable,
    }


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
    return export_executorch(model, sample, out, metadata=metadata, plan=plan, clock=clock)


def input_layout(options: ExportOptions) -> str:
    return "nchw"


def read_metadata(path: Path) -> dict[str, str]:
    """The constant method's JSON, read by ExecuTorch's own runtime."""
    from ..runtime.executorch import ExecuTorchRuntime

    return ExecuTorchRuntime(path, threads=1).metadata()
