"""The MIL executor computing into inputs that die: bitwise the values and the memory layout of
the ops themselves, never into memory that is still read (views, constants, the caller's array)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from effconvert.runtime.mil import OPS, MILExecutor
from effconvert.runtime.mil.ops import inplace

ct = pytest.importorskip("coremltools")
from coremltools.converters.mil import Builder as mb  # noqa: E402

CL = torch.channels_last


def _t(*shape, layout=torch.contiguous_format, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, generator=g) * 3).contiguous(memory_format=layout)


# (op, target, x, y): y None for unary ops. More elements than a chunk, so GELU takes several steps.
BIG = (1, 40, 90, 82)
CASES = [
    ("gelu", "x", _t(*BIG), None),
    ("gelu", "x", _t(*BIG, layout=CL), None),
    ("relu", "x", _t(*BIG, layout=CL), None),
    ("sigmoid", "x", _t(*BIG), None),
    ("add", "x", _t(*BIG, layout=CL), _t(*BIG, layout=CL, seed=1)),
    ("add", "x", _t(*BIG, layout=CL), _t(1, 40, 1, 1, seed=1)),  # broadcast second operand
    ("add", "y", _t(*BIG, seed=1), _t(*BIG)),  # into y: commutative
    ("mul", "x", _t(*BIG), 0.5),
    ("sub", "x", _t(*BIG), _t(1, 1, 90, 82, seed=1)),
    ("real_div", "x", _t(*BIG, layout=CL), _t(1, 40, 1, 1, seed=2)),
]


@pytest.mark.parametrize("op_type, target, x, y", CASES, ids=[f"{c[0]}-{c[1]}-{i}" for i, c in enumerate(CASES)])
def test_twin_gives_the_ops_values_and_layout(op_type, target, x, y):
    args = {"x": x} if y is None else {"x": x, "y": y}
    if op_type == "gelu":
        args["mode"] = "EXACT"
    expected = OPS[op_type](op=None, **{k: v.clone() if torch.is_tensor(v) else v for k, v in args.items()})
    mine = {k: v.clone() if torch.is_tensor(v) else v for k, v in args.items()}
    got = inplace.run_in_place(op_type, target, mine)
    assert got is not None and got.data_ptr() == mine[target].data_ptr()  # computed into the input
    assert torch.equal(got, expected) and got.stride() == expected.stride()


@pytest.mark.parametrize(
    "op_type, target, x, y",
    [
        ("add", "x", _t(*BIG), _t(*BIG, layout=CL)),  # the op would follow neither layout alone
        ("add", "y", _t(1, 40, 90, 1), _t(*BIG, layout=CL)),  # torch.add(o, x) may lay out otherwise
        ("sub", "y", _t(*BIG), _t(*BIG)),  # not commutative
        ("add", "x", _t(1, 40, 1, 1), _t(*BIG)),  # the output is larger than x
    ],
    ids=["layouts-differ", "broadcast-first", "sub-into-y", "x-broadcast"],
)
def test_twin_declines_when_the_op_would_differ(op_type, target, x, y):
    assert inplace.run_in_place(op_type, target, {"x": x, "y": y}) is None


def _save(program, path, fp16: bool):
    precision = ct.precision.FLOAT16 if fp16 else ct.precision.FLOAT32
    ct.convert(
        program,
        convert_to="mlprogram",
        minimum_deployment_target=ct.target.iOS16,
        compute_precision=precision,
        skip_model_load=True,
    ).save(str(path))
    return path


W = np.random.default_rng(0).standard_normal((8, 4, 1, 1)).astype(np.float32)


@mb.program(input_specs=[mb.TensorSpec(shape=(1, 4, 64, 64))], opset_version=ct.target.iOS16)
def _aliasing(x):  # tensors of >= inplace.LARGE elements
    y = mb.conv(x=x, weight=W)
    r = mb.reshape(x=x, shape=[1, 4, 4096])  # fp32: a view of the caller's array
    r = mb.relu(x=r)  # r and x die here: not into the input
    v = mb.reshape(x=y, shape=[1, 8, 4096])  # a view of y, which stays live
    g = mb.gelu(x=v, mode="EXACT")  # v dies here, y does not: not in place
    s = mb.sigmoid(x=y)  # y dies here, nothing else holds it: in place
    s = mb.reshape(x=s, shape=[1, 8, 4096])
    out = mb.add(x=g, y=s)  # g dies here: in place
    return mb.add(x=out, y=mb.reduce_sum(x=r, axes=[1], keep_dims=True), name="out")


@pytest.mark.parametrize("fp16", [False, True], ids=["fp32", "fp16"])
def test_executor_never_writes_into_live_memory(fp16, tmp_path, monkeypatch):
    executor = MILExecutor(_save(_aliasing, tmp_path / "p.mlpackage", fp16))
    feed = np.random.default_rng(1).standard_normal((1, 4, 64, 64)).astype(np.float32)
    original = feed.copy()
    constants = {k: v.clone() for k, v in executor.program.constants.items() if torch.is_tensor(v)}

    used = []
    real = inplace.run_in_place

    def counting(op_type, target, args):
        result = real(op_type, target, args)
        used.append((op_type, result is not None))
        return result

    monkeypatch.setattr(inplace, "run_in_place", counting)
    first = executor.run({"x": feed})["out"].clone()
    second = executor.run({"x": feed})["out"]
    assert any(done for _, done in used)  # the twins did run
    np.testing.assert_array_equal(feed, original)  # the caller's array is untouched
    assert all(torch.equal(executor.program.constants[k], v) for k, v in constants.items())
    monkeypatch.setattr(inplace, "run_in_place", lambda *a: None)
    alone = executor.run({"x": feed})["out"]
    assert torch.equal(first, alone) and torch.equal(second, alone)


def test_t8_package_gives_the_same_logits_with_and_without_the_twins(t8_all, monkeypatch):
    """The session's T8 packages, fp32 and fp16: every value of a forward pass as before."""
    pixels = np.random.default_rng(2).integers(0, 256, (1, 3, 256, 256)).astype(np.float32)
    for precision in ("fp32", "fp16"):
        executor = MILExecutor(t8_all.out_dir / f"fastvit_t8_{precision}.mlpackage")
        with_twins = executor.run({"image": pixels})["logits"]
        with monkeypatch.context() as patch:
            patch.setattr(inplace, "run_in_place", lambda *a: None)
            without = executor.run({"image": pixels})["logits"]
        assert torch.equal(with_twins, without)


def test_large_fp16_weights_stay_in_the_file_and_give_the_same_logits(t8_all, monkeypatch):
    """The fp16 T8 package: its large weights are read from weight.bin's map when an op needs them
    (MappedConstant), not held; the logits are bitwise those of the same program with every constant
    read into memory, run after run; a mapped weight's pages are dropped once its op has run."""
    from effconvert.runtime.mil import program as program_module
    from effconvert.runtime.mil.program import MappedConstant

    package = t8_all.out_dir / "fastvit_t8_fp16.mlpackage"
    pixels = np.random.default_rng(3).integers(0, 256, (1, 3, 256, 256)).astype(np.float32)
    mapped_executor = MILExecutor(package)
    constants = mapped_executor.program.constants
    mapped = {k: v for k, v in constants.items() if isinstance(v, MappedConstant)}
    held = sum(v.numel() * v.element_size() for v in constants.values() if torch.is_tensor(v))
    mapped_bytes = sum(v.count * 2 for v in mapped.values())
    weights = (package / "Data" / "com.apple.CoreML" / "weights" / "weight.bin").stat().st_size
    assert mapped and all(v.dtype == torch.float16 for v in mapped.values())
    assert mapped_bytes > 0.8 * weights and held < 0.2 * weights

    released = []
    real_release = MappedConstant.release
    monkeypatch.setattr(MappedConstant, "release", lambda self: released.append(self) or real_release(self))
    first = mapped_executor.run({"image": pixels})["logits"]
    assert {id(c) for c in released} == {id(c) for c in mapped.values()}
    second = mapped_executor.run({"image": pixels})["logits"]
    monkeypatch.setattr(program_module, "MAPPED_BYTES", 1 << 62)  # every constant read into memory
    held_executor = MILExecutor(package)
    assert not any(isinstance(v, MappedConstant) for v in held_executor.program.constants.values())
    alone = held_executor.run({"image": pixels})["logits"]
    assert torch.equal(first, alone) and torch.equal(second, alone)
