"""FastViT loading: Apple's layouts (unfused and reparameterized) <-> timm, architecture
inference from shapes, strict loading with clear errors."""

from __future__ import annotations

import pytest
import timm
import torch

from effconvert.errors import BadInput
from effconvert.fuse import reparameterize
from effconvert.load import _choose_arch, load_checkpoint
from effconvert.load import fastvit as fv
from effconvert.synth.checkpoint import write_state

ALL = fv.VARIANTS
ROUND_TRIP = ("fastvit_t8", "fastvit_s12", "fastvit_sa12")


def _meta_state(arch: str, fused: bool) -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        model = timm.create_model(arch, inference_mode=fused)
    return model.state_dict()


@pytest.mark.parametrize("arch", ALL)
def test_apple_to_timm_agrees_with_timms_own_filter(arch):
    """Our remap of an unfused Apple checkpoint must equal timm's checkpoint_filter_fn, key for key
    and tensor for tensor (timm's filter is the reference for the unfused layout)."""
    from timm.models.fastvit import checkpoint_filter_fn

    timm_state = _meta_state(arch, fused=False)
    apple = fv.timm_to_apple(timm_state)
    assert not any(k.startswith(("stem.", "stages.")) for k in apple)
    ours, theirs = fv.apple_to_timm(apple), checkpoint_filter_fn(apple, None)
    assert ours.keys() == theirs.keys() == timm_state.keys()
    assert all(ours[k] is theirs[k] is timm_state[k] for k in ours)


@pytest.mark.parametrize("arch", ALL)
def test_reparameterized_apple_layout_round_trips(arch):
    fused = _meta_state(arch, fused=True)
    apple = fv.timm_to_apple(fused)
    assert any(".lkb_reparam." in k for k in apple), "large-kernel convs use Apple's lkb_reparam"
    assert fv._is_apple_fused(apple) and not fv._is_apple_fused(fv.timm_to_apple(_meta_state(arch, False)))
    back = fv.apple_to_timm(apple)
    assert list(back) == list(fused) and all(back[k] is fused[k] for k in back)


@pytest.mark.parametrize("fused", [False, True], ids=["unfused", "reparam"])
@pytest.mark.parametrize("arch", ALL)
def test_architecture_is_inferred_from_shapes_alone(arch, fused):
    state = _meta_state(arch, fused)
    num_classes = state["head.fc.weight"].shape[0]  # 512 for the MobileCLIP towers
    chosen, how = _choose_arch(fv.FASTVIT, state, "weights.pth", num_classes=num_classes, fused=fused, requested=None)
    assert (chosen, how) == (arch, "keys")


def test_fine_tuned_head_class_count_is_inferred():
    state = _meta_state("fastvit_t8", fused=False)
    state["head.fc.weight"] = torch.empty(37, 768, device="meta")
    state["head.fc.bias"] = torch.empty(37, device="meta")
    chosen, _ = _choose_arch(fv.FASTVIT, state, "x.pth", num_classes=37, fused=False, requested=None)
    assert chosen == "fastvit_t8"


def _round_trip_cases():
    """Every variant x layout; the default suite keeps T8 in all three and SA12 (attention stages) in
    the remapped authors' layout, 10-12 s each: the rest run in make test-slow (the suite's budget)."""
    for layout in ("timm", "apple", "apple-fused"):
        for arch in ROUND_TRIP:
            fast = arch == "fastvit_t8" or (arch == "fastvit_sa12" and layout == "apple")
            yield pytest.param(arch, layout, marks=() if fast else pytest.mark.slow, id=f"{layout}-{arch}")


@pytest.mark.parametrize(("arch", "layout"), list(_round_trip_cases()))
def test_round_trip_through_each_layout_computes_the_same(arch, layout, realistic, inputs, checkpoints):
    """timm model -> file in `layout` -> load_checkpoint -> same logits as the model we wrote."""
    model, _ = realistic(arch)
    expected_model = reparameterize(model) if layout == "apple-fused" else model
    loaded = load_checkpoint(checkpoints(arch, layout))
    assert loaded.arch == arch and loaded.arch_from == "keys"
    assert loaded.fused_on_load == (layout == "apple-fused")
    assert (
        loaded.source_layout
        == {"timm": "timm", "apple": "apple-ml-fastvit", "apple-fused": "apple-ml-fastvit-reparam"}[layout]
    )
    assert loaded.synthetic and loaded.synthetic["synthetic"] is True
    x = inputs(arch, 4)
    with torch.no_grad():
        assert torch.equal(loaded.model(x), expected_model.eval()(x))


def test_wrappers_and_prefixes_are_unwrapped(tmp_path, realistic):
    model, _ = realistic("fastvit_t8")
    apple = fv.timm_to_apple(model.state_dict())
    path = tmp_path / "mobileclip_image.pt"
    torch.save(
        {"state_dict_ema": {f"module.{k}": v for k, v in apple.items()}, "optimizer": {"lr": 0.1}, "epoch": 300}, path
    )
    loaded = load_checkpoint(path)
    assert loaded.arch == "fastvit_t8" and loaded.wrapper == "state_dict_ema"
    clip = tmp_path / "clip.pt"
    torch.save(
        {"image_encoder.model." + k: v for k, v in apple.items()}
        | {"text_encoder.embedding.weight": torch.zeros(3, 3)},
        clip,
    )
    assert load_checkpoint(clip).arch == "fastvit_t8"


def test_safetensors_checkpoint(tmp_path, realistic):
    model, _ = realistic("fastvit_t8")
    path = tmp_path / "fastvit_t8.safetensors"
    write_state(path, model.state_dict(), {"synthetic": True, "seed": 0, "arch": "fastvit_t8"})
    loaded = load_checkpoint(path)
    assert loaded.arch == "fastvit_t8" and loaded.synthetic["seed"] == 0  # an int from either format


def test_wrong_arch_override_names_the_mismatch(checkpoints):
    with pytest.raises(BadInput, match=r"does not fit --arch fastvit_t8: .*wrong shape") as info:
        load_checkpoint(checkpoints("fastvit_s12"), arch="fastvit_t8")
    assert "fastvit_s12" in info.value.hint
    with pytest.raises(BadInput, match="not a supported architecture"):
        load_checkpoint(checkpoints("fastvit_s12"), arch="resnet50")


def test_missing_and_extra_keys_are_counted_with_examples(tmp_path, realistic):
    model, _ = realistic("fastvit_t8")
    state = dict(model.state_dict())
    del state["stages.2.blocks.1.mlp.fc1.weight"]
    state["stages.2.blocks.1.mlp.extra"] = torch.zeros(1)
    path = tmp_path / "damaged.pth"
    torch.save(state, path)
    with pytest.raises(BadInput, match=r"no fastvit variant matches .*1 missing .*fc1\.weight.*1 unexpected"):
        load_checkpoint(path)


def test_non_finite_weights_are_refused(tmp_path, realistic):
    model, _ = realistic("fastvit_t8")
    state = dict(model.state_dict())
    state["head.fc.weight"] = state["head.fc.weight"].clone()
    state["head.fc.weight"][0, 0] = float("nan")
    path = tmp_path / "nan.pth"
    torch.save(state, path)
    with pytest.raises(BadInput, match="NaN/Inf"):
        load_checkpoint(path)


def test_unrecognised_layout(tmp_path):
    path = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7), "fc.weight": torch.zeros(10, 512)}, path)
    with pytest.raises(BadInput, match="no supported model layout"):
        load_checkpoint(path)
