"""`effconvert batch`: the plan reader (every refusal one line, exit 2, nothing written), jobs on
local worker processes (a failing job recorded, the others finished, --resume skipping what is
done), and — in the slow suite — the acceptance runs: batch vs one-by-one artifacts, 1 vs 2
workers, a local Ray cluster, a batch killed halfway and resumed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from effconvert.batch import read_plan, run_batch
from effconvert.batch.job import finished_earlier
from effconvert.errors import BadInput
from effconvert.files import artifact_sha256

EXE = Path(sys.executable).with_name("effconvert")


def _plan(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "plan.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _batch(*args, **popen) -> subprocess.CompletedProcess:
    return subprocess.run([str(EXE), "batch", *map(str, args)], capture_output=True, text=True, **popen)


# --- the plan: data from a file, checked whole before anything runs ------------------------------

_ONE = '[[checkpoints]]\nmake = "mobileone_s0"\n'
PLAN_REFUSALS = {
    "not-toml": ("targets = [onnx", "is not valid TOML"),
    "no-checkpoints": ("[defaults]\nsamples = 4\n", "lists no checkpoints"),
    "unknown-top-key": ('outdir = "x"\n' + _ONE, "unknown key 'outdir' (did you mean 'out'?)"),
    "unknown-option": ('[defaults]\nquant = ["fp16"]\n' + _ONE, "unknown key 'quant' (did you mean 'quants'?)"),
    "path-and-make": ('[[checkpoints]]\nmake = "mobileone_s0"\npath = "a.pth"\n', "exactly one of path"),
    "neither": ("[[checkpoints]]\nsamples = 4\n", "exactly one of path"),
    "glob-matches-nothing": ('[[checkpoints]]\npath = "nowhere/*.pth"\n', "matches no file"),
    "missing-file": ('[[checkpoints]]\npath = "missing.pth"\n', "not found"),
    "unknown-variant": ('[[checkpoints]]\nmake = "fastvit_s13"\n', "did you mean 'fastvit_s12'?"),
    "unknown-layout": ('[[checkpoints]]\nmake = "fastvit_t8"\nmake_layout = "mit"\n', "fastvit_t8 has no 'mit' layout"),
    "samples-text": ('[defaults]\nsamples = "4"\n' + _ONE, "samples must be an integer"),
    "samples-range": ("[defaults]\nsamples = 0\n" + _ONE, "--samples 0 is out of range"),
    "mean-two": ("[defaults]\nmean = [0.5, 0.5]\n" + _ONE, "mean must be 3 numbers, one per RGB channel"),
    "unknown-target": ('[defaults]\ntargets = ["coreml", "tensorrt"]\n' + _ONE, "unknown target 'tensorrt'"),
    "nothing-offered": (
        '[defaults]\ntargets = ["executorch"]\nquants = ["fp16"]\n' + _ONE,
        "no target asked for offers --quant fp16",
    ),
    "a-typo-names-its-place": (
        '[[checkpoints]]\nmake = "mobileone_s0"\ntarget = "onnx"\n',
        "plan.toml: checkpoints[0]: unknown key 'target' (did you mean 'targets'?)",
    ),
    "calib-without-int8": ('[defaults]\ncalib = "."\n' + _ONE, "--calib applies to --quant int8 or w8a16 only"),
    "name-for-many": ('[[checkpoints]]\nmake = "mobileone_s*"\nname = "m"\n', "name = ... names one checkpoint"),
    "name-path": ('[[checkpoints]]\nmake = "mobileone_s0"\nname = "../m"\n', "must be a plain folder name"),
    "listed-twice": (_ONE + _ONE, "is listed twice"),
    "seed-on-path": ('[[checkpoints]]\npath = "plan.toml"\nseed = 1\n', "apply to make = ... entries"),
}


@pytest.mark.parametrize("name", PLAN_REFUSALS)
def test_a_bad_plan_is_refused_with_one_line(tmp_path, name):
    text, message = PLAN_REFUSALS[name]
    with pytest.raises(BadInput) as refused:
        read_plan(_plan(tmp_path, text), tmp_path / "out")
    assert message in refused.value.message and "\n" not in refused.value.message
    assert not (tmp_path / "out").exists()


def test_the_cli_refuses_a_bad_plan_before_writing_anything(tmp_path):
    plan = _plan(tmp_path, '[defaults]\nlayout = "nchx"\n' + _ONE)
    done = _batch(plan, "--out", tmp_path / "out")
    assert done.returncode == 2, done.stderr
    assert "job mobileone_s0: --layout nchx" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()
    assert _batch(plan, "--workers", "0").returncode == 2
    # The place is printed as text: "[defaults]" is not swallowed as console markup.
    typo = _batch(_plan(tmp_path, '[defaults]\ntarget = ["onnx"]\n' + _ONE), "--out", tmp_path / "out")
    assert typo.returncode == 2 and "plan.toml: [defaults]: unknown key 'target'" in typo.stderr, typo.stderr


def test_a_plan_expands_globs_names_and_the_original_layout(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for folder in ("a", "b"):
        (tmp_path / folder / "model.pth").write_bytes(b"PK")  # read_plan checks paths, not contents
    plan = read_plan(
        _plan(
            tmp_path,
            '[defaults]\ntargets = ["onnx", "executorch"]\nquants = ["fp32", "fp16"]\n'
            '[[checkpoints]]\npath = "*/model.pth"\n'
            '[[checkpoints]]\nmake = "efficientvit_m[01]"\nmake_layout = "original"\n'
            "samples = 4\n",
        ),
        tmp_path / "out",
    )
    assert [job.name for job in plan.jobs] == ["model", "b--model", "efficientvit_m0", "efficientvit_m1"]
    made = plan.jobs[2]
    assert made.make.layout == "cream" and made.request.samples == 4 and plan.jobs[0].request.samples == 32
    assert made.checkpoint == tmp_path / "out" / "checkpoints" / "efficientvit_m0-cream-seed0.pth.tar"
    assert made.out_dir == tmp_path / "out" / "efficientvit_m0"


_keys = st.sampled_from(
    [
        "targets",
        "quants",
        "samples",
        "image_size",
        "gate",
        "calib",
        "mean",
        "fuse",
        "palettize",
        "make",
        "path",
        "seed",
        "name",
        "make_layout",
        "x",
        "ios",
        "crop_pct",
    ]
)
_leaf = st.one_of(
    st.integers(-(10**6), 10**6),
    st.booleans(),
    st.text(max_size=12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["fp16", "onnx", "*", "mit"]),
)
_value = st.one_of(_leaf, st.lists(_leaf, max_size=3))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    defaults=st.dictionaries(_keys, _value, max_size=3),
    entries=st.lists(st.dictionaries(_keys, _value, max_size=4), max_size=3),
)
def test_any_plan_is_read_or_refused_never_crashes(tmp_path_factory, defaults, entries):
    folder = tmp_path_factory.getbasetemp() / "plans"
    lines = ["[defaults]"] + [f"{k} = {json.dumps(v)}" for k, v in defaults.items()]
    for entry in entries:
        lines += ["[[checkpoints]]"] + [f"{k} = {json.dumps(v)}" for k, v in entry.items()]
    try:
        plan = read_plan(_plan(folder, "\n".join(lines) + "\n"), folder / "never-written")
    except BadInput as exc:
        assert exc.message and "\n" not in exc.message
        return
    assert plan.jobs and not (folder / "never-written").exists()


# --- jobs on worker processes ------------------------------------------------------------------


@pytest.mark.slow  # 13-51 s: in make test-slow (the default suite's budget)
def test_a_failing_job_is_recorded_and_the_others_finish_then_resume_skips_them(tmp_path, checkpoints):
    """Two workers: FastViT-T8 converts; a damaged checkpoint (a zip header, then garbage: it
    passes the up-front checks) is refused once read: recorded, exit 3, the other job unharmed."""
    (tmp_path / "damaged.pth").write_bytes(b"PK\x03\x04" + b"not a zip archive" * 8)
    plan = _plan(
        tmp_path,
        '[defaults]\ntargets = ["onnx"]\nquants = ["fp32"]\nsamples = 4\n'
        f'[[checkpoints]]\npath = "{checkpoints("fastvit_t8")}"\nname = "t8"\n'
        '[[checkpoints]]\npath = "damaged.pth"\n',
    )
    out = tmp_path / "out"
    done = _batch(plan, "--out", out, "--workers", "2")
    assert done.returncode == 3, done.stderr
    record = json.loads((out / "batch.json").read_text())
    jobs = {job["name"]: job for job in record["jobs"]}
    assert record["schema"] == "effconvert.batch/1" and record["exit_code"] == 3 and record["workers"] == 2
    assert jobs["t8"]["status"] == "passed" and jobs["damaged"]["status"] == "refused"
    assert "damaged.pth" in jobs["damaged"]["error"]
    cell = jobs["t8"]["cells"]["onnx fp32"]
    assert cell["status"] == "passed" and cell["sha256"] == artifact_sha256(out / cell["artifact"])
    assert jobs["damaged"]["cells"]["onnx fp32"]["status"] == "job-failed"
    assert len({job["worker"] for job in record["jobs"]}) == 2  # one job per worker process
    report = json.loads((out / "t8" / "report.json").read_text())
    assert report["options"]["samples"] == 4 and report["options"]["targets"] == ["onnx"]
    index = (out / "index.html").read_text()
    assert "href='t8/report.html'" in index and "refused" in index
    assert "| t8 |" in (out / "matrix.md").read_text()
    assert "✗ damaged" in done.stderr and "✓ t8" in done.stderr

    stamp = (out / "t8" / "report.json").stat().st_mtime_ns
    t8, damaged = read_plan(plan, out).jobs
    assert finished_earlier(t8) is not None and finished_earlier(damaged) is None
    plan.write_text(plan.read_text().split('[[checkpoints]]\npath = "damaged.pth"')[0])
    again = run_batch(plan, out_dir=out, resume=True)  # in-process: nothing left to run, no worker
    assert again.exit_code == 0 and again.results["t8"].resumed
    assert json.loads((out / "batch.json").read_text())["jobs"][0]["resumed"]
    assert (out / "t8" / "report.json").stat().st_mtime_ns == stamp  # not run again
    plan.write_text(plan.read_text().replace("samples = 4", "samples = 5"))
    assert finished_earlier(read_plan(plan, out).jobs[0]) is None  # another option: it runs again


# --- the acceptance runs (slow) ------------------------------------------------------------------

FOUR = ["mobileone_s0", "efficientvit_m0", "fastvit_t8", "efficientformerv2_s0"]
_FOUR_PLAN = (
    '[defaults]\ntargets = ["onnx", "tflite"]\nquants = ["fp32", "fp16"]\nsamples = 8\n'
    '[[checkpoints]]\npath = "checkpoints/*.pth.tar"\n'
)


@pytest.fixture(scope="module")
def four(tmp_path_factory):
    """Four small variants as checkpoint files (original layouts), and the plan that converts them."""
    from effconvert.synth.checkpoint import make_checkpoint

    root = tmp_path_factory.mktemp("four")
    for arch in FOUR:
        make_checkpoint(arch, root / "checkpoints" / f"{arch}.pth.tar", layout="timm", seed=0)
    return _plan(root, _FOUR_PLAN)


def _cells(out: Path) -> dict:
    record = json.loads((out / "batch.json").read_text())
    return {job["name"]: {c: (v["status"], v.get("sha256")) for c, v in job["cells"].items()} for job in record["jobs"]}


@pytest.mark.slow
def test_batch_cells_match_converting_each_alone_with_one_and_two_workers(four, tmp_path):
    alone = {}
    for ckpt in sorted((four.parent / "checkpoints").iterdir()):
        out = tmp_path / "alone" / ckpt.name
        subprocess.run(
            [str(EXE), ckpt, "-t", "onnx", "-t", "tflite", "-q", "fp32", "-q", "fp16", "--samples", "8", "--out", out],
            capture_output=True,
            check=False,
        )
        for entry in json.loads((out / "report.json").read_text())["artifacts"]:
            alone[entry["path"]] = entry["sha256"]
    for workers in (1, 2):
        done = _batch(four, "--out", tmp_path / f"w{workers}", "--workers", str(workers), "--threads", "1")
        assert done.returncode in (0, 1), done.stderr
    one, two = _cells(tmp_path / "w1"), _cells(tmp_path / "w2")
    assert one == two and len(one) == 4
    batch = {
        Path(cell["artifact"]).name: cell["sha256"]
        for job in json.loads((tmp_path / "w2" / "batch.json").read_text())["jobs"]
        for cell in job["cells"].values()
    }
    assert batch == alone and len(batch) == 16  # identical bytes, every onnx/tflite artifact


@pytest.mark.slow
def test_ray_gives_the_same_cells_as_the_local_pool(four, tmp_path):
    pytest.importorskip("ray")
    ray_exe = Path(sys.executable).with_name("ray")
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    ray_tmp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # its socket paths must stay under 108 bytes
    started = subprocess.run(
        [str(ray_exe), "start", "--head", "--num-cpus", "2", "--include-dashboard=false", "--temp-dir", ray_tmp],
        capture_output=True,
        text=True,
        env=env,
    )
    assert started.returncode == 0, started.stderr[-2000:]
    try:
        on_ray = _batch(four, "--out", tmp_path / "ray-out", "--ray", "auto", env=env)
        local = _batch(four, "--out", tmp_path / "local-out", "--workers", "2")
    finally:
        subprocess.run([str(ray_exe), "stop", "--force"], capture_output=True, env=env)
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert on_ray.returncode == local.returncode, on_ray.stderr
    assert _cells(tmp_path / "ray-out") == _cells(tmp_path / "local-out")
    assert json.loads((tmp_path / "ray-out" / "batch.json").read_text())["runner"].startswith("Ray ")


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in found]


@pytest.mark.slow
def test_a_batch_killed_halfway_resumes_only_the_missing_jobs(four, tmp_path):
    """SIGKILL one worker mid-job (that job is recorded as crashed, the batch goes on), then
    SIGINT the batch; --resume runs only the jobs without a standing report."""
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [str(EXE), "batch", four, "--out", out, "--workers", "2"], stderr=subprocess.PIPE, text=True
    )
    lines = []
    for line in proc.stderr:  # first job finished: kill the other worker, mid-job
        lines.append(line)
        if "passed" in line or "gate-failed" in line:
            break
    busy = [pid for pid in _children(proc.pid) if Path(f"/proc/{pid}/cmdline").read_bytes().find(b"spawn") >= 0]
    assert busy, "no worker process to kill: " + "".join(lines)
    os.kill(busy[0], signal.SIGKILL)
    for line in proc.stderr:
        lines.append(line)
        if "crashed" in line:
            break
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    assert proc.wait(timeout=120) == 130, "".join(lines) + rest
    record = json.loads((out / "batch.json").read_text())
    assert record["exit_code"] == 130 and record["interrupted"] is True  # what the shell saw
    statuses = {job["name"]: job["status"] for job in record["jobs"]}
    finished = [n for n, s in statuses.items() if s in ("passed", "gate-failed")]
    assert "crashed" in statuses.values() and finished, statuses
    hidden = [p for p in out.rglob(".*") if p.name != ".effconvert.lock"]
    for job in finished:  # a finished job: every artifact complete and as reported
        for entry in json.loads((out / job / "report.json").read_text())["artifacts"]:
            assert artifact_sha256(out / job / entry["path"]) == entry["sha256"]
    stamps = {job: (out / job / "report.json").stat().st_mtime_ns for job in finished}

    again = _batch(four, "--out", out, "--resume", "--workers", "2")
    assert again.returncode in (0, 1), again.stderr
    jobs = {job["name"]: job for job in json.loads((out / "batch.json").read_text())["jobs"]}
    assert {n for n, j in jobs.items() if j["resumed"]} == set(finished)
    assert all(j["status"] in ("passed", "gate-failed") for j in jobs.values())
    assert stamps == {job: (out / job / "report.json").stat().st_mtime_ns for job in finished}
    assert not [p for p in out.rglob(".*") if p.is_dir()], hidden  # the killed job's temporaries swept
