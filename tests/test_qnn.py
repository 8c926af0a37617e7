"""The Snapdragon NPU target (qnn): an ONNX holding the HTP context binary compiled for one SoC, run
on the QNN HTP backend (a simulator on x86) for parity, with the compiler's residency recorded.

The default suite converts the small 64x64 FastViT-T8 (seconds on the simulator); whether int8 and
w8a16 keep a trained model's accuracy is the digits model's job, in `make test-slow`.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
from conftest import artifact

from effconvert.pipeline import Request, run
from effconvert.targets import SOCS

pytest.importorskip("onnxruntime_qnn", reason="the qnn target needs onnxruntime-qnn (Linux)")


@pytest.fixture(scope="module")
def qnn_small(small_t8, tmp_path_factory):
    """fp16 and w8a16 of the small T8, compiled for the SM8750, validated on the simulator."""
    out = tmp_path_factory.mktemp("qnn")
    return run(
        Request(
            small_t8.checkpoint,
            ("qnn",),
            ("fp16", "w8a16"),
            out,
            samples=24,
            calib=small_t8.train_dir,
            calib_samples=16,
            soc="SM8750",
        )
    )


def test_artifacts_hold_a_context_binary_for_the_soc_and_run_on_the_htp(qnn_small):
    for quant in ("fp16", "w8a16"):
        entry = artifact(qnn_small, "qnn", quant)
        assert entry.path == f"fastvit_t8_{quant}.qnn.onnx" and entry.runtime == "qnn-htp-simulator"
        verdict = entry.verdict
        # The simulator's budget: as many inputs as fit in 60 s (the 64x64 model: every one).
        assert verdict.parity.samples == 24 and verdict.budget is None
        model = onnx.load(str(qnn_small.out_dir / entry.path))
        contexts = [n for n in model.graph.node if n.op_type == "EPContext"]
        assert contexts and all(any(a.name == "embed_mode" and a.i == 1 for a in n.attribute) for n in contexts)
        meta = {p.key: p.value for p in model.metadata_props}
        assert meta["effconvert.soc"] == "SM8750" and meta["effconvert.quant"] == quant
        assert len(json.loads(meta["effconvert.labels"])) == 10
    fp16, w8a16 = (artifact(qnn_small, "qnn", q).verdict.parity for q in ("fp16", "w8a16"))
    assert fp16.psnr_db >= 45 and fp16.psnr_db > w8a16.psnr_db >= 20  # fp16 arithmetic vs 16-bit activations


def test_residency_names_every_node_off_the_htp(qnn_small, cli):
    fp16 = artifact(qnn_small, "qnn", "fp16").device
    assert fp16.residency.accelerator == "htp" and fp16.residency.on == fp16.residency.total > 0
    w8a16 = artifact(qnn_small, "qnn", "w8a16").device
    off = w8a16.residency.off  # only the float input's quantization and the output's dequantization
    assert {o.type for o in off} <= {"QuantizeLinear", "DequantizeLinear"} and all("offload" in o.reason for o in off)
    path = qnn_small.out_dir / "fastvit_t8_w8a16.qnn.onnx"
    result = cli("inspect", path)
    assert result.exit_code == 0, result.output
    assert "SM8750" in result.output and "EPContext" in result.output and "HTP residency" in result.output
    result = cli("device", path, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["device"] == "snapdragon-sm8750-htp" and report["ops"]["htp"] == w8a16.residency.on
    latency = report["latency_ms"]  # SM8750 w8a16 is calibrated; a 64 px model lies outside its rows
    assert 0 < latency["low"] < latency["estimate"] < latency["high"] and "not a measurement" in report["what"]
    assert report["calibration"]["fit"] == "SM8750 w8a16" and report["extrapolated"]


def test_a_fresh_session_runs_the_binary_without_compiling_and_gives_the_same_logits(qnn_small, small_t8):
    """Reopened in another process with the QNN EP: bitwise the outputs of this process, whose parity
    against PyTorch is the validation run's (the same inputs, the same numbers)."""
    from effconvert.load import load_checkpoint
    from effconvert.pipeline.executor import logits_of
    from effconvert.runtime import open_runtime
    from effconvert.validate import input_set
    from effconvert.validate.metrics import parity

    path = qnn_small.out_dir / "fastvit_t8_fp16.qnn.onnx"
    validated = artifact(qnn_small, "qnn", "fp16").verdict.parity
    loaded = load_checkpoint(small_t8.checkpoint)
    inputs = input_set(loaded.preprocessing, samples=validated.samples).inputs
    here = open_runtime(path).run(_batch(inputs))
    again = parity(here, logits_of(loaded.model, inputs))
    assert again.psnr_db == pytest.approx(validated.psnr_db, rel=1e-6)
    assert again.max_abs_err == pytest.approx(validated.max_abs_err, rel=1e-6)
    script = (
        "import sys, numpy as np; from effconvert.runtime import open_runtime, Batch; "
        "x = np.load(sys.argv[2]); np.save(sys.argv[3], open_runtime(sys.argv[1]).run(Batch(x)))"
    )
    np.save(qnn_small.out_dir / "x.npy", inputs)
    done = subprocess.run(
        [sys.executable, "-c", script, str(path), str(qnn_small.out_dir / "x.npy"), str(qnn_small.out_dir / "y.npy")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert np.array_equal(np.load(qnn_small.out_dir / "y.npy"), here)


def _batch(inputs):
    from effconvert.runtime import Batch

    return Batch(inputs)


def test_npu_only_refuses_cpu_nodes_naming_them(small_t8, tmp_path, monkeypatch):
    """--npu-only: an artifact with a node the HTP does not take is refused, with the nodes by type."""
    from effconvert.convert import qnn

    real = qnn.residency_of

    def with_a_cpu_node(trace, source):
        found = real(trace, source)
        found["cpu_nodes"] = [*found["cpu_nodes"], {"node": "n", "type": "Mod", "reason": "", "io": False}]
        return found

    monkeypatch.setattr(qnn, "residency_of", with_a_cpu_node)
    outcome = run(
        Request(small_t8.checkpoint, ("qnn",), ("fp16",), tmp_path, samples=2, npu_only=True, validate=False),
        second_process=False,
    )
    [entry] = outcome.report.artifacts
    assert entry.error and "--npu-only: 1 node(s) would run on the CPU" in entry.error and "Mod x1" in entry.error
    assert outcome.exit_code == 3 and not list(tmp_path.glob("*.qnn.onnx"))


def test_qnn_is_asked_for_by_name_and_its_socs_are_the_tables(cli, small_t8, tmp_path):
    from effconvert.targets import check_pairs

    assert ("qnn", "fp16") not in check_pairs(("all",), ("fp16",)).pairs  # the simulator is slow: by name only
    result = cli(small_t8.checkpoint, "--target", "qnn", "--soc", "SM8450", "--out", tmp_path / "x")
    assert result.exit_code == 2 and "--soc SM8450 is not supported" in result.output
    assert all(s in result.output for s in SOCS)
    result = cli(
        small_t8.checkpoint,
        "--target",
        "qnn",
        "--quant",
        "fp32,fp16",
        "--no-validate",
        "--samples",
        "2",
        "--out",
        tmp_path / "y",
    )
    assert result.exit_code == 0, result.output
    assert "qnn fp32 skipped: the Hexagon HTP computes in fp16 or integers" in result.output


def test_android_app_takes_a_qnn_artifact(qnn_small, cli, tmp_path):
    path = qnn_small.out_dir / "fastvit_t8_fp16.qnn.onnx"
    result = cli("app", "android", "--artifact", path, "--out", tmp_path / "app")
    assert result.exit_code == 0, result.output
    assets = tmp_path / "app" / "app" / "src" / "main" / "assets"
    manifest = json.loads((assets / "manifest.json").read_text())
    assert manifest["runtime"] == "onnxruntime-qnn" and manifest["soc"] == "SM8750"
    assert manifest["input_shape"] == [1, 3, 64, 64] and (assets / "model.qnn.onnx").is_file()


def test_hardswish_is_restored_from_the_inlined_pair_in_either_operand_order():
    """ONNX Runtime's preprocessing inlines HardSwish as HardSigmoid(1/6, 1/2) + Mul, which the QNN EP
    miscompiles (convert/qnn_hardswish.py): both orders become one HardSwish; a HardSigmoid with other
    parameters, or one whose output is used elsewhere, stays."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from effconvert.convert.qnn_hardswish import restore_hardswish

    def gate(x, out, alpha=1 / 6):
        return helper.make_node("HardSigmoid", [x], [out], alpha=alpha, beta=0.5)

    nodes = [
        gate("x", "g1"),
        helper.make_node("Mul", ["x", "g1"], ["a"]),
        gate("a", "g2"),
        helper.make_node("Mul", ["g2", "a"], ["b"]),
        gate("b", "g3", alpha=0.2),  # not HardSwish's gate
        helper.make_node("Mul", ["b", "g3"], ["c"]),
        gate("c", "g4"),
        helper.make_node("Mul", ["c", "g4"], ["d"]),
        helper.make_node("Add", ["d", "g4"], ["y"]),  # g4 has a second consumer
    ]
    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 4, 3, 3]) for n in ("x", "y")]
    model = helper.make_model(
        helper.make_graph(nodes, "g", io[:1], io[1:]), opset_imports=[helper.make_opsetid("", 18)]
    )
    model.ir_version = 10  # what the exporter writes (onnx 1.21 would write one onnxruntime 1.31 refuses)
    x = np.linspace(-5, 5, 36, dtype=np.float32).reshape(1, 4, 3, 3)

    def run(m):
        return ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]

    before = run(model)
    assert restore_hardswish(model) == 2
    onnx.checker.check_model(model)
    assert [n.op_type for n in model.graph.node] == [
        *["HardSwish", "HardSwish"],
        *["HardSigmoid", "Mul", "HardSigmoid", "Mul", "Add"],
    ]
    np.testing.assert_allclose(run(model), before, rtol=1e-6, atol=1e-6)


def test_linear_attention_as_two_products_is_the_same_quotient_and_leaves_the_model_as_it_was():
    import timm
    import torch

    from effconvert.convert.linear_attention import split_linear_attention

    torch.manual_seed(0)
    model = timm.create_model("efficientvit_b0", pretrained=False, num_classes=10).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        before = model(x)
        with split_linear_attention(model) as rewritten:
            during = model(x)
        after = model(x)
    assert rewritten == 4  # b0: two LiteMLA blocks in each of its last two stages
    torch.testing.assert_close(during, before, rtol=1e-4, atol=1e-5)
    assert torch.equal(after, before) and not any("_attn" in vars(m) for m in model.modules())
