"""EfficientViT-B's linear attention (timm's LiteMLA) with its numerator and denominator as two
tensors, for integer programs that give every tensor one scale (the Snapdragon HTP's QDQ).

LiteMLA pads v with a column of ones so that one product q (kᵀ [v 1]) holds both the numerator
q (kᵀ v) and the denominator q (kᵀ 1), then slices and divides. Quantized, that tensor has one
scale for two quantities of different size, and the HTP's 16-bit program of the padded product
drifted from ONNX Runtime's own QDQ arithmetic by 15.7 dB (digits-trained B0, w8a16: 19.6 dB
against PyTorch where the CPU's QDQ reaches 33.7). As two products — the same quotient — the HTP
stays within 36.6 dB of the CPU's QDQ, and W8A8's CPU QDQ rises from 22.3 to 30.1 dB.

The key is scaled by 1/tokens (means instead of sums; the quotient is unchanged): kᵀ v summed
over 64×64 tokens left fp16's range on the HTP for a make-checkpoint B0 (fp16 37.8 dB against
PyTorch; 56.8 dB with the means).
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Iterator

import torch
from torch import nn


def _two_product_attention(self: nn.Module, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    dtype = v.dtype
    q, k, v = q.float(), k.float(), v[..., :-1].float()  # v arrives padded with the ones column
    tokens = k.shape[-2]
    k = k * (1.0 / tokens)  # means, not sums: both products scale alike, the quotient does not change
    numerator = q @ (k.transpose(-1, -2) @ v)
    denominator = q @ k.sum(dim=-2, keepdim=True).transpose(-1, -2)
    eps: float = self.eps  # type: ignore[assignment]  # a float attribute nn.Module's typing cannot see
    return (numerator / (denominator + eps / tokens)).to(dtype)


@contextlib.contextmanager
def split_linear_attention(model: nn.Module) -> Iterator[int]:
    """While exporting: every LiteMLA of `model` computes its numerator and denominator as two
    products. Yields how many were rewritten; afterwards the model is as it was (other targets export
    the same model object)."""
    from timm.models.efficientvit_mit import LiteMLA

    patched = [m for m in model.modules() if isinstance(m, LiteMLA)]
    for module in patched:
        module._attn = types.MethodType(_two_product_attention, module)  # type: ignore[method-assign]  # this instance only
    try:
        yield len(patched)
    finally:
        for module in patched:
            del module._attn  # the class's method again
