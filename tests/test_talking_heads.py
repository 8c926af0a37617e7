"""EfficientFormerV2's talking heads exported as a Linear for ExecuTorch (convert/talking_heads.py):
the same arithmetic, the model left as it was, and the XNNPACK bug it works around still there."""

from __future__ import annotations

import pytest
import timm
import torch
from torch import nn

from effconvert.convert.talking_heads import HeadsLinear, heads_as_linear


def test_heads_as_linear_computes_what_the_convs_did_and_leaves_the_model_as_it_was():
    torch.manual_seed(0)
    model = timm.create_model("efficientformerv2_s0", num_classes=10).eval()
    x = torch.randn(2, 3, 224, 224)
    before = [type(m).__name__ for m in model.modules()]
    with torch.no_grad():
        expected = model(x)
        with heads_as_linear(model) as rewritten:
            got = model(x)
            assert sum(isinstance(m, HeadsLinear) for m in model.modules()) == 2 * rewritten
    assert rewritten == 4  # S0's global attention blocks: two in stage 3, two in stage 4
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-5), (got - expected).abs().max()
    assert [type(m).__name__ for m in model.modules()] == before


class _ConvSoftmax(nn.Module):
    def __init__(self, mix: nn.Module) -> None:
        super().__init__()
        self.mix = mix

    def forward(self, attn: torch.Tensor) -> torch.Tensor:
        return self.mix(attn).softmax(dim=-1)


def _on_xnnpack(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    from executorch.runtime import Runtime

    edge = to_edge_transform_and_lower(torch.export.export(module.eval(), (x,)), partitioner=[XnnpackPartitioner()])
    return Runtime.get().load_program(edge.to_executorch().buffer).load_method("forward").execute([x])[0]


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
