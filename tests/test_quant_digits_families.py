"""int8 on a second trained family: EfficientViT-B0 on the digits (effconvert/synth/digits.py),
TFLite W8A8 and Core ML W8A8 judged by held-out accuracy, like FastViT-T8 in test_quant_tflite.py."""

from __future__ import annotations

import pytest

from effconvert.synth.digits import digits_model


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    from effconvert.pipeline import Request, run

    digits = digits_model(arch="efficientvit_b0")
    out = tmp_path_factory.mktemp("digits-b0")
    outcome = run(Request(digits.checkpoint, ("tflite", "coreml"), ("fp32", "int8"), out, samples=400,
                          val_dir=digits.val_dir, calib_dir=digits.train_dir, calib_samples=32, fallback=False))
    return digits, outcome


def test_efficientvit_b0_digits_int8_keeps_accuracy(converted):
    digits, outcome = converted
    assert digits.accuracy >= 0.95
    assert outcome.report["model"]["arch"] == "efficientvit_b0"
    entries = {(a["target"], a["quant"]): a for a in outcome.report["artifacts"]}
    for (target, quant), a in sorted(entries.items()):
        p = a["parity"]
        print(f"\n{target} {quant}: {a['size_bytes'] / 1e6:.2f} MB psnr {p['psnr_db']:.1f} "
              f"top1 {p['top1_agreement']:.3f} acc {p['accuracy']:.4f}")
        assert p["passed"], p["failures"]
    for target in ("tflite", "coreml"):
        fp32, int8 = entries[(target, "fp32")], entries[(target, "int8")]
        assert fp32["parity"]["accuracy"] - int8["parity"]["accuracy"] <= (0.010 if target == "tflite" else 0.015)
        assert int8["parity"]["top1_agreement"] >= 0.98
        assert int8["size_bytes"] <= 0.30 * fp32["size_bytes"]
