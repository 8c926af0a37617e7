"""Structural reparameterization: every timm module that offers `reparameterize()` (MobileOne
branches, RepMixer, large-kernel conv, RepCPE) collapses its training-time branches into one conv.

Dispatch is by duck typing, like timm's `reparameterize_model`, but idempotent: timm's
`MobileOneBlock` guards against a second call, `ReparamLargeKernelConv` does not, and a parent
(RepMixer) reparameterizes and deletes its children itself, so modules are fused one at a time
from a fresh walk of the live model and a fused module (`reparam_conv` set) is never touched again.
"""

from __future__ import annotations

import copy

from torch import nn


def is_reparameterized(module: nn.Module) -> bool:
    return getattr(module, "reparam_conv", None) is not None


def pending(model: nn.Module) -> list[str]:
    """Names of live modules that still have training-time branches to fuse."""
    return [
        name
        for name, m in model.named_modules()
        if callable(getattr(m, "reparameterize", None)) and not is_reparameterized(m)
    ]


def reparameterize(model: nn.Module, *, inplace: bool = False) -> nn.Module:
    model = model if inplace else copy.deepcopy(model)
    reparameterize_counted(model)
    return model


def reparameterize_counted(model: nn.Module) -> int:
    """Fuse in place; return how many modules were reparameterized."""
    done: set[int] = set()
    count = 0
    while True:
        todo = [m for m in (model.get_submodule(n) for n in pending(model)) if id(m) not in done]
        if not todo:
            return count
        module = todo[0]  # outermost first: a parent fuses its own children
        module.reparameterize()  # type: ignore[operator]  # pending() found it callable on this module
        done.add(id(module))
        count += 1
