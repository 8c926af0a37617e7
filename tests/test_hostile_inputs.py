"""Hostile input: every bad value is refused with exit 2 (3 for an artifact that fails in its runtime),
one line naming what is wrong, no traceback, and nothing written under --out.

One case per line of the corpus; add a case whenever an option appears. The properties at the end
(hypothesis) try odd values beyond the list for the option checks and the checkpoint metadata reader.
"""

from __future__ import annotations

import os
import re
import signal
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from effconvert.errors import BadInput


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height (a decompression bomb needs no pixels to be refused)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + chunk(b"IEND", b"")
    )


def _image_folder(root: Path, name: str, content: bytes | None = None) -> Path:
    folder = root / name
    folder.mkdir()
    if content is not None:
        (folder / "a.png").write_bytes(content)
    return folder


@pytest.fixture(scope="module")
def t8(checkpoints) -> Path:
    return checkpoints("fastvit_t8")


@pytest.fixture(scope="module")
def t8_state(t8):
    return torch.load(t8, weights_only=True)["state_dict"]


@pytest.fixture(scope="module")
def files(tmp_path_factory, t8, t8_state) -> dict[str, Path]:
    """The corpus's hostile files, written once."""
    root = tmp_path_factory.mktemp("hostile")
    made: dict[str, Path] = {}

    def write(name: str, content: bytes) -> None:
        made[name] = root / name
        made[name].write_bytes(content)

    write("empty.pth", b"")
    write("random.pth", os.urandom(4096))
    write("badzip.pth", b"PK\x03\x04garbage")
    write("truncated.pth.tar", t8.read_bytes()[: t8.stat().st_size * 2 // 3])
    write("model.h5", b"HDF")
    write("labels.bin", bytes(range(256)) * 4)
    write("labels-nul.txt", b"cat\x00\ndog\n")
    write("three.txt", b"a\nb\nc\n")
    write("notes.txt", b"not a folder")
    write("empty.onnx", b"")
    write("garbage.onnx", os.urandom(512))
    made["folder"] = root / "a-folder"
    made["folder"].mkdir()
    for name, meta in (
        ("meta-abc.pth", {"image_size": "abc"}),
        ("meta-huge.pth", {"image_size": 115000}),
        ("meta-list.pth", [1, 2, 3]),
        ("meta-neg.pth", {"image_size": -3}),
    ):
        made[name] = root / name
        torch.save({"state_dict": t8_state, "effconvert": meta}, made[name])
    made["nan.pth"] = root / "nan.pth"
    torch.save(
        {k: v.clone().fill_(float("nan")) if v.is_floating_point() else v for k, v in t8_state.items()}, made["nan.pth"]
    )

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {root / 'pwned'}",))

    made["evil.pth"] = root / "evil.pth"
    torch.save({"state_dict": Payload()}, made["evil.pth"])
    made["torchscript.pt"] = root / "torchscript.pt"
    torch.jit.save(torch.jit.trace(torch.nn.Linear(3, 4), torch.zeros(1, 3)), made["torchscript.pt"])
    made["loop.pth"] = root / "loop.pth"
    os.symlink(root / "loop2.pth", made["loop.pth"])
    os.symlink(made["loop.pth"], root / "loop2.pth")
    made["dangling.pth"] = root / "dangling.pth"
    os.symlink(root / "gone.pth", made["dangling.pth"])
    made["bomb"] = _image_folder(root, "bomb", _png_header(100_000, 100_000))
    made["not-image"] = _image_folder(root, "not-image", b"\xff\xd8 this is not a jpeg")
    made["no-images"] = _image_folder(root, "no-images")
    made["exists-as-file"] = root / "exists-as-file"
    made["exists-as-file"].write_text("x")
    made["pwned"] = root / "pwned"
    return made


def _assert_refused(result, out: Path | None, message: str, code: int = 2) -> None:
    text = result.output
    assert result.exit_code == code, text
    assert message in text, text
    assert "Traceback" not in text and "internal error" not in text, text
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    errors = [line for line in text.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, text
    if out is not None:
        assert not out.exists() or not any(out.iterdir()), sorted(out.rglob("*"))


# (case id, arguments after the checkpoint, expected text). "{name}" is replaced by files[name].
OPTION_CASES = [
    ("image-size-0", ["--image-size", "0"], "--image-size 0 is out of range"),
    ("image-size-negative", ["--image-size", "-5"], "--image-size -5 is out of range"),
    ("image-size-huge", ["--image-size", "100000"], "from 32 to 1024"),
    ("image-size-below-stride", ["--image-size", "7"], "--image-size 7 is out of range"),
    ("samples-0", ["--samples", "0"], "--samples 0 is out of range"),
    ("samples-billion", ["--samples", "1000000000"], "from 1 to 4096"),
    ("samples-memory", ["--samples", "4000", "--image-size", "1024"], "needs 46.9 GiB"),
    ("calib-samples-0", ["--quant", "int8", "--calib-samples", "0"], "--calib-samples 0 is out of range"),
    ("calib-is-file", ["--quant", "int8", "--calib", "{notes.txt}"], "is a file, not a folder"),
    ("calib-missing", ["--quant", "int8", "--calib", "{folder}/nope"], "--calib folder not found"),
    ("calib-bomb", ["--quant", "int8", "--calib", "{bomb}"], "10,000,000,000 pixels"),
    ("calib-not-image", ["--quant", "int8", "--calib", "{not-image}"], "a.png: not an image"),
    ("calib-no-images", ["--quant", "int8", "--calib", "{no-images}"], "holds no images"),
    ("calib-without-int8", ["--calib", "{bomb}"], "--calib applies to --quant int8 or w8a16 only"),
    ("val-is-file", ["--val", "{notes.txt}"], "--val"),
    ("val-bomb", ["--val", "{bomb}"], "decompression bomb"),
    ("labels-binary", ["--labels", "{labels.bin}"], "is not UTF-8 text"),
    ("labels-nul", ["--labels", "{labels-nul.txt}"], "binary file"),
    ("labels-missing", ["--labels", "{folder}/labels.txt"], "--labels file not found"),
    ("labels-count", ["--labels", "{three.txt}"], "labels file has 3 labels, the model has 1000 classes"),
    ("out-is-file", ["--out", "{exists-as-file}"], "is a file, not a folder"),
    ("out-under-file", ["--out", "{exists-as-file}/sub"], "cannot be created"),
    ("out-proc", ["--out", "/proc/effconvert-test"], "is not writable"),
    ("ios-after-onnx", ["--target", "onnx", "--target", "coreml", "--ios", "15"], "--ios 15 is not supported"),
    ("layout-after-onnx", ["--target", "onnx", "--target", "tflite", "--layout", "foo"], "--layout foo"),
    ("input-kind", ["--input", "video"], "--input video is not supported"),
    ("app-without-target", ["--target", "onnx", "--app", "ios"], "--app ios needs a .mlpackage"),
    ("app-unknown", ["--app", "windows"], "unknown app platform"),
    ("target-unknown", ["--target", "caffe"], "unknown target"),
    ("quant-unknown", ["--quant", "int4"], "unknown quant"),
    ("gate-unknown", ["--gate", "speed=3"], "unknown gate"),
    ("gate-not-number", ["--gate", "psnr=abc"], "gate psnr needs a number"),
    ("gate-nan", ["--gate", "psnr=nan"], "gate psnr needs a finite number"),
    ("gate-top1-range", ["--gate", "top1=5"], "top1 5 is out of range"),
    ("palettize-bits", ["--palettize", "3"], "--palettize 3 is not supported"),
    ("palettize-tflite", ["--target", "tflite", "--palettize", "4"], "--palettize applies to coreml"),
    (
        "onnx-pal4",
        ["--target", "onnx", "--quant", "pal4"],
        "no target asked for offers --quant pal4 (onnx pal4 skipped",
    ),
    ("arch-wrong", ["--arch", "fastvit_sa12"], "does not fit --arch fastvit_sa12"),
    ("arch-unknown", ["--arch", "resnet50"], "--arch resnet50 is not a supported architecture"),
]


def _fill(args: list[str], files: dict[str, Path]) -> list[str]:
    out = []
    for arg in args:
        for name, path in files.items():
            arg = arg.replace("{" + name + "}", str(path))
        out.append(arg)
    return out


@pytest.mark.parametrize("args, message", [c[1:] for c in OPTION_CASES], ids=[c[0] for c in OPTION_CASES])
def test_bad_option_is_refused_before_anything_is_written(tmp_path, cli, t8, files, args, message):
    args = _fill(args, files)
    out = tmp_path / "out"
    if "--out" not in args:
        args += ["--out", str(out)]
    result = cli(t8, *args)
    _assert_refused(result, out, message)


CHECKPOINT_CASES = [
    ("empty", "empty.pth", "checkpoint is empty"),
    ("random-bytes", "random.pth", "not a readable PyTorch checkpoint"),
    ("bad-zip", "badzip.pth", "not a readable PyTorch checkpoint"),
    ("truncated", "truncated.pth.tar", "not a readable PyTorch checkpoint"),
    ("unsupported-suffix", "model.h5", "unsupported checkpoint format"),
    ("folder", "folder", "got a folder"),
    ("missing", "nope.pth", "checkpoint not found"),
    ("symlink-loop", "loop.pth", "symbolic link loop"),
    ("dangling-symlink", "dangling.pth", "broken symbolic link"),
    ("torchscript", "torchscript.pt", "is a TorchScript program"),
    ("malicious-pickle", "evil.pth", "arbitrary unpickling"),
    ("nan-weights", "nan.pth", "NaN/Inf values"),
    ("metadata-image-size-text", "meta-abc.pth", "checkpoint metadata image_size 'abc' is not"),
    ("metadata-image-size-huge", "meta-huge.pth", "checkpoint metadata image_size 115000 is out of range"),
    ("metadata-image-size-negative", "meta-neg.pth", "checkpoint metadata image_size -3 is out of range"),
    ("metadata-not-a-dict", "meta-list.pth", "checkpoint metadata 'effconvert' is a list"),
]


@pytest.mark.parametrize("name, message", [c[1:] for c in CHECKPOINT_CASES], ids=[c[0] for c in CHECKPOINT_CASES])
def test_bad_checkpoint_is_refused_and_nothing_written(tmp_path, cli, files, name, message):
    path = files.get(name, files["folder"].parent / name)
    out = tmp_path / "out"
    _assert_refused(cli(path, "--target", "onnx", "--out", out), out, message)
    assert not files["pwned"].exists()  # the malicious pickle's code never ran


@pytest.mark.parametrize(
    "name, message",
    [
        ("meta-abc.pth", "image_size 'abc'"),
        ("empty.onnx", "empty (0 bytes)"),
        ("garbage.onnx", "ONNX"),
        ("random.pth", "not a readable"),
    ],
    ids=["metadata", "empty-onnx", "garbage-onnx", "random-checkpoint"],
)
def test_inspect_refuses_what_it_cannot_read(cli, files, name, message):
    _assert_refused(cli("inspect", files[name]), None, message)


@pytest.fixture(scope="module")
def failing_onnx(tmp_path_factory) -> Path:
    """A valid ONNX model that fails at run time: Reshape of a [1, 3] input to [7]."""
    import onnx
    from onnx import TensorProto, helper

    shape = helper.make_tensor("shape", TensorProto.INT64, [1], [7])
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["y"])],
        "bad",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 1, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [shape],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # one every onnxruntime reads
    path = tmp_path_factory.mktemp("onnx") / "reshape.onnx"
    onnx.save(model, path)
    return path


def test_bench_refuses_bad_options_and_names_a_failing_artifact(cli, files, failing_onnx):
    _assert_refused(cli("bench", failing_onnx, "--threads", "100000"), None, "--threads 100000 is out of range")
    _assert_refused(cli("bench", failing_onnx, "--runs", "0"), None, "--runs 0 is out of range")
    _assert_refused(cli("bench", files["empty.onnx"]), None, "empty (0 bytes)")
    _assert_refused(cli("bench", files["notes.txt"]), None, "is not a .mlpackage")
    _assert_refused(cli("bench", failing_onnx, "--runs", "1"), None, "fails when onnxruntime", code=3)


def test_image_size_the_family_cannot_run_names_sizes_that_work():
    from effconvert.load import FAMILIES
    from effconvert.load.sizes import check_input_size

    check_input_size(FAMILIES["efficientformer"], "efficientformer_l1", 224)
    with pytest.raises(BadInput, match="cannot run at --image-size 192") as caught:
        check_input_size(FAMILIES["efficientformer"], "efficientformer_l1", 192)
    assert "200" in caught.value.hint


def test_a_second_run_into_a_busy_folder_is_refused(tmp_path, cli, t8):
    from effconvert.workspace import output_lock

    out = tmp_path / "out"
    with output_lock(out):
        result = cli(t8, "--target", "onnx", "--out", out)
    _assert_refused(result, None, "output folder in use")
    assert sorted(p.name for p in out.iterdir()) == []  # the lock file goes with the run holding it


# --- properties: odd values beyond the list -------------------------------------------------------


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    image_size=st.one_of(st.none(), st.integers(-(10**9), 10**9)),
    samples=st.integers(-(10**12), 10**12),
    calib=st.integers(-(10**6), 10**6),
    ios=st.integers(-100, 100),
    layout=st.text(max_size=8),
    gate=st.one_of(st.none(), st.text(max_size=30)),
    quants=st.lists(
        st.sampled_from(["fp32", "fp16", "int8", "int8-weights", "pal4", "pal6", "x", ""]), min_size=1, max_size=3
    ),
)
def test_option_checks_accept_or_refuse_never_crash(
    tmp_path_factory, image_size, samples, calib, ios, layout, gate, quants
):
    from effconvert.request import Request, check_request

    root = tmp_path_factory.getbasetemp()
    ckpt = root / "options.pth"
    if not ckpt.exists():
        ckpt.write_bytes(b"x")
    request = Request(
        ckpt,
        ("all",),
        tuple(quants),
        root / "never-written",
        image_size=image_size,
        samples=samples,
        calib_samples=calib,
        ios=ios,
        layout=layout,
        gate=gate,
    )
    try:
        pairs = check_request(request)
    except BadInput as exc:
        assert exc.message and "\n" not in exc.message
        return
    assert pairs and 1 <= samples <= 4096 and layout in ("nhwc", "nchw") and ios in (16, 17, 18)
    assert image_size is None or 32 <= image_size <= 1024
    assert not (root / "never-written").exists()


_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20), st.binary(max_size=8)
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        _values, st.dictionaries(st.sampled_from(["image_size", "synthetic", "seed", "arch", "x"]), _values, max_size=5)
    )
)
def test_checkpoint_metadata_reader_accepts_or_refuses_never_crashes(value):
    from effconvert.load.metadata import from_pickle

    try:
        meta = from_pickle(value)
    except BadInput as exc:
        assert exc.message.startswith("checkpoint metadata") and "\n" not in exc.message
        return
    assert meta.image_size is None or 32 <= meta.image_size <= 1024
    assert meta.arch is None or len(meta.arch) <= 201


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=24), st.text(max_size=24), max_size=6))
def test_safetensors_metadata_reader_accepts_or_refuses_never_crashes(header):
    from effconvert.load.metadata import from_safetensors

    try:
        from_safetensors({f"effconvert.{k}": v for k, v in header.items()} | header)
    except BadInput as exc:
        assert "image_size" in exc.message


# --- interrupts and temporary folders (real processes: signals and TMPDIR are per process) -----------


def _effconvert(*args, env) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("effconvert")
    return subprocess.Popen(
        [str(exe), *map(str, args)], env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_interrupt_says_what_finished_and_leaves_no_temporary_folder(tmp_path, t8, signum, code):
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    out = tmp_path / "out"
    env = {**os.environ, "TMPDIR": str(private_tmp)}
    proc = _effconvert(
        t8, "--target", "onnx", "--target", "tflite", "--quant", "fp32", "--samples", "2", "--out", out, env=env
    )
    lines = []
    for line in proc.stderr:  # the first artifact is written (the other may be under way beside it): interrupt
        lines.append(line)
        if "convert" in line:
            proc.send_signal(signum)
            break
    rest = proc.stderr.read()
    assert proc.wait(timeout=120) == code, "".join(lines) + rest
    said = re.search(rf"interrupted \({signal.Signals(signum).name}\): finished: ([^;]+);", rest)
    assert said and "Traceback" not in rest, rest
    # What the message names is exactly what stays: complete artifacts only, no report, no lock, no temporary.
    assert _leftovers(out) == sorted(said.group(1).split(", ")), rest
    assert _leftovers(private_tmp) == []


@pytest.mark.slow  # 8-17 s: in make test-slow (the default suite's budget)
def test_a_normal_run_leaves_no_temporary_folder_even_from_coremltools(tmp_path, t8):
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    out = tmp_path / "out"
    (out / "stale").mkdir(parents=True)  # a later run into a used folder works
    proc = _effconvert(
        t8,
        "--target",
        "coreml",
        "--quant",
        "fp32",
        "--samples",
        "2",
        "--out",
        out,
        env={**os.environ, "TMPDIR": str(private_tmp)},
    )
    err = proc.stderr.read()
    assert proc.wait(timeout=600) == 0, err
    assert _leftovers(out) == ["fastvit_t8_fp32.mlpackage", "report.html", "report.json", "stale"]
    assert _leftovers(private_tmp) == []
