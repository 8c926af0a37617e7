"""The MIL conv op on channels-last inputs: a grouped conv with one input and several outputs per
group (a channel multiplier) is computed on a contiguous copy (torch's channels-last kernel for it is slow and allocates ~10x the
temporaries). The values must be the channels-last kernel's, bitwise, and the output keep the
input's layout, so nothing downstream changes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from effconvert.runtime.mil import OPS
from effconvert.runtime.mil.ops.conv import _multiplier_on_channels_last

CL = torch.channels_last


def _t(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# (channels in, channels out, groups, kernel, stride, spatial): FastViT-S12's patch embeddings
# (7x7 stride 2, 2 outputs per group) and smaller variants of the same pattern.
CASES = [(256, 512, 256, 7, 2, 16), (128, 256, 128, 7, 2, 32), (512, 1024, 512, 3, 1, 8),
         (64, 256, 64, 5, 2, 17), (32, 96, 32, 3, 1, 9)]


@pytest.mark.parametrize("cin, cout, groups, k, stride, size", CASES,
                         ids=[f"{c[0]}-{c[1]}-g{c[2]}-k{c[3]}s{c[4]}" for c in CASES])
def test_grouped_multiplier_conv_matches_the_channels_last_kernel(cin, cout, groups, k, stride, size):
    x = _t(1, cin, size, size).contiguous(memory_format=CL)
    weight, bias = _t(cout, cin // groups, k, k, seed=1) * 0.1, _t(cout, seed=2)
    assert _multiplier_on_channels_last(F.pad(x, [k // 2] * 4), weight, groups)
    expected = F.conv2d(F.pad(x, [k // 2] * 4), weight, bias, stride=stride, groups=groups)
    got = OPS["conv"](x=x, weight=weight, bias=bias, op=None, strides=[stride, stride],
                      pad_type="custom", pad=[k // 2] * 4, groups=groups)
    assert got.is_contiguous(memory_format=CL) and got.stride() == expected.stride()
    assert torch.equal(got, expected)


@pytest.mark.parametrize("layout, groups, cout", [
    (CL, 1, 64),                       # ordinary conv: its channels-last kernel is the fast one
    (CL, 64, 64),                      # depthwise, one output per group: channels-last is faster
    (CL, 32, 128),                     # two inputs per group: the kernels differ in the last bit
    (torch.contiguous_format, 64, 128),  # already contiguous
], ids=["dense", "depthwise", "two-inputs-per-group", "contiguous-input"])
def test_other_convs_keep_their_own_kernel(layout, groups, cout):
    x = _t(1, 64, 12, 12).contiguous(memory_format=layout)
    assert not _multiplier_on_channels_last(x, _t(cout, 64 // groups, 3, 3), groups)
