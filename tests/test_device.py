"""Neural Engine residency and the A14 estimate, read from a saved Core ML program.

The estimate's accuracy is measured by bench/device_calibration.py (leave-one-out on the published
rows); these tests check behaviour: the rules fire where they should, the session's T8 programs get a
device section, an fp32 program is off the Neural Engine with a different estimate, rank 6 is flagged.
"""

from __future__ import annotations

import json

import coremltools as ct
import pytest
from coreml_programs import rank_six_package

from effconvert.device import device_report
from effconvert.device.cost import Calibration
from effconvert.device.snapdragon_cost import FEATURES, SnapdragonCalibration


def _entry(outcome, target, quant):
    return next(a for a in outcome.report.to_json()["artifacts"] if (a["target"], a["quant"]) == (target, quant))


def test_calibration_ships_with_its_measured_error():
    calibration = Calibration.load()
    rows = calibration.loo["rows"]
    assert len(rows) == 12 and {r["arch"] for r in rows} >= {"fastvit_s12", "mobileone_s0"}
    assert calibration.band == pytest.approx(max(abs(r["loo_variant_error"]) for r in rows), abs=1e-3)


def test_snapdragon_calibration_ships_with_its_nested_error_as_band():
    calibration = SnapdragonCalibration.load()
    assert {"SM8650 fp16", "SM8650 w8a16", "SM8750 fp16", "SM8750 w8a16"} <= set(calibration.fits)
    for name, fit in calibration.fits.items():
        errors = sorted(abs(r["error"]) for r in fit.loo["rows"])
        assert len(errors) >= 6 and set(fit.features) <= set(FEATURES), name
        assert fit.band == pytest.approx(errors[round(0.9 * (len(errors) - 1))], abs=1e-3), name
        assert fit.loo["p90_abs_error"] == pytest.approx(fit.band, abs=1e-3), name


def test_fp16_program_runs_on_the_engine_and_fp32_does_not(t8_all):
    fp16, fp32 = (_entry(t8_all, "coreml", q)["device"] for q in ("fp16", "fp32"))
    assert fp16["device"] == "apple-a14-ane" and "not a measurement" in fp16["what"]
    lat = fp16["latency_ms"]
    assert lat["low"] < lat["estimate"] < lat["high"]
    assert fp16["ops"]["ane"] >= 0.9 * fp16["ops"]["total"]
    assert fp32["ops"]["ane"] <= 2 and {o["rule"] for o in fp32["ops"]["off_ane"]} == {2}
    assert all(o["source"] for o in fp32["ops"]["off_ane"])
    assert fp32["latency_ms"]["estimate"] > 1.5 * lat["estimate"]
    assert 0 < fp16["padding"]["waste"] < 1


def test_device_command_and_inspect_read_a_package(cli, t8_all):
    package = t8_all.out_dir / "fastvit_t8_fp16.mlpackage"
    result = cli("device", package, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert set(report) >= {"device", "latency_ms", "ops", "segments", "calibration"}
    assert set(report["latency_ms"]) == {"estimate", "low", "high"}
    result = cli("inspect", package)
    assert result.exit_code == 0 and "A14 estimate" in result.output


def test_rank_six_tensor_is_flagged(tmp_path):
    path = rank_six_package(tmp_path / "rank.mlpackage", fp16=True)
    report = device_report(path).to_json()
    flagged = [o for o in report["ops"]["off_ane"] if o["type"] == "transpose"]
    assert flagged and flagged[0]["rule"] == 1 and "rank" in flagged[0]["reason"], report["ops"]


@pytest.mark.skipif(
    not hasattr(ct.models, "compute_plan") or __import__("platform").system() != "Darwin",
    reason="MLComputePlan runs only on macOS",
)
def test_residency_agrees_with_mlcomputeplan_on_macos(t8_all):
    from coremltools.models.compute_plan import MLComputePlan

    package = t8_all.out_dir / "fastvit_t8_fp16.mlpackage"
    compiled = ct.models.MLModel(str(package)).get_compiled_model_path()
    plan = MLComputePlan.load_from_path(compiled, compute_units=ct.ComputeUnit.ALL)
    function = plan.model_structure.program.functions["main"]
    on_ane = sum(
        1
        for op in function.block.operations
        if (usage := plan.get_compute_device_usage_for_mlprogram_operation(op)) is not None
        and type(usage.preferred_compute_device).__name__ == "MLNeuralEngineComputeDevice"
    )
    assert (
        abs(on_ane - device_report(package).to_json()["ops"]["ane"])
        <= 0.1 * device_report(package).to_json()["ops"]["total"]
    )
