"""TFLite int8: W8A8 with float I/O (or --int8-io) and dynamic-range int8-weights. How the artifacts
are built, validated and ranked runs in the default suite on an untrained 64x64 T8 (seconds); on a
model that is actually trained (FastViT-T8 on scikit-learn's digits, trained once per cache
directory, minutes on an empty one: effconvert/synth/digits.py), judged by held-out accuracy as
well as parity, in `make test-slow`."""

from __future__ import annotations

import json

import numpy as np
import pytest


@pytest.fixture(scope="module")
def quantized(digits, tmp_path_factory):
    from effconvert.pipeline import Request, run

    out = tmp_path_factory.mktemp("int8")
    return run(
        Request(
            digits.checkpoint,
            ("tflite",),
            ("fp32", "fp16", "int8-weights", "int8"),
            out,
            samples=400,
            val=digits.val_dir,
            calib=digits.train_dir,
            calib_samples=64,
        )
    )


def _entry(outcome, quant):
    [entry] = [a for a in outcome.report.to_json()["artifacts"] if a["quant"] == quant]
    return entry


def _check_sensitivity_table(outcome, checkpoint) -> list[float]:
    """Every conv/linear of the fused model has a finite score, sorted most sensitive first, and
    quantizing one layer costs less than the whole int8 artifact. Returns the scores."""
    import torch

    from effconvert.fuse import fuse_model
    from effconvert.load import load_checkpoint

    table = outcome.report.to_json()["int8_sensitivity"]["layers"]
    loaded = load_checkpoint(checkpoint)
    fused = fuse_model(loaded.model, inputs=torch.rand(8, *loaded.preprocessing.input_size), enabled=True)
    layers = {n for n, m in fused.model.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))}
    assert {row["layer"] for row in table} == layers
    scores = [row["psnr_db"] for row in table]
    assert scores == sorted(scores) and all(np.isfinite(scores))
    assert scores[0] > _entry(outcome, "int8")["parity"]["psnr_db"]  # one layer < all layers
    return scores


def _depthwise_taps(path) -> list[int]:
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(path.read_bytes()), 0)
    graph = model.subgraphs[0]
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]  # small codes: either field
    return [
        int(graph.tensors[op.inputs[1]].shape[1] * graph.tensors[op.inputs[1]].shape[2])  # [1, kh, kw, C]
        for op in graph.operators
        if codes[op.opcodeIndex] == schema.BuiltinOperator.DEPTHWISE_CONV_2D
    ]


def test_int8_artifacts_are_built_as_declared_and_ranked_on_litert(small_t8, tmp_path):
    """W8A8 with float I/O and no int8 GELU, int8 weights, the sensitivity table over every conv and
    linear: on an untrained model (its accuracy is not the point; the digits tests below judge that),
    each artifact run on LiteRT for its parity."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.interpreter import Interpreter

    from effconvert.pipeline import Request, run

    outcome = run(
        Request(
            small_t8.checkpoint,
            ("tflite",),
            ("fp32", "int8-weights", "int8"),
            tmp_path,
            samples=16,
            calib=small_t8.train_dir,
            calib_samples=16,
            fallback=False,
        )
    )
    fp32, weights, int8 = (_entry(outcome, q) for q in ("fp32", "int8-weights", "int8"))
    for entry in (fp32, weights, int8):
        assert entry["runtime"] == "litert" and np.isfinite(entry["parity"]["psnr_db"]), entry
    assert fp32["parity"]["passed"] and fp32["parity"]["psnr_db"] > int8["parity"]["psnr_db"]
    assert int8["size_bytes"] <= 0.30 * fp32["size_bytes"] and weights["size_bytes"] <= 0.30 * fp32["size_bytes"]
    assert outcome.report.to_json()["calibration"] == {
        "source": str(small_t8.train_dir),
        "samples": 16,
        "builtin": False,
    }
    prepared = outcome.report.to_json()  # the steps before int8 say what they did, kept or not
    assert prepared["int8_equalization"]["pairs"] > 0
    (correction,) = prepared["int8_bias_correction"]  # TFLite alone: one activation scheme
    assert correction["targets"] == ["tflite"] and correction["activations"] == "affine"
    assert correction["layers"] > 0 and isinstance(correction["applied"], bool)

    path = tmp_path / int8["path"]
    interpreter = Interpreter(model_path=str(path))
    assert interpreter.get_input_details()[0]["dtype"] == np.float32
    assert interpreter.get_output_details()[0]["dtype"] == np.float32
    model = schema.ModelT.InitFromPackedBuf(bytearray(path.read_bytes()), 0)
    graph = model.subgraphs[0]
    gelu_inputs = [
        graph.tensors[op.inputs[0]].type
        for op in graph.operators
        if model.operatorCodes[op.opcodeIndex].builtinCode == schema.BuiltinOperator.GELU
    ]
    assert gelu_inputs and set(gelu_inputs) == {schema.TensorType.FLOAT32}

    _check_sensitivity_table(outcome, small_t8.checkpoint)


@pytest.mark.slow  # the digits-trained T8: minutes to train on an empty cache
def test_the_digits_model_is_trained(digits):
    assert digits.accuracy >= 0.95


@pytest.mark.slow  # the digits-trained T8: minutes to train on an empty cache
def test_int8_keeps_accuracy_and_shrinks_the_model(quantized):
    report = quantized.report.to_json()
    fp32, fp16, weights, int8 = (_entry(quantized, q) for q in ("fp32", "fp16", "int8-weights", "int8"))
    for entry in (fp32, fp16, weights, int8):
        p = entry["parity"]
        print(
            f"\n{entry['quant']}: {entry['size_bytes'] / 1e6:.2f} MB acc {p['accuracy']:.4f} "
            f"psnr {p['psnr_db']:.1f} top1 {p['top1_agreement']:.3f}"
        )
        assert entry["runtime"] == "litert" and p["passed"], p["failures"]
        assert p["labelled_samples"] == report["inputs"]["samples"] == 360
    reference = fp32["parity"]["reference_accuracy"]
    assert reference >= 0.95
    assert abs(fp32["parity"]["accuracy"] - reference) < 1e-9
    assert abs(fp16["parity"]["accuracy"] - fp32["parity"]["accuracy"]) <= 0.002
    assert fp32["parity"]["accuracy"] - int8["parity"]["accuracy"] <= 0.010
    assert int8["parity"]["top1_agreement"] >= 0.98
    assert int8["size_bytes"] <= 0.30 * fp32["size_bytes"]
    assert weights["size_bytes"] <= 0.30 * fp32["size_bytes"]
    calibration = report["calibration"]
    assert calibration["samples"] == 64 and not calibration["builtin"]


@pytest.mark.slow  # 13-51 s: in make test-slow (the default suite's budget)
def test_int8_has_float_io_unless_asked(quantized, digits, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    from effconvert.pipeline import Request, run

    path = quantized.out_dir / _entry(quantized, "int8")["path"]
    interpreter = Interpreter(model_path=str(path))
    assert interpreter.get_input_details()[0]["dtype"] == np.float32
    assert interpreter.get_output_details()[0]["dtype"] == np.float32
    assert interpreter.get_input_details()[0]["name"] == "input"
    # No int8 GELU is left to cut the XNNPACK delegate into partitions (tflite_float_gelu.py).
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(path.read_bytes()), 0)
    graph = model.subgraphs[0]
    gelu_inputs = [
        graph.tensors[op.inputs[0]].type
        for op in graph.operators
        if model.operatorCodes[op.opcodeIndex].builtinCode == schema.BuiltinOperator.GELU
    ]
    assert gelu_inputs and set(gelu_inputs) == {schema.TensorType.FLOAT32}
    # FastViT's 7x7 depthwise convs run as centred bands of <= 25 taps (XNNPACK's
    # slow multipass kernel avoided); not in int8-weights, where each band would quantize its input again.
    int8_taps = _depthwise_taps(path)
    weights_taps = _depthwise_taps(quantized.out_dir / _entry(quantized, "int8-weights")["path"])
    assert 21 in int8_taps and 21 not in weights_taps  # a 3x7 centre band
    assert int8_taps.count(49) < weights_taps.count(49)
    outcome = run(
        Request(
            digits.checkpoint,
            ("tflite",),
            ("int8",),
            tmp_path,
            samples=64,
            val=digits.val_dir,
            calib=digits.train_dir,
            calib_samples=32,
            int8_io=True,
        )
    )
    entry = outcome.report.to_json()["artifacts"][0]
    integer = Interpreter(model_path=str(tmp_path / entry["path"]))
    assert integer.get_input_details()[0]["dtype"] == np.int8
    assert entry["parity"]["passed"], entry["parity"]["failures"]  # our runtime quantizes the input
    assert outcome.report.to_json()["calibration"] == {"source": str(digits.train_dir), "samples": 32, "builtin": False}
    assert json.loads(json.dumps(outcome.report.to_json()))["artifacts"][0]["notes"]


@pytest.mark.slow  # EfficientFormer-L1 at 224 through PT2E int8: 21 s
def test_int8_float_io_when_the_graph_already_ends_in_float(tmp_path):
    """EfficientFormer's distilled head averages two dequantized heads: the int8 graph already
    outputs float. Only the input gets a QUANTIZE; a DEQUANTIZE on a float tensor would fail to
    prepare in LiteRT (it did, before the two ends were handled separately)."""
    from ai_edge_litert.interpreter import Interpreter

    from effconvert.pipeline import Request, run
    from effconvert.synth.checkpoint import make_checkpoint

    ckpt = make_checkpoint("efficientformer_l1", tmp_path / "l1.pth", layout="snap").path
    outcome = run(Request(ckpt, ("tflite",), ("int8",), tmp_path / "out", samples=4, calib_samples=4))
    entry = outcome.report.to_json()["artifacts"][0]
    assert entry["runtime"] == "litert" and "psnr_db" in entry["parity"], entry["parity"]["failures"]
    interpreter = Interpreter(model_path=str(tmp_path / "out" / entry["path"]))
    interpreter.allocate_tensors()
    assert interpreter.get_input_details()[0]["dtype"] == np.float32
    assert interpreter.get_output_details()[0]["dtype"] == np.float32
    assert entry["parity"]["psnr_db"] > 30


@pytest.mark.slow  # T8 at 256 through PT2E int8 and a 256x256 sensitivity pass: 99 s
def test_int8_at_full_resolution_matches_its_quantized_simulation(tmp_path):
    """FastViT at 256: timm's head (pool -> Dropout(0) -> fc) made litert-torch's int8 lowering
    return garbage (7.7 dB, while the same PT2E graph simulated in PyTorch gives 32.6 dB); the
    fuse stage now removes inference no-ops. Synthetic weights: PSNR and cosine, not top-1."""
    from effconvert.pipeline import Request, run
    from effconvert.synth.checkpoint import make_checkpoint

    ckpt = make_checkpoint("fastvit_t8", tmp_path / "t8.pth").path
    outcome = run(Request(ckpt, ("tflite",), ("int8",), tmp_path / "out", samples=8, calib_samples=16))
    parity = outcome.report.to_json()["artifacts"][0]["parity"]
    assert outcome.report.to_json()["fusion"]["steps"]["strip_noops"] > 0
    assert parity["psnr_db"] > 25 and parity["cosine"] > 0.95, parity  # measured 33.4 dB, 0.978


@pytest.mark.slow  # the digits-trained T8: minutes to train on an empty cache
def test_sensitivity_table_ranks_every_conv_and_linear(quantized, digits):
    """One layer quantized at a time in simulation: every conv/linear has a finite score, sorted
    most sensitive first, and quantizing one layer costs less than the whole int8 artifact."""
    scores = _check_sensitivity_table(quantized, digits.checkpoint)
    assert scores[-1] - scores[0] > 3  # it discriminates


@pytest.mark.slow  # the all-int8 conversion, then two with float layers, on 400 images: 37 s
def test_a_missed_gate_keeps_the_most_sensitive_layers_in_float(quantized, digits, tmp_path):
    """A gate the all-int8 artifact misses: layers go back to float, most sensitive first, until the
    artifact passes on LiteRT; the report says which, and what it cost."""
    from effconvert.pipeline import Request, run

    all_int8 = _entry(quantized, "int8")["parity"]["psnr_db"]
    gate = f"psnr={all_int8 + 1.5:.1f}"
    outcome = run(
        Request(
            digits.checkpoint,
            ("tflite",),
            ("int8",),
            tmp_path,
            samples=400,
            val=digits.val_dir,
            calib=digits.train_dir,
            calib_samples=64,
            gate=gate,
        )
    )
    [entry] = outcome.report.to_json()["artifacts"]
    fallback = entry["fallback"]
    print(
        f"\nfallback to gate {gate}: {fallback['attempts']} size x{fallback['size_ratio']:.3f} "
        f"latency x{fallback['latency_ratio']:.2f}"
    )
    ranked = [row["layer"] for row in outcome.report.to_json()["int8_sensitivity"]["layers"]]
    assert fallback["float_layers"] == ranked[: len(fallback["float_layers"])]
    assert 1 <= len(fallback["attempts"]) <= 2  # predicted, not tried in turn
    assert all(a["predicted_psnr_db"] >= all_int8 + 1.5 for a in fallback["attempts"][:1])
    assert fallback["prediction"]["simulated"][0]["float_layers"] == 0
    assert entry["parity"]["passed"] and entry["parity"]["psnr_db"] >= all_int8 + 1.5
    assert fallback["all_int8"]["psnr_db"] < all_int8 + 1.5
    assert fallback["size_ratio"] > 1.0  # float weights cost bytes
    assert any("kept in float" in note for note in entry["notes"])
    kept = fallback["attempts"][-1]  # the last attempt passed: it is the artifact on disk
    assert kept["passed"] and kept["size_bytes"] == entry["size_bytes"] and kept["seconds"] > 0
    assert 0 <= kept["top1_agreement"] <= 1
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert f"{kept['size_bytes'] / 1e6:.2f} MB" in html and f"top-1 {kept['top1_agreement']:.3f}" in html
    assert outcome.exit_code == 0


def test_fallback_policy_tries_the_most_sensitive_layers_in_doubling_counts():
    """The attempts the pipeline makes after a missed gate (the end-to-end fallback runs in
    test-slow): 1, 2, 4, ... of the most sensitive layers, never more than a quarter of them."""
    from effconvert.quantize.fallback import attempts
    from effconvert.quantize.sensitivity import LayerSensitivity

    ranking = [LayerSensitivity(f"layer{i}", "conv", 10, float(i)) for i in range(40)]
    tried = list(attempts(ranking))
    assert [len(t) for t in tried] == [1, 2, 4, 8]
    assert all(t == tuple(f"layer{i}" for i in range(len(t))) for t in tried)
    assert [len(t) for t in attempts(ranking[:3])] == [1]


def test_fallback_converts_the_fewest_float_layers_predicted_to_pass():
    """The simulation's PSNR plus the runtime's measured offset: the first count clearing the gate
    by the margin; the policy's maximum when none does but it is within the simulation's error;
    never fewer than what already failed."""
    from effconvert.quantize.fallback import MARGIN_DB, Aim, Choice, Offsets, Prediction, choose

    predictions = [Prediction(0, 20.0), Prediction(1, 22.0), Prediction(2, 24.5), Prediction(4, 27.0)]
    psnr = Aim(psnr_db=25.0)
    assert choose(predictions, Offsets(-1.0), psnr) == Choice(4)  # 26.0 >= 25 + 1
    assert choose(predictions, Offsets(+2.0), psnr) == Choice(2)  # 26.5
    assert choose(predictions, Offsets(-3.0), psnr) == Choice(4)  # 24.0: short, within the error: tried
    assert choose(predictions, Offsets(+2.0), psnr, above=2) == Choice(4)
    assert choose(predictions, Offsets(0.0), psnr, above=4).float_layers is None  # nothing left to try
    assert MARGIN_DB > 0


def test_fallback_stops_before_converting_when_no_count_can_pass():
    """Predicted short of the gate by more than the simulation's error at the most float layers
    allowed: no conversion, and the reason names the predicted number and the gate."""
    from effconvert.quantize.fallback import STOP_DB, Aim, Offsets, Prediction, choose

    predictions = [Prediction(0, 12.0), Prediction(1, 13.0), Prediction(2, 14.5)]
    choice = choose(predictions, Offsets(0.0), Aim(psnr_db=14.5 + STOP_DB + 1.0))
    assert choice.float_layers is None
    assert "PSNR 14.5 dB (gate 18.5)" in choice.why_stop and "2 layers in float" in choice.why_stop


def test_fallback_aims_at_the_metric_that_failed():
    """Only top-1 failed: the count is chosen by predicted top-1, whatever PSNR predicts; both
    failed: both must clear."""
    from effconvert.quantize.fallback import Aim, Choice, Offsets, Prediction, choose

    predictions = [
        Prediction(0, 40.0, 0.80),
        Prediction(1, 41.0, 0.85),
        Prediction(2, 41.5, 0.95),
        Prediction(4, 42.0, 1.00),
    ]
    assert choose(predictions, Offsets(0.0, 0.0), Aim(top1=0.9)) == Choice(2)
    assert choose(predictions, Offsets(0.0, -0.06), Aim(top1=0.9)) == Choice(4)  # 0.89 at 2 is short
    assert choose(predictions, Offsets(0.0, 0.0), Aim(psnr_db=41.5, top1=0.9)) == Choice(4)  # 41.5 + 1 at 4
    stop = choose(predictions, Offsets(0.0, -0.5), Aim(top1=0.9))
    assert stop.float_layers is None and "top-1 0.50 (gate 0.9)" in stop.why_stop


@pytest.mark.slow  # one int8 conversion and the fallback's simulation: 15 s
def test_a_gate_no_count_can_reach_spends_no_conversion(small_t8, tmp_path):
    """A PSNR gate far above what a quarter of the layers in float is predicted to reach: the
    all-int8 artifact is kept and the report says why nothing more was converted."""
    from effconvert.pipeline import Request, run

    events = []
    outcome = run(
        Request(
            small_t8.checkpoint,
            ("tflite",),
            ("int8",),
            tmp_path,
            samples=8,
            calib=small_t8.train_dir,
            calib_samples=16,
            gate="psnr=90",
        ),
        events.append,
    )
    [entry] = outcome.report.to_json()["artifacts"]
    fallback = entry["fallback"]
    assert fallback["attempts"] == [] and fallback["float_layers"] == []
    assert "no attempt within the budget can pass" in fallback["prediction"]["stopped"]
    assert "gate 90" in fallback["prediction"]["stopped"]
    assert sum(1 for e in events if getattr(e, "what", "").startswith("converting tflite int8")) == 1
    assert any("no fallback:" in getattr(e, "message", "") for e in events)
    assert outcome.exit_code == 1 and (tmp_path / entry["path"]).exists()
    assert "no fallback:" in (tmp_path / "report.html").read_text(encoding="utf-8")
