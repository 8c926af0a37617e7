"""Checkpoints as users have them from the Hub: a timm snapshot folder (written here by timm's own
`save_for_hf`, the format of its hub models) and an `hf-hub:` id from a local cache, offline."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory, realistic) -> Path:
    from timm.models._hub import save_for_hf

    model, _ = realistic("fastvit_t8")
    folder = tmp_path_factory.mktemp("hub") / "fastvit_t8.my_finetune"
    labels = [f"part_{i}" for i in range(model.num_classes)]
    save_for_hf(
        model,
        str(folder),
        model_config={"label_names": labels},
        safe_serialization=True,
        # 64 px: what is checked is where the preprocessing comes from, not the resolution (4x faster).
        data_config={"mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25), "crop_pct": 0.95, "input_size": (3, 64, 64)},
    )
    assert (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()
    return folder


def test_snapshot_folder_converts_without_arch_with_its_preprocessing(tmp_path, cli, snapshot):
    out = tmp_path / "out"
    result = cli(snapshot, "--target", "onnx", "--samples", "2", "--out", out)
    assert result.exit_code == 0, result.output
    model = json.loads((out / "report.json").read_text())["model"]
    assert model["arch"] == "fastvit_t8" and model["arch_from"] == "config.json"
    assert model["preprocessing_from"] == "config.json pretrained_cfg"
    assert model["preprocessing"]["mean"] == [0.5, 0.5, 0.5] and model["preprocessing"]["crop_pct"] == 0.95
    assert model["preprocessing"]["input_size"] == [3, 64, 64]  # the snapshot's declared resolution
    assert json.loads((out / "report.json").read_text())["labels"]["source"] == "config.json label_names"


def test_preprocessing_overrides_win_and_are_recorded(tmp_path, cli, snapshot):
    out = tmp_path / "out"
    result = cli(
        snapshot,
        "--target",
        "onnx",
        "--samples",
        "2",
        "--no-validate",
        "--out",
        out,
        "--mean",
        "0.4,0.4,0.4",
        "--std",
        "0.2,0.2,0.2",
        "--crop-pct",
        "1.0",
    )
    assert result.exit_code == 0, result.output
    model = json.loads((out / "report.json").read_text())["model"]
    assert model["preprocessing"]["mean"] == [0.4, 0.4, 0.4] and model["preprocessing"]["crop_pct"] == 1.0
    assert "overrides" in model["preprocessing_from"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--mean", "0.5,0.5"], "--mean '0.5,0.5' needs 3"),
        (["--std", "0.2,0,0.2"], "--std 0.2,0,0.2 must be 3 positive"),
        (["--crop-pct", "7"], "--crop-pct 7.0 is out of range"),
    ],
)
def test_bad_preprocessing_overrides_are_refused(tmp_path, cli, snapshot, args, message):
    result = cli(snapshot, "--target", "onnx", "--out", tmp_path / "o", *args)
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "o").exists()


def test_hf_hub_id_resolves_from_the_local_cache_only(tmp_path, cli, snapshot, monkeypatch):
    cache = tmp_path / "hub"
    revision = "0" * 40
    repo = cache / "models--someone--fastvit_t8.my_finetune"
    shutil.copytree(snapshot, repo / "snapshots" / revision)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    out = tmp_path / "out"
    result = cli(
        "hf-hub:someone/fastvit_t8.my_finetune", "--target", "onnx", "--samples", "2", "--no-validate", "--out", out
    )
    assert result.exit_code == 0, result.output
    assert json.loads((out / "report.json").read_text())["model"]["snapshot"] == "hf-hub:someone/fastvit_t8.my_finetune"
    result = cli("hf-hub:someone/not_cached", "--target", "onnx", "--out", tmp_path / "o2")
    assert result.exit_code == 2 and "not in the local Hugging Face cache" in result.output
    assert not (tmp_path / "o2").exists()


def test_a_bad_config_json_is_refused_naming_the_field(tmp_path, cli, snapshot):
    folder = tmp_path / "bad"
    shutil.copytree(snapshot, folder)
    config = json.loads((folder / "config.json").read_text())
    config["pretrained_cfg"]["input_size"] = [3, "big", 224]
    (folder / "config.json").write_text(json.dumps(config))
    result = cli(folder, "--target", "onnx", "--out", tmp_path / "o")
    assert result.exit_code == 2 and "config.json pretrained_cfg.input_size" in result.output, result.output


def test_a_batch_plan_takes_a_snapshot_folder_and_resumes_it(tmp_path, snapshot):
    """A plan's path may name a snapshot folder: the job converts it, and --resume recognises its
    report by the weights file's sha256 (a folder has no bytes of its own)."""
    from effconvert.batch import read_plan
    from effconvert.batch.job import finished_earlier, run_job

    plan = tmp_path / "plan.toml"
    plan.write_text(
        f'[defaults]\ntargets = ["onnx"]\nsamples = 2\nvalidate = false\n[[checkpoints]]\npath = "{snapshot}"\n',
        encoding="utf-8",
    )
    [job] = read_plan(plan, tmp_path / "out").jobs
    assert job.name == "fastvit_t8.my_finetune" and finished_earlier(job) is None
    result = run_job(job, threads=2)
    assert result.status == "passed", result.error
    earlier = finished_earlier(job)
    assert earlier is not None and earlier.resumed and earlier.checkpoint_sha256 == result.checkpoint_sha256
