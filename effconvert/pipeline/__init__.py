"""The stages in order — the only place that knows the order.

    check options -> load -> inputs -> fuse -> per (target, quant): convert -> validate -> report

Options are refused before anything is loaded or written (exit 2, nothing on disk); artifacts and
the report are each written atomically. The checks — PyTorch reference, fusion proof, validation
of each artifact on its runtime — and some conversions run in a second process beside this
one (second_process.py); a failed fusion proof removes what this run wrote. Progress goes
through `on_step`, so this module has no UI.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from ..atomic import remove_stale_temporaries, write_text_atomic
from ..convert import Artifact, ExportOptions, ModelInfo, convert
from ..targets import artifact_name
from ..errors import ConversionFailed, ParityFailed
from ..fuse import FusionProof, fuse_unproven, proof_failure
from ..labels import labels_for
from ..load import FAMILIES, LoadedModel, load_checkpoint
from ..quantize import SIMULATION_BATCH, Calibration, QuantPlan, layer_sensitivity, simulated_psnr
from ..quantize import fallback as fallback_policy
from ..report import SCHEMA, versions, write_report
from ..report.html import render_html
from ..request import Request, check_memory, check_request
from ..workspace import output_lock, private_tempdir
from ..validate import gate_for, input_set
from ..validate.gates import DEFAULT_GATES, FP32_NOISE_FACTOR
from .second_process import Checked, Converted, Prepared, SecondProcess

StepCallback = Callable[[str, str], None]          # (step, message): a step finished
StartCallback = Callable[[str], None]              # what is starting now, e.g. "converting tflite fp16"

PROOF_SAMPLES = 8
CALIBRATION_SEED = 77_001         # built-in calibration images, disjoint from the validation seed


@dataclass
class _Shared:
    """What every artifact of one run shares: the model, where to write, where its checks run."""

    model: torch.nn.Module
    info: ModelInfo
    out_dir: Path
    sample: torch.Tensor
    export: ExportOptions
    request: Request
    checks: SecondProcess
    prepared: Future               # of checks.Prepared: the reference, proof and noise floor
    on_step: StepCallback
    on_start: StartCallback
    pending: dict[int, Future] = field(default_factory=dict)     # id(entry) -> its validation
    # pair index -> (target, quant, future of checks.Converted): pairs the second process converts
    elsewhere: dict[int, tuple[str, str, Future]] = field(default_factory=dict)
    paths: list[Path] = field(default_factory=list)       # every artifact this run set out to write
    plots: dict[str, str] = field(default_factory=dict)          # artifact name -> report plot
    proof_reported: bool = False


class FusionProofFailed(ParityFailed):
    """The fusion proof failed after conversions had started: what they wrote is removed."""


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
        on_start: StartCallback = lambda what: None, *, second_process: bool | None = None) -> Outcome:
    """Check everything, then load, convert, validate and report. Exit-2 refusals all happen before
    the first write; converters' temporary files go to a private folder removed at the end.
    `second_process`: checks and some conversions in a second process (second_process.py; None:
    when there are two cores; a batch job passes False — a batch runs jobs side by side)."""
    pairs = check_request(request)
    with private_tempdir() as tmp:
        checks = SecondProcess(second_process)
        try:
            outcome = _run(request, pairs, on_step, on_start, checks, tmp)
        except BaseException:
            checks.close(aborted=True)
            raise
        checks.close()
        return outcome


def _run(request: Request, pairs: list[tuple[str, str]], on_step: StepCallback, on_start: StartCallback,
         checks: SecondProcess, tmp: Path) -> Outcome:
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

    on_start("preparing inputs and fusing")
    inputs = input_set(loaded.preprocessing, samples=request.samples, folder=request.val_dir)
    labelled = f", {len(inputs.class_folders)} classes" if inputs.labels is not None else ""
    on_step("inputs", f"{len(inputs.inputs)} inputs: {inputs.source}{labelled}")
    proof_inputs = inputs.inputs[:PROOF_SAMPLES]
    if len(proof_inputs) < PROOF_SAMPLES:
        proof_inputs = input_set(loaded.preprocessing, samples=PROOF_SAMPLES).inputs
    unproven = fuse_unproven(loaded.model) if request.fuse else None
    # The second process proves the fusion and computes the reference on these very models while
    # the conversions run; saved before the cast below, which changes the fused model in place.
    models_file = tmp / "models.pt"
    torch.save((loaded.model, unproven), models_file)
    prepared = checks.prepare(models_file, inputs, proof_inputs)
    model = unproven.model64.float().eval() if unproven is not None else loaded.model

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
    shared = _Shared(model, info, out_dir, torch.from_numpy(inputs.inputs[:1]), request.export_options(),
                     request, checks, prepared, on_step, on_start)
    with output_lock(out_dir):                     # from here on, this run writes into out_dir
        remove_stale_temporaries(out_dir)          # left by a killed run (SIGKILL skips every finally)
        done: dict[int, tuple[dict, Artifact | None]] = {}      # pair index -> (entry, artifact)
        try:
            sensitivity = None
            if calibration is not None:
                on_start("ranking layers by int8 sensitivity")
                sensitivity = layer_sensitivity(model, calibration.inputs)
                on_step("sensitivity", "most int8-sensitive layers: " + ", ".join(
                    f"{s.name} {s.psnr_db:.1f} dB" for s in sensitivity[:3]))
            fp32_ops = tuple(FAMILIES[loaded.family].coreml_fp32_ops)
            todo = list(enumerate(pairs))
            while todo:
                handed = _hand_to_second_process(shared, todo, fp32_ops)
                if handed is not None:
                    todo.remove(handed)
                    continue
                index, (target, quant) = todo.pop(0)
                plan = QuantPlan(quant, calibration=calibration if quant == "int8" else None,
                                 fp32_ops=fp32_ops if target == "coreml" else (), int8_io=request.int8_io)
                entry, artifact = _build_one(shared, target, plan)
                if request.fallback and quant == "int8" and artifact is not None:
                    _finish(shared, entry)
                    if not entry["parity"]["passed"]:
                        entry, artifact = _float_fallback(shared, target, plan, entry, artifact, sensitivity)
                done[index] = (entry, artifact)
                _report_ready(shared, done, block=False)
            if shared.pending or shared.elsewhere:
                on_start("waiting for the second process's conversions and validations")
            _report_ready(shared, done, block=True)
            ready: Prepared = _proof(shared)
        except BaseException as exc:
            # Stop the second process while this run still holds the folder, then sweep what a
            # conversion it had under way left. Finished artifacts stay (an interrupt says which),
            # except after a failed fusion proof: they were made from a model proven wrong.
            checks.close(aborted=True)
            remove_stale_temporaries(out_dir)
            if isinstance(exc, FusionProofFailed):
                _remove(shared.paths)
            raise
        entries = [done[i][0] for i in range(len(pairs))]              # the order asked for
        artifacts = [done[i][1] for i in range(len(pairs)) if done[i][1] is not None]

        report = {
            "schema": SCHEMA,
            "passed": ready.proof.passed and all(e["parity"]["passed"] for e in entries if "parity" in e)
                      and not any(e.get("error") for e in entries),
            "model": loaded.report_dict(),
            "options": request.options(),
            "fusion": {**ready.proof.report_dict(), "steps": unproven.steps if unproven is not None else {}},
            **({"calibration": {"source": calibration.source, "samples": len(calibration),
                                "builtin": calibration.builtin}} if calibration is not None else {}),
            **({"int8_sensitivity": {"method": "one layer at a time in simulated W8A8, PSNR of the logits vs float "
                                               f"on {min(len(calibration.inputs), SIMULATION_BATCH)} calibration images",
                                     "layers": [s.report_dict() for s in sensitivity]}} if sensitivity else {}),
            "inputs": {"source": inputs.source, "samples": int(len(inputs.inputs)),
                       **({"classes": len(inputs.class_folders), "reference_accuracy": ready.reference_accuracy}
                          if ready.reference_accuracy is not None else {})},
            "reference": {"fp32_noise_floor": ready.noise_floor, "noise_floor_inputs": len(proof_inputs),
                          "fp32_gate_rule": f"max_rel_err <= max({DEFAULT_GATES['fp32'].max_rel:g}, "
                                            f"{FP32_NOISE_FACTOR:g} x fp32_noise_floor)"},
            "artifacts": entries,
            "labels": {"source": labels_source, "count": len(labels)},
            "versions": versions(),
            "timings_s": {"total": round(time.perf_counter() - started, 3)},
        }
        report_path = write_report(report, out_dir)
        write_text_atomic(out_dir / "report.html", render_html(report, shared.plots))
        return Outcome(report, report_path, out_dir, artifacts)


def _build_one(shared: _Shared, target: str, plan: QuantPlan) -> tuple[dict, Artifact | None]:
    """Convert one (target, plan) here and hand it to the second process for validation on its
    runtime (`_finish` fills in the verdict); (report entry, artifact)."""
    shared.on_start(f"converting {target} {plan.quant}" + (f" ({len(plan.float_layers)} layers float)"
                                                           if plan.float_layers else ""))
    shared.paths.append(shared.out_dir / artifact_name(shared.info.arch, target, plan.quant))
    try:
        artifact = convert(shared.model, shared.info, target=target, plan=plan, out_dir=shared.out_dir,
                           sample=shared.sample, options=shared.export)
    except ConversionFailed as exc:
        return _failed_entry(shared, target, plan.quant, exc.message), None
    entry = _entry_for(shared, artifact)
    if shared.request.validate:
        shared.pending[id(entry)] = shared.checks.validate(artifact, shared.request.gate)
    return entry, artifact


def _hand_to_second_process(shared: _Shared, todo: list, fp32_ops: tuple) -> tuple | None:
    """Unless it already has a conversion queued, the second process converts (and validates) the
    last pair still to do, while this one goes on from the first: the two meet in the middle,
    each converter keeping one core busy. int8 stays here (calibration, sensitivity, the float
    fallback's decisions)."""
    if len(todo) < 2 or not shared.checks.beside or any(not f.done() for *_, f in shared.elsewhere.values()):
        return None
    for index, (target, quant) in reversed(todo[1:]):
        if quant != "int8":
            plan = QuantPlan(quant, fp32_ops=fp32_ops if target == "coreml" else ())
            shared.elsewhere[index] = (target, quant, shared.checks.convert(
                target, plan, shared.info, shared.out_dir, shared.export, shared.request.gate,
                shared.request.validate))
            shared.paths.append(shared.out_dir / artifact_name(shared.info.arch, target, quant))
            return index, (target, quant)
    return None


def _entry_for(shared: _Shared, artifact: Artifact) -> dict:
    entry: dict[str, Any] = {"target": artifact.target, "quant": artifact.quant}
    entry.update(path=artifact.path.name, size_bytes=artifact.size_bytes, sha256=artifact.sha256,
                 input_layout=artifact.input_layout,
                 timings_s={"convert": round(artifact.convert_s, 3),
                            "toolchain": round(artifact.toolchain_s, 3)}, notes=artifact.notes)
    shared.on_step("convert", f"{artifact.path.name} ({artifact.size_bytes / 1e6:.1f} MB)")
    if artifact.target == "coreml":
        entry["device"] = _device(artifact.path)
    if not shared.request.validate:
        entry.update(runtime="unvalidated", parity={"passed": True, "skipped": True})
    return entry


def _failed_entry(shared: _Shared, target: str, quant: str, message: str) -> dict:
    shared.on_step("convert", f"{target} {quant}: FAILED {message}")
    return {"target": target, "quant": quant, "error": message, "path": None}


def _finish(shared: _Shared, entry: dict) -> None:
    """Wait for an entry's validation (if any) and write its verdict into the entry."""
    prepared = _proof(shared)
    if entry.get("parity", {}).get("skipped"):
        entry["parity"]["thresholds"] = gate_for(entry["quant"], shared.request.gate,
                                                 fp32_noise_floor=prepared.noise_floor).as_dict()
        return
    future = shared.pending.pop(id(entry), None)
    if future is not None:
        _apply(shared, entry, future.result())


def _apply(shared: _Shared, entry: dict, checked: Checked) -> None:
    validation = checked.validation
    entry.update(runtime=validation.runtime, parity=validation.report_dict())
    entry["timings_s"]["validate"] = round(validation.validate_s, 3)
    if checked.plot is not None:
        shared.plots[entry["path"]] = checked.plot
    verdict = "passed" if validation.passed else "FAILED " + "; ".join(validation.failures)
    where = f"on {validation.runtime}" if validation.parity is not None else "not validated"
    shared.on_step("validate", f"{entry['path']} {where}: {verdict}")


def _report_ready(shared: _Shared, done: dict[int, tuple[dict, Artifact | None]], *, block: bool) -> None:
    """Collect what the second process finished — its conversions into `done`, verdicts into
    their entries; without waiting between conversions (block=False), all of it at the end."""
    if block or shared.prepared.done():
        _proof(shared)
    for index, (target, quant, future) in sorted(shared.elsewhere.items()):
        if block or future.done():
            del shared.elsewhere[index]
            converted: Converted = future.result()
            if converted.artifact is None:
                done[index] = (_failed_entry(shared, target, quant, converted.error or "failed"), None)
                continue
            entry = _entry_for(shared, converted.artifact)
            if converted.checked is not None:
                _apply(shared, entry, converted.checked)
            done[index] = (entry, converted.artifact)
    for entry, _ in list(done.values()):
        future = shared.pending.get(id(entry))
        if block or (future is not None and future.done()):
            _finish(shared, entry)          # at the end also the unvalidated entries' thresholds


def _proof(shared: _Shared) -> Prepared:
    """The reference and the fusion proof; a failed proof ends the run (ParityFailed)."""
    prepared: Prepared = shared.prepared.result()
    if not shared.proof_reported:
        shared.proof_reported = True
        proof: FusionProof = prepared.proof
        if not proof.passed:
            failure = proof_failure(proof)
            raise FusionProofFailed(failure.message, hint=failure.hint)
        accuracy = ("" if prepared.reference_accuracy is None
                    else f"; reference accuracy {prepared.reference_accuracy:.3f}")
        shared.on_step("fuse", ("skipped (--no-fuse)" if proof.skipped else
                                f"{proof.modules_fused} modules fused, max rel err {proof.max_rel_err:.1e}")
                       + accuracy)
    return prepared


def _remove(paths: list[Path]) -> None:
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


# The fallback's latency cost is timed where the runtime is the device's own (LiteRT's CPU kernels).
# A Core ML package runs here only on the MIL executor, whose time says nothing about a phone.
LATENCY_TARGETS = ("tflite",)
LATENCY_ELSEWHERE = "not measured: Core ML latency belongs to the device (Xcode's performance report)"


def _float_fallback(shared: _Shared, target: str, plan: QuantPlan, entry, artifact, sensitivity):
    """The int8 artifact missed its gate: keep the most sensitive layers in float, as many as the
    simulation predicts the gate needs (quantize/fallback.py) — at most two more conversions.
    Reports the prediction, each attempt and what the float layers cost."""
    if artifact is None or not sensitivity or "psnr_db" not in entry.get("parity", {}):
        return entry, artifact
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
            new_entry, new_artifact = _build_one(
                shared, target, plan.keeping_float(tuple(s.name for s in sensitivity[:count])))
            if new_artifact is None:
                break
            _finish(shared, new_entry)
            entry, artifact = new_entry, new_artifact
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
    return entry, artifact


def _latencies_ms(a: Path, b: Path, rounds: int = 2) -> tuple[float, float]:
    """Median latency of two artifacts, timed alternately (a, b, a, b) so that a busy machine
    weighs on both; the best round of each. What the float fallback costs."""
    from ..measure.artifacts import bench_artifact

    times: dict[Path, list[float]] = {a: [], b: []}
    for _ in range(rounds):
        for path in (a, b):
            times[path].append(bench_artifact(path, threads=2, runs=10).timing.median_ms)
    return round(min(times[a]), 3), round(min(times[b]), 3)


def _device(path: Path) -> dict:
    """The Neural Engine residency and A14 estimate of a Core ML program (an estimate, labelled so)."""
    from ..device import device_report

    try:
        return device_report(path)
    except Exception as exc:  # noqa: BLE001 - an estimate that cannot be made is reported, never fatal
        return {"error": f"no device estimate: {type(exc).__name__}: {exc}"[:300]}


def _model_info(loaded: LoadedModel, labels: list[str], labels_source: str) -> ModelInfo:
    note = loaded.report_dict()["weights"]
    return ModelInfo(loaded.arch, loaded.checkpoint.name, loaded.sha256, loaded.source_layout,
                     loaded.num_classes, loaded.preprocessing, tuple(labels), labels_source, note)
