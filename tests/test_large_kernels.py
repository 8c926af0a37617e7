"""Large depthwise kernels cut into centred bands XNNPACK runs in one pass (convert/large_kernels.py):
exact in float64 for the shapes FastViT uses (7x7, stride 1 and 2, channel multiplier) and beyond."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from effconvert.convert.large_kernels import MAX_TAPS, BandedDepthwise, band_large_depthwise


@pytest.mark.parametrize(
    "conv, size",
    [
        (nn.Conv2d(8, 8, 7, padding=3, groups=8), 17),  # ConvMlp / RepCPE
        (nn.Conv2d(8, 16, 7, stride=2, padding=3, groups=8), 33),  # patch embedding, odd input
        (nn.Conv2d(8, 16, 7, stride=2, padding=3, groups=8), 32),
        (nn.Conv2d(8, 8, (7, 5), padding=(3, 2), groups=8), 16),  # non-square: a five-row centre band
        (nn.Conv2d(8, 8, 9, padding=4, groups=8, bias=False), 20),
        (nn.Conv2d(8, 8, (9, 5), padding=(4, 2), groups=8), 19),
        (nn.Conv2d(8, 8, 7, stride=3, padding=3, groups=8), 50),
        (nn.Conv2d(8, 8, 7, padding=(2, 1), groups=8), 21),  # padding just covering the centre band
    ],
)
def test_banded_depthwise_is_exact(conv, size):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(8, 8, 1), conv).double().eval()
    x = torch.randn(2, 8, size, size, dtype=torch.float64)
    banded, count = band_large_depthwise(model)
    assert count == 1 and isinstance(banded[1], BandedDepthwise)
    bands = banded[1].bands
    assert all(b.kernel_size[0] * b.kernel_size[1] <= MAX_TAPS for b in bands)
    assert sum(b.kernel_size[0] for b in bands) == conv.kernel_size[0]  # every row once
    # a channel multiplier is computed by plain depthwise bands over the repeated input, not grouped ones
    assert all(b.groups == b.in_channels == b.out_channels for b in bands)
    assert isinstance(model[1], nn.Conv2d)  # the caller's model is untouched
    with torch.no_grad():
        expected = model(x)
        got = banded(x)
        assert got.shape == expected.shape and torch.allclose(got, expected, rtol=0, atol=1e-12)


def test_bands_leave_no_slice_or_pad_in_the_exported_graph():
    """What the bands are for: the tiles they replace cropped each tile's output (two slices a tile,
    XNNPACK copies), measured at 2.3 ms of FastViT-S12's 31 ms on ExecuTorch fp32."""
    model = nn.Sequential(nn.Conv2d(8, 8, 7, padding=3, groups=8)).eval()
    x = torch.randn(1, 8, 32, 32)
    banded, _ = band_large_depthwise(model)
    ops = {str(n.target) for n in torch.export.export(banded, (x,)).graph.nodes if n.op == "call_function"}
    assert ops == {"aten.conv2d.default", "aten.add.Tensor"}, ops


def test_small_dense_and_unsupported_convs_are_left_alone():
    model = nn.Sequential(
        nn.Conv2d(8, 8, 3, padding=1, groups=8),
        nn.Conv2d(8, 8, 7, padding=3),
        nn.Conv2d(8, 8, 5, padding=2, groups=8),  # 25 taps: one pass already
        nn.Conv2d(8, 8, 7, padding=6, dilation=2, groups=8),
        nn.Conv2d(8, 8, (6, 6), padding=3, groups=8),  # no centre row
        nn.Conv2d(8, 8, (3, 13), padding=(1, 6), groups=8),  # a two-row band of 26 taps
        nn.Conv2d(8, 8, 7, padding=1, groups=8),  # too little padding for the centre band
    )
    _, count = band_large_depthwise(model)
    assert count == 0


def test_small_maps_are_banded_too():
    """Below 16x16 ExecuTorch's XNNPACK ran a whole 7x7 as a grouped GEMM (~1 ms each on FastViT-S12's
    8x8 maps): every map size is banded."""
    model = nn.Sequential(nn.Conv2d(8, 8, 7, padding=3, groups=8)).double().eval()
    x = torch.randn(1, 8, 6, 6, dtype=torch.float64)
    banded, count = band_large_depthwise(model)
    assert count == 1
    with torch.no_grad():
        assert torch.allclose(banded(x), model(x), rtol=0, atol=1e-12)
