"""Remove modules that do nothing at inference (dropout, stochastic depth) from the deploy form.

Not cosmetic: exported in eval mode, a Dropout(p=0) still leaves a node in the graph, and
litert-torch's int8 lowering of PT2E's quantize/dequantize pairs around it goes wrong. Measured
on FastViT-S12 (timm's head: pool -> Dropout -> fc): TFLite int8 6.3 dB against 31.6 dB for the
same quantized graph simulated in PyTorch; with the dropout removed, 31.6 dB on both.
"""

from __future__ import annotations

from torch import nn

_NOOP_TYPES: tuple[type[nn.Module], ...] = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)
_NOOP_NAMES = ("DropPath", "DropBlock2d")  # timm's stochastic depth / DropBlock: identities in eval


def strip_inference_noops(model: nn.Module) -> int:
    """Replace every such module by nn.Identity, in place; return how many were replaced."""
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, _NOOP_TYPES) or type(child).__name__ in _NOOP_NAMES:
                setattr(parent, name, nn.Identity())
                replaced += 1
    return replaced
