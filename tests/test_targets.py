"""Core ML, TFLite and ONNX artifacts: what is inside them, parity on real runtimes, determinism."""

from __future__ import annotations

import hashlib
import json
import platform

import numpy as np
import pytest
from conftest import artifact

from effconvert.convert.tflite_metadata import read_metadata
from effconvert.load.fastvit import VARIANTS
from effconvert.pipeline import Request, run
from effconvert.report.schema import Report
from effconvert.runtime import Batch, open_runtime
from effconvert.validate.natural_images import natural_images


# T8 (the smallest FastViT: RepMixer stages only) in the default suite, through the session's shared
# T8 run; SA12 (RepMixer + attention stage + RepCPE: every FastViT op kind) in `make test-slow`.
@pytest.fixture(scope="module", params=["fastvit_t8", pytest.param("fastvit_sa12", marks=pytest.mark.slow)])
def all_targets(request, tmp_path_factory, checkpoints, t8_all):
    """One run of the main command: every target, fp32 and fp16, validated on the runtimes."""
    if request.param == "fastvit_t8":
        return t8_all
    out = tmp_path_factory.mktemp("targets")
    return run(Request(checkpoints(request.param), ("all",), ("fp32", "fp16"), out, samples=16))


def test_every_target_and_parity_on_real_runtimes(all_targets):
    """Every target of `all`, fp32 and fp16 (ExecuTorch: fp32, no fp16 path), each run on its runtime;
    report.json on disk is the report the run returned."""
    report = all_targets.report
    assert sorted((a.target, a.quant) for a in report.artifacts) == [
        ("coreml", "fp16"),
        ("coreml", "fp32"),
        ("executorch", "fp32"),
        ("onnx", "fp16"),
        ("onnx", "fp32"),
        ("tflite", "fp16"),
        ("tflite", "fp32"),
    ]
    assert report.skipped == ()  # `all` skips silently what a target does not offer
    for target, runtime in (("tflite", "litert"), ("onnx", "onnxruntime")):
        fp32, fp16 = (artifact(all_targets, target, q) for q in ("fp32", "fp16"))
        assert fp32.runtime == fp16.runtime == runtime
        assert fp32.passed and fp32.verdict.parity.max_rel_err <= 1e-5, fp32.verdict
        # Top-1 as the gate counts it: over inputs the reference decides (a near-tie may flip in fp16).
        assert fp16.passed and fp16.verdict.parity.top1_agreement_decided >= 0.99, fp16.verdict
        assert fp16.verdict.parity.psnr_db >= 35
        assert fp16.size_bytes < 0.6 * fp32.size_bytes
        assert fp32.verdict.parity.samples == report.inputs.samples >= 8
    on_disk = json.loads((all_targets.out_dir / "report.json").read_text())
    assert on_disk == json.loads(json.dumps(report.to_json()))
    assert json.loads(json.dumps(Report.from_json(on_disk).to_json())) == on_disk  # read back losslessly
    html = (all_targets.out_dir / "report.html").read_text()
    assert all(a.path in html for a in report.artifacts) and html.count("data:image/png;base64,") == 7


def test_coreml_parity_comes_from_running_the_package(all_targets):
    expected = "coreml-macos" if platform.system() == "Darwin" else "coreml-mil-executor"
    fp32, fp16 = (artifact(all_targets, "coreml", q) for q in ("fp32", "fp16"))
    assert fp32.runtime == fp16.runtime == expected
    assert fp32.passed and fp32.verdict.parity.max_rel_err <= 1e-4, fp32.verdict
    assert fp16.passed and fp16.verdict.parity.psnr_db >= 35, fp16.verdict
    assert fp16.verdict.parity.top1_agreement_decided >= 0.99
    assert all_targets.report.passed is True and all_targets.exit_code == 0


def test_coreml_package_has_image_input_labels_and_metadata(all_targets):
    import coremltools as ct

    entry = artifact(all_targets, "coreml", "fp16")
    spec = ct.utils.load_spec(str(all_targets.out_dir / entry.path))
    [image] = spec.description.input
    assert image.name == "image" and image.type.WhichOneof("Type") == "imageType"
    assert (image.type.imageType.width, image.type.imageType.height) == (256, 256)
    outputs = {o.name: o.type.WhichOneof("Type") for o in spec.description.output}
    assert outputs == {"classLabel": "stringType", "classLabel_probs": "dictionaryType", "logits": "multiArrayType"}
    meta = dict(spec.description.metadata.userDefined)
    assert meta["effconvert.arch"] == all_targets.report.model.arch and meta["effconvert.quant"] == "fp16"
    assert meta["effconvert.checkpoint_sha256"] == all_targets.report.model.sha256
    assert json.loads(meta["effconvert.mean"]) == [0.485, 0.456, 0.406]
    assert len(json.loads(meta["effconvert.labels"])) == 1000
    assert spec.specificationVersion >= 7  # iOS16 ML Program
    assert spec.WhichOneof("Type") == "mlProgram"
    # The classifier's own class list is the label list the metadata carries, in order.
    from effconvert.runtime.mil import load_program

    classify = load_program(all_targets.out_dir / entry.path).operations[-1]
    assert classify.type == "classify"
    assert list(classify.inputs["classes"][0][1]) == json.loads(meta["effconvert.labels"])


def test_tflite_has_nhwc_input_and_metadata_inside(all_targets):
    from ai_edge_litert.interpreter import Interpreter

    path = all_targets.out_dir / artifact(all_targets, "tflite", "fp32").path
    interpreter = Interpreter(model_path=str(path))
    [inp], [out] = interpreter.get_input_details(), interpreter.get_output_details()
    assert inp["name"] == "input" and list(inp["shape"]) == [1, 256, 256, 3]
    assert out["name"] == "logits" and list(out["shape"]) == [1, 1000]
    assert interpreter.get_signature_list() == {"serving_default": {"inputs": ["input"], "outputs": ["logits"]}}
    meta = read_metadata(path)
    assert meta["effconvert.input_layout"] == "nhwc" and meta["effconvert.arch"] == all_targets.report.model.arch
    assert json.loads(meta["effconvert.std"]) == [0.229, 0.224, 0.225]
    assert len(json.loads(meta["effconvert.labels"])) == 1000


def test_coreml_no_validate_and_tensor_input(tmp_path, checkpoints, cli):
    out = tmp_path / "out"
    result = cli(
        checkpoints("fastvit_t8"),
        "--target",
        "coreml",
        "--quant",
        "fp32",
        "--input",
        "tensor",
        "--ios",
        "17",
        "--no-validate",
        "--image-size",
        "64",  # the layout and input kind are the point, not the resolution
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    import coremltools as ct

    spec = ct.utils.load_spec(str(out / "fastvit_t8_fp32.mlpackage"))
    assert spec.description.input[0].type.WhichOneof("Type") == "multiArrayType"
    assert spec.specificationVersion >= 8  # iOS17


def test_tflite_nchw_layout_and_onnx_dynamic_batch(tmp_path, checkpoints, cli):
    out = tmp_path / "out"
    result = cli(
        checkpoints("fastvit_t8"),
        "--target",
        "tflite",
        "--target",
        "onnx",
        "--quant",
        "fp32",
        "--layout",
        "nchw",
        "--dynamic-batch",
        "--samples",
        "8",
        "--image-size",
        "64",  # the layout and input kind are the point, not the resolution
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert {a["input_layout"] for a in report["artifacts"]} == {"nchw"}
    import onnx

    dims = onnx.load(str(out / "fastvit_t8_fp32.onnx")).graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and dims[0].dim_value == 0
    assert [d.dim_value for d in dims[1:]] == [3, 64, 64]


def _digest(path):
    if path.is_dir():
        return {
            str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*"))
            if p.is_file()
        }
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow  # 13-51 s: in make test-slow (the default suite's budget)
def test_conversion_is_deterministic(tmp_path, checkpoints, t8_all):
    """Same checkpoint twice (the session's T8 run and this one): byte-identical .tflite, .onnx and
    .pte, identical Core ML weights."""
    a = t8_all
    b = run(Request(checkpoints("fastvit_t8"), ("all",), ("fp32",), tmp_path / "b", samples=1, validate=False))
    for name in ("fastvit_t8_fp32.tflite", "fastvit_t8_fp32.onnx", "fastvit_t8_fp32.pte"):
        assert _digest(a.out_dir / name) == _digest(b.out_dir / name), name
    weights = "Data/com.apple.CoreML/weights/weight.bin"
    pa, pb = (o.out_dir / "fastvit_t8_fp32.mlpackage" for o in (a, b))
    assert _digest(pa)[weights] == _digest(pb)[weights]


@pytest.mark.slow
@pytest.mark.parametrize("arch", VARIANTS)
def test_every_fastvit_variant_converts_to_every_target(arch, tmp_path, checkpoints):
    outcome = run(Request(checkpoints(arch), ("all",), ("fp32", "fp16"), tmp_path, samples=8))
    for entry in outcome.report.artifacts:
        assert entry.error is None, entry
        assert entry.passed, (entry.target, entry.quant, entry.verdict)


def test_tflite_standard_metadata_is_read_by_mediapipe(all_targets, small_t8, tmp_path):
    """MediaPipe's ImageClassifier reads the standard TFLite metadata (normalization, labels.txt). It
    takes only one mean/std for all channels: with ImageNet's per-channel values it refuses, naming
    them; with a uniform normalization it classifies an image as LiteRT does on the same pixels and
    names the class with the model's label."""
    mediapipe = pytest.importorskip("mediapipe")
    from mediapipe.tasks import python as tasks
    from mediapipe.tasks.python import vision

    def classifier(path):
        options = vision.ImageClassifierOptions(
            base_options=tasks.BaseOptions(model_asset_path=str(path)), max_results=3
        )
        return vision.ImageClassifier.create_from_options(options)

    with pytest.raises(NotImplementedError, match="Per-channel image normalization"):
        classifier(all_targets.out_dir / artifact(all_targets, "tflite", "fp32").path)
    outcome = run(
        Request(
            small_t8.checkpoint, ("tflite",), ("fp32",), tmp_path, samples=2, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)
        ),
        second_process=False,
    )
    path = tmp_path / artifact(outcome, "tflite", "fp32").path
    pixels = natural_images(1, (64, 64), seed=5)[0]  # the model's input size: no resize on either side
    with classifier(path) as mp_classifier:
        found = mp_classifier.classify(mediapipe.Image(image_format=mediapipe.ImageFormat.SRGB, data=pixels))
    top = found.classifications[0].categories
    logits = open_runtime(path).run(Batch(((pixels / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)[None].astype(np.float32)))[
        0
    ]
    labels = json.loads(read_metadata(path)["effconvert.labels"])
    assert [c.category_name for c in top] == [labels[i] for i in np.argsort(-logits)[:3]]
    assert top[0].score == pytest.approx(float(logits.max()), rel=1e-4)
