"""PT2E static W8A8, shared by every target whose toolchain takes a PT2E-quantized graph (TFLite
through litert-torch, ExecuTorch through XNNPACK): export, insert the quantizer's observers,
calibrate, convert. Each target brings its own quantizer (what its kernels can run); the float
fallback's layers are left unannotated, hence float, by `keeps_float`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def keeps_float(float_layers: frozenset[str]) -> Callable[[torch.fx.Node], bool]:
    """A node filter: True for nodes to quantize, False for nodes inside a layer kept float.
    (Module names are matched on torch.export's nn_module_stack paths, not mangled names.)"""

    def quantized(node: torch.fx.Node) -> bool:
        stack = node.meta.get("nn_module_stack", {})
        return not any(path in float_layers for path, _ in stack.values())

    return quantized


def calibrated_int8(
    module: torch.nn.Module, example: torch.Tensor, calibration: torch.Tensor, quantizer, *, fold_quantize: bool = True
) -> torch.fx.GraphModule:
    from torchao.quantization.pt2e import quantize_pt2e

    graph = drop_identity_pads(torch.export.export(module, (example,)).module())
    graph = quantize_pt2e.prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        for i in range(len(calibration)):  # batch 1: the exported shape
            graph(calibration[i : i + 1])
    return quantize_pt2e.convert_pt2e(graph, fold_quantize=fold_quantize)


_PADS = {"aten.pad.default", "aten.constant_pad_nd.default"}


def drop_identity_pads(graph: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """Remove pads whose amounts are all zero (exact: they copy their input). timm's EfficientViT-M
    pads every window attention's input by what the window leaves over, zero when it divides the map;
    quantized, that zero pad made XNNPACK refuse the whole ExecuTorch program at load
    (`Failed to create StaticConstantPad node ... xnn_status_invalid_parameter`, executorch 1.5.1)."""
    for node in list(graph.graph.nodes):
        if node.op == "call_function" and str(node.target) in _PADS and not any(node.args[1]):
            node.replace_all_uses_with(node.args[0])
            graph.graph.erase_node(node)
    graph.graph.lint()
    graph.recompile()
    return graph
