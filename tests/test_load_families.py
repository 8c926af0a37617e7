"""EfficientFormer V1/V2, EfficientViT (M and B) and MobileOne: the original authors' layouts.

tests/fixtures/original_layouts.json.gz holds the {key: shape} of each authors' model, generated
once from their published code (snap-research/EfficientFormer, microsoft/Cream,
mit-han-lab/efficientvit, apple/ml-mobileone; the code itself is not in this repository). Our
timm -> authors map must reproduce it exactly, and authors -> timm must load strictly into timm.
(The same maps were checked numerically against the authors' models when written: identical
logits for every variant, see the closing note of the families issue.)
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import timm
import torch

from effconvert.fuse import fuse_model
from effconvert.load import FAMILIES, _detect, build_model, family_of_arch, load_checkpoint
from effconvert.load.read import RawCheckpoint
from effconvert.synth.checkpoint import make_checkpoint

FIXTURE = Path(__file__).parent / "fixtures" / "original_layouts.json.gz"
ORIGINAL = json.loads(gzip.decompress(FIXTURE.read_bytes()))["layouts"]
NEW_FAMILIES = [f for f in FAMILIES.values() if f.name != "fastvit"]
ALL = [v for f in NEW_FAMILIES for v in f.variants]
ONE_PER_FAMILY = [f.variants[0] for f in NEW_FAMILIES]
AUTHORS = {f.name: f.original for f in NEW_FAMILIES}


def _timm_state(arch: str, *, fused: bool = False, buffers: bool = False) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)  # the same tensors on every call
    model = build_model(arch, fused=fused) if fused else timm.create_model(arch)
    state = dict(model.state_dict())
    if buffers:
        state.update({k: v for k, v in model.named_buffers() if k not in state})
    return state


def _shapes(state) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in state.items()}


@pytest.mark.parametrize("arch", ALL)
def test_timm_to_authors_reproduces_the_authors_key_set_and_shapes(arch):
    layout = AUTHORS[family_of_arch(arch).name]
    state = _timm_state(arch, buffers=layout.needs_buffers)
    authors = layout.from_timm(state)
    assert _shapes(authors) == ORIGINAL[arch]
    assert layout.matches(authors)
    back = layout.to_timm(authors)
    plain = _timm_state(arch)
    assert back.keys() == plain.keys() and all(torch.equal(back[k], plain[k]) for k in plain)


@pytest.mark.parametrize("arch", [v for v in ALL if v.startswith("mobileone")])
def test_reparameterized_mobileone_matches_apples_deploy_layout(arch):
    layout = FAMILIES["mobileone"].layout("apple-fused")
    authors = layout.from_timm(_timm_state(arch, fused=True))
    assert _shapes(authors) == ORIGINAL[arch + ":fused"]
    assert layout.matches(authors) and not FAMILIES["mobileone"].layout("apple-fused").matches(
        FAMILIES["mobileone"].layout("apple").from_timm(_timm_state(arch))
    )


def test_efficientformer_v1_remap_agrees_with_timms_own_filter():
    from timm.models.efficientformer import checkpoint_filter_fn

    for arch in FAMILIES["efficientformer"].variants:
        timm_state = _timm_state(arch)
        authors = AUTHORS["efficientformer"].from_timm(timm_state)
        theirs = checkpoint_filter_fn(authors, None)
        ours = AUTHORS["efficientformer"].to_timm(authors)
        assert ours.keys() == theirs.keys() == timm_state.keys()


@pytest.mark.parametrize("arch", ALL)
def test_every_layout_is_recognised_as_its_own_family_only(arch):
    family = family_of_arch(arch)
    for layout in family.layouts:
        fused = layout.fused is True
        state = layout.from_timm(_timm_state(arch, fused=fused, buffers=layout.needs_buffers))
        found_family, found_layout, _ = _detect(RawCheckpoint(Path("x.pth"), "0", {"model": state}))
        assert (found_family.name, found_layout.name) == (family.name, layout.name)
        others = [
            (f.name, layout.name)
            for f in FAMILIES.values()
            for layout in f.layouts
            if layout.matches(state) and f is not family
        ]
        assert others == [], f"{arch} {layout.name} also matches {others}"


@pytest.mark.parametrize("arch", [*ONE_PER_FAMILY, pytest.param("mobileone_s4", marks=pytest.mark.slow)])
def test_authors_checkpoint_loads_without_arch_and_computes_the_same(arch, tmp_path, realistic, inputs):
    family = family_of_arch(arch)
    layout = AUTHORS[family.name]
    path = make_checkpoint(arch, tmp_path / "model.pth.tar", layout=layout.name, seed=0).path
    loaded = load_checkpoint(path)
    assert (loaded.arch, loaded.arch_from, loaded.family) == (arch, "keys", family.name)
    assert loaded.source_layout == layout.label and loaded.synthetic["layout"] == layout.name
    reference, _ = realistic(arch)
    x = inputs(arch, 4)
    with torch.no_grad():
        assert torch.equal(loaded.model(x), reference(x))


@pytest.mark.slow  # 8-17 s: in make test-slow (the default suite's budget)
def test_fused_mobileone_checkpoint_loads_into_the_deploy_form(tmp_path, realistic, inputs):
    path = make_checkpoint("mobileone_s1", tmp_path / "m.pth.tar", layout="apple-fused").path
    loaded = load_checkpoint(path)
    assert loaded.fused_on_load and loaded.arch == "mobileone_s1"
    assert not any(".conv_kxk." in k for k in loaded.model.state_dict())
    reference, _ = realistic("mobileone_s1")
    x = inputs("mobileone_s1", 4)
    with torch.no_grad():
        out, ref = loaded.model(x), reference(x)
    assert ((out - ref).abs().max() / ref.abs().max()) < 1e-5


@pytest.mark.parametrize("arch", ["efficientformer_l1", "efficientformerv2_s0"])
def test_distilled_models_evaluate_as_the_mean_of_both_heads(arch, realistic, inputs):
    model, _ = realistic(arch)
    x = inputs(arch, 4)
    with torch.no_grad():
        pooled = model.forward_head(model.forward_features(x), pre_logits=True)
        expected = (model.head(pooled) + model.head_dist(pooled)) / 2
        assert not torch.allclose(model.head(pooled), model.head_dist(pooled))
        assert torch.allclose(model(x), expected, atol=1e-5)


@pytest.mark.parametrize("arch", ONE_PER_FAMILY)
def test_fusion_is_exact_for_every_family(arch, realistic, inputs):
    model, _ = realistic(arch)
    fused = fuse_model(model, inputs=inputs(arch, 8))
    proof = fused.proof
    print(
        f"\n{arch}: {fused.steps} float64 {proof.exact_rel_err:.1e} fp32 {proof.fp32_rel_err:.1e} "
        f"(noise floor {proof.fp32_noise_floor:.1e})"
    )
    assert proof.passed and proof.exact_rel_err <= 1e-7
    assert sum(fused.steps.values()) > 0
    left = [n for n, m in fused.model.named_modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    # EfficientFormerV2 keeps its final BN (before pooling, not next to a conv); nothing else remains.
    assert left in ([], ["norm"]), left


def test_efficientformer_v2_at_another_input_size_loads_with_its_image_size(tmp_path):
    """V2's attention biases are sized by the input: a model trained at 64x64 does not fit the
    224x224 build. The size comes from effconvert's metadata or --image-size; without either the
    error says so instead of guessing."""
    from effconvert.errors import BadInput
    from effconvert.synth.checkpoint import write_state

    torch.manual_seed(0)
    model = build_model("efficientformerv2_s0", num_classes=10, image_size=64)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    bare, tagged = tmp_path / "bare.pth", tmp_path / "tagged.pth"
    write_state(bare, state, {})
    write_state(tagged, state, {"synthetic": False, "image_size": 64})

    with pytest.raises(BadInput) as missed:
        load_checkpoint(bare)
    assert "--image-size" in missed.value.hint and "attention biases" in missed.value.hint
    x = torch.randn(2, 3, 64, 64)
    for loaded in (load_checkpoint(bare, image_size=64), load_checkpoint(tagged)):
        assert loaded.arch == "efficientformerv2_s0" and loaded.preprocessing.size == (64, 64)
        with torch.no_grad():
            assert torch.equal(loaded.model(x), model(x))
    assert load_checkpoint(bare, arch="efficientformerv2_s0", image_size=64).arch_from == "--arch"
