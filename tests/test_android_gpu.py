"""LiteRT GPU delegate readiness of a .tflite (device/android_gpu.py, the rules in device/gpu_rules.py):
the ops it would leave on the CPU, each with the rule, read from the file itself."""

from __future__ import annotations

import json

import pytest
from conftest import artifact

from effconvert.device.gpu_rules import why_not
from effconvert.device.tflite_ops import Op, TensorSpec


def spec(*shape, constant=False, type="FLOAT32"):
    return TensorSpec(tuple(shape), type, constant)


@pytest.mark.parametrize(
    "op, reason",
    [
        (Op("CONV_2D", "c", (spec(1, 8, 8, 3), spec(4, 3, 3, 3, constant=True)), (spec(1, 8, 8, 4),)), None),
        (Op("ADD", "a", (spec(1, 4, 4, 8), spec(1, 8)), (spec(1, 4, 4, 8),)), None),  # [b,c] to [b,x,y,c]
        (Op("ADD", "a", (spec(1, 4, 4, 8), spec(4, 8)), (spec(1, 4, 4, 8),)), "broadcasting [1, 4, 4, 8] with [4, 8]"),
        (Op("SLICE", "s", (spec(1, 2, 3, 4, 5), spec(5), spec(5)), (spec(1, 1, 3, 4, 5),)), "SLICE of a 5D tensor"),
        (Op("SOFTMAX", "s", (spec(1, 10),), (spec(1, 10),), {"Beta": 2.0}), "SOFTMAX with beta != 1"),
        (Op("MEAN", "m", (spec(1, 4, 4, 8), spec(2)), (spec(1, 8),)), "expects 1 runtime and 1 constant"),
        (Op("PAD", "p", (spec(1, 2, 3, 4, 5), spec(5, 2, constant=True)), (spec(1, 2, 5, 6, 5),)), "paddings"),
        (Op("ARG_MAX", "am", (spec(1, 10), spec(1, constant=True)), (spec(1, type="INT64"),)), "not an op"),
        (Op("SUB", "s", (spec(1, 4), spec(1, 4)), (spec(1, 4),), {"FusedActivationFunction": 5}), "SIGN_BIT"),
        (Op("GELU", "g", (spec(1, 4),), (spec(1, 4),)), None),
    ],
)
def test_rules_name_what_the_delegate_refuses(op, reason):
    found = why_not(op)
    assert (found is None) if reason is None else (found is not None and reason in found), found


def test_an_op_outside_the_delegate_is_named_from_the_converted_file(tmp_path, cli):
    """topk lowers to STABLEHLO_SORT (no GPU implementation) and a 2D SLICE (the delegate's SLICE is
    3D/4D): both named, with the rule; the ReLU and the mean before them are taken."""
    import litert_torch
    import torch

    class TopK(torch.nn.Module):
        def forward(self, x):
            y = torch.relu(x)
            return torch.topk(y.flatten(1), 3).values + y.mean()

    path = tmp_path / "topk.tflite"
    litert_torch.convert(TopK().eval(), (torch.randn(1, 4, 8, 8),)).export(str(path))
    result = cli("device", path, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    off = {o["type"]: o["reason"] for o in report["ops"]["off_gpu"]}
    assert off.keys() == {"STABLEHLO_SORT", "SLICE"}, off
    assert "not an op the GPU delegate implements" in off["STABLEHLO_SORT"] and "2D" in off["SLICE"]
    assert report["ops"]["gpu"] == report["ops"]["total"] - 2 and report["whole"] is False
    assert "latency_ms" not in report  # no GPU measurements to calibrate an estimate on


def test_fastvit_tflite_runs_whole_on_the_gpu_and_the_report_says_so(t8_all, cli):
    entry = artifact(t8_all, "tflite", "fp32")
    assert entry.device is not None and entry.device.residency.accelerator == "gpu"
    assert entry.device.residency.off == () and entry.device.details["whole"] is True
    result = cli("device", t8_all.out_dir / entry.path)
    assert result.exit_code == 0 and f"takes all {entry.device.residency.total} ops" in result.output
