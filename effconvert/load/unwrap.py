"""Find the state dict inside a checkpoint's wrappers.

Training scripts save `{'state_dict': ...}`, `{'model': ...}`, EMA copies, DataParallel's
`module.` prefix, or a larger model around the image tower (MobileCLIP). EMA weights are what
their authors evaluate, so they are preferred when present.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import BadInput
from .family import StateDict

# Preferred first: an EMA copy is the one published results come from.
WRAPPER_KEYS = ("state_dict_ema", "model_ema", "state_dict", "model", "module", "net", "params")
STRIP_PREFIXES = ("module.", "_orig_mod.")


@dataclass(frozen=True)
class Unwrapped:
    state: StateDict
    wrapper: str  # e.g. "state_dict_ema", "model", "" when the file is a bare state dict
    extras: dict[str, Any]  # non-tensor entries beside the weights (epoch, arch, effconvert info)


def unwrap(content: Any, *, embedded_prefixes: Sequence[str] = ()) -> Unwrapped:
    if not isinstance(content, Mapping):
        raise BadInput(f"checkpoint holds a {type(content).__name__}, not a dict of weights")
    wrapper, state = "", content
    for key in WRAPPER_KEYS:
        inner = content.get(key)
        if isinstance(inner, Mapping) and _has_tensors(inner):
            wrapper, state = key, inner
            break
    extras = {k: v for k, v in content.items() if not isinstance(v, (torch.Tensor, Mapping))}
    if isinstance(content.get("effconvert"), Mapping):
        extras["effconvert"] = dict(content["effconvert"])
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise BadInput("checkpoint holds no tensors", hint="is this a checkpoint of a model?")
    for prefix in STRIP_PREFIXES:
        if all(k.startswith(prefix) for k in tensors):
            tensors = {k[len(prefix) :]: v for k, v in tensors.items()}
    for prefix in embedded_prefixes:
        inner = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        if inner:
            tensors = inner
            wrapper = f"{wrapper}/{prefix}".lstrip("/")
            break
    return Unwrapped(tensors, wrapper, extras)


def _has_tensors(mapping: Mapping) -> bool:
    return any(isinstance(v, torch.Tensor) for v in mapping.values())
