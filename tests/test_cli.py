"""The command line end to end: real conversion, real runtime, report.json to the contract, and
every error path's exit code (2 bad input, 1 failed gate, 3 conversion) with no traceback."""

from __future__ import annotations

import inspect
import json
import re

import onnx
import pytest
import torch

from effconvert.fuse import FUSION_TOLERANCE


def _report(out_dir):
    return json.loads((out_dir / "report.json").read_text())


@pytest.mark.parametrize(
    "arch, params",
    [
        pytest.param("fastvit_t8", 3_000_000, marks=pytest.mark.slow),
        pytest.param("fastvit_s12", 8_000_000, marks=pytest.mark.slow),
    ],
)
def test_make_checkpoint_then_convert_to_onnx(tmp_path, cli, arch, params):
    """The foundation issue's acceptance, through the CLI (in test-slow: the default suite converts T8 through
    the CLI in the gate, --json and --no-fuse tests)."""
    ckpt = tmp_path / f"{arch}.pth"
    result = cli("make-checkpoint", arch, "--layout", "apple", "-o", ckpt)
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    result = cli(ckpt, "--target", "onnx", "--quant", "fp32", "--out", out)
    assert result.exit_code == 0, result.output
    report = _report(out)
    assert report["schema"] == "effconvert.report/1" and report["passed"] is True
    model = report["model"]
    assert model["arch"] == arch and model["source_layout"] == "apple-ml-fastvit"
    assert model["input_size"] == [3, 256, 256] and model["params"] > params
    assert "not a trained model" in model["weights"]
    assert report["fusion"]["passed"] and report["fusion"]["max_rel_err"] <= FUSION_TOLERANCE
    assert report["fusion"]["exact_rel_err"] <= 1e-9  # FastViT: ~1e-15
    [artifact] = report["artifacts"]
    assert artifact["runtime"] == "onnxruntime"
    parity = artifact["parity"]
    assert parity["passed"] and parity["samples"] == 32
    assert parity["max_rel_err"] <= 1e-5 and parity["top1_agreement"] == 1.0
    assert (out / artifact["path"]).stat().st_size == artifact["size_bytes"]
    meta = {p.key: p.value for p in onnx.load(str(out / artifact["path"])).metadata_props}
    assert meta["effconvert.arch"] == arch
    assert meta["effconvert.checkpoint_sha256"] == model["sha256"]
    assert json.loads(meta["effconvert.std"]) == [0.229, 0.224, 0.225]
    assert len(json.loads(meta["effconvert.labels"])) == 1000
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "temporary files left behind"


def test_failed_gate_exits_1_and_keeps_the_artifact(tmp_path, cli, checkpoints):
    out = tmp_path / "out"
    result = cli(
        checkpoints("fastvit_t8"),
        "--target",
        "onnx",
        "--quant",
        "fp32",
        "--out",
        out,
        "--samples",
        "8",
        "--gate",
        "max_rel=1e-12",
    )
    assert result.exit_code == 1, result.output
    report = _report(out)
    assert report["passed"] is False
    [artifact] = report["artifacts"]
    assert artifact["parity"]["passed"] is False and "max_rel_err" in artifact["parity"]["failures"][0]
    assert (out / artifact["path"]).exists()
    # Progress: every step with work of its own says how long it took; the failure is marked ✗.
    lines = {
        line.split()[1]: line for line in result.output.splitlines() if line[:1] in "✓✗!" and len(line.split()) > 1
    }
    for step in ("load", "inputs", "fuse", "convert", "validate"):
        assert re.search(r"\(\d+\.\d s\)$", lines[step]), lines[step]
    assert lines["validate"].startswith("✗")


def test_json_flag_and_no_fuse(tmp_path, cli, checkpoints):
    out = tmp_path / "out"
    result = cli(
        checkpoints("fastvit_t8", "timm"), "--target", "onnx", "--out", out, "--samples", "8", "--no-fuse", "--json"
    )
    assert result.exit_code == 0, result.output
    assert '"schema": "effconvert.report/1"' in result.stdout
    report = _report(out)
    assert report["fusion"]["skipped"] is True and report["artifacts"][0]["parity"]["passed"]


def _no_traceback(result):
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_inspect_checkpoint_and_artifact(cli, checkpoints, t8_all):
    result = cli("inspect", checkpoints("fastvit_t8", "apple-fused"))
    assert result.exit_code == 0, result.output
    assert "fastvit_t8" in result.output and "apple-ml-fastvit-reparam" in result.output
    result = cli("inspect", t8_all.out_dir / "fastvit_t8_fp32.onnx")
    assert result.exit_code == 0, result.output
    assert "input [1, 3, 256, 256]" in result.output and "Conv" in result.output


@pytest.mark.slow  # three make-checkpoints (BN statistics re-estimated each time): ~15 s
def test_make_checkpoint_is_deterministic_and_realistic(tmp_path, cli):
    a, b, c = (tmp_path / n for n in ("a.pth", "b.pth", "c.pth"))
    for path, seed in ((a, "3"), (b, "3"), (c, "4")):
        result = cli("make-checkpoint", "fastvit_t8", "-o", path, "--seed", seed)
        assert result.exit_code == 0, result.output
    sa, sb, sc = (torch.load(p, weights_only=True)["state_dict"] for p in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    from effconvert.load import load_checkpoint
    from effconvert.validate import input_set

    loaded = load_checkpoint(a)
    x = torch.from_numpy(input_set(loaded.preprocessing, samples=32, seed=7).inputs)
    with torch.no_grad():
        logits = loaded.model(x)
    # A fresh timm FastViT gives logits ~0.003 and one top-1 class for every input.
    assert 1.0 < logits.std() < 10.0
    assert logits.argmax(-1).unique().numel() >= 8
    gammas = [v for k, v in sa.items() if "layer_scale" in k]
    assert min(float(g.min()) for g in gammas) > 1e-3


def test_make_checkpoint_rejects_unknown_arch_and_layout(tmp_path, cli):
    result = cli("make-checkpoint", "resnet50", "-o", tmp_path / "x.pth")
    assert result.exit_code == 2 and "unknown architecture" in result.output
    result = cli("make-checkpoint", "fastvit_t8", "--layout", "snap", "-o", tmp_path / "x.pth")
    assert result.exit_code == 2 and "no layout 'snap'" in result.output
    assert not (tmp_path / "x.pth").exists()


def test_make_checkpoint_layout_original_is_the_authors_release(tmp_path, cli):
    """`--layout original` names what a plan's make_layout = "original" names: the family's authors' layout."""
    result = cli("make-checkpoint", "efficientvit_m0", "--layout", "original", "-o", tmp_path / "m0.pth")
    assert result.exit_code == 0, result.output
    assert "(efficientvit_m0, cream layout, seed 0)" in " ".join(result.output.split())


def test_help_reads_as_typed(cli):
    """Flags show no `<bool>` type, the usage line names arguments as written, every command has a line."""
    for command in ([], ["convert"], ["demo"], ["bench"]):
        text = cli(*command, "-h").output
        assert "<bool>" not in text and "{" not in text.split("Usage:")[1].splitlines()[0], command
    usage = " ".join(cli("bench", "-h").output.split())
    assert " bench [OPTIONS] ARTIFACT... " in usage
    assert "executorch" in " ".join(cli("demo", "-h").output.split())


@pytest.mark.slow
def test_demo(tmp_path, cli):
    """`make demo` itself (FastViT-S12, every target, fp32 and fp16): 46 s quiet, so test-slow."""
    result = cli("demo", "--out", tmp_path / "demo")
    assert result.exit_code == 0, result.output
    report = _report(tmp_path / "demo")
    assert report["model"]["source_layout"] == "apple-ml-fastvit" and report["passed"]
    built = {(a["target"], a["quant"]) for a in report["artifacts"]}
    assert built == {(t, q) for t in ("coreml", "tflite", "onnx") for q in ("fp32", "fp16")} | {("executorch", "fp32")}
    assert (tmp_path / "demo" / "report.html").exists()


def test_labelled_val_folder_reports_task_accuracy(tmp_path, checkpoints, cli):
    """--val with one sub-folder per class: accuracy of PyTorch and of the artifact, per artifact."""
    from PIL import Image

    from effconvert.validate.natural_images import natural_images

    val = tmp_path / "val"
    for i, img in enumerate(natural_images(6, (300, 300), seed=3)):
        folder = val / ("a_class" if i % 2 else "b_class")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / f"{i}.png")
    out = tmp_path / "out"
    result = cli(checkpoints("fastvit_t8"), "--target", "onnx", "--quant", "fp32", "--val", val, "--out", out)
    assert result.exit_code == 0, result.output
    report = _report(out)
    inputs = report["inputs"]
    assert inputs["samples"] == 6 and inputs["classes"] == 2
    parity = report["artifacts"][0]["parity"]
    assert parity["labelled_samples"] == 6 and parity["reference_accuracy"] == inputs["reference_accuracy"]
    # fp32 agrees on every top-1, so the artifact's accuracy is the reference's (1000-class head, 2 labels)
    assert parity["top1_agreement"] == 1.0 and parity["accuracy"] == parity["reference_accuracy"]
    assert "task accuracy on 6 labelled images (2 classes)" in result.output


def test_version_and_short_help(cli):
    from effconvert import __version__

    result = cli("--version")
    assert result.exit_code == 0 and result.output.strip() == f"effconvert {__version__}"
    result = cli("-h")
    assert result.exit_code == 0 and "convert" in result.output and "make-checkpoint" in result.output
    result = cli("inspect", "-h")
    assert result.exit_code == 0 and "checkpoint or an artifact" in result.output


def test_help_is_generated_from_the_tables_it_is_checked_against(cli):
    """Help and checks cannot disagree: both read targets.py (and the layouts list is the family table's)."""
    from effconvert.load import FAMILIES
    from effconvert.targets import CHECKPOINT_LAYOUTS, QUANTS, TARGETS

    assert set(CHECKPOINT_LAYOUTS) == {layout.name for f in FAMILIES.values() for layout in f.layouts}
    text = " ".join(cli("convert", "-h").output.split())
    for name in [*TARGETS, *QUANTS]:
        assert name in text, name
    assert all(layout in " ".join(cli("make-checkpoint", "-h").output.split()) for layout in CHECKPOINT_LAYOUTS)


def _requests_of_the_three_entry_points(tmp_path, monkeypatch, cli, flags=(), keywords=None, plan_keys=""):
    """The Request that `effconvert CKPT FLAGS`, `effconvert.convert(CKPT, **KEYWORDS)` and a plan entry
    with PLAN_KEYS each build, the run intercepted before anything is read."""
    import effconvert
    from effconvert import api, pipeline
    from effconvert.batch.plan import read_plan

    ckpt = tmp_path / "t8.pth"
    ckpt.write_bytes(b"not read: the run is intercepted")
    asked = []

    class Intercepted(Exception):
        pass

    def intercept(request, *args, **kwargs):
        asked.append(request)
        raise Intercepted

    monkeypatch.setattr(pipeline, "run", intercept)
    monkeypatch.setattr(api, "run", intercept)
    cli(ckpt, *flags)
    with pytest.raises(Intercepted):
        effconvert.convert(ckpt, **(keywords or {}))
    plan = tmp_path / "plan.toml"
    plan.write_text(f'[[checkpoints]]\npath = "{ckpt}"\n{plan_keys}')
    asked.append(read_plan(plan).jobs[0].request)
    return asked


def test_the_three_entry_points_share_one_default(tmp_path, monkeypatch, cli):
    """`effconvert CKPT`, `effconvert.convert(CKPT)` and a plan entry with only a path ask for the same
    targets and quants (the option table's defaults), and every option reaches each of them."""
    import effconvert
    from effconvert.options import DEFAULT_QUANTS, DEFAULT_TARGETS, OPTIONS

    asked = _requests_of_the_three_entry_points(tmp_path, monkeypatch, cli)
    assert [(r.targets, r.quants) for r in asked] == [(DEFAULT_TARGETS, DEFAULT_QUANTS)] * 3
    help_text = " ".join(cli("convert", "-h").output.split())
    signature = inspect.signature(effconvert.convert).parameters
    for option in OPTIONS:
        assert option.flag in help_text and option.name in signature, option.name
        assert signature[option.name].default == option.default


def test_an_api_keyword_or_plan_key_off_the_table_is_refused_with_the_closest(tmp_path):
    import effconvert
    from effconvert.errors import BadInput

    with pytest.raises(BadInput, match=r"convert\(\): unknown option 'val_dir' \(did you mean 'val'\?\)"):
        effconvert.convert(tmp_path / "x.pth", val_dir="images/")
    with pytest.raises(BadInput, match=r"convert\(\): samples must be an integer, not '8'"):
        effconvert.convert(tmp_path / "x.pth", samples="8")


def test_a_pair_list_skips_what_a_target_does_not_offer_the_same_way_everywhere(tmp_path, monkeypatch, cli):
    """coreml,tflite,executorch x fp16,int8 from the CLI, the API and a plan: five pairs and one skip
    note (ExecuTorch has no fp16), in the same order from each."""
    from effconvert.request import check_request

    asked = _requests_of_the_three_entry_points(
        tmp_path,
        monkeypatch,
        cli,
        flags=("--target", "coreml,tflite,executorch", "--quant", "fp16,int8"),
        keywords={"targets": ["coreml", "tflite", "executorch"], "quants": ["fp16", "int8"]},
        plan_keys='targets = ["coreml", "tflite", "executorch"]\nquants = ["fp16", "int8"]\n',
    )
    pairs = [check_request(r) for r in asked]
    assert len(pairs) == 3 and pairs[0] == pairs[1] == pairs[2]
    assert len(pairs[0].pairs) == 5 and ("executorch", "fp16") not in pairs[0].pairs
    [note] = pairs[0].skipped
    assert note.startswith("executorch fp16 skipped: ")
