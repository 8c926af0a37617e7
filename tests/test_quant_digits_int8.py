"""All-int8 (no fallback) on a trained FastViT-T8 and a trained MobileOne-S0 (the digits,
effconvert/synth/digits.py): held-out task accuracy within 1 point of fp32 on every int8 target
that runs on the CPU here — TFLite on LiteRT, Core ML on the MIL executor, ExecuTorch on XNNPACK.
Reparameterized networks are the hard case for post-training int8 (quantize/equalize.py)."""

from __future__ import annotations

import pytest

from effconvert.synth.digits import digits_model

pytestmark = pytest.mark.slow  # six conversions per model validated on 360 images (and a training): minutes

TARGETS = ("tflite", "coreml", "executorch")


@pytest.fixture(scope="module", params=["fastvit_t8", "mobileone_s0"])
def converted(request, tmp_path_factory):
    from effconvert.pipeline import Request, run

    digits = digits_model(arch=request.param)
    outcome = run(
        Request(
            digits.checkpoint,
            TARGETS,
            ("fp32", "int8"),
            tmp_path_factory.mktemp(f"digits-int8-{request.param}"),
            samples=400,
            val=digits.val_dir,
            calib=digits.train_dir,
            calib_samples=64,  # the default: the steps before int8 are judged on the 32 they were not fitted to
            fallback=False,
        )
    )
    return request.param, digits, outcome.report.to_json()


def test_all_int8_keeps_task_accuracy_within_a_point(converted):
    arch, digits, report = converted
    assert digits.accuracy >= 0.95
    entries = {(a["target"], a["quant"]): a["parity"] for a in report["artifacts"]}
    corrections = report.get("int8_bias_correction", [])
    for target in TARGETS:
        fp32, int8 = entries[(target, "fp32")], entries[(target, "int8")]
        print(
            f"\n{arch} {target}: fp32 accuracy {fp32['accuracy']:.4f}, int8 {int8['accuracy']:.4f} "
            f"({int8['psnr_db']:.1f} dB); migration {report.get('int8_equalization', {}).get('simulated_psnr_db')}, "
            f"bias correction {[c['simulated_psnr_db'] for c in corrections if target in c['targets']]}"
        )
        assert fp32["accuracy"] - int8["accuracy"] <= 0.010, (target, fp32["accuracy"], int8["accuracy"])
