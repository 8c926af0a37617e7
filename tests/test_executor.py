"""Where a run's work runs (pipeline/executor.py): the second process must change when things
happen, never what comes out — a failure in it must end the run cleanly — and a library call must
leave no child process behind."""

from __future__ import annotations

import pytest

from effconvert.errors import ParityFailed
from effconvert.pipeline import Done, Request, run
from effconvert.pipeline import executor as executor_module
from effconvert.pipeline.executor import Executor, SecondProcessFailed

PAIRS = (("onnx",), ("fp32", "fp16"))  # the slow test below: every target


def _numbers(report) -> list[tuple]:
    # A Core ML package holds random UUIDs: its size stands for its bytes.
    return [
        (
            a.target,
            a.quant,
            a.sha256 if a.target != "coreml" else a.size_bytes,
            a.runtime,
            a.passed,
            a.verdict.parity.max_rel_err,
            a.verdict.parity.psnr_db,
        )
        for a in report.artifacts
    ]


@pytest.mark.parametrize(
    "pairs",
    [pytest.param(PAIRS, marks=pytest.mark.slow), pytest.param((("all",), ("fp32", "fp16")), marks=pytest.mark.slow)],
    ids=["onnx", "all"],
)
def test_beside_and_inline_write_the_same_artifacts_and_numbers(tmp_path, checkpoints, monkeypatch, pairs):
    handed = []
    original = Executor.convert
    monkeypatch.setattr(
        Executor,
        "convert",
        lambda self, target, plan, *a: handed.append((target, plan.quant)) or original(self, target, plan, *a),
    )
    ckpt = checkpoints("fastvit_t8")
    beside = run(Request(ckpt, *pairs, tmp_path / "beside", samples=8), second_process=True)
    assert handed, "the second process converted nothing"
    count = len(handed)
    inline = run(Request(ckpt, *pairs, tmp_path / "inline", samples=8), second_process=False)
    assert len(handed) == count  # inline: every conversion in this process
    assert beside.report.passed and inline.report.passed
    assert _numbers(beside.report) == _numbers(inline.report)  # same bytes, same parity, same order
    assert beside.report.reference == inline.report.reference and beside.report.inputs == inline.report.inputs
    # The fusion proof's float64 error (~1e-15) may differ in its last bits between two processes:
    # MKL's float64 kernels are not bitwise reproducible across memory alignments (its "Conditional
    # Numerical Reproducibility" documentation).
    proof_beside, proof_inline = vars(beside.report.fusion.proof), vars(inline.report.fusion.proof)
    assert proof_beside.pop("exact_rel_err") == pytest.approx(proof_inline.pop("exact_rel_err"), abs=1e-13)
    assert proof_beside == proof_inline
    html = (tmp_path / "beside" / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(beside.report.artifacts)  # a plot per artifact


def test_failed_fusion_proof_removes_what_the_run_wrote(tmp_path, checkpoints, monkeypatch):
    """The proof comes after the first conversion: what was converted from a model proven wrong goes."""
    from dataclasses import replace

    real = executor_module.prove_fusion
    monkeypatch.setattr(
        executor_module, "prove_fusion", lambda *a, **k: replace(real(*a, **k), passed=False, first_divergent="stem.0")
    )
    out = tmp_path / "out"
    with pytest.raises(ParityFailed, match=r"fusion proof failed.*stem\.0"):
        run(Request(checkpoints("fastvit_t8"), ("onnx",), ("fp32", "fp16"), out, samples=8), second_process=False)
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.slow  # 19-30 s: in make test-slow (the default suite's budget: a fresh clone took 10:04)
def test_death_of_the_second_process_ends_the_run_with_one_line(tmp_path, checkpoints, monkeypatch):
    """Killed once this run's first conversion is written (its checks still to come), the second process
    takes the run down with one line; nothing half-written stays, and the next run gets a fresh one."""
    out = tmp_path / "out"
    workers = []
    real = executor_module._Worker
    monkeypatch.setattr(executor_module, "_Worker", lambda *a: workers.append(real(*a)) or workers[-1])
    monkeypatch.setattr(executor_module, "_LENT", set())  # this test's runs start their own

    def kill_it(event) -> None:
        if isinstance(event, Done) and event.step == "convert" and workers and workers[-1].alive:
            workers[-1]._popen.kill()

    with pytest.raises(SecondProcessFailed, match=r"the second process died \(signal 9\)") as raised:
        run(
            Request(checkpoints("fastvit_t8"), ("onnx",), ("fp32", "fp16"), out, samples=8),
            kill_it,
            second_process=True,
        )
    assert "\n" not in raised.value.message and raised.value.exit_code == 3
    left = sorted(p.name for p in out.iterdir())
    assert "report.json" not in left and not [n for n in left if n.startswith(".")]  # no report, no temporaries
    again = run(Request(checkpoints("fastvit_t8"), ("onnx",), ("fp32",), out, samples=8), second_process=True)
    assert again.report.passed and len(workers) == 2  # a fresh second process for the next run
    assert not any(w.alive for w in workers)  # each run stopped its own


def test_one_run_at_a_time_has_the_second_process_another_runs_inline():
    """Two runs of one process at once (threads): the second gets the inline executor, never a
    process it would share mid-task."""
    first = Executor(beside=True)
    try:
        second = Executor(beside=True)
        assert first.beside and not second.beside
        second.close()
    finally:
        first.close()
    again = Executor(beside=True)
    assert again.beside
    again.close()
