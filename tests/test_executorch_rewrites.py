"""The exact rewrites that keep XNNPACK programs right and whole: EfficientFormerV2's talking heads as
a Linear (convert/talking_heads.py), EfficientViT-M's group attention in delegated ops
(convert/group_attention.py) and identity pads dropped before PT2E quantization (quantize/pt2e.py) —
each the same arithmetic, and the XNNPACK bug each works around still there."""

from __future__ import annotations

import pytest
import timm
import torch
from torch import nn

from effconvert.convert.group_attention import GroupAttentionForExport, group_attention_for_export
from effconvert.convert.talking_heads import HeadsLinear, heads_as_linear
from effconvert.quantize.pt2e import drop_identity_pads


def _outputs_with_rewrite(model: nn.Module, x: torch.Tensor, rewrite, replacement: type, per_block: int):
    """`model`'s output without and with `rewrite` (a context manager yielding how many blocks it
    rewrote), after checking `per_block` `replacement` modules per block and the model restored."""
    before = [type(m).__name__ for m in model.modules()]
    with torch.no_grad():
        expected = model(x)
        with rewrite(model) as rewritten:
            got = model(x)
            assert sum(isinstance(m, replacement) for m in model.modules()) == per_block * rewritten
    assert [type(m).__name__ for m in model.modules()] == before
    return expected, got, rewritten


def test_heads_as_linear_computes_what_the_convs_did_and_leaves_the_model_as_it_was():
    torch.manual_seed(0)
    model = timm.create_model("efficientformerv2_s0", num_classes=10).eval()
    expected, got, rewritten = _outputs_with_rewrite(
        model, torch.randn(2, 3, 224, 224), heads_as_linear, HeadsLinear, per_block=2
    )
    assert rewritten == 4  # S0's global attention blocks: two in stage 3, two in stage 4
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-5), (got - expected).abs().max()


class _ConvSoftmax(nn.Module):
    def __init__(self, mix: nn.Module) -> None:
        super().__init__()
        self.mix = mix

    def forward(self, attn: torch.Tensor) -> torch.Tensor:
        return self.mix(attn).softmax(dim=-1)


def _lowered(module: nn.Module, x: torch.Tensor):
    """`module` lowered to XNNPACK as effconvert lowers it (the edge program)."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    return to_edge_transform_and_lower(torch.export.export(module, (x,)), partitioner=[XnnpackPartitioner()])


def _xnnpack_method(module: nn.Module, x: torch.Tensor):
    """`module` lowered to XNNPACK, loaded on ExecuTorch's runtime."""
    from executorch.runtime import Runtime

    return Runtime.get().load_program(_lowered(module, x).to_executorch().buffer).load_method("forward")


def _on_xnnpack(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return _xnnpack_method(module.eval(), x).execute([x])[0]


@pytest.mark.slow  # two ExecuTorch lowerings, ~20 s
def test_the_xnnpack_bug_is_still_there_and_the_linear_avoids_it():
    """The reproduction in docs/guides/upstream.md. When an ExecuTorch upgrade computes the conv
    version right, this test fails: drop the rewrite."""
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 8, 1)
    attn = torch.randn(1, 8, 49, 49)
    with torch.no_grad():
        expected = _ConvSoftmax(conv)(attn)
        wrong = _on_xnnpack(_ConvSoftmax(conv), attn)
        right = _on_xnnpack(_ConvSoftmax(HeadsLinear(conv)), attn)

    def error(y: torch.Tensor) -> float:
        return float((y - expected).abs().max() / expected.abs().max())

    assert error(wrong) > 0.1, f"XNNPACK now computes conv + softmax(-1) right ({error(wrong):.1e}): drop the rewrite"
    assert error(right) < 1e-5


class _Pads(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        same = nn.functional.pad(x, (0, 0, 0, 0, 0, 0))  # timm's window attention when the window divides the map
        return nn.functional.pad(same * 2, (0, 0, 0, 1, 0, 1))


def test_identity_pads_are_dropped_and_real_ones_kept():
    x = torch.randn(1, 14, 14, 8)
    graph = torch.export.export(_Pads(), (x,)).module()

    def pads(g: torch.fx.GraphModule) -> list:
        return [n.args[1] for n in g.graph.nodes if "pad" in str(n.target)]

    assert pads(graph) == [[0, 0, 0, 0, 0, 0], [0, 0, 0, 1, 0, 1]]
    expected = graph(x)
    dropped = drop_identity_pads(graph)
    assert pads(dropped) == [[0, 0, 0, 1, 0, 1]]
    assert torch.equal(dropped(x), expected)


class _ZeroPadBetweenConvs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Conv2d(8, 8, 1), nn.Conv2d(8, 8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = nn.functional.pad(self.a(x).permute(0, 2, 3, 1), (0, 0, 0, 0, 0, 0))
        return self.b(y.permute(0, 3, 1, 2))


def _quantized_on_xnnpack(graph: torch.fx.GraphModule, x: torch.Tensor):
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e import quantize_pt2e

    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    prepared = quantize_pt2e.prepare_pt2e(graph, quantizer)
    prepared(x)
    return _xnnpack_method(quantize_pt2e.convert_pt2e(prepared), x)


@pytest.mark.slow  # two PT2E quantizations and lowerings, ~10 s
def test_the_xnnpack_zero_pad_bug_is_still_there_and_dropping_the_pad_avoids_it():
    """The reproduction in docs/guides/upstream.md. When an ExecuTorch upgrade loads the quantized
    zero pad, this test fails: drop the pass."""
    torch.manual_seed(0)
    model, x = _ZeroPadBetweenConvs().eval(), torch.randn(1, 8, 14, 14)
    with torch.no_grad():
        expected = model(x)
        graph = torch.export.export(model, (x,)).module()
        with pytest.raises(RuntimeError, match="Failed to load method forward"):
            _quantized_on_xnnpack(graph, x)
        method = _quantized_on_xnnpack(drop_identity_pads(torch.export.export(model, (x,)).module()), x)
        got = method.execute([x])[0]
    assert float((got - expected).abs().max() / expected.abs().max()) < 0.05  # int8 of two convs


def _first_group_attention(model: nn.Module) -> nn.Module:
    from timm.models.efficientvit_msra import CascadedGroupAttention

    return next(m for m in model.modules() if isinstance(m, CascadedGroupAttention))


def test_group_attention_for_export_computes_what_timm_does_and_leaves_the_model_as_it_was():
    torch.manual_seed(0)
    model = timm.create_model("efficientvit_m0", num_classes=10).eval()
    with torch.no_grad():  # timm initialises the biases to zero: make them matter
        for m in model.modules():
            if hasattr(m, "attention_biases"):
                m.attention_biases.normal_()
    expected, got, rewritten = _outputs_with_rewrite(
        model, torch.randn(2, 3, 224, 224), group_attention_for_export, GroupAttentionForExport, per_block=1
    )
    assert rewritten == 6  # M0's attention blocks: 1 + 2 + 3
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-5), (got - expected).abs().max()


@pytest.mark.slow  # two ExecuTorch lowerings of one attention block, ~10 s
def test_timms_group_attention_still_leaves_xnnpack_and_the_rewrite_does_not():
    """When an ExecuTorch upgrade delegates timm's form whole, this test fails: drop the rewrite."""
    from effconvert.convert.executorch import delegation

    torch.manual_seed(0)
    attention = _first_group_attention(timm.create_model("efficientvit_m0").eval())
    x = torch.randn(1, attention.qkvs[0].conv.in_channels * len(attention.qkvs), 7, 7)
    left = delegation(_lowered(attention, x))["portable_ops"]
    assert {"aten_index_tensor", "aten_expand_copy_default"} <= set(left), left
    assert delegation(_lowered(GroupAttentionForExport(attention), x))["portable_ops"] == {}
