"""The stages in order — the only place that knows the order.

    check options -> load -> inputs + reference -> fuse (+ proof) -> per (target, quant):
    convert -> validate -> report.json

Options are refused before anything is loaded or written (exit 2, nothing on disk); artifacts and
the report are each written atomically. Progress goes through `on_step`, so this module has no UI.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .atomic import remove_stale_temporaries, write_text_atomic
from .convert import Artifact, ExportOptions, ModelInfo, convert
from .errors import ConversionFailed
from .fuse import fuse_model
from .labels import labels_for
from .load import FAMILIES, LoadedModel, load_checkpoint
from .quantize import SIMULATION_BATCH, Calibration, QuantPlan, layer_sensitivity, simulated_psnr
from .quantize import fallback as fallback_policy
from .report import SCHEMA, versions, write_report
from .report.html import render_html
from .request import Request, check_memory, check_request
from .workspace import output_lock, private_tempdir
from .validate import Validation, gate_for, input_set, task_accuracy, validate_artifact
from .validate.gates import DEFAULT_GATES, FP32_NOISE_FACTOR

StepCallback = Callable[[str, str], None]          # (step, message): a step finished
StartCallback = Callable[[str], None]              # what is starting now, e.g. "converting tflite fp16"

PROOF_SAMPLES = 8
REFERENCE_BATCH = 8
CALIBRATION_SEED = 77_001         # built-in calibration images, disjoint from the validation seed


@dataclass(frozen=True)
class _Shared:
    """What every artifact of one run shares: the model, where to write, what to compare against."""

    model: torch.nn.Module
    info: ModelInfo
    out_dir: Path
    sample: torch.Tensor
    export: ExportOptions
    request: Request
    inputs: Any                       # validate.InputSet
    reference: np.ndarray
    noise_floor: float
    on_step: StepCallback
    on_start: StartCallback


@dataclass
class Outcome:
    report: dict[str, Any]
    report_path: Path
    out_dir: Path
    artifacts: list[Artifact] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if any(a.get("error") for a in self.report["artifacts"]):
            return ConversionFailed.exit_code
        return 0 if self.report["passed"] else 1


def run(request: Request, on_step: StepCallback = lambda step, msg: None,
        on_start: StartCallback = lambda what: None) -> Outcome:
    """Check everything, then load, convert, validate and report. Exit-2 refusals all happen before
    the first write; converters' temporary files go to a private folder removed at the end."""
    pairs = check_request(request)
    with private_tempdir():
        return _run(request, pairs, on_step, on_start)


def _run(request: Request, pairs: list[tuple[str, str]], on_step: StepCallback, on_start: StartCallback) -> Outcome:
    started = time.perf_counter()
    on_start("loading the checkpoint")
    loaded = load_checkpoint(request.checkpoint, arch=request.arch, image_size=request.image_size)
    on_step("load", f"{loaded.arch} from {loaded.source_layout} layout ({loaded.params / 1e6:.1f}M params)")
    if any(v is not None for v in (request.mean, request.std, request.crop_pct)):
        loaded.preprocessing = loaded.preprocessing.with_overrides(mean=request.mean, std=request.std,
                                                                   crop_pct=request.crop_pct)
        loaded.preprocessing_from += " with --mean/--std/--crop-pct overrides"
    labels, labels_source = labels_for(loaded.num_classes, request.labels_file, known=loaded.labels)
    check_memory(request, *loaded.preprocessing.size, any(quant == "int8" for _, quant in pairs))

    on_start("preparing inputs and the PyTorch reference")
    inputs = input_set(loaded.preprocessing, samples=request.samples, folder=request.val_dir)
    reference = _logits(loaded.model, inputs.inputs)
    reference_accuracy = None if inputs.labels is None else task_accuracy(reference, inputs.labels)
    labelled = (f", {len(inputs.class_folders)} classes, reference accuracy {reference_accuracy:.3f}"
                if reference_accuracy is not None else "")
    on_step("inputs", f"{len(inputs.inputs)} inputs: {inputs.source}{labelled}")

    proof_inputs = inputs.inputs[:PROOF_SAMPLES]
    if len(proof_inputs) < PROOF_SAMPLES:
        proof_inputs = input_set(loaded.preprocessing, samples=PROOF_SAMPLES).inputs
    on_start("fusing and proving the fusion")
    fused = fuse_model(loaded.model, inputs=torch.from_numpy(proof_inputs), enabled=request.fuse)
    on_step("fuse", "skipped (--no-fuse)" if fused.proof.skipped else
            f"{fused.proof.modules_fused} modules fused, max rel err {fused.proof.max_rel_err:.1e}")
    # What fp32 itself costs (PyTorch fp32 vs float64), on the proof's inputs: the proof has already
    # run the model in float64 on them, so the fp32 gate's floor costs nothing more.
    noise_floor = fused.proof.fp32_noise_floor if not fused.proof.skipped else \
        _fp32_noise_floor(loaded.model, proof_inputs)

    out_dir = request.output_dir
    calibration = None
    if any(quant == "int8" for _, quant in pairs):
        # Never the validation images: a different built-in seed, or the user's --calib folder.
        images = input_set(loaded.preprocessing, samples=request.calib_samples, folder=request.calib_dir,
                           seed=CALIBRATION_SEED, flag="--calib")
        calibration = Calibration(images.inputs, images.pixels, images.source, builtin=request.calib_dir is None)
        on_step("calibrate", f"{len(calibration)} calibration images: {calibration.source}"
                + ("" if request.calib_dir else " (no --calib given: built-in set)"))
    info = _model_info(loaded, labels, labels_source)
    shared = _Shared(fused.model, info, out_dir, torch.from_numpy(inputs.inputs[:1]), request.export_options(),
                     request, inputs, reference, noise_floor, on_step, on_start)
    with output_lock(out_dir):                     # from here on, this run writes into out_dir
        remove_stale_temporaries(out_dir)          # left by a killed run (SIGKILL skips every finally)
        entries, artifacts, outputs = [], [], {}
        sensitivity = None
        if calibration is not None:
            on_start("ranking layers by int8 sensitivity")
            sensitivity = layer_sensitivity(fused.model, calibration.inputs)
            on_step("sensitivity", "most int8-sensitive layers: " + ", ".join(
                f"{s.name} {s.psnr_db:.1f} dB" for s in sensitivity[:3]))
        fp32_ops = tuple(FAMILIES[loaded.family].coreml_fp32_ops)
        for target, quant in pairs:
            plan = QuantPlan(quant, calibration=calibration if quant == "int8" else None,
                             fp32_ops=fp32_ops if target == "coreml" else (), int8_io=request.int8_io)
            entry, artifact, logits = _build_one(shared, target, plan)
            missed = not entry.get("parity", {}).get("passed", True)
            if request.fallback and missed and quant == "int8":
                entry, artifact, logits = _float_fallback(shared, target, plan, entry, artifact, logits, sensitivity)
            entries.append(entry)
            if artifact is not None:
                artifacts.append(artifact)
            if logits is not None:
                outputs[artifact.path.name] = logits

        report = {
            "schema": SCHEMA,
            "passed": fused.proof.passed and all(e["parity"]["passed"] for e in entries if "parity" in e)
                      and not any(e.get("error") for e in entries),
            "model": loaded.report_dict(),
            "options": request.options(),
            "fusion": {**fused.proof.report_dict(), "steps": fused.steps},
            **({"calibration": {"source": calibration.source, "samples": len(calibration),
                                "builtin": calibration.builtin}} if calibration is not None else {}),
            **({"int8_sensitivity": {"method": "one layer at a time in simulated W8A8, PSNR of the logits vs float "
                                               f"on {min(len(calibration.inputs), SIMULATION_BATCH)} calibration images",
                                     "layers": [s.report_dict() for s in sensitivity]}} if sensitivity else {}),
            "inputs": {"source": inputs.source, "samples": int(len(inputs.inputs)),
                       **({"classes": len(inputs.class_folders), "reference_accuracy": reference_accuracy}
                          if reference_accuracy is not None else {})},
            "reference": {"fp32_noise_floor": noise_floor, "noise_floor_inputs": len(proof_inputs),
                          "fp32_gate_rule": f"max_rel_err <= max({DEFAULT_GATES['fp32'].max_rel:g}, "
                                            f"{FP32_NOISE_FACTOR:g} x fp32_noise_floor)"},
            "artifacts": entries,
            "labels": {"source": labels_source, "count": len(labels)},
            "versions": versions(),
            "timings_s": {"total": round(time.perf_counter() - started, 3)},
        }
        report_path = write_report(report, out_dir)
        write_text_atomic(out_dir / "report.html", render_html(report, reference, outputs))
        return Outcome(report, report_path, out_dir, artifacts)




def _build_one(shared: _Shared, target: str, plan: QuantPlan) -> tuple[dict, Artifact | None, np.ndarray | None]:
    """Convert one (target, plan), validate it on its runtime; (report entry, artifact, its logits)."""
    entry: dict[str, Any] = {"target": target, "quant": plan.quant}
    shared.on_start(f"converting {target} {plan.quant}" + (f" ({len(plan.float_layers)} layers float)"
                                                           if plan.float_layers else ""))
    try:
        artifact = convert(shared.model, shared.info, target=target, plan=plan, out_dir=shared.out_dir,
                           sample=shared.sample, options=shared.export)
    except ConversionFailed as exc:
        entry.update(error=exc.message, path=None)
        shared.on_step("convert", f"{target} {plan.quant}: FAILED {exc.message}")
        return entry, None, None
    entry.update(path=artifact.path.name, size_bytes=artifact.size_bytes, sha256=artifact.sha256,
                 input_layout=artifact.input_layout,
                 timings_s={"convert": round(artifact.convert_s, 3),
                            "toolchain": round(artifact.toolchain_s, 3)}, notes=artifact.notes)
    shared.on_step("convert", f"{artifact.path.name} ({artifact.size_bytes / 1e6:.1f} MB)")
    if target == "coreml":
        entry["device"] = _device(artifact.path)
    gate = gate_for(plan.quant, shared.request.gate, fp32_noise_floor=shared.noise_floor)
    if not shared.request.validate:
        entry.update(runtime="unvalidated",
                     parity={"passed": True, "skipped": True, "thresholds": gate.as_dict()})
        return entry, artifact, None
    shared.on_start(f"validating {artifact.path.name} on its runtime")
    validation: Validation = validate_artifact(artifact, shared.inputs, shared.reference, gate=gate)
    entry.update(runtime=validation.runtime, parity=validation.report_dict())
    entry["timings_s"]["validate"] = round(validation.validate_s, 3)
    verdict = "passed" if validation.passed else "FAILED " + "; ".join(validation.failures)
    where = f"on {validation.runtime}" if validation.parity is not None else "not validated"
    shared.on_step("validate", f"{artifact.path.name} {where}: {verdict}")
    return entry, artifact, validation.outputs


# The fallback's latency cost is timed where the runtime is the device's own (LiteRT's CPU kernels).
# A Core ML package runs here only on the MIL executor, whose time says nothing about a phone.
LATENCY_TARGETS = ("tflite",)
LATENCY_ELSEWHERE = "not measured: Core ML latency belongs to the device (Xcode's performance report)"


def _float_fallback(shared: _Shared, target: str, plan: QuantPlan, entry, artifact, logits, sensitivity):
    """The int8 artifact missed its gate: keep the most sensitive layers in float, as many as the
    simulation predicts the gate needs (quantize/fallback.py) — at most two more conversions.
    Reports the prediction, each attempt and what the float layers cost."""
    if artifact is None or not sensitivity or "psnr_db" not in entry.get("parity", {}):
        return entry, artifact, logits
    first = {"size_bytes": entry["size_bytes"], "psnr_db": entry["parity"]["psnr_db"],
             "failed": [c["text"] for c in entry["parity"].get("checks", []) if not c["passed"]]}
    shared.on_start("predicting how many layers the gate needs in float (simulated W8A8)")
    sets = fallback_policy.candidates(sensitivity)
    simulated = simulated_psnr(shared.model, plan.calibration.inputs, sets)
    predictions = [fallback_policy.Prediction(len(s), score) for s, score in zip(sets, simulated)]
    offset = first["psnr_db"] - predictions[0].simulated_psnr_db          # runtime vs simulation, measured
    gate_psnr = gate_for(plan.quant, shared.request.gate).psnr
    with tempfile.TemporaryDirectory(prefix="effconvert-all-int8-") as keep:
        all_int8 = Path(keep) / artifact.path.name           # kept to time against the final artifact
        if target in LATENCY_TARGETS:
            shutil.copyfile(artifact.path, all_int8)
        attempts, count = [], 0
        for _ in range(fallback_policy.MAX_CONVERSIONS):
            chosen = fallback_policy.choose(predictions, offset, gate_psnr, above=count)
            if chosen == count:
                break
            count = chosen
            predicted = next(p for p in predictions if p.float_layers == count)
            shared.on_step("fallback", f"{entry['path']}: missed its gate; {count} layer(s) in float "
                                       f"(predicted {predicted.predicted(offset):.1f} dB)")
            new_entry, new_artifact, new_logits = _build_one(
                shared, target, plan.keeping_float(tuple(s.name for s in sensitivity[:count])))
            if new_artifact is None:
                break
            entry, artifact, logits = new_entry, new_artifact, new_logits
            attempts.append({"float_layers": count, "predicted_psnr_db": round(predicted.predicted(offset), 2),
                             "psnr_db": entry["parity"]["psnr_db"], "passed": entry["parity"]["passed"]})
            if entry["parity"]["passed"]:
                break
            offset = entry["parity"]["psnr_db"] - predicted.simulated_psnr_db   # re-measured here
        if attempts:
            entry["fallback"] = {
                "float_layers": [s.name for s in sensitivity[:attempts[-1]["float_layers"]]],
                "attempts": attempts, "all_int8": dict(first),
                "prediction": {"method": "PSNR of the logits with every other conv/linear in simulated W8A8, "
                                         "plus the runtime's measured offset from the simulation",
                               "offset_db": round(first["psnr_db"] - predictions[0].simulated_psnr_db, 2),
                               "simulated": [{"float_layers": p.float_layers,
                                              "simulated_psnr_db": round(p.simulated_psnr_db, 2)}
                                             for p in predictions]},
                "size_ratio": entry["size_bytes"] / first["size_bytes"]}
            if target in LATENCY_TARGETS:
                before, after = _latencies_ms(all_int8, artifact.path)
                entry["fallback"].update(latency_ms=after, latency_ratio=after / before)
                entry["fallback"]["all_int8"]["latency_ms"] = before
            else:
                entry["fallback"]["latency"] = LATENCY_ELSEWHERE
    return entry, artifact, logits


def _latencies_ms(a: Path, b: Path, rounds: int = 2) -> tuple[float, float]:
    """Median latency of two artifacts, timed alternately (a, b, a, b) so that a busy machine
    weighs on both; the best round of each. What the float fallback costs."""
    from .measure.artifacts import bench_artifact

    times: dict[Path, list[float]] = {a: [], b: []}
    for _ in range(rounds):
        for path in (a, b):
            times[path].append(bench_artifact(path, threads=2, runs=10).timing.median_ms)
    return round(min(times[a]), 3), round(min(times[b]), 3)


def _device(path: Path) -> dict:
    """The Neural Engine residency and A14 estimate of a Core ML program (an estimate, labelled so)."""
    from .device import device_report

    try:
        return device_report(path)
    except Exception as exc:  # noqa: BLE001 - an estimate that cannot be made is reported, never fatal
        return {"error": f"no device estimate: {type(exc).__name__}: {exc}"[:300]}


@torch.no_grad()
def _logits(model: torch.nn.Module, inputs: np.ndarray) -> np.ndarray:
    batches = [model(torch.from_numpy(inputs[i:i + REFERENCE_BATCH])).numpy()
               for i in range(0, len(inputs), REFERENCE_BATCH)]
    return np.concatenate(batches)


@torch.no_grad()
def _fp32_noise_floor(model: torch.nn.Module, inputs: np.ndarray) -> float:
    """max rel err of PyTorch fp32 against the same model in float64: what fp32 itself costs."""
    reference = _logits(model, inputs)
    exact = _logits(copy.deepcopy(model).double(), inputs.astype(np.float64))
    scale = float(np.abs(exact).max())
    return float(np.abs(reference - exact).max() / scale) if scale > 0 else 0.0


def _model_info(loaded: LoadedModel, labels: list[str], labels_source: str) -> ModelInfo:
    note = loaded.report_dict()["weights"]
    return ModelInfo(loaded.arch, loaded.checkpoint.name, loaded.sha256, loaded.source_layout,
                     loaded.num_classes, loaded.preprocessing, tuple(labels), labels_source, note)
