"""The Snapdragon NPU on trained models: FastViT-T8 and EfficientViT-B0 trained on the digits
(effconvert/synth/digits.py), compiled for the SM8650 HTP, judged on the simulator by held-out
accuracy against PyTorch's — the qnn issue's acceptance: w8a16 within 0.5 point, W8A8 (with the
float fallback) within 1 point. Minutes of simulation: `make test-slow`."""

from __future__ import annotations

import pytest
from conftest import artifact

from effconvert.synth.digits import digits_model

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore")]
pytest.importorskip("onnxruntime_qnn", reason="the qnn target needs onnxruntime-qnn (Linux)")


@pytest.fixture(scope="module", params=["fastvit_t8", "efficientvit_b0"])
def converted(request, tmp_path_factory):
    from effconvert.pipeline import Request, run

    digits = digits_model(arch=request.param)
    out = tmp_path_factory.mktemp(f"qnn-digits-{request.param}")
    return digits, run(
        Request(
            digits.checkpoint,
            ("qnn",),
            ("fp16", "int8", "w8a16"),
            out,
            samples=400,
            val=digits.val_dir,
            calib=digits.train_dir,
            calib_samples=32,
        )
    )


def test_htp_keeps_the_trained_models_accuracy(converted):
    digits, outcome = converted
    reference = outcome.report.inputs.reference_accuracy
    assert digits.accuracy >= 0.95 and reference is not None
    drops = {}
    for quant in ("fp16", "int8", "w8a16"):
        verdict = artifact(outcome, "qnn", quant).verdict
        assert verdict.accuracy is not None, verdict.failures
        drops[quant] = reference - verdict.accuracy.accuracy
        print(
            f"\n{outcome.report.model.arch} qnn {quant}: accuracy {verdict.accuracy.accuracy:.4f} vs PyTorch "
            f"{reference:.4f} on {verdict.accuracy.labelled_samples} images, PSNR {verdict.parity.psnr_db:.1f} dB"
            + (f" ({verdict.budget})" if verdict.budget else "")
        )
    assert drops["fp16"] <= 0.005 and drops["w8a16"] <= 0.005 and drops["int8"] <= 0.010, drops
