"""fuse: the deploy form of a model (reparameterized, BatchNorms folded) plus the proof that it
computes what the loaded model computes.

Steps, in order (the order matters):
  1. reparameterize — collapse multi-branch training blocks; must come first, since it creates
     the convs that step 2 may fold into and removes the branch BNs it reads;
  2. fold BN       — fold every BatchNorm left after a conv/linear (e.g. FastViT's ConvMlp);
     then fold layer scales into the conv/linear producing their input (layer_scale.py),
     and drop inference no-ops such as Dropout (noops.py: they break TFLite int8 lowering);
  3. prove         — on >= 8 inputs: float64 fused == float64 unfused to 1e-9 (the rewrite is
     exact), and fp32 fused within max(1e-5, 4x the model's own fp32 error) of float64 (proof.py).
Fusion arithmetic runs in float64 and is cast back to float32 once, so the folds themselves add
no rounding beyond the final cast.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import ParityFailed

# Reparameterization lives with the loader, which also needs it to build the deploy form that a
# reparameterized checkpoint loads into; fusion applies it first.
from ..load.reparameterize import reparameterize, reparameterize_counted
from .conv_bn import fold_batchnorms
from .layer_scale import fold_layer_scales
from .noops import strip_inference_noops
from .proof import EXACT_TOLERANCE, FUSION_TOLERANCE, FusionProof, prove

__all__ = [
    "FUSION_TOLERANCE",
    "FusedModel",
    "FusionProof",
    "Unproven",
    "fuse_model",
    "fuse_unproven",
    "proof_failure",
    "prove_fusion",
    "reparameterize",
    "skipped_proof",
]

MIN_PROOF_SAMPLES = 8


@dataclass
class FusedModel:
    model: nn.Module
    proof: FusionProof
    steps: dict[str, int] = field(default_factory=dict)  # step -> modules changed


@dataclass
class Unproven:
    """The fused model in float64, before its proof, and what the folds changed."""

    model64: nn.Module
    steps: dict[str, int]
    altered: frozenset[str]  # modules whose own output changed by design (absorbed a BN)

    @property
    def modules_fused(self) -> int:
        return self.steps["reparameterize"] + self.steps["fold_bn"] + self.steps["fold_layer_scale"]


def fuse_model(
    reference: nn.Module, *, inputs: torch.Tensor, enabled: bool = True, tolerance: float = FUSION_TOLERANCE
) -> FusedModel:
    """Fuse a copy of `reference`; raise ParityFailed if the proof fails."""
    if not enabled:
        return FusedModel(reference, skipped_proof(tolerance), {})
    unproven = fuse_unproven(reference)
    proof = prove_fusion(reference, unproven, inputs, tolerance=tolerance)
    if not proof.passed:
        raise proof_failure(proof)
    return FusedModel(unproven.model64.float().eval(), proof, unproven.steps)


def fuse_unproven(reference: nn.Module) -> Unproven:
    """Steps 1-2 on a float64 copy of `reference` (which is left as it was)."""
    fused = copy.deepcopy(reference).eval().double()
    with torch.no_grad():
        reparameterized = reparameterize_counted(fused)
        absorbed_bn = fold_batchnorms(fused)
        absorbed_scale = fold_layer_scales(fused)  # after BN folding: ConvMlpWithNorm's norm2
        stripped = strip_inference_noops(fused)
    steps = {
        "reparameterize": reparameterized,
        "fold_bn": len(absorbed_bn),
        "fold_layer_scale": len(absorbed_scale),
        "strip_noops": stripped,
    }
    return Unproven(fused, steps, frozenset(absorbed_bn + absorbed_scale))


def prove_fusion(
    reference: nn.Module,
    unproven: Unproven,
    inputs: torch.Tensor,
    *,
    tolerance: float = FUSION_TOLERANCE,
    ref32: torch.Tensor | None = None,
) -> FusionProof:
    """Step 3. May run in another process than the fusion (pipeline/checks.py): it needs only the
    two models and the inputs."""
    if len(inputs) < MIN_PROOF_SAMPLES:
        raise ValueError(f"the fusion proof needs at least {MIN_PROOF_SAMPLES} inputs")
    return prove(
        reference.eval(),
        unproven.model64,
        inputs,
        modules_fused=unproven.modules_fused,
        altered=unproven.altered,
        tolerance=tolerance,
        ref32=ref32,
    )


def skipped_proof(tolerance: float = FUSION_TOLERANCE) -> FusionProof:
    return FusionProof(True, 0.0, 0.0, 0, tolerance, 0, skipped=True)


def proof_failure(proof: FusionProof) -> ParityFailed:
    where = f"; first divergent module: {proof.first_divergent}" if proof.first_divergent else ""
    return ParityFailed(
        f"fusion proof failed: float64 rel err {proof.exact_rel_err:.1e} (limit {EXACT_TOLERANCE:.0e}), "
        f"fp32 rel err {proof.fp32_rel_err:.2e} (limit {proof.tolerance:.1e}){where}",
        hint="run with --no-fuse to convert the unfused model, and report this as a bug",
    )
