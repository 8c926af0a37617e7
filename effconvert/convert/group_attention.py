"""EfficientViT-M's cascaded group attention (timm's CascadedGroupAttention) in ops XNNPACK takes,
for ExecuTorch.

Exported as timm writes it, the block leaves ops on ExecuTorch's portable kernels that cut the
XNNPACK delegate apart (executorch 1.5.1): the attention-bias gather (`biases[:, idxs]`, an
index.Tensor), the per-head pick of it (select_copy), `chunk`/`split` (split_with_sizes_copy) and
the expand_copy that `@` on 3-D tensors becomes. EfficientViT-M0: 157 of 820 nodes portable, 80
delegate subgraphs, the gather alone 21 % of the time. Here the gathered biases are computed once
(constants of the exported program, one per head), the splits are channel slices and the products
are `bmm`: the same arithmetic (bit-identical in eager), every op delegated: 1 portable node, 2
subgraphs. EfficientViT-M0 fp32, one thread, timed alternately with LiteRT's .tflite of the same
model: 4.16 -> 2.53 ms, ExecuTorch / LiteRT 1.55 -> 0.95 (the TFLite path needs no rewrite: its
converter folds the gather into a constant).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn


class GroupAttentionForExport(nn.Module):
    """timm's CascadedGroupAttention.forward, op for op, with the biases gathered beforehand."""

    def __init__(self, attention: Any) -> None:  # timm's CascadedGroupAttention
        super().__init__()
        self.attention = attention  # shares the weights: nothing in the model changes
        self.resolution = attention.resolution  # the window size timm's LocalWindowAttention reads
        with torch.no_grad():
            gathered = attention.attention_biases[:, attention.attention_bias_idxs]
        for head, bias in enumerate(gathered):
            self.register_buffer(f"bias{head}", bias.detach().clone(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a: Any = self.attention  # timm's module: its attributes are plain ints and ModuleLists
        batch, channels, height, width = x.shape
        step = channels // len(a.qkvs)
        outputs = []
        feat = x[:, :step]
        for head, (qkv, dws) in enumerate(zip(a.qkvs, a.dws, strict=True)):
            if head > 0:
                feat = feat + x[:, head * step : (head + 1) * step]
            feat = qkv(feat)
            q = dws(feat[:, : a.key_dim])
            k = feat[:, a.key_dim : 2 * a.key_dim]
            v = feat[:, 2 * a.key_dim :]
            q, k, v = q.flatten(2), k.flatten(2), v.flatten(2)
            attn = torch.bmm((q * a.scale).transpose(1, 2), k) + getattr(self, f"bias{head}")
            attn = attn.softmax(dim=-1)
            feat = torch.bmm(v, attn.transpose(1, 2)).view(batch, a.val_dim, height, width)
            outputs.append(feat)
        return a.proj(torch.cat(outputs, 1))


@contextlib.contextmanager
def group_attention_for_export(model: nn.Module) -> Iterator[int]:
    """While exporting: every CascadedGroupAttention of `model` runs as a GroupAttentionForExport.
    Yields how many; afterwards the model is as it was (other targets export the same object)."""
    from timm.models.efficientvit_msra import CascadedGroupAttention

    slots = [
        (parent, name, child)
        for parent in model.modules()
        for name, child in parent.named_children()
        if isinstance(child, CascadedGroupAttention)
    ]
    for parent, name, child in slots:
        setattr(parent, name, GroupAttentionForExport(child))
    try:
        yield len(slots)
    finally:
        for parent, name, child in slots:
            setattr(parent, name, child)
