"""MIL ops: linear algebra."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .registry import op


@op("linear")
def _linear(x, weight, op, bias=None):
    return F.linear(x, weight, bias)


@op("matmul")
def _matmul(x, y, op, transpose_x=False, transpose_y=False):
    if transpose_x:
        x = x.transpose(-1, -2)
    if transpose_y:
        y = y.transpose(-1, -2)
    return torch.matmul(x, y)


@op("einsum")
def _einsum(values, equation, op):
    return torch.einsum(equation, *values)


@op("scaled_dot_product_attention")
def _sdpa(query, key, value, op, attn_mask=None):
    if attn_mask is not None and attn_mask.dtype == torch.bool:
        attn_mask = torch.zeros_like(attn_mask, dtype=query.dtype).masked_fill(~attn_mask, float("-inf"))
    return F.scaled_dot_product_attention(query, key, value, attn_mask=attn_mask)
