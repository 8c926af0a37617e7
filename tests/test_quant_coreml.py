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
    return run(Request(digits.checkpoint, ("coreml",), ("fp32", "fp16", "int8-weights"), out,
                       samples=400, val_dir=digits.val_dir))


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
