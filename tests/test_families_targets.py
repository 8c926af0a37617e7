"""One variant of every family, original authors' layout, to every target in fp32 and fp16,
validated on the real runtimes (the full variant x target matrix is bench/support_matrix.py)."""

from __future__ import annotations

import pytest

from effconvert.load import FAMILIES
from effconvert.pipeline import Request, run

REPRESENTATIVES = {
    "efficientformer": "efficientformer_l1",
    "efficientformerv2": "efficientformerv2_s0",
    "efficientvit-m": "efficientvit_m0",
    "efficientvit-b": "efficientvit_b0",
    "mobileone": "mobileone_s0",
}


def test_every_family_has_a_representative():
    assert set(REPRESENTATIVES) | {"fastvit"} == set(FAMILIES)   # FastViT: tests/test_targets.py


@pytest.mark.parametrize("family", sorted(REPRESENTATIVES))
def test_family_converts_to_every_target_and_passes_parity(family, tmp_path, checkpoints):
    arch = REPRESENTATIVES[family]
    layout = next(l.name for l in FAMILIES[family].layouts if l.name != "timm" and l.fused is not True)
    outcome = run(Request(checkpoints(arch, layout), ("all",), ("fp32", "fp16"), tmp_path, samples=16))
    report = outcome.report
    assert report["model"]["arch"] == arch and report["fusion"]["passed"]
    assert len(report["artifacts"]) == 6
    for entry in report["artifacts"]:
        assert "error" not in entry, entry
        assert entry["runtime"] in ("coreml-mil-executor", "coreml-macos", "litert", "onnxruntime")
        print(f"\n{arch} {entry['target']} {entry['quant']}: rel {entry['parity']['max_rel_err']:.1e} "
              f"psnr {entry['parity']['psnr_db']:.1f} top1 {entry['parity']['top1_agreement']:.3f}")
        assert entry["parity"]["passed"], (entry["target"], entry["quant"], entry["parity"]["failures"])
