"""The pipeline's steps before and after the pairs are built, each from plain data to plain data:
load, inputs, fuse, calibrate, rank layers, and the report. `run` (pipeline/__init__.py) calls them
in order; progress leaves through `on_event`.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import torch

from ..atomic import remove_stale_temporaries, write_text_atomic
from ..convert import ModelInfo
from ..device import device_report
from ..errors import ParityFailed
from ..fuse import FusionProof, Unproven, fuse_unproven, proof_failure
from ..labels import labels_for
from ..load import FAMILIES, LoadedModel, load_checkpoint
from ..options import Request
from ..quantize import SIMULATION_BATCH, Calibration, LayerSensitivity, layer_sensitivity
from ..quantize.bias_correction import BiasCorrection, with_corrected_biases
from ..quantize.equalize import Equalization, equalized
from ..report import versions, write_report
from ..report.html import render_html
from ..report.schema import (
    ArtifactReport,
    CalibrationInfo,
    Fusion,
    Inputs,
    Reference,
    Report,
    Sensitivity,
    Timings,
)
from ..request import check_memory
from ..targets import TARGETS, Pairs
from ..validate import InputSet, input_set
from ..validate.gates import DEFAULT_GATES, FP32_NOISE_FACTOR
from ..workspace import output_lock
from .build import Built
from .events import Done, EventCallback, Started
from .executor import Executor, Prepared

PROOF_SAMPLES = 8
CALIBRATION_SEED = 77_001  # built-in calibration images, disjoint from the validation seed


class FusionProofFailed(ParityFailed):
    """The fusion proof failed after conversions had started: what they wrote is removed."""

    @classmethod
    def of(cls, proof: FusionProof) -> FusionProofFailed:
        failure = proof_failure(proof)
        return cls(failure.message, hint=failure.hint)


@dataclass(frozen=True)
class Loaded:
    model: LoadedModel
    labels: tuple[str, ...]
    labels_source: str

    @property
    def info(self) -> ModelInfo:
        loaded = self.model
        return ModelInfo(
            loaded.arch,
            loaded.checkpoint.name,
            loaded.sha256,
            loaded.source_layout,
            loaded.num_classes,
            loaded.preprocessing,
            self.labels,
            self.labels_source,
            loaded.summary().weights,
        )


def load(request: Request, pairs: Pairs, on_event: EventCallback) -> Loaded:
    """The checkpoint read and remapped into its timm model; the checks that needed it."""
    on_event(Started("loading the checkpoint"))
    clock = time.perf_counter()
    loaded = load_checkpoint(request.checkpoint, arch=request.arch, image_size=request.image_size)
    if any(v is not None for v in (request.mean, request.std, request.crop_pct)):
        loaded.preprocessing = loaded.preprocessing.with_overrides(
            mean=request.mean, std=request.std, crop_pct=request.crop_pct
        )
        loaded.preprocessing_from += " with --mean/--std/--crop-pct overrides"
    labels, source = labels_for(loaded.num_classes, request.labels, known=loaded.labels)
    check_memory(request, *loaded.preprocessing.size, pairs.calibrated)
    on_event(
        Done(
            "load",
            f"{loaded.arch} from {loaded.source_layout} layout ({loaded.params / 1e6:.1f}M params)",
            time.perf_counter() - clock,
        )
    )
    for note in pairs.skipped:
        on_event(Done("skip", note, status="warning"))
    return Loaded(loaded, tuple(labels), source)


def inputs_for(loaded: Loaded, request: Request, on_event: EventCallback) -> InputSet:
    """The validation inputs: the user's --val folder, or built-in natural-looking images."""
    clock = time.perf_counter()
    inputs = input_set(loaded.model.preprocessing, samples=request.samples, folder=request.val)
    labelled = f", {len(inputs.class_folders)} classes" if inputs.labels is not None else ""
    on_event(Done("inputs", f"{len(inputs.inputs)} inputs: {inputs.source}{labelled}", time.perf_counter() - clock))
    return inputs


@dataclass(frozen=True)
class Fused:
    model: torch.nn.Module  # what every conversion converts (fused, float32)
    unproven: Unproven | None  # None: --no-fuse
    proof_inputs: int
    prepared: Future[Prepared]  # the executor's proof of the fusion and PyTorch reference
    sample: torch.Tensor  # one input: what exporters trace with


def fuse(
    loaded: Loaded, request: Request, inputs: InputSet, executor: Executor, tmp: Path, on_event: EventCallback
) -> Fused:
    """Fuse here; the executor proves the fusion and computes the reference on these very models
    while the conversions run (its `prepare` task)."""
    on_event(Started("fusing"))
    proof_inputs = inputs.inputs[:PROOF_SAMPLES]
    if len(proof_inputs) < PROOF_SAMPLES:
        proof_inputs = input_set(loaded.model.preprocessing, samples=PROOF_SAMPLES).inputs
    unproven = fuse_unproven(loaded.model.model) if request.fuse else None
    # Saved before the cast below, which changes the fused model in place.
    models_file = tmp / "models.pt"
    torch.save((loaded.model.model, unproven), models_file)
    prepared = executor.prepare(models_file, inputs, proof_inputs)
    model = unproven.model64.float().eval() if unproven is not None else loaded.model.model
    return Fused(model, unproven, len(proof_inputs), prepared, torch.from_numpy(inputs.inputs[:1]))


def calibrate(loaded: Loaded, request: Request, pairs: Pairs, on_event: EventCallback) -> Calibration | None:
    """Calibration images for the calibrated pairs: never the validation images (a different
    built-in seed, or the user's --calib folder)."""
    if not pairs.calibrated:
        return None
    clock = time.perf_counter()
    images = input_set(
        loaded.model.preprocessing,
        samples=request.calib_samples,
        folder=request.calib,
        seed=CALIBRATION_SEED,
        flag="--calib",
    )
    calibration = Calibration(images.inputs, images.pixels, images.source, builtin=request.calib is None)
    on_event(
        Done(
            "calibrate",
            f"{len(calibration)} calibration images: {calibration.source}"
            + ("" if request.calib else " (no --calib given: built-in set)"),
            time.perf_counter() - clock,
        )
    )
    return calibration


@dataclass(frozen=True)
class Int8Models:
    """What the int8 pairs quantize, and what was done to get there."""

    migrated: torch.nn.Module  # the fused model with activation range migrated (exact in float)
    by_target: Mapping[str, torch.nn.Module]  # each int8 target's: `migrated` with its biases corrected
    equalization: Equalization | None
    bias_corrections: tuple[BiasCorrection, ...]


def equalize(
    model: torch.nn.Module, calibration: Calibration | None, request: Request, pairs: Pairs, on_event: EventCallback
) -> Int8Models | None:
    """The models the int8 pairs quantize: `model` with activation range migrated into the weights
    (quantize/equalize.py), then its biases corrected for int8's mean error in each target's activation
    scheme (quantize/bias_correction.py), each kept where the simulation says it helps. None when no
    pair is int8."""
    targets = tuple(dict.fromkeys(t for t, quant in pairs.pairs if quant == "int8"))
    if calibration is None or not targets:
        return None
    equalization = None
    if request.equalize:
        on_event(Started("migrating activation scales for int8 (simulated W8A8)"))
        clock = time.perf_counter()
        model, equalization = equalized(model, calibration.inputs)
        on_event(Done("equalize", equalization.summary(), time.perf_counter() - clock))
    by_target = dict.fromkeys(targets, model)
    corrections = []
    for symmetric in (False, True) if request.bias_correction else ():
        group = tuple(
            t for t in targets if TARGETS[t].corrects_biases and TARGETS[t].symmetric_activations == symmetric
        )
        if not group:
            continue
        on_event(Started(f"correcting biases for int8's mean error ({', '.join(group)}; simulated W8A8)"))
        clock = time.perf_counter()
        corrected, done = with_corrected_biases(model, calibration.inputs, symmetric=symmetric, targets=group)
        on_event(Done("bias", done.summary(), time.perf_counter() - clock))
        by_target.update(dict.fromkeys(group, corrected))
        corrections.append(done)
    return Int8Models(model, by_target, equalization, tuple(corrections))


def rank_layers(
    model: torch.nn.Module, calibration: Calibration | None, on_event: EventCallback
) -> list[LayerSensitivity] | None:
    """Every conv/linear by its int8 sensitivity, most sensitive first (the fallback's order)."""
    if calibration is None:
        return None
    on_event(Started("ranking layers by int8 sensitivity"))
    clock = time.perf_counter()
    ranking = layer_sensitivity(model, calibration.inputs)
    on_event(
        Done(
            "sensitivity",
            "most int8-sensitive layers: " + ", ".join(f"{s.name} {s.psnr_db:.1f} dB" for s in ranking[:3]),
            time.perf_counter() - clock,
        )
    )
    return ranking


def report_proof(prepared: Prepared, on_event: EventCallback) -> None:
    proof = prepared.proof
    accuracy = "" if prepared.reference_accuracy is None else f"; reference accuracy {prepared.reference_accuracy:.3f}"
    on_event(
        Done(
            "fuse",
            (
                "skipped (--no-fuse)"
                if proof.skipped
                else f"{proof.modules_fused} modules fused, max rel err {proof.max_rel_err:.1e}"
            )
            + accuracy,
            prepared.seconds,
        )
    )


@contextlib.contextmanager
def writing(out_dir: Path, executor: Executor, paths: list[Path]) -> Iterator[Path]:
    """Hold `out_dir` for this run. On an error the executor is stopped first (it may be writing),
    then what a conversion under way left is swept; finished artifacts stay (an interrupt says
    which), except after a failed fusion proof: they were made from a model proven wrong."""
    with output_lock(out_dir):
        remove_stale_temporaries(out_dir)  # left by a killed run (SIGKILL skips every finally)
        earlier = {path: _mtime(path) for path in paths}
        try:
            yield out_dir
        except BaseException as exc:
            executor.close(aborted=True)
            remove_stale_temporaries(out_dir)
            if isinstance(exc, KeyboardInterrupt):  # what stays, the second process's work included
                exc.finished = [p.name for p in paths if _mtime(p) not in (None, earlier[p])]  # type: ignore[attr-defined]  # read by the CLI's interrupt message
            if isinstance(exc, FusionProofFailed):
                for path in paths:
                    shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
            raise


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


def artifact_report(built: Built) -> ArtifactReport:
    """One pair's entry: the file, its verdict, and its device report where its target has one."""
    if built.artifact is None:
        return ArtifactReport(built.target, built.quant, None, error=built.error or "failed")
    artifact, validation = built.artifact, built.validation
    device, device_error = None, None
    if TARGETS[artifact.target].device is not None:
        try:
            device = device_report(artifact.path)
        except Exception as exc:  # noqa: BLE001 - an estimate that cannot be made is reported, never fatal
            device_error = f"no device estimate: {type(exc).__name__}: {exc}"[:300]
    return ArtifactReport(
        artifact.target,
        artifact.quant,
        artifact.path.name,
        size_bytes=artifact.size_bytes,
        sha256=artifact.sha256,
        input_layout=artifact.input_layout,
        timings=Timings(
            artifact.convert_s,
            artifact.toolchain_s,
            validation.validate_s if validation is not None and not validation.verdict.skipped else None,
        ),
        notes=tuple(artifact.notes),
        runtime=validation.runtime if validation is not None else None,
        verdict=validation.verdict if validation is not None else None,
        device=device,
        device_error=device_error,
        fallback=built.fallback,
    )


def assemble_report(
    loaded: Loaded,
    request: Request,
    pairs: Pairs,
    inputs: InputSet,
    fused: Fused,
    prepared: Prepared,
    calibration: Calibration | None,
    sensitivity: list[LayerSensitivity] | None,
    int8: Int8Models | None,
    built: list[Built],
    started: float,
) -> Report:
    artifacts = tuple(artifact_report(b) for b in built)
    passed = prepared.proof.passed and all(a.passed for a in artifacts)
    return Report(
        passed=passed,
        model=loaded.model.summary(),
        options=request.options(),
        fusion=Fusion(prepared.proof, fused.unproven.steps if fused.unproven is not None else {}),
        inputs=Inputs(
            inputs.source,
            len(inputs.inputs),
            len(inputs.class_folders) if prepared.reference_accuracy is not None else None,
            prepared.reference_accuracy,
        ),
        reference=Reference(
            prepared.noise_floor,
            fused.proof_inputs,
            f"max_rel_err <= max({DEFAULT_GATES['fp32'].max_rel:g}, {FP32_NOISE_FACTOR:g} x fp32_noise_floor)",
        ),
        artifacts=artifacts,
        labels={"source": loaded.labels_source, "count": len(loaded.labels)},
        versions=versions(),
        timings_s={"total": round(time.perf_counter() - started, 3)},
        calibration=CalibrationInfo(calibration.source, len(calibration), calibration.builtin) if calibration else None,
        sensitivity=Sensitivity(
            "one layer at a time in simulated W8A8, PSNR of the logits vs float on "
            f"{min(len(calibration.inputs), SIMULATION_BATCH)} calibration images",
            tuple(sensitivity),
        )
        if sensitivity and calibration
        else None,
        equalization=int8.equalization if int8 else None,
        bias_corrections=int8.bias_corrections if int8 else (),
        skipped=pairs.skipped,
    )


def write_outputs(report: Report, built: list[Built], out_dir: Path) -> Path:
    """report.json, then report.html with each artifact's plot (each written atomically)."""
    path = write_report(report, out_dir)
    plots = {b.artifact.path.name: b.plot for b in built if b.artifact is not None and b.plot is not None}
    write_text_atomic(out_dir / "report.html", render_html(report, plots))
    return path


def family_fp32_ops(loaded: Loaded) -> tuple[str, ...]:
    return tuple(FAMILIES[loaded.model.family].coreml_fp32_ops)
