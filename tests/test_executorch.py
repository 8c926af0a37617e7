"""ExecuTorch target: `.pte` programs lowered to XNNPACK, validated on ExecuTorch's own runtime.

The default suite reads the session's T8 run (`t8_all`: `--target all` includes executorch fp32) and
converts T8 to int8 once; the digits-trained acceptance (accuracy, size) is in `make test-slow`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from effconvert.errors import BadInput
from effconvert.synth.digits import digits_model


def _entry(report: dict, target: str, quant: str) -> dict:
    return next(a for a in report["artifacts"] if a["target"] == target and a["quant"] == quant)


def test_all_targets_include_an_executorch_program_validated_on_its_runtime(t8_all):
    entry = _entry(t8_all.report.to_json(), "executorch", "fp32")
    assert entry["runtime"] == "executorch-xnnpack"
    assert entry["parity"]["passed"] and entry["parity"]["max_rel_err"] <= 1e-5
    assert any("XNNPACK delegated" in note and "1 subgraph" in note for note in entry["notes"]), entry["notes"]
    # the TFLite path's rewrite for XNNPACK, shared: the row says xnnpack (convert/large_kernels.py)
    assert any("computed as centred bands" in note for note in entry["notes"]), entry["notes"]
    assert (t8_all.out_dir / "fastvit_t8_fp32.pte").is_file()
    assert not any(a["target"] == "executorch" and a["quant"] == "fp16" for a in t8_all.report.to_json()["artifacts"])


def test_the_program_runs_the_same_as_the_pytorch_model_and_carries_its_metadata(t8_all, checkpoints):
    import torch

    from effconvert.load import load_checkpoint
    from effconvert.runtime import Batch, open_runtime
    from effconvert.validate import input_set

    loaded = load_checkpoint(checkpoints("fastvit_t8"))
    x = input_set(loaded.preprocessing, samples=2, seed=3).inputs
    runtime = open_runtime(t8_all.out_dir / "fastvit_t8_fp32.pte", threads=1)
    with torch.no_grad():
        reference = loaded.model(torch.from_numpy(x)).numpy()
    got = runtime.run(Batch(x))
    assert np.abs(got - reference).max() / np.abs(reference).max() < 1e-5
    meta = runtime.metadata()
    assert meta["effconvert.arch"] == "fastvit_t8" and meta["effconvert.target"] == "executorch"
    assert len(json.loads(meta["effconvert.labels"])) == 1000


def test_inspect_and_app_read_the_program(cli, t8_all, tmp_path):
    pte = t8_all.out_dir / "fastvit_t8_fp32.pte"
    result = cli("inspect", pte)
    assert result.exit_code == 0, result.output
    for text in (
        "input [1, 3, 256, 256]",
        "XnnpackBackend x1",
        "0 portable-kernel call(s)",
        "effconvert_metadata",
        "effconvert.arch",
    ):
        assert text in result.output, result.output
    result = cli("app", "android", "--artifact", pte, "--out", tmp_path / "app")
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "app" / "app/src/main/assets/manifest.json").read_text())
    assert manifest["runtime"] == "executorch" and manifest["input_shape"] == [1, 3, 256, 256]
    assert manifest["output_shape"] == [1, 1000] and (tmp_path / "app" / "app/src/main/assets/model.pte").is_file()


def test_fp16_alone_is_refused_with_the_measured_reason(cli, t8_all, tmp_path):
    """Asked for nothing but ExecuTorch fp16: nothing is left to build, refused naming why and what is offered."""
    result = cli(t8_all.out_dir / "missing.pth", "--target", "executorch", "--quant", "fp16", "--out", tmp_path / "o")
    assert result.exit_code == 2 and "executorch fp16 skipped: measured: XNNPACK" in result.output
    assert "GELU" in result.output and "executorch: fp32, int8" in result.output
    assert not (tmp_path / "o").exists()


def test_a_file_that_is_not_a_program_is_refused(tmp_path, cli):
    bad = tmp_path / "bad.pte"
    bad.write_bytes(b"\x00" * 64)
    result = cli("inspect", bad)
    assert result.exit_code == 2 and "not a readable ExecuTorch program" in result.output
    with pytest.raises(BadInput):
        from effconvert.runtime import open_runtime

        open_runtime(bad)


@pytest.mark.slow  # 30 s; the default suite keeps ExecuTorch fp32 (t8_all)
def test_int8_program_on_a_make_checkpoint(tmp_path, checkpoints, cli):
    """The issue's acceptance on a synthetic T8: fp32 and int8 programs, runtime, inspect."""
    out = tmp_path / "out"
    result = cli(
        checkpoints("fastvit_t8"),
        "--target",
        "executorch",
        "--quant",
        "fp32",
        "--quant",
        "int8",
        "--samples",
        "4",
        "--calib-samples",
        "8",
        "--no-fallback",
        "--out",
        out,
        "--json",
    )
    assert result.exit_code in (0, 1), result.output  # a synthetic model's int8 gate may miss
    report = json.loads((out / "report.json").read_text())
    int8 = _entry(report, "executorch", "int8")
    assert int8["runtime"].startswith("executorch") and int8["parity"]["psnr_db"] > 25
    assert int8["size_bytes"] <= 0.30 * _entry(report, "executorch", "fp32")["size_bytes"]
    assert any("W8A8" in note for note in int8["notes"])
    result = cli("inspect", out / "fastvit_t8_int8.pte")
    assert result.exit_code == 0 and "XnnpackBackend" in result.output


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["fastvit_t8", "efficientvit_b0"])
def test_digits_programs_keep_accuracy(arch, tmp_path):
    """fp32 max rel err <= 1e-5 on the ExecuTorch runtime; int8 within 1 point of PyTorch's task
    accuracy at <= 0.30x the fp32 size (the issue's acceptance)."""
    from effconvert.pipeline import Request, run

    digits = digits_model(arch=arch)
    outcome = run(
        Request(
            digits.checkpoint,
            ("executorch",),
            ("fp32", "int8"),
            tmp_path,
            samples=400,
            val=digits.val_dir,
            calib=digits.train_dir,
            calib_samples=32,
        )
    )
    report = outcome.report.to_json()
    fp32, int8 = _entry(report, "executorch", "fp32"), _entry(report, "executorch", "int8")
    reference = report["inputs"]["reference_accuracy"]
    print(
        f"\n{arch}: reference {reference:.4f}; fp32 {fp32['parity']['accuracy']:.4f} max rel "
        f"{fp32['parity']['max_rel_err']:.1e}; int8 {int8['parity']['accuracy']:.4f} "
        f"size {int8['size_bytes'] / fp32['size_bytes']:.3f}x"
    )
    assert fp32["parity"]["max_rel_err"] <= 1e-5
    assert reference - int8["parity"]["accuracy"] <= 0.01
    assert int8["size_bytes"] <= 0.30 * fp32["size_bytes"]


@pytest.mark.slow  # about 3 minutes: calibration, ranking, the all-int8 program and the fallback's attempts
def test_efficientformerv2_int8_with_its_fallback_ends_with_every_artifact_reported(tmp_path, checkpoints, cli):
    """Issue 36's reproduction: EfficientFormerV2-S0 (make-checkpoint), ExecuTorch int8 calibrated on
    a folder of 32 JPEGs, fallback on. It ended in `internal error: KeyError` (exit 4) beside a .pte
    that could not run; now it ends 0 or 1 and report.json names every artifact in the folder."""
    from PIL import Image

    from effconvert.validate.natural_images import natural_images

    calib = tmp_path / "calib"
    calib.mkdir()
    for i, pixels in enumerate(natural_images(32, (256, 256), seed=11)):
        Image.fromarray(pixels).save(calib / f"{i:02d}.jpg", quality=90)
    out = tmp_path / "out"
    result = cli(
        checkpoints("efficientformerv2_s0", "original"),
        "--target",
        "executorch",
        "--quant",
        "int8",
        "--calib",
        calib,
        "--samples",
        "8",
        "--out",
        out,
    )
    assert result.exit_code in (0, 1), result.output
    report = json.loads((out / "report.json").read_text())
    named = {Path(a["path"]).name for a in report["artifacts"] if a["path"]}
    on_disk = {p.name for p in out.iterdir() if p.name not in ("report.json", "report.html")}
    assert on_disk <= named, (on_disk, named)
    [entry] = report["artifacts"]
    assert entry["parity"]["psnr_db"] > 25
    for attempt in (entry.get("fallback") or {}).get("attempts", []):
        assert attempt.get("error") or attempt["psnr_db"] is not None
