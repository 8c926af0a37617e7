"""Safe reading: no code from a checkpoint ever runs; broken files are refused in one line."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest
import torch

from effconvert.errors import BadInput
from effconvert.load.read import read_checkpoint


class _CreatesFile:
    """A pickle payload whose unpickling would create a file (proof that code ran)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_and_its_code_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    ckpt = tmp_path / "evil.pth"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "payload": _CreatesFile(marker)}, ckpt)
    with pytest.raises(BadInput, match="arbitrary unpickling") as info:
        read_checkpoint(ckpt)
    assert "system" in info.value.message
    assert info.value.hint and "state_dict" in info.value.hint
    assert not marker.exists()


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"", "empty"),
        (os.urandom(4096), "not a readable PyTorch checkpoint"),
        (b"PK\x03\x04" + b"\x00" * 100, "not a readable PyTorch checkpoint"),
    ],
)
def test_broken_files_are_bad_input(tmp_path, content, expected):
    path = tmp_path / "broken.pth"
    path.write_bytes(content)
    with pytest.raises(BadInput, match=expected):
        read_checkpoint(path)


def test_truncated_checkpoint_is_bad_input(tmp_path):
    good = tmp_path / "good.pth"
    torch.save({"w": torch.randn(64, 64)}, good)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(BadInput, match="not a readable PyTorch checkpoint"):
        read_checkpoint(truncated)


def test_training_checkpoint_with_argparse_namespace_loads(tmp_path):
    """timm's CheckpointSaver stores `args` (a Namespace) beside the weights."""
    path = tmp_path / "train.pth.tar"
    torch.save({"state_dict": {"w": torch.ones(3)}, "args": argparse.Namespace(lr=0.1), "epoch": 7}, path)
    raw = read_checkpoint(path)
    assert torch.equal(raw.content["state_dict"]["w"], torch.ones(3))
    assert raw.content["args"].lr == 0.1


def test_legacy_and_safetensors_formats(tmp_path):
    from safetensors.torch import save_file

    legacy = tmp_path / "legacy.pt"
    torch.save({"w": torch.arange(4.0)}, legacy, _use_new_zipfile_serialization=False)
    assert torch.equal(read_checkpoint(legacy).content["w"], torch.arange(4.0))
    st = tmp_path / "w.safetensors"
    save_file({"w": torch.arange(4.0)}, str(st), metadata={"k": "v"})
    raw = read_checkpoint(st)
    assert torch.equal(raw.content["w"], torch.arange(4.0)) and raw.file_metadata == {"k": "v"}
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    with pytest.raises(BadInput, match="safetensors"):
        read_checkpoint(bad)


def test_missing_and_unsupported_paths(tmp_path):
    with pytest.raises(BadInput, match="not found"):
        read_checkpoint(tmp_path / "nope.pth")
    other = tmp_path / "model.h5"
    other.write_bytes(b"x")
    with pytest.raises(BadInput, match="unsupported checkpoint format"):
        read_checkpoint(other)
