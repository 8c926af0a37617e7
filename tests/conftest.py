"""Shared fixtures. Realistic (make-checkpoint) models are costly to build (BN statistics are
re-estimated on 32 images), so each (arch, seed) is built once per test session."""

from __future__ import annotations

import copy
import dataclasses
import functools
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from effconvert.cli import app, with_default_command
from effconvert.load import Preprocessing
from effconvert.validate import input_set


@functools.cache
def _realistic(arch: str, seed: int):
    from effconvert.synth.checkpoint import realistic_model

    return realistic_model(arch, seed=seed)


@pytest.fixture(scope="session")
def realistic():
    """realistic(arch, seed=0) -> (a private copy of the model, WeightStats)."""

    def get(arch: str, seed: int = 0):
        model, stats = _realistic(arch, seed)
        return copy.deepcopy(model), stats

    return get


@functools.cache
def _inputs(arch: str, n: int) -> torch.Tensor:
    return torch.from_numpy(input_set(Preprocessing.from_timm(arch), samples=n).inputs)


@pytest.fixture(scope="session")
def inputs():
    """inputs(arch, n) -> n preprocessed natural-looking images for that arch."""
    return _inputs


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory, realistic):
    """checkpoints(arch, layout) -> path of a make-checkpoint file, written once per session."""
    from effconvert.fuse import reparameterize
    from effconvert.load import family_of_arch
    from effconvert.synth.checkpoint import write_state

    root = tmp_path_factory.mktemp("ckpt")
    made: dict[tuple[str, str, str], Path] = {}

    def get(arch: str, layout: str = "apple", suffix: str = ".pth.tar") -> Path:
        key = (arch, layout, suffix)
        if key not in made:
            model, _ = realistic(arch)
            target = family_of_arch(arch).layout(layout)
            if target.fused:
                model = reparameterize(model)
            path = root / f"{arch}_{layout}{suffix}"
            state = dict(model.state_dict())
            if target.needs_buffers:
                state.update({k: v for k, v in model.named_buffers() if k not in state})
            write_state(path, target.from_timm(state), {"synthetic": True, "arch": arch, "seed": 0, "layout": layout})
            made[key] = path
        return made[key]

    return get


def artifact(outcome, target: str, quant: str):
    """The report's entry for (target, quant) of a run (an Outcome or an API Result)."""
    [entry] = [a for a in outcome.report.artifacts if (a.target, a.quant) == (target, quant)]
    return entry


@pytest.fixture(scope="session", autouse=True)
def shared_second_process():
    """The session's runs share one second process (a start costs ~2 s of imports); a run outside a
    `keep_second_process` block starts and stops its own, as a library caller's does."""
    from effconvert.pipeline import keep_second_process

    with keep_second_process():
        yield


@pytest.fixture(scope="session")
def t8_all(tmp_path_factory, checkpoints):
    """One run of the main command on the smallest FastViT (T8, Apple layout): every target, fp32
    and fp16, validated on 8 inputs. Every test that reads a T8 artifact reads these."""
    from effconvert.pipeline import Request, run

    out = tmp_path_factory.mktemp("t8-all")
    return run(Request(checkpoints("fastvit_t8"), ("all",), ("fp32", "fp16"), out, samples=8))


@pytest.fixture(scope="session")
def small_t8(tmp_path_factory):
    """An untrained FastViT-T8 at 64x64 with 10 classes and realistic statistics (a few seconds to
    build), beside the digits image folders: int8 conversions cost seconds on it, so the default
    suite checks how int8 artifacts are built and validated here. Whether int8 keeps the accuracy of
    a trained model (the digits model, minutes to train) is checked in `make test-slow`."""
    from effconvert.load import build_model
    from effconvert.synth.checkpoint import write_state
    from effconvert.synth.digits import ARCH, IMAGE_SIZE, digits_images, preprocessing
    from effconvert.synth.weights import make_realistic

    torch.manual_seed(0)
    model = build_model(ARCH, num_classes=10, image_size=IMAGE_SIZE)
    make_realistic(model, preprocessing(), seed=0)
    path = tmp_path_factory.mktemp("small-t8") / f"{ARCH}_{IMAGE_SIZE}.pth"
    write_state(
        path,
        dict(model.eval().state_dict()),
        {"synthetic": True, "arch": ARCH, "seed": 0, "layout": "timm", "image_size": IMAGE_SIZE},
    )
    train_dir, val_dir = digits_images()
    return SmallModel(path, train_dir, val_dir)


@dataclasses.dataclass(frozen=True)
class SmallModel:
    checkpoint: Path
    train_dir: Path
    val_dir: Path


@pytest.fixture(scope="session")
def digits():
    """The digits-trained FastViT-T8 (effconvert/synth/digits.py): minutes to train on an empty cache."""
    from effconvert.synth.digits import digits_model

    return digits_model()


@pytest.fixture()
def cli():
    """cli(*args) -> click Result, with the same default-command rule as the console script."""
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, with_default_command([str(a) for a in args]))

    return invoke


# The digits-trained FastViT-T8 (effconvert/synth/digits.py) takes 3-5 minutes to train on an empty
# cache (CI's case; 3:00 on two threads, 5:17 on one, 2026-12-02), so only `make test-slow` uses it
# (the `digits` fixture). When a session's tests ask for it, train it in a child process from the
# start, on one thread, so that it overlaps with the tests before the quantization ones;
# digits_model() waits on the cache lock until the child has written it. On a warm cache nothing is
# started. (In the default suite this overlap cost 3.6 minutes of wall time on 2 cores: the tests'
# two torch threads and the trainer share the cores.)
_digits_trainer: subprocess.Popen | None = None


def pytest_collection_finish(session):
    global _digits_trainer
    from effconvert.synth.digits import ARCH, IMAGE_SIZE, cache_dir

    uses_digits = any("digits" in getattr(item, "fixturenames", ()) for item in session.items)
    if (
        session.config.option.collectonly
        or not uses_digits
        or (cache_dir() / f"{ARCH}_digits_{IMAGE_SIZE}.pth").exists()
    ):
        return
    _digits_trainer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import torch; torch.set_num_threads(1); from effconvert.synth.digits import digits_model; digits_model()",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def pytest_sessionfinish(session, exitstatus):
    if _digits_trainer is not None and _digits_trainer.poll() is None:
        # SIGINT, so the child's atomic writes clean up their temporary folders as they unwind.
        _digits_trainer.send_signal(signal.SIGINT)
        try:
            _digits_trainer.wait(timeout=30)
        except subprocess.TimeoutExpired:
            _digits_trainer.kill()
