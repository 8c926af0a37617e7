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


@pytest.mark.parametrize(
    "signum, code",
    [
        (signal.SIGINT, 130),
        # 15 s each; the same handler: SIGTERM in `make test-slow` (the default suite's 10-minute budget)
        pytest.param(signal.SIGTERM, 143, marks=pytest.mark.slow),
    ],
    ids=["SIGINT", "SIGTERM"],
)
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


# --- round 2 (2026-12-06): the ten groups of the second hostile run ---------------------------------
# 1 markup-safe messages, 2 names confined under --out, 3 signals inside converters, 4 offline,
# 5 bounded reads, 6 data errors are exit 2/3 (never 4), 7 batch leftovers, 8 cross-checked config,
# 9 cheap checks first, 10 messages that say what is wrong.


def _plan(folder: Path, text: str) -> Path:
    path = folder / "plan.toml"
    path.write_text(text, encoding="utf-8")
    return path


# 1. Messages: user data is text, never markup, and a message is one line.


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_any_text_prints_as_itself_on_one_line(text):
    from rich.console import Console

    from effconvert.cli import labelled

    console = Console(width=10_000, color_system=None, highlight=False, force_terminal=False)
    with console.capture() as captured:
        console.print(labelled("error:", "bold red", text), soft_wrap=True)
    assert captured.get() == "error: " + "".join(c if c.isprintable() else " " for c in text) + "\n"


@pytest.mark.parametrize(
    "folder, args, message",
    [
        ("[x]", ["--labels", "{dir}/no[/]labels.txt"], "--labels file not found: {dir}/no[/]labels.txt"),
        ("[/]", ["--calib", "{dir}/[bold]", "--quant", "int8"], "--calib folder not found: {dir}/[bold]"),
        ("[red]", ["--out", "{dir}/t8.pth/[/]"], "cannot be created"),
    ],
    ids=["labels-path", "calib-path", "out-under-file"],
)
def test_bracketed_paths_are_quoted_as_typed(tmp_path, cli, t8, folder, args, message):
    where = tmp_path / folder
    where.mkdir(parents=True)
    checkpoint = where / "t8.pth"
    os.symlink(t8, checkpoint)
    filled = [a.replace("{dir}", str(where)) for a in args]
    _assert_refused(cli(checkpoint, *filled), None, message.replace("{dir}", str(where)))


def test_a_checkpoint_key_in_brackets_is_named_as_it_is(tmp_path, cli, t8_state):
    path = tmp_path / "[b]" / "t8.pth"
    path.parent.mkdir()
    torch.save({"state_dict": {**t8_state, "[/]": torch.zeros(1)}}, path)
    _assert_refused(cli(path, "--target", "onnx", "--out", tmp_path / "out"), tmp_path / "out", "(e.g. [/])")


def test_a_plan_key_in_brackets_is_named_as_it_is(tmp_path, cli):
    plan = _plan(tmp_path, '[defaults]\n"[/]" = 1\n[[checkpoints]]\nmake = "fastvit_t8"\n')
    _assert_refused(cli("batch", plan, "--out", tmp_path / "o"), tmp_path / "o", "[defaults]: unknown key '[/]'")


# 2. Names made from user data stay under --out.


@pytest.mark.parametrize(
    "checkpoint, folder",
    [
        ("...pth", "checkpoint"),
        ("..pth.tar", "checkpoint"),
        (".hidden.pth", "hidden"),
        ("a\nb.pth", "a_b"),
        ("x" * 300 + ".pth", "x" * 200),
        ("hf-hub:org/../name", "org--..--name"),
    ],
    ids=["three-dots", "two-dots", "leading-dot", "newline", "300-chars", "hub-id"],
)
def test_default_output_folder_is_one_safe_name(checkpoint, folder):
    from effconvert.options import default_out_dir

    out = default_out_dir(checkpoint)
    assert out.parent == Path("effconvert-out") and out.name == folder


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_a_derived_name_is_always_one_plain_folder(text):
    from effconvert.names import MAX_NAME_BYTES, derived_name

    name = derived_name(text)
    assert name and name not in (".", "..") and not name.startswith(".")
    assert "/" not in name and "\\" not in name and "\x00" not in name and "\n" not in name
    assert len(name.encode("utf-8")) <= MAX_NAME_BYTES and Path(name).name == name


def test_a_plan_entry_named_dots_stays_under_out(tmp_path, t8):
    from effconvert.batch.plan import read_plan

    os.symlink(t8, tmp_path / "...pth")
    plan = read_plan(_plan(tmp_path, '[[checkpoints]]\npath = "...pth"\n'), tmp_path / "out")
    (job,) = plan.jobs
    assert job.out_dir == tmp_path / "out" / "checkpoint"


@pytest.mark.parametrize(
    "entries, message",
    [
        ('path = "a.pth"\nname = "x"\n[[checkpoints]]\npath = "b.pth"\nname = "x"', "both have name = 'x'"),
        ('path = "b/a.pth"\n[[checkpoints]]\npath = "b.pth"\nname = "a"', "name = 'a' (for"),
        ('path = "a.pth"\nname = "' + "n" * 300 + '"', "is 300 bytes (at most 200)"),
        ('path = "a.pth"\nname = "a\\u0000b"', "contains a path separator or a control character"),
        ('path = "a.pth"\nname = "../up"', "contains a path separator"),
        ('path = "a.pth"\nname = ".."', "starts with a dot"),
    ],
    ids=["same-name-twice", "name-taken", "300-chars", "nul", "climbs", "dots"],
)
def test_plan_names_are_plain_and_unique(tmp_path, cli, t8, entries, message):
    (tmp_path / "b").mkdir()
    for name in ("a.pth", "b.pth", "b/a.pth"):
        os.symlink(t8, tmp_path / name)
    plan = _plan(tmp_path, "[[checkpoints]]\n" + entries + "\n")
    _assert_refused(cli("batch", plan, "--out", tmp_path / "out"), tmp_path / "out", message)


# 3. Signals inside third-party code that swallows KeyboardInterrupt (a real process each).

SWALLOWER = """
import os, signal, sys, threading, time
from effconvert import signals

signals.install()
threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM)).start()
started = time.monotonic()
try:
    with signals.third_party():
        try:  # like coremltools' `try: import torchao except: ...`
            time.sleep(1.0)
        except BaseException:
            pass
        while time.monotonic() - started < float(sys.argv[1]):  # work that lets exceptions through
            time.sleep(0.05)
    print("returned")
except signals.Terminated:
    print(f"terminated after {time.monotonic() - started:.1f} s")
"""


@pytest.mark.parametrize("runs_for", [10.0, 0.0], ids=["goes-on-working", "returns-after-swallowing"])
def test_a_signal_swallowed_by_third_party_code_still_ends_the_call(runs_for):
    done = subprocess.run([sys.executable, "-c", SWALLOWER, str(runs_for)], capture_output=True, text=True, timeout=60)
    said = re.fullmatch(r"terminated after ([\d.]+) s\n", done.stdout)
    assert said, done.stdout + done.stderr
    # swallowed at 0.3 s; raised again within half a second of it (not 10 s later), or on the way out
    assert float(said.group(1)) < 1.5


CLEANUP = """
import os, signal, time
from effconvert import signals

signals.install()
try:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(1)
except KeyboardInterrupt:
    os.kill(os.getpid(), signal.SIGTERM)  # a second signal while cleaning up: not raised
    time.sleep(0.2)
    print("cleanup finished")
"""


def test_a_second_signal_does_not_cut_cleanup_short():
    done = subprocess.run([sys.executable, "-c", CLEANUP], capture_output=True, text=True, timeout=60)
    assert done.stdout == "cleanup finished\n", done.stderr


@pytest.mark.slow  # 5 conversions started and stopped: ~1 minute
def test_sigterm_during_core_ml_conversion_exits_143_within_5_seconds(tmp_path, t8):
    import time

    for attempt in range(5):
        out = tmp_path / f"out{attempt}"
        proc = _effconvert(t8, "--target", "coreml", "--quant", "fp32", "--samples", "2", "--out", out, env=os.environ)
        seen = []
        for line in proc.stderr:  # conversion starts once the inputs are ready
            seen.append(line)
            if line.lstrip("✓ ").startswith("inputs"):
                break
        time.sleep(2)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rest = proc.stderr.read()
        code = proc.wait(timeout=60)
        assert code == 143 and time.monotonic() - sent < 5, "".join(seen) + rest
        assert not out.exists() or _leftovers(out) == [], _leftovers(out)


# 4. Offline: onnxruntime's telemetry is off before anything can import it.


def test_importing_effconvert_switches_onnxruntime_telemetry_off_unless_set():
    script = "import os, effconvert; print(os.environ.get('ORT_DISABLE_TELEMETRY'))"
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    off = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    kept = subprocess.run(
        [sys.executable, "-c", script], env={**env, "ORT_DISABLE_TELEMETRY": "0"}, capture_output=True, text=True
    )
    assert (off.stdout, kept.stdout) == ("1\n", "0\n")


@pytest.mark.slow  # a whole conversion under strace: ~30 s
@pytest.mark.skipif(not Path("/usr/bin/strace").exists(), reason="needs strace")
def test_an_onnx_conversion_opens_no_internet_socket(tmp_path, t8):
    trace = tmp_path / "trace.txt"
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    exe = Path(sys.executable).with_name("effconvert")
    command = [str(exe), str(t8), "--target", "onnx", "--samples", "2", "--out", str(tmp_path / "out")]
    done = subprocess.run(
        ["/usr/bin/strace", "-f", "-qq", "-e", "trace=socket", "-o", str(trace), *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    sockets = [line for line in trace.read_text().splitlines() if "socket(" in line]
    assert sockets and not [s for s in sockets if "AF_INET" in s], sockets  # AF_UNIX only (pipes between ours)


# 5. Reads bounded: links to devices, FIFOs, and formats sniffed before hashing.


@pytest.fixture(scope="module")
def small_package(tmp_path_factory) -> Path:
    """A Core ML package with its weights in weight.bin (a 64x64 matmul)."""
    import coremltools as ct
    import numpy as np
    from coremltools.converters.mil import Builder as mb

    weight = np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32)

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 64))], opset_version=ct.target.iOS16)
    def program(x):
        return mb.matmul(x=x, y=weight, name="y")

    path = tmp_path_factory.mktemp("package") / "small.mlpackage"
    ct.convert(program, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS16, skip_model_load=True).save(
        str(path)
    )
    return path


@pytest.mark.parametrize("command", ["inspect", "device", "bench"])
def test_a_package_linking_to_a_device_is_refused_unread(tmp_path, cli, small_package, command):
    import shutil

    package = tmp_path / "zero.mlpackage"
    shutil.copytree(small_package, package)
    model = package / "Data" / "com.apple.CoreML" / "model.mlmodel"
    model.unlink()
    os.symlink("/dev/zero", model)
    _assert_refused(cli(command, package), None, "model.mlmodel is a symbolic link")


@pytest.mark.parametrize("command", ["inspect", "bench", "device"])
def test_an_artifact_that_is_a_fifo_or_a_device_link_is_refused(tmp_path, cli, command):
    fifo = tmp_path / "pipe.tflite"
    os.mkfifo(fifo)
    _assert_refused(cli(command, fifo), None, "is not a regular file")
    os.symlink("/dev/zero", tmp_path / "zero.onnx")
    _assert_refused(
        cli(command if command != "device" else "inspect", tmp_path / "zero.onnx"), None, "not a regular file"
    )


def test_a_huge_file_of_zeros_is_refused_before_it_is_hashed(tmp_path, cli):
    path = tmp_path / "zeros.pth"
    with open(path, "wb") as f:
        f.truncate(8 << 30)  # sparse: 8 GiB that take no disk
    _assert_refused(cli(path, "--target", "onnx", "--out", tmp_path / "o"), tmp_path / "o", "neither a zip archive")


def test_a_safetensors_file_without_its_header_is_refused(tmp_path, cli):
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"\xff" * 64)
    _assert_refused(cli(path, "--target", "onnx"), None, "no safetensors header")


# 6. Data, not bugs: every case below used to exit 4.


def _snapshot(folder: Path, config: str, t8: Path | None = None) -> Path:
    folder.mkdir()
    (folder / "config.json").write_text(config, encoding="utf-8")
    if t8 is not None:
        from safetensors.torch import save_file

        save_file(torch.load(t8, weights_only=True)["state_dict"], folder / "model.safetensors")
    else:
        (folder / "model.safetensors").write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")
    return folder


@pytest.mark.parametrize(
    "config, message",
    [
        ("[" * 5000 + "]" * 5000, "config.json is not JSON effconvert reads: nested too deeply"),
        ('{"num_classes": ' + "9" * 5000 + "}", "a number too large"),
        ('{"a": ' + "[" * 40 + "]" * 40 + "}", "nests more than 32 levels"),
    ],
    ids=["nested-5000", "5000-digit-int", "nested-40"],
)
def test_config_json_too_deep_or_too_big_is_refused(tmp_path, cli, config, message):
    _assert_refused(cli(_snapshot(tmp_path / "snap", config), "--target", "onnx"), None, message)


@pytest.mark.parametrize(
    "text, message",
    [
        ("a = " + "[" * 3000 + "]" * 3000 + "\n", "nested too deeply"),
        ('out = "o"\nx = ' + "9" * 5000 + "\n", "a number too large"),
    ],
    ids=["nested", "huge-int"],
)
def test_a_plan_too_deep_or_too_big_is_refused(tmp_path, cli, text, message):
    _assert_refused(cli("batch", _plan(tmp_path, text)), None, message)


@pytest.mark.parametrize(
    "args",
    [
        ["{ckpt}", "--out", "{long}"],
        ["{long}.pth"],
        ["inspect", "{long}.onnx"],
        ["bench", "{long}.onnx"],
        ["{ckpt}", "--labels", "{long}.txt"],
    ],
    ids=["out", "checkpoint", "inspect", "bench", "labels"],
)
def test_a_name_over_255_bytes_is_bad_input(tmp_path, cli, t8, args):
    long = str(tmp_path / ("é" * 150))  # 300 bytes in UTF-8
    filled = [a.replace("{ckpt}", str(t8)).replace("{long}", long) for a in args]
    _assert_refused(cli(*filled), None, "a file name is too long")


def test_bench_refuses_an_onnx_whose_input_is_not_an_image(tmp_path, cli):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "vector",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 7])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 7])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    model.metadata_props.add(key="effconvert.labels", value="{not json")
    onnx.save(model, tmp_path / "vector.onnx")
    _assert_refused(cli("bench", tmp_path / "vector.onnx", "--runs", "1"), None, "not an image batch")
    shown = cli("inspect", tmp_path / "vector.onnx")  # label metadata that is not a list: shown, not a crash
    assert shown.exit_code == 0 and "not a JSON list of names" in shown.output, shown.output


def test_a_pte_of_random_bytes_is_refused_before_executorch_loads_it(tmp_path, cli):
    path = tmp_path / "random.pte"
    path.write_bytes(os.urandom(4096))
    _assert_refused(cli("bench", path, "--runs", "1"), None, "is not an ExecuTorch program")


@pytest.mark.parametrize(
    "error, code, message",
    [
        (OSError(28, "No space left on device", "/tmp/x/y.onnx"), 3, "no space left on the disk holding /"),
        (RuntimeError("write failed: No space left on device"), 3, "no space left on the disk holding"),
        (OSError(36, "File name too long", "x" * 300), 2, "a file name is too long"),
    ],
    ids=["enospc", "enospc-in-a-converter-message", "enametoolong"],
)
def test_os_limits_become_one_line_and_their_exit_code(error, code, message):
    import typer

    from effconvert import cli as cli_module

    with pytest.raises(typer.Exit) as exited:
        cli_module._fail(error, debug=False)
    assert exited.value.exit_code == code
    assert message in (cli_module.os_error_of(error) or error).message


# 7. Batch: what a killed worker leaves is swept.


def test_a_dead_runs_lock_is_removed_and_a_live_one_kept(tmp_path):
    from effconvert.workspace import LOCK_NAME, output_lock, remove_dead_lock

    (tmp_path / LOCK_NAME).write_text("")  # left by a run killed with SIGKILL
    assert remove_dead_lock(tmp_path) and not (tmp_path / LOCK_NAME).exists()
    with output_lock(tmp_path):
        assert not remove_dead_lock(tmp_path) and (tmp_path / LOCK_NAME).exists()


def test_a_killed_workers_temporary_folder_goes_with_it():
    import multiprocessing

    from effconvert.batch.local import _Slot

    slot = _Slot(multiprocessing.get_context("spawn"), threads=1)
    assert Path(slot.temp).is_dir()
    (Path(slot.temp) / "effconvert-run-x").mkdir()  # what the job was writing
    slot.process.kill()
    slot.process.join()
    slot.stop()
    assert not Path(slot.temp).exists()


# 8. config.json is checked against the weights beside it.


@pytest.mark.parametrize(
    "config, message",
    [
        ('{"label_names": ["cat", "dog"]}', "label_names has 2 names, the weights have 1000 classes"),
        ('{"num_classes": 10}', "num_classes 10 contradicts the weights"),
        ('{"pretrained_cfg": {"std": [1e-30, 0.2, 0.2]}}', "numbers of at least 0.001"),
    ],
    ids=["label-count", "num-classes", "std-tiny"],
)
def test_a_config_that_contradicts_its_weights_is_refused(tmp_path, cli, t8, config, message):
    folder = _snapshot(tmp_path / "snap", config, t8)
    _assert_refused(cli(folder, "--target", "onnx", "--out", tmp_path / "o"), tmp_path / "o", message)


def test_inspect_refuses_a_package_whose_weights_are_truncated(tmp_path, cli, small_package):
    import shutil

    package = tmp_path / "cut.mlpackage"
    shutil.copytree(small_package, package)
    weights = package / "Data" / "com.apple.CoreML" / "weights" / "weight.bin"
    os.truncate(weights, weights.stat().st_size // 2)
    _assert_refused(cli("inspect", package), None, "damaged weight.bin")


# 9. Cheap checks before the expensive load.


def test_a_busy_output_folder_is_refused_before_loading(tmp_path, cli, t8):
    from effconvert.workspace import output_lock

    out = tmp_path / "out"
    with output_lock(out):
        result = cli(t8, "--target", "onnx", "--out", out)
    _assert_refused(result, None, "output folder in use")
    assert "load" not in result.output  # refused before the checkpoint was read


# 10. Messages that say what is wrong.


def test_a_snapshot_whose_weights_are_a_link_loop_says_so(tmp_path, cli):
    folder = tmp_path / "snap"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    os.symlink(folder / "other", folder / "model.safetensors")
    os.symlink(folder / "model.safetensors", folder / "other")
    _assert_refused(cli(folder, "--target", "onnx"), None, "is a symbolic link loop")


@pytest.mark.parametrize("suffix", [".onnx", ".pth"])
def test_inspect_of_a_link_loop_says_so(tmp_path, cli, suffix):
    loop = tmp_path / f"loop{suffix}"
    os.symlink(tmp_path / f"other{suffix}", loop)
    os.symlink(loop, tmp_path / f"other{suffix}")
    _assert_refused(cli("inspect", loop), None, "symbolic link loop")


def test_device_of_an_artifact_without_a_device_model_names_the_target(cli, failing_onnx):
    _assert_refused(cli("device", failing_onnx), None, "no device model for onnx artifacts")


def test_a_truncated_calibration_image_is_refused_before_loading(tmp_path, cli, t8):
    import numpy as np
    from PIL import Image

    folder = tmp_path / "calib"
    folder.mkdir()
    noise = np.random.default_rng(0).integers(0, 255, (256, 256, 3), dtype=np.uint8)
    Image.fromarray(noise).save(folder / "a.jpg", quality=90)  # header intact, pixels cut in half
    data = (folder / "a.jpg").read_bytes()
    (folder / "a.jpg").write_bytes(data[: len(data) // 2])
    result = cli(t8, "--quant", "int8", "--target", "tflite", "--calib", folder, "--out", tmp_path / "o")
    _assert_refused(result, tmp_path / "o", "truncated (JPEG without its end marker)")
    assert "load" not in result.output


def test_a_package_without_its_manifest_is_refused_before_coremltools_loads(tmp_path, cli, small_package):
    import shutil

    package = tmp_path / "nomanifest.mlpackage"
    shutil.copytree(small_package, package)
    (package / "Manifest.json").unlink()
    _assert_refused(cli("inspect", package), None, "has no Manifest.json")


def test_an_unreachable_ray_address_is_refused_at_once(tmp_path, cli):
    plan = _plan(tmp_path, '[[checkpoints]]\nmake = "fastvit_t8"\n')
    result = cli("batch", plan, "--ray", "127.0.0.1:9", "--out", tmp_path / "o")
    _assert_refused(result, None, "--ray 127.0.0.1:9: nothing answers there")  # our probe, not Ray's 20 s retries


def test_a_second_process_that_died_of_a_full_disk_is_not_blamed_on_memory():
    from effconvert.errors import OutOfSpace
    from effconvert.pipeline.executor import _died

    died = _died(1, "OSError: [Errno 28] No space left on device: '/data/out/x.onnx'")
    assert isinstance(died, OutOfSpace) and died.exit_code == 3 and "no space left" in died.message
    assert "memory" in (_died(-9, "").hint or "")  # a plain kill still says what usually causes it
