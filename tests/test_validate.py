"""Metrics, gates and inputs: known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from effconvert.errors import BadInput
from effconvert.load import Preprocessing
from effconvert.validate import Gate, gate_for, input_set, parity, parse_gate


def test_identical_outputs():
    ref = np.random.default_rng(0).normal(size=(4, 10))
    p = parity(ref.copy(), ref)
    assert p.max_abs_err == 0 and p.max_rel_err == 0 and math.isinf(p.psnr_db)
    assert p.cosine == pytest.approx(1.0) and p.top1_agreement == 1.0 and p.top5_overlap == 1.0


def test_known_errors():
    ref = np.array([[0.0, 1.0, 4.0], [2.0, -4.0, 1.0]])
    out = ref + np.array([[0.0, 0.0, 0.5], [0.0, 0.0, 0.0]])
    p = parity(out, ref)
    assert p.max_abs_err == 0.5 and p.max_rel_err == pytest.approx(0.5 / 4.0)
    rmse = math.sqrt(0.25 / 6)
    assert p.psnr_db == pytest.approx(20 * math.log10(8.0 / rmse))
    swapped = ref[:, ::-1].copy()
    assert parity(swapped, ref).top1_agreement == 0.0


def test_gates():
    p = parity(np.array([[1.0, 2.0]]), np.array([[1.0, 2.1]]))
    assert Gate(max_rel=1e-4).check(p) and not Gate(max_rel=0.1).check(p)
    assert gate_for("fp16") == Gate(psnr=35.0, top1=0.99)
    assert gate_for("fp16", "psnr=40,top1=0.995") == Gate(psnr=40.0, top1=0.995)
    assert parse_gate("max_rel=1e-5") == {"max_rel": 1e-5}
    with pytest.raises(BadInput, match="needs a number"):
        parse_gate("psnr=high")


def test_near_ties_are_reported_but_do_not_fail_the_top1_gate():
    # range of the reference logits: 10 - (-10) = 20; a tie is a margin < 1 % of it (0.2)
    ref = np.array([[10.0, 0.0, -10.0], [5.0, 4.9, -1.0], [3.0, 0.0, 1.0]])
    out = np.array([[10.0, 0.0, -10.0], [4.9, 5.0, -1.0], [0.0, 3.0, 1.0]])
    p = parity(out, ref)
    assert p.top1_agreement == pytest.approx(1 / 3)  # strict: two flips
    assert p.top1_ties == 1 and p.top1_agreement_decided == pytest.approx(1 / 2)
    failures = Gate(top1=0.99).check(p)
    assert failures and "over 2 decided samples" in failures[0]  # the decided flip still fails
    only_tie = parity(out[:2], ref[:2])
    assert only_tie.top1_agreement == 0.5 and Gate(top1=0.99).check(only_tie) == []


def test_fp32_gate_follows_the_models_own_fp32_noise():
    assert gate_for("fp32").max_rel == 1e-4
    assert gate_for("fp32", fp32_noise_floor=1e-6).max_rel == 1e-4
    assert gate_for("fp32", fp32_noise_floor=1e-4).max_rel == pytest.approx(4e-4)
    assert gate_for("fp32", "max_rel=1e-5", fp32_noise_floor=1e-4).max_rel == 1e-5  # --gate wins
    assert gate_for("fp16", fp32_noise_floor=1.0) == gate_for("fp16")


def test_builtin_inputs_are_distinct_and_preprocessed():
    pre = Preprocessing.from_timm("fastvit_t8")
    s = input_set(pre, samples=6)
    assert s.pixels.shape == (6, 256, 256, 3) and s.pixels.dtype == np.uint8
    assert s.inputs.shape == (6, 3, 256, 256) and s.inputs.dtype == np.float32
    assert len({p.tobytes() for p in s.pixels}) == 6
    np.testing.assert_allclose(s.inputs[0, 1, 0, 0], (s.pixels[0, 0, 0, 1] / 255 - 0.456) / 0.224, rtol=1e-5)


def test_image_folder_inputs(tmp_path):
    from PIL import Image

    for i in range(3):
        Image.new("RGB", (400, 300), (i * 40, 100, 200)).save(tmp_path / f"{i}.png")
    pre = Preprocessing.from_timm("fastvit_t8")
    s = input_set(pre, samples=10, folder=tmp_path)
    assert s.inputs.shape == (3, 3, 256, 256)
    with pytest.raises(BadInput, match="no images"):
        input_set(pre, samples=2, folder=tmp_path / "empty" if (tmp_path / "empty").mkdir() is None else None)


def test_labelled_folder_gives_classes_round_robin_and_accuracy(tmp_path):
    from PIL import Image

    from effconvert.validate import task_accuracy

    rng = np.random.default_rng(0)
    for name, count in (("cat", 3), ("dog", 1), ("emu", 2)):
        (tmp_path / name).mkdir()
        for i in range(count):
            Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(tmp_path / name / f"{i}.png")
    pre = Preprocessing((3, 32, 32), (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), 0.9, "center", "bilinear")
    few = input_set(pre, samples=3, folder=tmp_path)
    assert few.class_folders == ("cat", "dog", "emu") and list(few.labels) == [0, 1, 2]  # every class first
    every = input_set(pre, samples=100, folder=tmp_path)
    assert sorted(every.labels.tolist()) == [0, 0, 0, 1, 2, 2]
    logits = np.eye(3)[every.labels]
    logits[0] = [0, 0, 1]  # one wrong of six
    assert task_accuracy(logits, every.labels) == pytest.approx(5 / 6)


def test_an_artifact_the_runtime_refuses_fails_validation_with_the_reason(tmp_path):
    from effconvert.convert.artifact import Artifact
    from effconvert.validate import validate_artifact

    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"TFL3 this is not a flatbuffer")
    inputs = input_set(Preprocessing.from_timm("fastvit_t8", image_size=32), samples=2)
    result = validate_artifact(
        Artifact("tflite", "fp32", broken, 0.0, "nhwc"),
        inputs,
        np.zeros((2, 10), np.float32),
        gate=gate_for("fp32", None),
    )
    assert not result.passed and result.runtime == "unvalidated" and result.verdict.parity is None
    assert "tflite runtime could not run the artifact" in result.failures[0]
