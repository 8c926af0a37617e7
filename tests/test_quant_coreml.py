"""Core ML quantization on the digits-trained FastViT-T8 (a model whose accuracy means something),
validated by the MIL executor on the saved packages."""

from __future__ import annotations

import pytest

from effconvert.synth.digits import digits_model


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    from effconvert.pipeline import Request, run

    digits = digits_model()
    out = tmp_path_factory.mktemp("coreml-quant")
    return run(Request(digits.checkpoint, ("coreml",), ("fp32", "fp16", "int8-weights", "int8"), out,
                       samples=400, val_dir=digits.val_dir, calib_dir=digits.train_dir, calib_samples=32,
                       palettize=6))


def _entry(outcome, quant):
    [entry] = [a for a in outcome.report["artifacts"] if a["quant"] == quant]
    return entry


def test_int8_weights_shrinks_the_package_and_keeps_accuracy(converted):
    from effconvert.validate.mil import MILExecutor

    fp32, fp16, int8 = (_entry(converted, q) for q in ("fp32", "fp16", "int8-weights"))
    for entry in (fp32, fp16, int8):
        p = entry["parity"]
        print(f"\ncoreml {entry['quant']}: {entry['size_bytes'] / 1e6:.2f} MB psnr {p['psnr_db']:.1f} "
              f"acc {p['accuracy']:.4f}")
        assert entry["runtime"] == "coreml-mil-executor" and p["passed"], p["failures"]
    assert int8["size_bytes"] <= 0.30 * fp32["size_bytes"]
    assert int8["parity"]["psnr_db"] >= 30
    assert fp32["parity"]["accuracy"] - int8["parity"]["accuracy"] <= 0.015
    assert abs(fp16["parity"]["accuracy"] - fp32["parity"]["accuracy"]) <= 0.002
    program = MILExecutor(converted.out_dir / int8["path"]).program
    assert any(op.type.startswith("constexpr_") for op in program.operations)   # weights stored as int8
    assert any("int8 weights" in note for note in int8["notes"])


def test_int8_w8a8_is_calibrated_on_linux_and_keeps_accuracy(converted):
    """W8A8 with activation ranges from the MIL executor; judged on the saved package's own program."""
    from effconvert.validate.mil import MILExecutor

    fp32, int8 = (_entry(converted, q) for q in ("fp32", "int8"))
    p = int8["parity"]
    print(f"\ncoreml int8: {int8['size_bytes'] / 1e6:.2f} MB psnr {p['psnr_db']:.1f} acc {p['accuracy']:.4f}")
    assert int8["runtime"] == "coreml-mil-executor" and p["passed"], p["failures"]
    assert fp32["parity"]["accuracy"] - p["accuracy"] <= 0.015
    assert p["top1_agreement"] >= 0.98
    assert int8["size_bytes"] <= 0.30 * fp32["size_bytes"]
    program = MILExecutor(converted.out_dir / int8["path"]).program
    quantized = [op for op in program.operations if op.type == "quantize"]
    assert len(quantized) >= 10                                  # activations really are int8
    assert program.opset == "CoreML7"                            # iOS 17: raised from the default 16
    assert any("raised from iOS 16 to iOS 17" in note for note in int8["notes"])
    assert converted.report["calibration"]["samples"] == 32


def test_palettized_weights_are_lookup_tables_and_keep_accuracy(converted):
    """--palettize 6: 64-entry k-means palettes per weight tensor, run from the package by the executor."""
    from effconvert.validate.mil import MILExecutor

    fp32, pal6 = (_entry(converted, q) for q in ("fp32", "pal6"))
    p = pal6["parity"]
    print(f"\ncoreml pal6: {pal6['size_bytes'] / 1e6:.2f} MB psnr {p['psnr_db']:.1f} acc {p['accuracy']:.4f}")
    assert pal6["runtime"] == "coreml-mil-executor" and p["passed"], p["failures"]
    assert pal6["size_bytes"] <= 0.25 * fp32["size_bytes"]              # 6 of 32 bits, plus the tables
    assert fp32["parity"]["accuracy"] - p["accuracy"] <= 0.015
    program = MILExecutor(converted.out_dir / pal6["path"]).program
    luts = [op for op in program.operations if op.type == "constexpr_lut_to_dense"]
    assert len(luts) >= 10
    assert all(len(op.inputs["lut"][0][1].flatten()) == 64 for op in luts)
