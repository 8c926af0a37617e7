"""Fusion: reparameterization and BN folding, each proven numerically against the unfused model."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from effconvert.errors import ParityFailed
from effconvert.fuse import FUSION_TOLERANCE, fuse_model
from effconvert.fuse.conv_bn import fold_batchnorms, fold_bn_params
from effconvert.fuse.proof import first_divergent_module
from effconvert.load.fastvit import VARIANTS
from effconvert.load.reparameterize import pending, reparameterize
from effconvert.numeric import max_errors

# By default T8 (RepMixer blocks); all ten in `make test-slow`, SA12 (attention and RepCPE) among
# them (19 s; MA36 alone takes 30 s). SA12's attention blocks still convert in make test
# (test_mil_executor's op coverage).
DEFAULT_VARIANTS = ("fastvit_t8",)


@pytest.mark.parametrize(
    "arch", [a if a in DEFAULT_VARIANTS else pytest.param(a, marks=pytest.mark.slow) for a in VARIANTS]
)
def test_fusion_proof_for_every_fastvit_variant(arch, realistic, inputs):
    model, _ = realistic(arch)
    fused = fuse_model(model, inputs=inputs(arch, 8))
    proof = fused.proof
    print(
        f"\n{arch}: fusion max_abs_err {proof.max_abs_err:.2e} max_rel_err {proof.max_rel_err:.2e}"
        f" modules {fused.steps}"
    )
    assert proof.passed and proof.max_rel_err <= FUSION_TOLERANCE
    assert proof.samples == 8
    assert fused.steps["reparameterize"] > 0 and fused.steps["fold_bn"] > 0
    assert pending(fused.model) == []
    # Every BatchNorm after a conv is gone; only the attention pre-norms (BN before qkv) remain.
    left = [n for n, m in fused.model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert all(n.endswith(".norm") for n in left), left
    # Every layer scale went into the conv/linear before it; no dropout is left for the exporters.
    kinds = {type(m).__name__ for m in fused.model.modules()}
    assert "LayerScale2d" not in kinds and "Dropout" not in kinds, kinds
    assert fused.steps["fold_layer_scale"] > 0 and fused.steps["strip_noops"] > 0


@pytest.mark.slow  # builds FastViT-SA12 (~29 s); the fast suite proves fusion on T8
def test_reparameterize_is_idempotent_and_fuses_a_copy(realistic, inputs):
    model, _ = realistic("fastvit_sa12")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    once = reparameterize(model)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items()), "input was modified"
    twice = reparameterize(once)
    assert once.state_dict().keys() == twice.state_dict().keys()
    assert all(torch.equal(once.state_dict()[k], twice.state_dict()[k]) for k in once.state_dict())
    # The large-kernel conv (timm's ReparamLargeKernelConv has no guard of its own) is untouched.
    lkc = twice.stages[1].downsample.proj[0]
    assert lkc.reparam_conv is not None and not hasattr(lkc, "large_conv")


def test_identity_batchnorm_leaves_weights_unchanged():
    """Known answer: mean 0, var 1 - eps, gamma 1, beta 0 is the identity."""
    conv = nn.Conv2d(4, 6, 3, bias=True)
    bn = nn.BatchNorm2d(6).eval()
    bn.running_var.fill_(1 - bn.eps)
    weight, bias = fold_bn_params(conv.weight.detach(), conv.bias.detach(), bn)
    torch.testing.assert_close(weight, conv.weight.detach(), rtol=0, atol=1e-7)
    torch.testing.assert_close(bias, conv.bias.detach(), rtol=0, atol=1e-7)


@pytest.mark.parametrize("groups", [1, 4])
def test_conv_bn_fold_matches_numerically(groups):
    """Given Sequential(conv, bn, relu) with random statistics -> Sequential(conv', Identity, relu)."""
    torch.manual_seed(0)
    seq = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=groups, bias=False), nn.BatchNorm2d(8), nn.ReLU())
    bn = seq[1]
    bn.running_mean.normal_(0, 2)
    bn.running_var.uniform_(0.1, 4)
    bn.weight.data.uniform_(0.5, 2)
    bn.bias.data.normal_()
    seq.eval()
    x = torch.randn(2, 8, 9, 9)
    expected = seq(x)
    folded = copy.deepcopy(seq)
    assert fold_batchnorms(folded) == ["0"]
    assert [type(m) for m in folded] == [nn.Conv2d, nn.Identity, nn.ReLU]
    abs_err, rel_err = max_errors(folded(x), expected)
    assert rel_err < 1e-6, (abs_err, rel_err)


def test_timm_conv_norm_act_keeps_its_activation():
    from timm.layers import ConvNormAct

    torch.manual_seed(0)
    block = ConvNormAct(4, 4, 3, act_layer=nn.ReLU).eval()
    block.bn.running_mean.normal_()
    block.bn.running_var.uniform_(0.5, 2)
    x = torch.randn(1, 4, 8, 8)
    expected = block(x)
    assert fold_batchnorms(block) == ["conv"]
    assert isinstance(block.bn, nn.Sequential) and isinstance(block.bn[0], nn.ReLU)
    assert max_errors(block(x), expected)[1] < 1e-6


@pytest.mark.slow  # ~17 s; the fast suite's parity-failed test also checks the module it names
def test_failed_proof_names_the_first_divergent_module(realistic, inputs):
    model, _ = realistic("fastvit_t8")
    x = inputs("fastvit_t8", 8)
    tampered = copy.deepcopy(model)
    tampered.eval()
    tampered = reparameterize(tampered)
    altered = frozenset(fold_batchnorms(tampered))
    assert max_errors(tampered(x), model(x))[1] < FUSION_TOLERANCE  # an honest fold localises nothing
    assert first_divergent_module(model, tampered, x, FUSION_TOLERANCE, altered) is None
    with torch.no_grad():
        tampered.stages[1].blocks[0].token_mixer.reparam_conv.weight.mul_(1.01)
    found = first_divergent_module(model, tampered, x, FUSION_TOLERANCE, altered)
    assert found == "stages.1.blocks.0.token_mixer"


def test_fuse_model_raises_parity_failed_when_the_proof_fails(realistic, inputs, monkeypatch):
    import importlib

    fuse_pkg = importlib.import_module("effconvert.fuse")  # effconvert.fuse is the API function

    def broken_fold(model):  # simulate a wrong fold
        names = fold_batchnorms(model)
        with torch.no_grad():
            model.stages[0].blocks[0].mlp.conv.conv.bias.add_(0.5)
        return names

    monkeypatch.setattr(fuse_pkg, "fold_batchnorms", broken_fold)
    model, _ = realistic("fastvit_t8")
    with pytest.raises(
        ParityFailed, match=r"fusion proof failed.*first divergent module: stages\.0\.blocks\.0\.mlp\.conv"
    ):
        fuse_model(model, inputs=inputs("fastvit_t8", 8))


def test_no_fuse_is_recorded_as_skipped(realistic, inputs):
    model, _ = realistic("fastvit_t8")
    result = fuse_model(model, inputs=inputs("fastvit_t8", 8), enabled=False)
    assert result.model is model and result.proof.skipped


@pytest.mark.slow  # builds EfficientFormer-L1 (~19 s with its proof)
def test_layer_scale_fold_is_exact_and_leaves_unfoldable_scales(realistic, inputs):
    """EfficientFormer: the scale after each MLP folds into fc2 (after its BN is folded); the
    scale after the pooling token mixer has no producer to fold into and stays."""
    model, _ = realistic("efficientformer_l1")
    fused = fuse_model(model, inputs=inputs("efficientformer_l1", 8))
    assert fused.proof.passed and fused.proof.exact_rel_err < 1e-12
    scales = [n for n, m in fused.model.named_modules() if type(m).__name__ in ("LayerScale", "LayerScale2d")]
    assert scales and all(n.endswith(".ls1") for n in scales), scales
    assert fused.steps["fold_layer_scale"] == 16  # ls2 of 15 blocks + ls1 of the attention block
