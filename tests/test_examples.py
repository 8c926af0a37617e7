"""The examples/ scripts run as a user would run them, and say what they claim."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.slow  # 13-51 s: in make test-slow (the default suite's budget)
def test_convert_from_python_example(tmp_path):
    # Through a script with no `if __name__ == "__main__"` guard, as many users write them: the
    # run's second process must not re-run the caller's script (a multiprocessing spawn would).
    script = tmp_path / "no_guard.py"
    script.write_text(
        f"import runpy, pathlib\n"
        f"runpy.run_path({str(EXAMPLES / 'convert_from_python.py')!r})['main'](pathlib.Path({str(tmp_path)!r}))\n"
    )
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    out = result.stdout
    assert "fastvit_t8_fp32.onnx" in out and "fastvit_t8_fp16.onnx" in out and "on onnxruntime" in out
    assert "modules fused" in out and "fp16 ONNX on onnxruntime" in out
    assert "refused (exit 2): onnx does not support --quant int8" in out
    assert (tmp_path / "out" / "report.json").exists() and (tmp_path / "out" / "report.html").exists()
