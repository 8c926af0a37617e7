"""The layering rule (design.md) as a test — import-linter's `layers` contract in pyproject.toml —
and the target table's promise: every module a row names exists and keeps its protocol."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT), "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_stages_import_only_down_the_pipeline():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_every_target_row_names_modules_that_keep_its_protocols():
    """A row names its exporter, runtime, inspector and device modules; each has what its caller uses."""
    import importlib
    import inspect

    from effconvert.targets import TARGETS

    entry_points = {
        "convert": ("export", "input_layout", "read_metadata"),
        "runtime": ("open",),
        "inspect": ("rows",),
        "device": ("device_report",),
    }
    for target in TARGETS.values():
        modules = {
            "convert": target.exporter,
            "runtime": target.runtime,
            "inspect": target.inspector,
            "device": target.device,
        }
        for package, name in modules.items():
            if name is None:
                continue
            module = importlib.import_module(f"effconvert.{package}.{name}")
            for function in entry_points[package]:
                assert callable(getattr(module, function, None)), (target.name, package, function)
        export = inspect.signature(importlib.import_module(f"effconvert.convert.{target.exporter}").export)
        assert list(export.parameters) == ["model", "info", "sample", "out", "plan", "options", "metadata", "clock"]
