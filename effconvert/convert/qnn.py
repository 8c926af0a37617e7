"""Qualcomm Snapdragon NPU (Hexagon HTP) through ONNX Runtime's QNN execution provider:

    fused model -> fp32 ONNX (onnx.py's exporter) -> QDQ for int8/w8a16 (quantize/qnn.py)
    -> compiled by QNN for the chosen SoC (ONNX Runtime writes an ONNX whose EPContext node embeds
       the HTP context binary) -> metadata (provenance, SoC, the compiler's residency) -> .qnn.onnx

The artifact is what an Android app loads with ONNX Runtime's QNN EP: the phone runs the binary
without compiling. Compiling for the HTP works on x86 Linux (the QNN SDK ships the HTP's
preparation library in the onnxruntime-qnn wheel), and the same wheel runs the binary on an HTP
simulator — which is how validate/ judges it.

Residency comes from the compiler itself: ONNX Runtime's framework-op trace maps every ONNX node to
the QNN ops it became and lists the nodes QNN did not take (they run on the CPU EP). It is stored
in the artifact (`effconvert.qnn.residency`), since a compiled model no longer shows it.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import torch

from ..atomic import atomic_path
from ..errors import ConversionFailed
from ..quantize import QuantPlan
from ..quantize import qnn as quantizer
from ..quiet import first_line, quiet
from ..stopwatch import Stopwatch
from ..targets import SOCS, ExportOptions
from .linear_attention import split_linear_attention
from .metadata import ModelInfo
from .onnx import export_onnx
from .onnx_graph import graph_stats
from .qnn_compile import compile_in_child
from .qnn_hardswish import restore_hardswish

RESIDENCY_KEY = "effconvert.qnn.residency"
IO_REASON = (
    "the float input's quantization / the output's dequantization, which ONNX Runtime's QNN EP runs on "
    "the CPU by design (offload_graph_io_quantization)"
)
GRAPH_KEY = "effconvert.qnn.graph"  # onnx_graph.graph_stats of the float graph: what the HTP computes


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
    soc = SOCS[options.soc]
    notes = []
    with tempfile.TemporaryDirectory(prefix="effconvert-qnn-") as tmp:
        work = Path(tmp)
        # qnn_preprocess_model refuses metadata_props (a TypeError inside onnxruntime's quantization
        # preprocess.py): the float graph goes in bare, the metadata is added to the compiled model.
        with split_linear_attention(model) as rewritten:
            export_onnx(model, sample, work / "exported.onnx", quant="fp32", metadata={}, clock=clock)
        if rewritten and plan.quant != "fp16":
            notes.append(
                f"{rewritten} linear attention block(s) exported with numerator and denominator as two "
                "tensors (the same quotient; each gets its own quantization scale)"
            )
        source = work / "float.onnx"
        with clock.running():
            _preprocess(work / "exported.onnx", source)
        if plan.quant != "fp16":
            try:
                with clock.running():
                    notes += quantizer.quantize_qdq(source, work / "qdq.onnx", plan)
            except Exception as exc:  # onnxruntime's quantizer raises many types; the message names the node
                raise ConversionFailed(f"QNN {plan.quant} quantization failed: {first_line(exc)}") from exc
            source = work / "qdq.onnx"
        else:
            notes += quantizer.notes(plan)
        with clock.running():
            residency = compile_context(
                source, work / "ctx.onnx", soc.name, fp16=plan.quant == "fp16", trace_dir=work / "trace"
            )
        refused = [c for c in residency["cpu_nodes"] if not c["io"]]
        if options.npu_only and refused:
            kinds = ", ".join(f"{op} x{n}" for op, n in Counter(c["type"] for c in refused).most_common())
            raise ConversionFailed(
                f"--npu-only: {len(refused)} node(s) would run on the CPU, not the {soc.name} HTP: {kinds}",
                hint="drop --npu-only to keep them on the CPU (the report names each), or try another --quant",
            )
        stats = graph_stats(source if plan.quant == "fp16" else work / "float.onnx", plan.quant)
        _write(
            work / "ctx.onnx",
            out,
            {
                **metadata,
                "effconvert.input_layout": "nchw",
                "effconvert.soc": soc.name,
                RESIDENCY_KEY: json.dumps(residency, sort_keys=True),
                GRAPH_KEY: json.dumps(stats, sort_keys=True),
            },
        )
    on = residency["htp_nodes"]
    total = residency["total_nodes"]
    notes.append(
        f"compiled for {soc.name} ({soc.marketing}, HTP v{soc.htp_arch}): {on} of {total} ONNX nodes "
        f"on the HTP in {residency['subgraphs']} context graph(s)"
        + (
            f"; on the CPU: {', '.join(f'{op} x{n}' for op, n in residency['cpu_by_type'].items())}"
            if residency["cpu_nodes"]
            else ""
        )
    )
    return notes


def _preprocess(exported: Path, out: Path) -> None:
    """ONNX Runtime's QNN preprocessing: the exporter's Erf-based GELU fused into one Gelu node (and
    LayerNorm sequences into LayerNormalization); then HardSwish restored (qnn_hardswish.py). Measured on FastViT-T8: without it, every GELU of a
    QDQ graph fell to the CPU (Erf between QDQ pairs is not a pattern QNN fuses: 53 of 662 nodes)."""
    import shutil

    import onnx
    from onnxruntime.quantization.execution_providers.qnn import qnn_preprocess_model

    try:
        with quiet():
            changed = qnn_preprocess_model(str(exported), str(out), fuse_layernorm=True)
    except Exception as exc:  # onnxruntime's preprocessing raises many types; the message names the node
        raise ConversionFailed(f"QNN preprocessing failed: {first_line(exc)}") from exc
    if not changed:
        shutil.copyfile(exported, out)
    model = onnx.load(str(out))
    if restore_hardswish(model):  # the inlined pair miscompiles on the HTP (qnn_hardswish.py)
        onnx.save(model, str(out))


def compile_context(source: Path, out: Path, soc: str, *, fp16: bool, trace_dir: Path) -> dict[str, Any]:
    """Compile `source` for `soc` into `out` (the EPContext model, binary embedded), in a child
    process (qnn_compile.py says why); the compiler's residency: which nodes the HTP took and which
    stay on the CPU."""
    compile_in_child(source, out, soc, fp16=fp16, trace_dir=trace_dir)
    if not out.exists():
        raise ConversionFailed(f"QNN compiled nothing for {soc}: no node of the model runs on the HTP")
    return residency_of(trace_dir / "qnn_op_trace.json", source)


def residency_of(trace: Path, source: Path) -> dict[str, Any]:
    """What the compiler took, from its framework-op trace: counts, the CPU nodes by op type, and the
    QNN ops the HTP runs (the compiled program's op mix, layout transposes included)."""
    import onnx

    graph = onnx.load(str(source), load_external_data=False).graph
    types = {n.name: n.op_type for n in graph.node}
    # The model's float input is quantized, and its output dequantized, by ONNX Runtime's CPU EP: the
    # QNN EP's default (offload_graph_io_quantization=1), not a node the HTP refused.
    io = {
        n.name
        for n in graph.node
        if (n.op_type == "QuantizeLinear" and n.input[0] in {i.name for i in graph.input})
        or (n.op_type == "DequantizeLinear" and n.output[0] in {o.name for o in graph.output})
    }
    data = json.loads(trace.read_text(encoding="utf-8"))
    summary = data.get("summary", {})
    cpu = []
    for node in data.get("unsupported_nodes", []):
        name = node.get("name", node.get("node_name", ""))
        reason = IO_REASON if name in io else node.get("reason", "")
        cpu.append(
            {"node": name, "type": node.get("op_type") or types.get(name, "?"), "reason": reason, "io": name in io}
        )
    qnn_ops: Counter[str] = Counter()
    for graph in data.get("subgraph_traces", []):
        qnn_ops.update(m.get("dst_qnn_op_type", "?") for m in graph.get("op_mappings", []))
    by_type = Counter(c["type"] for c in cpu)
    return {
        "total_nodes": int(summary.get("total_onnx_nodes", len(types))),
        "htp_nodes": int(summary.get("supported_nodes", len(types) - len(cpu))),
        "subgraphs": int(summary.get("qnn_subgraphs", 0)),
        "qnn_op_total": int(summary.get("total_qnn_ops", 0)),
        "cpu_nodes": cpu,
        "cpu_by_type": dict(by_type.most_common()),
        "qnn_ops": dict(qnn_ops.most_common()),
        "source_ops": dict(Counter(types.values()).most_common()),
    }


def _write(compiled: Path, out: Path, metadata: dict[str, str]) -> None:
    import onnx

    model = onnx.load(str(compiled))
    del model.metadata_props[:]
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    with atomic_path(out) as tmp:
        onnx.save(model, str(tmp))


def input_layout(options: ExportOptions) -> str:
    return "nchw"


def read_metadata(path: Path) -> dict[str, str]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}


__all__ = ["GRAPH_KEY", "RESIDENCY_KEY", "compile_context", "export", "input_layout", "read_metadata", "residency_of"]
