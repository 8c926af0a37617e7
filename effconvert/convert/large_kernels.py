"""Large depthwise kernels as sums of small ones, for XNNPACK (LiteRT's and ExecuTorch's CPU
backend: convert() applies it for every target whose row says `xnnpack`).

XNNPACK (ai-edge-litert 2.3.0, x86-64) runs depthwise convolutions of up to 25 taps in one pass;
a 7x7 (49 taps) falls to a multipass kernel that is slower than the 49 taps justify. Measured on
this machine, six 7x7 depthwise convs over 64 channels at 64x64: fp32 17.3 ms as 7x7, 5.0 ms as
5x5 tiles; int8 25.1 ms vs 4.9 ms. FastViT has one in every ConvMlp and RepCPE and in each patch
embedding, so its int8 graph was barely faster than fp32. (4x4 tiles measured the same as 5x5.)
FastViT-S12 @256, 2 threads, one run: fp32 32.9 -> 26.6 ms, int8 27.5 -> 13.3 ms. Not used for
int8-weights: dynamic range quantizes each tile's input again (15.5 -> 23.4 ms, timed alternately).
A channel-multiplier conv (FastViT's patch embeddings) is tiled as plain depthwise convs over its
repeated input (see TiledDepthwise): FastViT-S12 @256, 2 threads, 12 rounds timed alternately,
LiteRT fp32 33.7 -> 30.5 ms, int8 44.6 -> 25.3 ms; ExecuTorch fp32 33.0 -> 31.0, int8 24.2 -> 21.7.

The rewrite is exact up to float summation order: a k x k kernel is cut into tiles of at most
4x4, each applied as its own conv, and the shifted outputs added. The model is copied; the
caller's is never modified.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

NOT_TILED_QUANTS = ("int8-weights",)  # dynamic range: each tile would quantize its input again
MIN_TILED_PIXELS = 16 * 16  # output maps smaller than this stay whole (see tile_large_depthwise)
MAX_TILE = 4  # 16 taps: one XNNPACK pass; 4 divides the strides used (1, 2, 4), see forward()
MAX_COPIES = 5  # XNNPACK concatenates 2 to 5 tensors in one op (a channel multiplier's copies)


class TiledDepthwise(nn.Module):
    """A depthwise (or channel-multiplier) Conv2d whose kernel exceeds MAX_TILE, as tiles.

    Each tile is a conv with the original padding and stride; tile (top, left)'s output,
    shifted by (top, left) / stride, is that tile's share of the original output. Cropping
    outputs instead of padding inputs keeps an explicit PAD out of the graph (litert-torch's
    layout pass refused a PAD behind a quantized tensor)."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        kh, kw = conv.kernel_size
        if isinstance(conv.padding, str):  # tile_large_depthwise tiles numeric paddings only
            raise ValueError(f"cannot tile a conv with padding {conv.padding!r}")
        self.stride: tuple[int, int] = (conv.stride[0], conv.stride[-1])
        self.padding: tuple[int, int] = (conv.padding[0], conv.padding[-1])
        self.kernel = (kh, kw)
        # A channel multiplier m (out = m x in, FastViT's patch embeddings) is computed as a plain
        # depthwise conv over the input repeated m times, its output channels in (copy, channel)
        # order, put back in PyTorch's (channel, copy) order at the end. XNNPACK runs a multiplier
        # conv as a grouped IGEMM, one input channel per group: one 7x7 stride-2 64 -> 128 conv at
        # 128x128 on ExecuTorch, 2 threads, fp32 22.2 -> 4.7 ms, int8 12.8 -> 6.6 ms.
        copies = conv.out_channels // conv.in_channels
        self.copies = copies if 1 < copies <= MAX_COPIES else 1
        weight, bias = conv.weight.data, conv.bias.data if conv.bias is not None else None
        if self.copies > 1:
            order = torch.arange(conv.out_channels).view(conv.in_channels, copies).t().reshape(-1)
            weight, bias = weight[order], bias[order] if bias is not None else None
        channels, groups = (
            (conv.out_channels, conv.out_channels) if self.copies > 1 else (conv.in_channels, conv.groups)
        )
        self.tiles = nn.ModuleList()
        self.offsets: list[tuple[int, int]] = []
        for top in range(0, kh, MAX_TILE):
            for left in range(0, kw, MAX_TILE):
                share = weight[:, :, top : top + MAX_TILE, left : left + MAX_TILE]
                first = not self.tiles  # carries the bias: no separate add
                tile = nn.Conv2d(
                    channels,
                    conv.out_channels,
                    (share.shape[2], share.shape[3]),
                    stride=self.stride,
                    padding=self.padding,
                    groups=groups,
                    bias=first and bias is not None,
                )
                tile.weight.data = share.clone()
                if tile.bias is not None and bias is not None:
                    tile.bias.data = bias.clone()
                self.tiles.append(tile)
                self.offsets.append((top // conv.stride[0], left // conv.stride[1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (ph, pw), (sh, sw), (kh, kw) = self.padding, self.stride, self.kernel
        out_h = (x.shape[-2] + 2 * ph - kh) // sh + 1
        out_w = (x.shape[-1] + 2 * pw - kw) // sw + 1
        if self.copies > 1:  # x.view(...): a second node, as XNNPACK's cat refuses one input twice
            x = torch.cat([x] + [x.view(x.shape) for _ in range(self.copies - 1)], dim=1)
        out: torch.Tensor | None = None
        for tile, (dy, dx) in zip(self.tiles, self.offsets):  # tile by tile: the graph's op order is the bytes'
            y = tile(x)[:, :, dy : dy + out_h, dx : dx + out_w]
            out = y if out is None else out + y
        assert out is not None  # a tiled conv has at least one tile
        if self.copies > 1:  # (copy, channel) -> (channel, copy): PyTorch's output order
            n, c, h, w = out.shape
            out = out.view(n, self.copies, c // self.copies, h, w).transpose(1, 2).reshape(n, c, h, w)
        return out


def _tileable(m: nn.Module) -> bool:
    return (
        isinstance(m, nn.Conv2d)
        and m.groups == m.in_channels
        and m.groups > 1
        and max(m.kernel_size) > MAX_TILE
        and m.dilation == (1, 1)
        and m.padding_mode == "zeros"
        and isinstance(m.padding, tuple)
        and all(MAX_TILE % s == 0 for s in m.stride)
    )


def tile_large_depthwise(model: nn.Module, sample: torch.Tensor) -> tuple[nn.Module, int]:
    """A copy of `model` with every large depthwise conv whose output (for `sample`) has at least
    MIN_TILED_PIXELS tiled; and how many were. Small maps gain little time, and each tile adds its
    own per-channel quantization parameters and bias: on FastViT-T8 @64 tiling every 7x7 grew the
    int8 file by 0.32 MB (3.70 -> 4.02 MB, 0.31x fp32)."""
    model = copy.deepcopy(model)
    pixels: dict[str, int] = {}
    hooks = [
        m.register_forward_hook(
            lambda mod, args, out, name=name: pixels.__setitem__(name, out.shape[-2] * out.shape[-1])
        )
        for name, m in model.named_modules()
        if _tileable(m)
    ]
    try:
        with torch.no_grad():
            model.eval()(sample)
    finally:
        for hook in hooks:
            hook.remove()
    targets = [name for name, count in pixels.items() if count >= MIN_TILED_PIXELS]
    for name in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, TiledDepthwise(getattr(parent, child)))
    return model, len(targets)


def tiled_note(count: int) -> str:
    return f"{count} depthwise conv(s) larger than {MAX_TILE}x{MAX_TILE} computed as {MAX_TILE}x{MAX_TILE} tiles (XNNPACK's fast kernels)"
