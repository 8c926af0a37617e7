"""The MIL executor: per-op equality with coremltools' own value inference, coverage of every op
the supported models produce, Core ML limits, and localisation of fp16 divergence."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from coreml_programs import rank_six_package

from effconvert.runtime.mil import OPS, MILExecutor, UnsupportedProgram, load_program

ct = pytest.importorskip("coremltools")
from coremltools.converters.mil import Builder as mb  # noqa: E402

RNG = np.random.default_rng(0)


def _x(*shape, low=-3.0, high=3.0):
    return RNG.uniform(low, high, shape).astype(np.float32)


def _const(*shape, low=-3.0, high=3.0):
    return _x(*shape, low=low, high=high)


# Constants are drawn once, here, and bound as defaults so the expected and the executed run see
# the same values. Cases with coremltools value inference: expected = coremltools' own result.
A13, B23, D23, W34, B3, W6233, B6 = (
    _const(1, 3, 1),
    _const(2, 3),
    _const(2, 3, low=1, high=2),
    _const(3, 4),
    _const(3),
    _const(6, 2, 3, 3),
    _const(6),
)
W6411, W641 = _const(6, 4, 1, 1), _const(6, 4, 1)
B3_VAR = np.abs(B3) + 0.5  # a variance: positive
VALUE_INFERENCE_CASES = [
    ("gelu_exact", _x(2, 5), lambda x: mb.gelu(x=x, mode="EXACT")),
    ("gelu_tanh", _x(2, 5), lambda x: mb.gelu(x=x, mode="TANH_APPROXIMATION")),
    ("gelu_sigmoid", _x(2, 5), lambda x: mb.gelu(x=x, mode="SIGMOID_APPROXIMATION")),
    ("relu", _x(3, 4), lambda x: mb.relu(x=x)),
    ("sigmoid", _x(3, 4), lambda x: mb.sigmoid(x=x)),
    ("tanh", _x(3, 4), lambda x: mb.tanh(x=x)),
    ("softmax_axis1", _x(2, 7, 3), lambda x: mb.softmax(x=x, axis=1)),
    ("sub_scalar", _x(2, 3), lambda x: mb.sub(x=x, y=np.float32(0.5))),
    ("reduce_mean", _x(2, 3, 4, 5), lambda x: mb.reduce_mean(x=x, axes=[2, 3], keep_dims=True)),
    ("reduce_sum", _x(2, 3, 4), lambda x: mb.reduce_sum(x=x, axes=[-1], keep_dims=False)),
    ("reduce_max", _x(2, 3, 4), lambda x: mb.reduce_max(x=x, axes=[1], keep_dims=True)),
    ("reshape_zero", _x(2, 6, 4), lambda x: mb.reshape(x=x, shape=[0, 3, -1])),
    ("transpose", _x(2, 3, 4), lambda x: mb.transpose(x=x, perm=[2, 0, 1])),
    ("squeeze", _x(1, 3, 1), lambda x: mb.squeeze(x=x, axes=[0, 2])),
    ("expand_dims", _x(3, 4), lambda x: mb.expand_dims(x=x, axes=[0, -1])),
    ("slice_by_index", _x(4, 6), lambda x: mb.slice_by_index(x=x, begin=[1, 0], end=[3, 6], stride=[1, 2])),
    ("slice_by_size", _x(4, 6), lambda x: mb.slice_by_size(x=x, begin=[1, 2], size=[2, -1])),
    ("split", _x(2, 6), lambda x: mb.split(x=x, split_sizes=[2, 4], axis=1)[1]),
    ("gather", _x(5, 3), lambda x: mb.gather(x=x, indices=np.array([4, 0, 2], dtype=np.int32), axis=0)),
    ("pad_constant", _x(1, 2, 3, 3), lambda x: mb.pad(x=x, pad=[1, 2, 0, 1], mode="constant", constant_val=0.5)),
    ("clip", _x(3, 3), lambda x: mb.clip(x=x, alpha=-1.0, beta=1.5)),
    ("rsqrt", _x(3, 3, low=0.1, high=3), lambda x: mb.rsqrt(x=x, epsilon=1e-6)),
    ("cast_fp16", _x(3, 3), lambda x: mb.cast(x=x, dtype="fp16")),
]

T = torch.from_numpy
# Ops coremltools does not value-infer: expected = an independent torch formulation, with the
# padding worked out by hand from the MIL spec (so the executor's pad rule is checked, not reused).
TORCH_CASES = [
    ("silu", _x(3, 4), lambda x: mb.silu(x=x), lambda x: x * torch.sigmoid(x)),
    (
        "thresholded_relu",
        _x(3, 4),
        lambda x: mb.thresholded_relu(x=x, alpha=0.25),
        lambda x: torch.where(x >= 0.25, x, torch.zeros_like(x)),
    ),
    ("add_broadcast", _x(2, 3, 4), lambda x, a=A13: mb.add(x=x, y=a), lambda x: x + T(A13)),
    ("mul", _x(2, 3), lambda x, b=B23: mb.mul(x=x, y=b), lambda x: x * T(B23)),
    ("real_div", _x(2, 3), lambda x, d=D23: mb.real_div(x=x, y=d), lambda x: x / T(D23)),
    ("linear", _x(2, 4), lambda x, w=W34, b=B3: mb.linear(x=x, weight=w, bias=b), lambda x: x @ T(W34).T + T(B3)),
    ("matmul_t", _x(2, 3, 4), lambda x, w=W34: mb.matmul(x=x, y=w, transpose_y=True), lambda x: x @ T(W34).T),
    (
        "conv_custom_pad",
        _x(1, 4, 9, 9),
        lambda x, w=W6233, b=B6: mb.conv(
            x=x, weight=w, bias=b, strides=[2, 2], pad_type="custom", pad=[1, 0, 2, 1], groups=2
        ),
        # pad = [top 1, bottom 0, left 2, right 1] -> F.pad order (left, right, top, bottom)
        lambda x: torch.nn.functional.conv2d(
            torch.nn.functional.pad(x, (2, 1, 1, 0)), T(W6233), T(B6), stride=2, groups=2
        ),
    ),
    (
        "conv_same_stride2",
        _x(1, 6, 8, 7),
        lambda x, w=W6233: mb.conv(x=x, weight=w, pad_type="same", strides=[2, 2], groups=3),
        # H 8 -> out 4: total (4-1)*2+3-8 = 1 -> (0 before, 1 after); W 7 -> out 4: total 2 -> (1, 1)
        lambda x: torch.nn.functional.conv2d(torch.nn.functional.pad(x, (1, 1, 0, 1)), T(W6233), stride=2, groups=3),
    ),
    (
        "conv_same_lower",
        _x(1, 6, 8, 7),
        lambda x, w=W6233: mb.conv(x=x, weight=w, pad_type="same_lower", strides=[2, 2], groups=3),
        lambda x: torch.nn.functional.conv2d(torch.nn.functional.pad(x, (1, 1, 1, 0)), T(W6233), stride=2, groups=3),
    ),
    # 1x1 convolutions run as matrix products (ops/conv.py _pointwise): checked against torch's conv
    (
        "conv_1x1_bias_batch2",
        _x(2, 4, 5, 3),
        lambda x, w=W6411, b=B6: mb.conv(x=x, weight=w, bias=b),
        lambda x: torch.nn.functional.conv2d(x, T(W6411), T(B6)),
    ),
    (
        "conv_1x1_no_bias",
        _x(1, 4, 5, 3),
        lambda x, w=W6411: mb.conv(x=x, weight=w),
        lambda x: torch.nn.functional.conv2d(x, T(W6411)),
    ),
    (
        "conv1d_1x1",
        _x(2, 4, 7),
        lambda x, w=W641, b=B6: mb.conv(x=x, weight=w, bias=b),
        lambda x: torch.nn.functional.conv1d(x, T(W641), T(B6)),
    ),
    (
        "conv_1x1_stride2",
        _x(1, 4, 6, 6),
        lambda x, w=W6411: mb.conv(x=x, weight=w, strides=[2, 2]),
        lambda x: torch.nn.functional.conv2d(x, T(W6411), stride=2),
    ),
    (
        "avg_pool_exclude_pad",
        _x(1, 2, 7, 7),
        lambda x: mb.avg_pool(
            x=x,
            kernel_sizes=[3, 3],
            strides=[2, 2],
            pad_type="custom",
            pad=[1, 1, 1, 1],
            exclude_padding_from_average=True,
        ),
        lambda x: torch.nn.functional.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
    ),
    (
        "avg_pool_include_pad",
        _x(1, 2, 7, 7),
        lambda x: mb.avg_pool(
            x=x,
            kernel_sizes=[3, 3],
            strides=[1, 1],
            pad_type="custom",
            pad=[1, 1, 1, 1],
            exclude_padding_from_average=False,
        ),
        lambda x: torch.nn.functional.avg_pool2d(x, 3, 1, 1, count_include_pad=True),
    ),
    (
        "max_pool",
        _x(1, 2, 8, 8),
        lambda x: mb.max_pool(x=x, kernel_sizes=[2, 2], strides=[2, 2], pad_type="valid"),
        lambda x: torch.nn.functional.max_pool2d(x, 2, 2),
    ),
    (
        "batch_norm",
        _x(1, 3, 4, 4),
        lambda x, m=B3, v=B3_VAR, g=B3 * 2, b=B3 / 2: mb.batch_norm(
            x=x, mean=m, variance=v, gamma=g, beta=b, epsilon=1e-3
        ),
        lambda x: (
            (x - T(B3).view(1, 3, 1, 1)) / torch.sqrt(T(B3_VAR).view(1, 3, 1, 1) + 1e-3) * T(B3 * 2).view(1, 3, 1, 1)
            + T(B3 / 2).view(1, 3, 1, 1)
        ),
    ),
    (
        "layer_norm",
        _x(2, 5, 3),
        lambda x, g=B3, b=B3 + 1: mb.layer_norm(x=x, axes=[-1], gamma=g, beta=b, epsilon=1e-5),
        lambda x: torch.nn.functional.layer_norm(x, (3,), T(B3), T(B3 + 1), eps=1e-5),
    ),
]


def _expected(fn, x: np.ndarray) -> np.ndarray:
    captured = []

    @mb.program(input_specs=[mb.TensorSpec(shape=(1,))], opset_version=ct.target.iOS16)
    def program(dummy):
        captured.append(fn(x).val)
        return dummy

    assert captured[0] is not None, "coremltools did not value-infer this op"
    return np.asarray(captured[0], dtype=np.float32)


def _run_single_op(fn, x: np.ndarray, path) -> np.ndarray:
    @mb.program(input_specs=[mb.TensorSpec(shape=x.shape)], opset_version=ct.target.iOS16)
    def program(x_in):
        return fn(x_in)

    model = ct.convert(
        program,
        convert_to="mlprogram",
        minimum_deployment_target=ct.target.iOS16,
        compute_precision=ct.precision.FLOAT32,
        skip_model_load=True,
    )
    model.save(str(path))
    [output] = MILExecutor(path).run({"x_in": x}).values()
    return output.numpy()


@pytest.mark.parametrize("case_id, x, fn", VALUE_INFERENCE_CASES, ids=[c[0] for c in VALUE_INFERENCE_CASES])
def test_op_matches_coremltools_value_inference(case_id, x, fn, tmp_path):
    expected = _expected(fn, x)
    got = _run_single_op(fn, x, tmp_path / f"{case_id}.mlpackage")
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5, err_msg=case_id)


@pytest.mark.parametrize("case_id, x, fn, reference", TORCH_CASES, ids=[c[0] for c in TORCH_CASES])
def test_op_matches_independent_reference(case_id, x, fn, reference, tmp_path):
    expected = reference(T(x)).numpy()
    got = _run_single_op(fn, x, tmp_path / f"{case_id}.mlpackage")
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5, err_msg=case_id)


def _program_ops(model) -> set[str]:
    spec = model.get_spec()
    function = spec.mlProgram.functions["main"]
    return {op.type for op in function.block_specializations[function.opset].operations}


from effconvert.load.fastvit import VARIANTS as FASTVIT_VARIANTS  # noqa: E402

COVERAGE_ARCHS = [a if a == "fastvit_sa12" else pytest.param(a, marks=pytest.mark.slow) for a in FASTVIT_VARIANTS]


@pytest.mark.parametrize("arch", COVERAGE_ARCHS)
@pytest.mark.parametrize(
    "ios", [16, pytest.param(17, marks=pytest.mark.slow), pytest.param(18, marks=pytest.mark.slow)]
)
def test_executor_covers_every_op_fastvit_produces(ios, arch, realistic):
    """Op set of each variant at each iOS target, fp32 and fp16. FastViT-SA12 (RepMixer,
    attention, RepCPE: every FastViT op kind) runs by default, the other variants in the slow suite."""
    from effconvert.convert.wrappers import ImageClassifier
    from effconvert.fuse import reparameterize
    from effconvert.load import Preprocessing

    model, _ = realistic(arch)
    wrapper = ImageClassifier(reparameterize(model), Preprocessing.from_timm(arch)).eval()
    traced = torch.jit.trace(wrapper, torch.rand(1, 3, 256, 256), check_trace=False)
    target = {16: ct.target.iOS16, 17: ct.target.iOS17, 18: ct.target.iOS18}[ios]
    for precision in (ct.precision.FLOAT32, ct.precision.FLOAT16):
        model_ = ct.convert(
            traced,
            inputs=[ct.ImageType(name="image", shape=(1, 3, 256, 256), scale=1 / 255)],
            convert_to="mlprogram",
            minimum_deployment_target=target,
            compute_precision=precision,
            skip_model_load=True,
        )
        missing = _program_ops(model_) - set(OPS) - {"const"}
        assert not missing, f"iOS{ios} {precision}: executor lacks {sorted(missing)}"


def test_unknown_op_is_named_and_no_number_is_made_up(tmp_path, monkeypatch):
    @mb.program(input_specs=[mb.TensorSpec(shape=(2, 3))], opset_version=ct.target.iOS16)
    def program(x):
        return mb.gelu(x=x)

    path = tmp_path / "gelu.mlpackage"
    ct.convert(program, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS16, skip_model_load=True).save(
        str(path)
    )
    monkeypatch.delitem(OPS, "gelu")
    with pytest.raises(UnsupportedProgram, match=r"does not implement op\(s\): gelu; Core ML parity was not computed"):
        MILExecutor(path)


def test_rank_above_five_is_refused_with_the_op_named(tmp_path):
    """Microsoft EfficientViT's window partition views are 6-D and Core ML refuses them on device."""
    path = rank_six_package(tmp_path / "rank.mlpackage", fp16=False)
    with pytest.raises(UnsupportedProgram, match=r"rank > 5: transpose 'window_partition' has rank 6"):
        MILExecutor(path)


def test_fp16_gate_failure_names_the_first_divergent_op(t8_all, checkpoints):
    """The session's T8 fp16 package judged by a gate it cannot meet (psnr >= 120 dB): the report's
    validation names an op of the package's own program."""
    import torch

    from effconvert.convert import Artifact
    from effconvert.load import load_checkpoint
    from effconvert.validate import gate_for, input_set, validate_artifact

    path = t8_all.out_dir / "fastvit_t8_fp16.mlpackage"
    loaded = load_checkpoint(checkpoints("fastvit_t8"))  # the checkpoint t8_all converted
    inputs = input_set(loaded.preprocessing, samples=4)
    with torch.no_grad():
        reference = loaded.model(torch.from_numpy(inputs.inputs)).numpy()
    check = validate_artifact(
        Artifact("coreml", "fp16", path, 0.0, "image"), inputs, reference, gate=gate_for("fp16", "psnr=120")
    )
    assert check.runtime == "coreml-mil-executor" and check.passed is False
    divergent = check.verdict.first_divergent_op
    assert divergent.psnr_db < 120 and divergent.op and divergent.output
    program = load_program(path)
    assert divergent.output in {name for op in program.operations for name, _ in op.outputs}


def test_classifier_outputs_and_intermediates(t8_all):
    package = t8_all.out_dir / "fastvit_t8_fp32.mlpackage"
    executor = MILExecutor(package)
    pixels = np.random.default_rng(1).integers(0, 256, (1, 3, 256, 256)).astype(np.float32)
    out = executor.run({"image": pixels})
    assert set(out) == {"classLabel", "classLabel_probs", "logits"}
    probs = out["classLabel_probs"]
    labels = load_program(package).operations[-1].inputs["classes"][0][1]
    assert len(labels) == 1000 and len(probs) == len(set(labels))  # ImageNet repeats a few names
    assert out["classLabel"] == labels[int(out["logits"].argmax())]
    everything = executor.run({"image": pixels}, keep=True)
    assert len(everything) > len(out) + 100


def test_inspect_mlpackage(cli, t8_all):
    result = cli("inspect", t8_all.out_dir / "fastvit_t8_fp16.mlpackage")
    assert result.exit_code == 0, result.output
    for text in ("image 256x256 RGB", "classLabel", "logits", "conv", "FLOAT16", "MB"):
        assert text in result.output, text


@pytest.mark.parametrize("ios", [16, 18])
@pytest.mark.parametrize("compression", ["linear_int8", "palettize_4bit", "prune_50"])
def test_compressed_weights_decompress_like_coremltools(ios, compression, tmp_path):
    """constexpr_affine_dequantize / blockwise_shift_scale / lut_to_dense / sparse_to_dense:
    the executor's result equals the linear layer applied to coremltools' own materialised weight."""
    import coremltools.optimize.coreml as cto

    weight = RNG.normal(size=(64, 32)).astype(np.float32)
    x = RNG.normal(size=(2, 32)).astype(np.float32)
    target = {16: ct.target.iOS16, 18: ct.target.iOS18}[ios]

    @mb.program(input_specs=[mb.TensorSpec(shape=(2, 32))], opset_version=target)
    def program(x_in):
        return mb.linear(x=x_in, weight=weight)

    dense = ct.convert(
        program,
        convert_to="mlprogram",
        minimum_deployment_target=target,
        compute_precision=ct.precision.FLOAT32,
        skip_model_load=True,
    )
    configs = {
        "linear_int8": (
            cto.linear_quantize_weights,
            cto.OpLinearQuantizerConfig(mode="linear_symmetric", weight_threshold=0),
        ),
        "palettize_4bit": (cto.palettize_weights, cto.OpPalettizerConfig(nbits=4, mode="kmeans", weight_threshold=0)),
        "prune_50": (cto.prune_weights, cto.OpMagnitudePrunerConfig(target_sparsity=0.5, weight_threshold=0)),
    }
    fn, config = configs[compression]
    compressed = fn(dense, config=cto.OptimizationConfig(global_config=config))
    [constexpr] = [o for o in compressed._mil_program.functions["main"].operations if o.op_type.startswith("constexpr")]
    materialised = np.asarray(constexpr.materialized_val_inference(), dtype=np.float32)
    path = tmp_path / "compressed.mlpackage"
    compressed.save(str(path))
    executor = MILExecutor(path)
    assert any(op.type == constexpr.op_type for op in executor.program.operations)
    [out] = executor.run({"x_in": x}).values()
    np.testing.assert_allclose(out.numpy(), x @ materialised.T, rtol=1e-5, atol=1e-5)


def test_activation_quantize_dequantize_round_trip(tmp_path):
    x = _x(2, 8)
    scale = np.float32(0.05)

    @mb.program(input_specs=[mb.TensorSpec(shape=x.shape)], opset_version=ct.target.iOS17)
    def program(x_in):
        q = mb.quantize(input=x_in, scale=scale, zero_point=np.int8(3), output_dtype="int8")
        return mb.dequantize(input=q, scale=scale, zero_point=np.int8(3))

    path = tmp_path / "qdq.mlpackage"
    ct.convert(
        program,
        convert_to="mlprogram",
        minimum_deployment_target=ct.target.iOS17,
        compute_precision=ct.precision.FLOAT32,
        skip_model_load=True,
    ).save(str(path))
    [out] = MILExecutor(path).run({"x_in": x}).values()
    expected = (np.clip(np.round(x / scale) + 3, -128, 127) - 3) * scale
    np.testing.assert_allclose(out.numpy(), expected, rtol=0, atol=1e-6)


def test_activation_ranges_for_calibration_on_linux(t8_all):
    from effconvert.quantize.coreml_ranges import activation_ranges

    executor = MILExecutor(t8_all.out_dir / "fastvit_t8_fp32.mlpackage")
    rng = np.random.default_rng(3)
    feeds = [{"image": rng.integers(0, 256, (1, 3, 256, 256)).astype(np.float32)} for _ in range(3)]
    ranges = activation_ranges(executor, feeds)
    assert ranges["image"].min >= 0 and ranges["image"].max <= 255 and ranges["image"].samples == 3
    logits = ranges["logits"]
    single = [float(executor.run(f)["logits"].max()) for f in feeds]
    assert logits.max == pytest.approx(max(single), rel=1e-6)
    conv_outputs = [name for op in executor.program.operations if op.type == "conv" for name, _ in op.outputs]
    assert conv_outputs and all(name in ranges and ranges[name].min < ranges[name].max for name in conv_outputs)


@pytest.mark.skipif(__import__("platform").system() != "Darwin", reason="MLModel.predict runs only on macOS")
def test_executor_agrees_with_core_ml_on_macos(tmp_path, checkpoints):
    from PIL import Image

    from effconvert.pipeline import Request, run

    run(Request(checkpoints("fastvit_t8"), ("coreml",), ("fp32", "fp16"), tmp_path, samples=1, validate=False))
    pixels = np.random.default_rng(5).integers(0, 256, (256, 256, 3)).astype(np.uint8)
    for quant, rtol in (("fp32", 1e-4), ("fp16", 2e-2)):
        path = tmp_path / f"fastvit_t8_{quant}.mlpackage"
        core_ml = ct.models.MLModel(str(path), compute_units=ct.ComputeUnit.CPU_ONLY)
        expected = np.asarray(core_ml.predict({"image": Image.fromarray(pixels)})["logits"]).ravel()
        got = MILExecutor(path).run({"image": pixels.transpose(2, 0, 1)[None].astype(np.float32)})["logits"]
        scale = np.abs(expected).max()
        assert np.abs(got.numpy().ravel() - expected).max() / scale < rtol, quant
