"""The numerical proof that fusion changed nothing, in two parts:

  1. exactness: fused and reference run in float64 agree to EXACT_TOLERANCE — the rewrite is the
     same function, with no room for an approximation to hide;
  2. fp32: the fused model in fp32 is within max(tolerance, NOISE_FACTOR x the reference's own
     fp32 error) of the float64 reference. Some networks amplify fp32 rounding on their own
     (EfficientViT-M's cascaded attention: ~3e-5 between fp32 and fp64 of the *unfused* model),
     so a fixed 1e-5 between two fp32 runs would fail an exact fusion; the fused model must
     simply not be meaningfully less faithful than the model it replaces.
If either part fails, name the first module (in execution order) whose output diverges, by
comparing every module both models share.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..numeric import max_errors

# max|fused - reference| / max|reference| over the batch (design.md's max_rel_err).
FUSION_TOLERANCE = 1e-5
# float64 fused vs float64 reference: rounding only. ~1e-13 on most models; MIT EfficientViT's
# linear attention divides by sums that can be ~0 (ReLU'd q.k, eps 1e-15) and reaches ~2e-8.
# A wrong fold (BN eps, a missed shift) shows up at >= 1e-4.
EXACT_TOLERANCE = 1e-7
NOISE_FACTOR = 4.0  # fp32 fused may be this many times the reference's own fp32 error


@dataclass(frozen=True)
class FusionProof:
    passed: bool
    max_abs_err: float  # fp32 fused vs fp32 reference
    max_rel_err: float
    samples: int
    tolerance: float  # what fp32 was held to (see module docstring)
    modules_fused: int
    first_divergent: str | None = None  # module name, only when the proof fails
    skipped: bool = False
    exact_rel_err: float = 0.0  # float64 fused vs float64 reference
    fp32_rel_err: float = 0.0  # fp32 fused vs float64 reference
    fp32_noise_floor: float = 0.0  # fp32 reference vs float64 reference

    def report_dict(self) -> dict:
        return asdict(self)


@torch.no_grad()
def prove(
    reference: nn.Module,
    fused64: nn.Module,
    inputs: torch.Tensor,
    *,
    modules_fused: int,
    altered: frozenset[str] = frozenset(),
    tolerance: float = FUSION_TOLERANCE,
    ref32: torch.Tensor | None = None,
) -> FusionProof:
    """`fused64`: the fused model in float64. `altered`: modules whose own output changed by
    design (a conv that absorbed its BN). `ref32`: `reference(inputs)` when already computed."""
    inputs = inputs.float()
    reference64 = copy.deepcopy(reference).double().eval()
    fused32 = copy.deepcopy(fused64).float().eval()
    ref32 = reference(inputs) if ref32 is None else ref32
    ref64 = reference64(inputs.double())
    exact = max_errors(fused64(inputs.double()), ref64)[1]
    fused32_out = fused32(inputs)
    noise_floor = max_errors(ref32, ref64)[1]
    fp32_err = max_errors(fused32_out, ref64)[1]
    allowed = max(tolerance, NOISE_FACTOR * noise_floor)
    abs_err, rel_err = max_errors(fused32_out, ref32)
    first = None
    if exact > EXACT_TOLERANCE:
        first = first_divergent_module(reference64, fused64, inputs.double(), EXACT_TOLERANCE, altered)
    elif fp32_err > allowed:
        first = first_divergent_module(reference, fused32, inputs, allowed, altered)
    passed = exact <= EXACT_TOLERANCE and fp32_err <= allowed
    return FusionProof(
        passed,
        abs_err,
        rel_err,
        len(inputs),
        allowed,
        modules_fused,
        first,
        exact_rel_err=exact,
        fp32_rel_err=fp32_err,
        fp32_noise_floor=noise_floor,
    )


@torch.no_grad()
def first_divergent_module(
    reference: nn.Module,
    fused: nn.Module,
    inputs: torch.Tensor,
    tolerance: float,
    altered: frozenset[str] = frozenset(),
) -> str | None:
    shared = dict(reference.named_modules()).keys() & dict(fused.named_modules()).keys()
    shared -= {""} | set(altered)
    ref_outputs = _record(reference, shared, inputs)
    fused_calls: dict[str, list[torch.Tensor]] = {}
    for name, out in _record(fused, shared, inputs):
        fused_calls.setdefault(name, []).append(out)
    seen: dict[str, int] = {}
    for name, ref in ref_outputs:  # post-forward order: innermost-earliest first
        call = seen[name] = seen.get(name, -1) + 1  # a module may run more than once (LiteMLA's ReLU)
        outs = fused_calls.get(name, [])
        found = outs[call] if call < len(outs) else None
        if found is not None and found.shape == ref.shape and max_errors(found, ref)[1] > tolerance:
            return name
    return None


def _record(model: nn.Module, names: set[str], inputs: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    outputs: list[tuple[str, torch.Tensor]] = []
    handles = []
    for name, module in model.named_modules():
        if name in names:
            handles.append(
                module.register_forward_hook(
                    lambda _m, _i, out, name=name: outputs.append((name, out)) if torch.is_tensor(out) else None
                )
            )
    try:
        model(inputs)
    finally:
        for h in handles:
            h.remove()
    return outputs
