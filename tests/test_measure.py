"""`effconvert bench` and the measure package: each artifact timed on its own runtime in a child
process; FLOPs and the sgemm rate for the hardware floor. Behaviour only: no wall-clock targets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from effconvert.measure import model_flops, sgemm_gflops, time_alternately, time_calls


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    """The same tiny model as .onnx, .tflite and .mlpackage, written by the raw toolchains."""
    import coremltools as ct
    import litert_torch

    folder = tmp_path_factory.mktemp("artifacts")
    model, x = Tiny().eval(), torch.randn(1, 3, 16, 16)
    torch.onnx.export(model, (x,), str(folder / "tiny.onnx"), dynamo=True, input_names=["input"])
    litert_torch.convert(model, (x,)).export(str(folder / "tiny.tflite"))
    mlmodel = ct.convert(
        torch.jit.trace(model, x),
        inputs=[ct.TensorType(name="input", shape=x.shape)],
        convert_to="mlprogram",
        minimum_deployment_target=ct.target.iOS16,
    )
    mlmodel.save(str(folder / "tiny.mlpackage"))
    return folder


def test_time_alternately_takes_turns_round_by_round():
    """A ratio between two calls compares them under the same load: they alternate, round by round."""
    order: list[str] = []
    timed = time_alternately(
        {"a": lambda: order.append("a"), "b": lambda: order.append("b")}, rounds=3, runs=2, warmup=1, settle_s=0
    )
    # warm-up, then the rounds: each turn an untimed call (the other's threads settle) and two timed
    assert order == ["a", "b"] + ["a"] * 3 + ["b"] * 3 + ["a"] * 3 + ["b"] * 3 + ["a"] * 3 + ["b"] * 3
    assert {name: t.runs for name, t in timed.items()} == {"a": 6, "b": 6}
    with pytest.raises(ValueError):
        time_alternately({"a": lambda: None}, rounds=0, runs=1)


def test_time_calls_counts_runs_after_warmup():
    calls = []
    timing = time_calls(lambda: calls.append(1), runs=7, warmup=2)
    assert len(calls) == 9 and timing.runs == 7
    assert 0 <= timing.median_ms <= timing.p90_ms
    with pytest.raises(ValueError):
        time_calls(lambda: None, runs=0)


def test_flops_are_two_per_multiply_add():
    conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
    assert model_flops(conv, torch.randn(1, 3, 8, 8)) == 2 * (8 * 8) * 8 * (3 * 3 * 3)
    assert model_flops(nn.Linear(16, 4), torch.randn(1, 16)) == 2 * 16 * 4


def test_sgemm_rate_is_measured():
    assert sgemm_gflops(1, sizes=(64, 128), runs=3) > 0.1


def test_bench_times_every_artifact_on_its_runtime(cli, artifacts):
    """Each artifact in a child of its own. The MIL executor's (a child importing torch and
    coremltools, and its fixed-memory probe, ~15 s) is benched in the test-slow test below."""
    paths = [artifacts / name for name in ("tiny.tflite", "tiny.onnx")]
    result = cli("bench", *paths, "--runs", "3", "--threads", "1", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["runtime"] for r in rows] == ["litert", "onnxruntime"]
    for row, path in zip(rows, paths):
        assert row["timing"]["runs"] == 3 and 0 < row["timing"]["median_ms"] <= row["timing"]["p90_ms"]
        assert row["threads"] == 1
        assert row["peak_rss_mb"] >= row["added_rss_mb"] >= 0
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size
        assert row["size_bytes"] == size
    table = cli("bench", paths[0], "--runs", "2")
    assert table.exit_code == 0 and "litert" in table.output and "median" in table.output


@pytest.mark.slow
def test_bench_reports_the_mil_executors_fixed_memory_apart(cli, artifacts):
    """torch, coremltools and the executor, measured on a one-conv package; the rest is the package's."""
    paths = [artifacts / "tiny.mlpackage", artifacts / "tiny.onnx"]
    rows = json.loads(cli("bench", *paths, "--runs", "2", "--json").output)
    mil, ort = rows
    assert mil["fixed_rss_mb"] > 0 and 0 < mil["fixed_library_rss_mb"] < mil["fixed_rss_mb"]
    private = mil["added_rss_mb"] - mil["library_rss_mb"] - mil["input_mb"]
    assert mil["input_mb"] == pytest.approx(3 * 16 * 16 * (4 + 1) / 2**20)  # floats and pixels
    assert mil["package_rss_mb"] == pytest.approx(max(private - (mil["fixed_rss_mb"] - mil["fixed_library_rss_mb"]), 0))
    assert mil["package_rss_ratio"] == pytest.approx(mil["package_rss_mb"] * 2**20 / mil["size_bytes"])
    assert mil["library_beyond_fixed_mb"] == pytest.approx(max(mil["library_rss_mb"] - mil["fixed_library_rss_mb"], 0))
    assert ort["fixed_rss_mb"] is None and "package_rss_mb" not in ort
    assert mil["runtime"] == "coreml-mil-executor" and 0 < mil["timing"]["median_ms"] <= mil["timing"]["p90_ms"]
    table = " ".join(cli("bench", *paths, "--runs", "2").output.split())  # as read, whatever the wrapping
    assert "the MIL executor's fixed memory" in table and "kernel code" in table and "tiny.mlpackage" in table


def test_library_pages_are_counted_from_shared_objects_only():
    """A mapped data file (as coremltools maps weight.bin for sub-byte weights) is not library code."""
    import mmap
    import tempfile

    from effconvert.measure.artifacts import _library_rss_mb

    if not Path("/proc/self/smaps").exists():
        pytest.skip("Linux /proc only")
    before = _library_rss_mb()
    with tempfile.TemporaryFile() as f:
        f.write(b"\1" * (8 << 20))
        f.flush()
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            assert sum(mapped[i] for i in range(0, len(mapped), 4096)) > 0  # every page resident
            assert _library_rss_mb() - before < 1.0
    assert before > 10  # the interpreter, numpy and torch's .so files


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("missing.tflite", None, "artifact not found"),
        ("model.pth", b"weights", "not a .mlpackage, .tflite, .onnx, .pte or .qnn.onnx artifact"),
        ("corrupt.onnx", b"not a protobuf at all", "cannot load corrupt.onnx"),
        ("corrupt.tflite", b"TFL3 not a flatbuffer", "cannot load corrupt.tflite"),
    ],
)
def test_bench_refuses_bad_artifacts_in_one_line(cli, tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    result = cli("bench", path, "--runs", "1")
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def _time_in_a_daemon(path: str, out) -> None:
    from effconvert.measure.artifacts import time_artifact

    out.put(time_artifact(path, threads=1, runs=2, warmup=1).median_ms)


@pytest.mark.slow  # a spawned interpreter importing the runtimes: 10 s
def test_the_fallbacks_timing_runs_inside_a_batch_worker(t8_all):
    """A batch worker is a daemonic process, which multiprocessing lets have no children: the
    fallback's latency timing once started a measuring child there and crashed the job."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    worker = context.Process(
        target=_time_in_a_daemon, args=(str(t8_all.out_dir / "fastvit_t8_fp32.tflite"), out), daemon=True
    )
    worker.start()
    worker.join(120)
    assert worker.exitcode == 0 and out.get(timeout=5) > 0
