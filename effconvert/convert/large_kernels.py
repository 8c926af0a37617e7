"""Large depthwise kernels as sums of small ones, for XNNPACK (LiteRT's and ExecuTorch's CPU
backend: convert() applies it for every target whose row says `xnnpack`).

XNNPACK (ai-edge-litert 2.3.0, x86-64) runs depthwise convolutions of up to 25 taps in one pass;
a 7x7 (49 taps) falls to a multipass kernel that is slower than the 49 taps justify. Measured on
this machine, six 7x7 depthwise convs over 64 channels at 64x64: fp32 17.3 ms as 7x7, 5.0 ms as
5x5 tiles; int8 25.1 ms vs 4.9 ms. FastViT has one in every ConvMlp and RepCPE and in each patch
embedding, so its int8 graph was barely faster than fp32.

A k x k kernel (k odd) is cut into centred row bands: the rows around the centre that fit in 25
taps as one dense band, every further pair of rows c-d, c+d as a two-row band dilated by 2d. Each
band is centred where the kernel is, so it computes the original output grid with its own
(smaller) padding: the graph holds the bands and their adds, nothing else. The square tiles used
before (4x4, shifted outputs) needed two slices per tile to crop their outputs, copies XNNPACK
makes: on ExecuTorch fp32, FastViT-S12's 96 slices took 2.3 of its 31 ms. Six 7x7 convs as above
on ExecuTorch, 2 threads, 8 rounds timed alternately: fp32 46.4 ms whole, 13.2 as tiles, 7.7 as
bands; int8 54.4, 14.8, 12.9. FastViT-S12 @256, 10 rounds alternately, tiles -> bands: ExecuTorch
fp32 38.1 -> 33.9 ms, int8 25.8 -> 22.1; LiteRT fp32 38.8 -> 33.5, int8 31.5 -> 27.6.
Not used for int8-weights: dynamic range quantizes each band's input again (as tiles: 15.5 -> 23.4
ms, timed alternately).

A channel-multiplier conv (FastViT's patch embeddings) is computed as plain depthwise convs over its
repeated input (see BandedDepthwise): FastViT-S12 @256, 2 threads, 12 rounds timed alternately (as
tiles), LiteRT fp32 33.7 -> 30.5 ms, int8 44.6 -> 25.3 ms; ExecuTorch fp32 33.0 -> 31.0, int8 24.2 -> 21.7.

The rewrite is exact up to float summation order. The model is copied; the caller's is never modified.
"""

from __future__ import annotations

import copy
from typing import TypeGuard

import torch
from torch import nn

NOT_BANDED_QUANTS = ("int8-weights",)  # dynamic range: each band would quantize its input again
MAX_TAPS = 25  # XNNPACK's largest one-pass depthwise kernel
MAX_COPIES = 5  # XNNPACK concatenates 2 to 5 tensors in one op (a channel multiplier's copies)


def _centre_half_height(kw: int) -> int:
    """a: the centre band's rows are c-a .. c+a, as many as MAX_TAPS allows at this width."""
    return (MAX_TAPS // kw - 1) // 2


class BandedDepthwise(nn.Module):
    """A depthwise (or channel-multiplier) Conv2d of more than MAX_TAPS taps, as centred row bands.

    Row c (the kernel's centre) and its neighbours up to c±a form one dense band; every further pair
    of rows c-d, c+d is a two-row band with dilation 2d. Each band is centred on the original
    kernel's centre, so with the padding shrunk by the rows it leaves out it computes the original's
    output grid exactly: no crop, no pad, no slice in the graph, only the adds. A 7x7 becomes 3x7
    (21 taps), 2x7 dilated 4 and 2x7 dilated 6."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        kh, kw = conv.kernel_size
        if not _bandable(conv):
            raise ValueError(f"cannot split {conv} into centred bands")
        # A channel multiplier m (out = m x in, FastViT's patch embeddings) is computed as a plain
        # depthwise conv over the input repeated m times, its output channels in (copy, channel)
        # order, put back in PyTorch's (channel, copy) order at the end. XNNPACK runs a multiplier
        # conv as a grouped IGEMM, one input channel per group: one 7x7 stride-2 64 -> 128 conv at
        # 128x128 on ExecuTorch, 2 threads, fp32 22.2 -> 4.7 ms, int8 12.8 -> 6.6 ms (as tiles).
        copies = conv.out_channels // conv.in_channels
        self.copies = copies if 1 < copies <= MAX_COPIES else 1
        weight, bias = conv.weight.data, conv.bias.data if conv.bias is not None else None
        if self.copies > 1:
            order = torch.arange(conv.out_channels).view(conv.in_channels, copies).t().reshape(-1)
            weight, bias = weight[order], bias[order] if bias is not None else None
        channels, groups = (
            (conv.out_channels, conv.out_channels) if self.copies > 1 else (conv.in_channels, conv.groups)
        )
        c, a = kh // 2, _centre_half_height(kw)
        ph, pw = int(conv.padding[0]), int(conv.padding[-1])  # numeric: _bandable checked
        # (rows, dilation): the dense centre band, then each pair of rows c-d, c+d
        bands = [(list(range(c - a, c + a + 1)), 1)] + [([c - d, c + d], 2 * d) for d in range(a + 1, c + 1)]
        self.bands = nn.ModuleList()
        for rows, dilation in bands:
            band = nn.Conv2d(
                channels,
                conv.out_channels,
                (len(rows), kw),
                stride=(conv.stride[0], conv.stride[-1]),
                padding=(ph - rows[0], pw),  # the original padding less the rows above this band
                dilation=(dilation, 1),
                groups=groups,
                bias=not self.bands and bias is not None,  # the first band carries the bias: no separate add
            )
            band.weight.data = weight[:, :, rows, :].clone()
            if band.bias is not None and bias is not None:
                band.bias.data = bias.clone()
            self.bands.append(band)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.copies > 1:  # x.view(...): a second node, as XNNPACK's cat refuses one input twice
            x = torch.cat([x] + [x.view(x.shape) for _ in range(self.copies - 1)], dim=1)
        out: torch.Tensor | None = None
        for band in self.bands:  # band by band: the graph's op order is the bytes'
            y = band(x)
            out = y if out is None else out + y
        assert out is not None  # a banded conv has at least one band
        if self.copies > 1:  # (copy, channel) -> (channel, copy): PyTorch's output order
            n, ch, h, w = out.shape
            out = out.view(n, self.copies, ch // self.copies, h, w).transpose(1, 2).reshape(n, ch, h, w)
        return out


def _depthwise(m: nn.Module) -> TypeGuard[nn.Conv2d]:
    return (
        isinstance(m, nn.Conv2d)
        and m.groups == m.in_channels
        and m.groups > 1
        and m.dilation == (1, 1)
        and m.padding_mode == "zeros"
        and isinstance(m.padding, tuple)
    )


def _bandable(m: nn.Module) -> bool:
    if not _depthwise(m):
        return False
    kh, kw = m.kernel_size
    # Odd height (a centre row), more taps than one pass takes, a two-row band within one pass, and
    # padding that covers the centre band (each band's own padding is the original's less what it skips).
    return (
        kh % 2 == 1
        and kh * kw > MAX_TAPS
        and 2 * kw <= MAX_TAPS
        and int(m.padding[0]) >= kh // 2 - _centre_half_height(kw)
    )


def band_large_depthwise(model: nn.Module) -> tuple[nn.Module, int]:
    """A copy of `model` with every large depthwise conv split into bands; and how many were.

    On every map size: below 16x16 a 7x7 was left whole once (each tile added its own per-channel
    quantization parameters: FastViT-T8 @64's int8 file grew by 0.32 MB as 4x4 tiles), but there
    ExecuTorch's XNNPACK runs it as a grouped GEMM, ~1 ms each for FastViT-S12's three on 8x8 maps:
    banded too, S12 @256, 10 rounds alternately, ExecuTorch fp32 35.8 -> 32.6 ms, int8 22.2 -> 19.9."""
    model = copy.deepcopy(model)
    targets = [(name, m) for name, m in model.named_modules() if _bandable(m)]
    for name, conv in targets:
        assert isinstance(conv, nn.Conv2d)  # _bandable checked
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, BandedDepthwise(conv))
    return model, len(targets)


def banded_note(count: int) -> str:
    return (
        f"{count} depthwise conv(s) of more than {MAX_TAPS} taps computed as centred bands of at most "
        f"{MAX_TAPS} (XNNPACK's one-pass kernels)"
    )
