"""The numerical proof that fusion changed nothing: run the reference (as loaded) and the fused
model on the same inputs in fp32 and measure the difference; if it is too large, name the first
module (in execution order) whose output diverges, by comparing every module both models share.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

# max|fused - reference| / max|reference| over the batch (design.md's max_rel_err).
FUSION_TOLERANCE = 1e-5


@dataclass(frozen=True)
class FusionProof:
    passed: bool
    max_abs_err: float
    max_rel_err: float
    samples: int
    tolerance: float
    modules_fused: int
    first_divergent: str | None = None     # module name, only when the proof fails
    skipped: bool = False

    def report_dict(self) -> dict:
        return asdict(self)


def max_errors(out: torch.Tensor, ref: torch.Tensor) -> tuple[float, float]:
    diff = (out.double() - ref.double()).abs().max().item()
    scale = ref.double().abs().max().item()
    return diff, diff / scale if scale > 0 else (0.0 if diff == 0 else float("inf"))


@torch.no_grad()
def prove(reference: nn.Module, fused: nn.Module, inputs: torch.Tensor, *, modules_fused: int,
          altered: frozenset[str] = frozenset(), tolerance: float = FUSION_TOLERANCE) -> FusionProof:
    """`altered`: modules whose own output changed by design (a conv that absorbed its BN)."""
    ref_out, fused_out = reference(inputs), fused(inputs)
    abs_err, rel_err = max_errors(fused_out, ref_out)
    passed = rel_err <= tolerance
    first = None if passed else first_divergent_module(reference, fused, inputs, tolerance, altered)
    return FusionProof(passed, abs_err, rel_err, len(inputs), tolerance, modules_fused, first)


@torch.no_grad()
def first_divergent_module(reference: nn.Module, fused: nn.Module, inputs: torch.Tensor,
                           tolerance: float, altered: frozenset[str] = frozenset()) -> str | None:
    shared = dict(reference.named_modules()).keys() & dict(fused.named_modules()).keys()
    shared -= {""} | set(altered)
    ref_outputs = _record(reference, shared, inputs)
    fused_outputs = _record(fused, shared, inputs)
    for name, ref in ref_outputs:                  # post-forward order: innermost-earliest first
        out = dict(fused_outputs).get(name)
        if out is not None and out.shape == ref.shape and max_errors(out, ref)[1] > tolerance:
            return name
    return None


def _record(model: nn.Module, names: set[str], inputs: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    outputs: list[tuple[str, torch.Tensor]] = []
    handles = []
    for name, module in model.named_modules():
        if name in names:
            handles.append(module.register_forward_hook(
                lambda _m, _i, out, name=name: outputs.append((name, out)) if torch.is_tensor(out) else None))
    try:
        model(inputs)
    finally:
        for h in handles:
            h.remove()
    return outputs
