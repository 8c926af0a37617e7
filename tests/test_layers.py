"""The layering rule (design.md) as a test: import-linter's `layers` contract in pyproject.toml.
A second run on a copy with one forbidden import added shows the contract can fail."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT), "--config", str(root / "pyproject.toml"), "--no-cache"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)


def test_stages_import_only_down_the_pipeline():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_an_upward_import_breaks_the_contract(tmp_path):
    shutil.copytree(ROOT / "effconvert", tmp_path / "effconvert", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    onnx = tmp_path / "effconvert" / "convert" / "onnx.py"
    onnx.write_text(onnx.read_text() + "\nfrom ..validate.gates import gate_for  # convert must not see validate\n")
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "effconvert.convert is not allowed to import effconvert.validate" in result.stdout, result.stdout


def test_every_target_row_names_an_exporter_and_a_runtime_that_exist():
    import importlib

    from effconvert.targets import TARGETS

    for target in TARGETS.values():
        assert hasattr(importlib.import_module(f"effconvert.convert.{target.exporter}"), "export"), target.name
        assert hasattr(importlib.import_module(f"effconvert.runtime.{target.runtime}"), "open"), target.name
