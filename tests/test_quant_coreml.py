"""Core ML quantization, validated by the MIL executor on the saved packages. How the int8, W8A8 and
palettized packages are built runs in the default suite on an untrained 64x64 T8 (seconds); whether
they keep accuracy, on the digits-trained T8 (a model whose accuracy means something, minutes to
train), in `make test-slow`."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def converted(tmp_path_factory, digits):
    from effconvert.pipeline import Request, run

    out = tmp_path_factory.mktemp("coreml-quant")
    return run(
        Request(
            digits.checkpoint,
            ("coreml",),
            ("fp32", "fp16", "int8-weights", "int8"),
            out,
            samples=200,
            val=digits.val_dir,
            calib=digits.train_dir,
            calib_samples=32,
            palettize=6,
        )
    )


def _entry(outcome, quant):
    [entry] = [a for a in outcome.report.to_json()["artifacts"] if a["quant"] == quant]
    return entry


def test_int8_packages_are_built_as_declared_and_run_on_the_executor(small_t8, tmp_path):
    """int8 weights, W8A8 calibrated on Linux, 6-bit palettes: each package stores what it says, is
    run by the executor from the saved file, and gets its parity from that run (an untrained model:
    its accuracy is not the point here; the digits tests above judge that)."""
    from effconvert.pipeline import Request, run
    from effconvert.runtime.mil import MILExecutor

    outcome = run(
        Request(
            small_t8.checkpoint,
            ("coreml",),
            ("fp32", "int8-weights", "int8"),
            tmp_path,
            samples=8,
            calib=small_t8.train_dir,
            calib_samples=16,
            palettize=6,
            fallback=False,
        )
    )
    fp32, weights, int8, pal6 = (_entry(outcome, q) for q in ("fp32", "int8-weights", "int8", "pal6"))
    for entry in (fp32, weights, int8, pal6):
        p = entry["parity"]
        assert entry["runtime"] == "coreml-mil-executor" and np.isfinite(p["psnr_db"]), entry
        assert p["samples"] == 8
    assert fp32["parity"]["passed"] and fp32["parity"]["psnr_db"] > weights["parity"]["psnr_db"]
    for entry in (weights, int8):
        assert entry["size_bytes"] <= 0.30 * fp32["size_bytes"]
    assert pal6["size_bytes"] <= 0.25 * fp32["size_bytes"]
    program = MILExecutor(tmp_path / weights["path"]).program
    assert any(op.type.startswith("constexpr_") for op in program.operations)
    program = MILExecutor(tmp_path / int8["path"]).program
    assert len([op for op in program.operations if op.type == "quantize"]) >= 10
    assert program.opset == "CoreML7" and any("raised from iOS 16 to iOS 17" in n for n in int8["notes"])
    assert outcome.report.to_json()["calibration"]["samples"] == 16
    luts = [op for op in MILExecutor(tmp_path / pal6["path"]).program.operations if op.type == "constexpr_lut_to_dense"]
    assert len(luts) >= 10 and all(len(op.inputs["lut"][0][1].flatten()) == 64 for op in luts)


@pytest.mark.slow  # the digits-trained T8: minutes to train on an empty cache
def test_int8_weights_shrinks_the_package_and_keeps_accuracy(converted):
    from effconvert.runtime.mil import MILExecutor

    fp32, fp16, int8 = (_entry(converted, q) for q in ("fp32", "fp16", "int8-weights"))
    for entry in (fp32, fp16, int8):
        p = entry["parity"]
        print(
            f"\ncoreml {entry['quant']}: {entry['size_bytes'] / 1e6:.2f} MB psnr {p['psnr_db']:.1f} "
            f"acc {p['accuracy']:.4f}"
        )
        assert entry["runtime"] == "coreml-mil-executor" and p["passed"], p["failures"]
    assert int8["size_bytes"] <= 0.30 * fp32["size_bytes"]
    assert int8["parity"]["psnr_db"] >= 30
    assert fp32["parity"]["accuracy"] - int8["parity"]["accuracy"] <= 0.015
    assert abs(fp16["parity"]["accuracy"] - fp32["parity"]["accuracy"]) <= 0.002
    program = MILExecutor(converted.out_dir / int8["path"]).program
    assert any(op.type.startswith("constexpr_") for op in program.operations)  # weights stored as int8
    assert any("int8 weights" in note for note in int8["notes"])


@pytest.mark.slow  # the digits-trained T8: minutes to train on an empty cache
def test_int8_w8a8_is_calibrated_on_linux_and_keeps_accuracy(converted):
    """W8A8 with activation ranges from the MIL executor; judged on the saved package's own program."""
    from effconvert.runtime.mil import MILExecutor

    fp32, int8 = (_entry(converted, q) for q in ("fp32", "int8"))
    p = int8["parity"]
    print(f"\ncoreml int8: {int8['size_bytes'] / 1e6:.2f} MB psnr {p['psnr_db']:.1f} acc {p['accuracy']:.4f}")
    assert int8["runtime"] == "coreml-mil-executor" and p["passed"], p["failures"]
    assert fp32["parity"]["accuracy"] - p["accuracy"] <= 0.015
    assert p["top1_agreement"] >= 0.98
    assert int8["size_bytes"] <= 0.30 * fp32["size_bytes"]
    program = MILExecutor(converted.out_dir / int8["path"]).program
    quantized = [op for op in program.operations if op.type == "quantize"]
    assert len(quantized) >= 10  # activations really are int8
    assert program.opset == "CoreML7"  # iOS 17: raised from the default 16
    assert any("raised from iOS 16 to iOS 17" in note for note in int8["notes"])
    assert converted.report.to_json()["calibration"]["samples"] == 32


@pytest.mark.slow  # the digits-trained T8: minutes to train on an empty cache
def test_palettized_weights_are_lookup_tables_and_keep_accuracy(converted):
    """--palettize 6: 64-entry k-means palettes per weight tensor, run from the package by the executor."""
    from effconvert.runtime.mil import MILExecutor

    fp32, pal6 = (_entry(converted, q) for q in ("fp32", "pal6"))
    p = pal6["parity"]
    print(f"\ncoreml pal6: {pal6['size_bytes'] / 1e6:.2f} MB psnr {p['psnr_db']:.1f} acc {p['accuracy']:.4f}")
    assert pal6["runtime"] == "coreml-mil-executor" and p["passed"], p["failures"]
    assert pal6["size_bytes"] <= 0.25 * fp32["size_bytes"]  # 6 of 32 bits, plus the tables
    assert fp32["parity"]["accuracy"] - p["accuracy"] <= 0.015
    program = MILExecutor(converted.out_dir / pal6["path"]).program
    luts = [op for op in program.operations if op.type == "constexpr_lut_to_dense"]
    assert len(luts) >= 10
    assert all(len(op.inputs["lut"][0][1].flatten()) == 64 for op in luts)


@pytest.mark.slow  # three W8A8 conversions validated on 400 images (43 s); TFLite's fallback runs by default
def test_a_missed_gate_keeps_the_most_sensitive_layers_in_float(converted, digits, tmp_path):
    """Core ML's float fallback: the sensitivity ranking's first layers lose their quantize/dequantize
    pairs and int8 weights in the package itself, until the executor says the gate passes."""
    from effconvert.pipeline import Request, run
    from effconvert.runtime.mil import MILExecutor

    all_int8 = _entry(converted, "int8")["parity"]["psnr_db"]
    gate = f"psnr={all_int8 + 1.0:.1f}"
    outcome = run(
        Request(
            digits.checkpoint,
            ("coreml",),
            ("int8",),
            tmp_path,
            samples=400,
            val=digits.val_dir,
            calib=digits.train_dir,
            calib_samples=32,
            gate=gate,
        )
    )
    [entry] = outcome.report.to_json()["artifacts"]
    fallback = entry["fallback"]
    print(f"\ncoreml fallback to gate {gate}: {fallback['attempts']} size x{fallback['size_ratio']:.3f}")
    ranked = [row["layer"] for row in outcome.report.to_json()["int8_sensitivity"]["layers"]]
    assert fallback["float_layers"] == ranked[: len(fallback["float_layers"])]
    assert entry["parity"]["passed"] and entry["parity"]["psnr_db"] >= all_int8 + 1.0
    assert fallback["all_int8"]["psnr_db"] < all_int8 + 1.0
    assert "latency_ratio" not in fallback and "device" in fallback["latency"]  # the executor is no device

    program = MILExecutor(tmp_path / entry["path"]).program
    producer = {name: op.type for op in program.operations for name, _ in op.outputs}
    for layer in fallback["float_layers"]:
        weight = "model_" + layer.replace(".", "_") + "_weight"
        [conv] = [
            op
            for op in program.operations
            if op.type == "conv" and op.inputs["weight"][0][1].removesuffix("_to_fp16") == weight
        ]
        assert producer.get(conv.inputs["x"][0][1]) != "dequantize"  # float activations in
        assert not producer.get(conv.inputs["weight"][0][1], "").startswith("constexpr_")
    assert "quantize" in set(producer.values())  # the rest is still W8A8


def test_float_layers_keep_float_weights_and_activations(small_t8, tmp_path):
    """A named layer large enough for int8 weights (fc1 of a stage-2 block): its weight stays a plain
    const and its output is not quantized; its neighbours are W8A8. A name with no op is refused."""
    import torch

    from effconvert.convert.coreml import export_coreml
    from effconvert.errors import ConversionFailed
    from effconvert.fuse import fuse_model
    from effconvert.load import load_checkpoint
    from effconvert.quantize import Calibration, QuantPlan
    from effconvert.runtime.mil import MILExecutor
    from effconvert.validate.inputs import input_set

    digits = small_t8
    loaded = load_checkpoint(digits.checkpoint)
    model = fuse_model(
        loaded.model, inputs=torch.from_numpy(input_set(loaded.preprocessing, samples=8, folder=digits.val_dir).inputs)
    ).model
    calib = input_set(loaded.preprocessing, samples=8, folder=digits.train_dir)
    images = Calibration(calib.inputs, calib.pixels, str(digits.train_dir), builtin=False)
    labels = [str(i) for i in range(10)]
    layer = "stages.2.blocks.0.mlp.fc1"
    out = tmp_path / "kept.mlpackage"
    notes = export_coreml(
        model,
        loaded.preprocessing,
        labels,
        out,
        metadata={},
        plan=QuantPlan("int8", calibration=images, float_layers=(layer,)),
    )
    assert f"kept in float: {layer}" in notes

    program = MILExecutor(out).program
    producer = {name: op.type for op in program.operations for name, _ in op.outputs}
    convs = {op.inputs["weight"][0][1]: op for op in program.operations if op.type == "conv"}
    kept = [op for name, op in convs.items() if name.startswith("model_" + layer.replace(".", "_") + "_weight")]
    neighbour = [op for name, op in convs.items() if name.startswith("model_stages_2_blocks_0_mlp_fc2_weight")]
    assert len(kept) == 1 and len(neighbour) == 1
    # its output is not quantized and its weight not compressed; its input is whatever its producer
    # emits (the depthwise conv before it is still W8A8, so that tensor arrives dequantized)
    output = kept[0].outputs[0][0]
    assert not [op for op in program.operations if op.type == "quantize" and op.inputs["input"][0][1] == output]
    assert not producer.get(kept[0].inputs["weight"][0][1], "const").startswith("constexpr_")
    assert producer[neighbour[0].inputs["x"][0][1]] == "dequantize"
    assert producer[neighbour[0].inputs["weight"][0][1]].startswith("constexpr_")

    with pytest.raises(ConversionFailed, match="no Core ML op for layer"):
        export_coreml(
            model,
            loaded.preprocessing,
            labels,
            tmp_path / "bad.mlpackage",
            metadata={},
            plan=QuantPlan("int8", calibration=images, float_layers=("stages.9.nothing",)),
        )
    assert not (tmp_path / "bad.mlpackage").exists()
