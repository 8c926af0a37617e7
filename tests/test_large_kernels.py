"""Large depthwise kernels cut into XNNPACK-sized tiles (convert/large_kernels.py): exact in
float64 for the shapes FastViT uses (7x7, stride 1 and 2, channel multiplier) and beyond."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from effconvert.convert.large_kernels import MAX_TILE, TiledDepthwise, tile_large_depthwise


@pytest.mark.parametrize(
    "conv, size",
    [
        (nn.Conv2d(8, 8, 7, padding=3, groups=8), 17),  # ConvMlp / RepCPE
        (nn.Conv2d(8, 16, 7, stride=2, padding=3, groups=8), 33),  # patch embedding, odd input
        (nn.Conv2d(8, 16, 7, stride=2, padding=3, groups=8), 32),
        (nn.Conv2d(8, 8, (7, 1), padding=(3, 0), groups=8), 16),  # non-square
        (nn.Conv2d(8, 8, 9, padding=4, groups=8, bias=False), 20),
        (nn.Conv2d(8, 8, 7, padding=0, groups=8), 24),  # valid padding
    ],
)
def test_tiled_depthwise_is_exact(conv, size):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(8, 8, 1), conv).double().eval()
    x = torch.randn(2, 8, size, size, dtype=torch.float64)
    tiled, count = tile_large_depthwise(model, x)
    assert count == 1 and isinstance(tiled[1], TiledDepthwise)
    assert all(max(t.kernel_size) <= MAX_TILE for t in tiled[1].tiles)
    # a channel multiplier is computed by plain depthwise tiles over the repeated input, not grouped ones
    assert all(t.groups == t.in_channels == t.out_channels for t in tiled[1].tiles)
    assert isinstance(model[1], nn.Conv2d)  # the caller's model is untouched
    with torch.no_grad():
        assert torch.allclose(tiled(x), model(x), rtol=0, atol=1e-12)


def test_small_dense_and_unsupported_convs_are_left_alone():
    model = nn.Sequential(
        nn.Conv2d(8, 8, 3, padding=1, groups=8),
        nn.Conv2d(8, 8, 7, padding=3),
        nn.Conv2d(8, 8, 7, stride=3, padding=3, groups=8),
        nn.Conv2d(8, 8, 7, padding=6, dilation=2, groups=8),
    )
    _, count = tile_large_depthwise(model, torch.randn(1, 8, 32, 32))
    assert count == 0


def test_small_maps_stay_whole():
    """Below 16x16 outputs a tile's extra quantization parameters cost more than it saves."""
    model = nn.Sequential(nn.Conv2d(8, 8, 7, padding=3, groups=8), nn.Conv2d(8, 8, 7, stride=2, padding=3, groups=8))
    tiled, count = tile_large_depthwise(model, torch.randn(1, 8, 20, 20))  # 20x20, then 10x10
    assert count == 1 and isinstance(tiled[0], TiledDepthwise) and isinstance(tiled[1], nn.Conv2d)
