"""The run's second process (pipeline/second_process.py): it must change when things happen,
never what comes out — and a failure in it must end the run cleanly."""

from __future__ import annotations

import pytest

from effconvert.errors import ParityFailed
from effconvert.pipeline import Request, run
from effconvert.pipeline import second_process
from effconvert.pipeline.second_process import SecondProcessFailed

PAIRS = (("onnx",), ("fp32", "fp16"))                 # the slow test below: every target


def _numbers(report: dict) -> list[tuple]:
    return [(e["target"], e["quant"], e["sha256"] if e["target"] != "coreml" else e["size_bytes"], e["runtime"], e["parity"]["passed"], e["parity"]["max_rel_err"],
             e["parity"]["psnr_db"]) for e in report["artifacts"]]


@pytest.mark.parametrize("pairs", [pytest.param(PAIRS, marks=pytest.mark.slow),
                                   pytest.param((("all",), ("fp32", "fp16")), marks=pytest.mark.slow)],
                         ids=["onnx", "all"])
def test_beside_and_inline_write_the_same_artifacts_and_numbers(tmp_path, checkpoints, monkeypatch, pairs):
    handed = []
    original = second_process.SecondProcess.convert
    monkeypatch.setattr(second_process.SecondProcess, "convert",
                        lambda self, target, plan, *a: handed.append((target, plan.quant)) or
                        original(self, target, plan, *a))
    ckpt = checkpoints("fastvit_t8")
    beside = run(Request(ckpt, *pairs, tmp_path / "beside", samples=8), second_process=True)
    assert handed, "the second process converted nothing"
    count = len(handed)
    inline = run(Request(ckpt, *pairs, tmp_path / "inline", samples=8), second_process=False)
    assert len(handed) == count                  # inline: every conversion in this process
    assert beside.report["passed"] and inline.report["passed"]
    # Same bytes (a Core ML package holds random UUIDs: compared without), same parity, same order.
    assert _numbers(beside.report) == _numbers(inline.report)
    for key in ("reference", "inputs"):
        assert beside.report[key] == inline.report[key], key
    # The fusion proof's float64 error (~1e-15) may differ in its last bits between two processes:
    # most likely MKL, whose float64 kernels are not bitwise reproducible across memory alignments (its
    # "Conditional Numerical Reproducibility" docs); run alone, this test failed on it at a0224b0 too.
    fusion_beside, fusion_inline = dict(beside.report["fusion"]), dict(inline.report["fusion"])
    assert fusion_beside.pop("exact_rel_err") == pytest.approx(fusion_inline.pop("exact_rel_err"), abs=1e-13)
    assert fusion_beside == fusion_inline
    html = (tmp_path / "beside" / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(beside.report["artifacts"])   # a plot per artifact


def test_failed_fusion_proof_removes_what_the_run_wrote(tmp_path, checkpoints, monkeypatch):
    """The proof comes after the first conversion: what was converted from a model proven wrong goes."""
    from dataclasses import replace

    real = second_process.prove_fusion
    monkeypatch.setattr(second_process, "prove_fusion",
                        lambda *a, **k: replace(real(*a, **k), passed=False, first_divergent="stem.0"))
    out = tmp_path / "out"
    with pytest.raises(ParityFailed, match="fusion proof failed.*stem.0"):
        run(Request(checkpoints("fastvit_t8"), ("onnx",), ("fp32", "fp16"), out, samples=8), second_process=False)
    assert not out.exists() or not any(out.iterdir())


def test_death_of_the_second_process_ends_the_run_with_one_line(tmp_path, checkpoints):
    out = tmp_path / "out"

    def kill_it(step: str, message: str) -> None:
        if step == "convert" and second_process._PROCESS is not None:
            second_process._PROCESS._popen.kill()

    with pytest.raises(SecondProcessFailed, match=r"the second process died \(signal 9\)") as raised:
        run(Request(checkpoints("fastvit_t8"), ("onnx",), ("fp32", "fp16"), out, samples=8), kill_it,
            second_process=True)
    assert "\n" not in raised.value.message and raised.value.exit_code == 3
    left = sorted(p.name for p in out.iterdir())
    assert "report.json" not in left and not [n for n in left if n.startswith(".")]   # no report, no temporaries
    again = run(Request(checkpoints("fastvit_t8"), ("onnx",), ("fp32",), out, samples=8), second_process=True)
    assert again.report["passed"]                    # a fresh second process for the next run
