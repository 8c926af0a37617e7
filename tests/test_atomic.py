"""Atomic writes: an error while writing leaves the previous file (or nothing), never a partial one."""

from __future__ import annotations

import pytest

from effconvert.atomic import atomic_path


def test_success_replaces_file_and_folder(tmp_path):
    target = tmp_path / "model.onnx"
    target.write_text("old")
    with atomic_path(target) as tmp:
        tmp.write_text("new")
        assert target.read_text() == "old"  # not visible until complete
    assert target.read_text() == "new"
    package = tmp_path / "m.mlpackage"
    with atomic_path(package) as tmp:
        (tmp / "Data").mkdir(parents=True)
        (tmp / "Data" / "w.bin").write_bytes(b"1")
    assert (package / "Data" / "w.bin").read_bytes() == b"1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.mlpackage", "model.onnx"]


def test_failure_leaves_previous_content_and_no_temporaries(tmp_path):
    target = tmp_path / "model.onnx"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("converter crashed")
    assert target.read_text() == "old"
    fresh = tmp_path / "fresh.onnx"
    with pytest.raises(RuntimeError), atomic_path(fresh) as tmp:
        raise RuntimeError("converter crashed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]
