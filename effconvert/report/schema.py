"""The report as typed data: built once per run by the pipeline, rendered by report/ (report.json,
report.html, the console), returned by the API, read back by batch --resume.

`Report.to_json()` writes the `effconvert.report/1` schema (design.md's contract: the same keys as
before the report was typed, plus `skipped`); `Report.from_json()` reads it back, so a report on
disk and the one in memory are the same object.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..device.report import DeviceReport
from ..fuse import FusionProof
from ..load.model import ModelSummary
from ..quantize.bias_correction import BiasCorrection
from ..quantize.equalize import Equalization
from ..quantize.sensitivity import LayerSensitivity
from ..validate import Verdict

SCHEMA = "effconvert.report/1"


@dataclass(frozen=True)
class Timings:
    convert: float
    toolchain: float  # of convert: inside the third-party converter calls
    validate: float | None = None

    def to_json(self) -> dict[str, float]:
        body = {"convert": round(self.convert, 3), "toolchain": round(self.toolchain, 3)}
        return body if self.validate is None else {**body, "validate": round(self.validate, 3)}

    @classmethod
    def from_json(cls, data: Mapping[str, float]) -> Timings:
        return cls(data.get("convert", 0.0), data.get("toolchain", 0.0), data.get("validate"))


@dataclass(frozen=True)
class FallbackAttempt:
    float_layers: int
    predicted_psnr_db: float
    psnr_db: float | None  # None: the attempt did not run (see error)
    passed: bool
    error: str | None = None  # the attempt could not be built or run, in one line
    top1_agreement: float | None = None  # over the decided inputs, as the gate judges it
    size_bytes: int | None = None
    seconds: float | None = None  # its conversion and validation
    predicted_top1: float | None = None  # when the fallback aimed at top-1

    def to_json(self) -> dict[str, Any]:
        body = {k: v for k, v in vars(self).items() if k != "error"}
        return body if self.error is None else {**body, "error": self.error}


@dataclass(frozen=True)
class Fallback:
    """How an int8 artifact that missed its gate was rebuilt with its most sensitive layers float."""

    float_layers: tuple[str, ...]  # the layers the kept artifact has in float
    attempts: tuple[FallbackAttempt, ...]
    all_int8: Mapping[str, Any]  # the first, all-int8 artifact: size_bytes, psnr_db, failed, latency_ms
    prediction: Mapping[str, Any]  # how the count was predicted (method, offset, simulated PSNRs)
    size_ratio: float  # kept artifact / all-int8
    latency_ms: float | None = None  # on a runtime whose time is device speed
    latency_ratio: float | None = None
    latency: str | None = None  # why latency was not measured

    @property
    def stopped(self) -> str:
        """Why no fallback attempt was converted (the prediction said none could pass), or ""."""
        return str(self.prediction.get("stopped", ""))

    def to_json(self) -> dict[str, Any]:
        body = {
            "float_layers": list(self.float_layers),
            "attempts": [a.to_json() for a in self.attempts],
            "all_int8": dict(self.all_int8),
            "prediction": dict(self.prediction),
            "size_ratio": self.size_ratio,
        }
        extra = {"latency_ms": self.latency_ms, "latency_ratio": self.latency_ratio, "latency": self.latency}
        return {**body, **{k: v for k, v in extra.items() if v is not None}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Fallback:
        return cls(
            tuple(data["float_layers"]),
            tuple(FallbackAttempt(**a) for a in data["attempts"]),
            data["all_int8"],
            data["prediction"],
            data["size_ratio"],
            data.get("latency_ms"),
            data.get("latency_ratio"),
            data.get("latency"),
        )


@dataclass(frozen=True)
class ArtifactReport:
    """One (target, quant) of a run: the file, what judged it, and how."""

    target: str
    quant: str
    path: str | None  # the file name in the output folder; None when the conversion failed
    error: str | None = None  # the converter's refusal, one line
    size_bytes: int | None = None
    sha256: str | None = None
    input_layout: str | None = None
    timings: Timings | None = None
    notes: tuple[str, ...] = ()
    runtime: str | None = None  # what executed it for parity ("unvalidated" when nothing could)
    verdict: Verdict | None = None
    device: DeviceReport | None = None  # the accelerator residency and latency estimate (an estimate)
    device_error: str | None = None  # why there is no device report for a target that has one
    fallback: Fallback | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and self.verdict is not None and self.verdict.passed

    @property
    def validated(self) -> bool:
        """The artifact ran on its runtime and its gate judged the outputs."""
        return self.verdict is not None and self.verdict.ran

    @property
    def name(self) -> str:
        return self.path or f"{self.target} {self.quant}"

    def to_json(self) -> dict[str, Any]:
        if self.error is not None:
            return {"target": self.target, "quant": self.quant, "error": self.error, "path": None}
        body: dict[str, Any] = {
            "target": self.target,
            "quant": self.quant,
            "path": self.path,
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "input_layout": self.input_layout,
            "timings_s": self.timings.to_json() if self.timings else {},
            "notes": list(self.notes),
        }
        if self.device is not None:
            body["device"] = self.device.to_json()
        elif self.device_error is not None:
            body["device"] = {"error": self.device_error}
        if self.runtime is not None:
            body["runtime"] = self.runtime
        if self.verdict is not None:
            body["parity"] = self.verdict.to_json()
        if self.fallback is not None:
            body["fallback"] = self.fallback.to_json()
        return body

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ArtifactReport:
        if data.get("error"):
            return cls(data["target"], data["quant"], None, error=data["error"])
        device = data.get("device") or {}
        return cls(
            data["target"],
            data["quant"],
            data["path"],
            size_bytes=data.get("size_bytes"),
            sha256=data.get("sha256"),
            input_layout=data.get("input_layout"),
            timings=Timings.from_json(data.get("timings_s", {})),
            notes=tuple(data.get("notes", ())),
            runtime=data.get("runtime"),
            verdict=Verdict.from_json(data["parity"]) if "parity" in data else None,
            device=DeviceReport.from_json(device) if device and "error" not in device else None,
            device_error=device.get("error"),
            fallback=Fallback.from_json(data["fallback"]) if data.get("fallback") else None,
        )


@dataclass(frozen=True)
class Fusion:
    proof: FusionProof
    steps: Mapping[str, int]  # step -> modules it changed

    def to_json(self) -> dict[str, Any]:
        return {**vars(self.proof), "steps": dict(self.steps)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Fusion:
        return cls(FusionProof(**{k: v for k, v in data.items() if k != "steps"}), data.get("steps", {}))


@dataclass(frozen=True)
class CalibrationInfo:
    source: str
    samples: int
    builtin: bool  # no --calib given: the built-in images


@dataclass(frozen=True)
class Sensitivity:
    method: str
    layers: tuple[LayerSensitivity, ...]  # most sensitive first

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "layers": [s.report_dict() for s in self.layers]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Sensitivity:
        return cls(
            data["method"],
            tuple(LayerSensitivity(r["layer"], r["kind"], r["params"], r["psnr_db"]) for r in data["layers"]),
        )


@dataclass(frozen=True)
class Inputs:
    source: str
    samples: int
    classes: int | None = None  # labelled inputs (class sub-folders)
    reference_accuracy: float | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"source": self.source, "samples": self.samples}
        if self.reference_accuracy is not None:
            body.update(classes=self.classes, reference_accuracy=self.reference_accuracy)
        return body


@dataclass(frozen=True)
class Reference:
    fp32_noise_floor: float  # max rel err of PyTorch fp32 against the model in float64
    noise_floor_inputs: int
    fp32_gate_rule: str


@dataclass(frozen=True)
class Report:
    """report.json as data."""

    passed: bool
    model: ModelSummary
    options: Mapping[str, Any]  # every option that shaped the artifacts (what --resume compares)
    fusion: Fusion
    inputs: Inputs
    reference: Reference
    artifacts: tuple[ArtifactReport, ...]  # in the order asked for
    labels: Mapping[str, Any]  # source, count
    versions: Mapping[str, str]
    timings_s: Mapping[str, float]
    calibration: CalibrationInfo | None = None
    sensitivity: Sensitivity | None = None
    equalization: Equalization | None = None  # int8's scale migration (quantize/equalize.py)
    bias_corrections: tuple[BiasCorrection, ...] = ()  # int8's, per activation scheme (quantize/bias_correction.py)
    skipped: tuple[str, ...] = ()  # pairs asked for that a target does not offer, each with why
    schema: str = field(default=SCHEMA)

    @property
    def conversion_failed(self) -> bool:
        return any(a.error for a in self.artifacts)

    @property
    def exit_code(self) -> int:
        """The CLI's: 3 a conversion failed, 1 a gate failed, 0 every artifact passed."""
        if self.conversion_failed:
            return 3
        return 0 if self.passed else 1

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "schema": self.schema,
            "passed": self.passed,
            "model": self.model.to_json(),
            "options": dict(self.options),
            "fusion": self.fusion.to_json(),
        }
        if self.calibration is not None:
            body["calibration"] = vars(self.calibration)
        if self.sensitivity is not None:
            body["int8_sensitivity"] = self.sensitivity.to_json()
        if self.equalization is not None:
            body["int8_equalization"] = self.equalization.to_json()
        if self.bias_corrections:
            body["int8_bias_correction"] = [c.to_json() for c in self.bias_corrections]
        body.update(
            inputs=self.inputs.to_json(),
            reference=vars(self.reference),
            artifacts=[a.to_json() for a in self.artifacts],
            labels=dict(self.labels),
            versions=dict(self.versions),
            timings_s=dict(self.timings_s),
        )
        if self.skipped:
            body["skipped"] = list(self.skipped)
        return body

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Report:
        """A report.json read back (batch --resume). Raises KeyError/TypeError/ValueError on a file that
        is not one."""
        if data.get("schema") != SCHEMA:
            raise ValueError(f"not an {SCHEMA} report: schema {data.get('schema')!r}")
        inputs = data["inputs"]
        return cls(
            passed=data["passed"],
            model=ModelSummary.from_json(data["model"]),
            options=data.get("options", {}),
            fusion=Fusion.from_json(data["fusion"]),
            inputs=Inputs(inputs["source"], inputs["samples"], inputs.get("classes"), inputs.get("reference_accuracy")),
            reference=Reference(**data["reference"]),
            artifacts=tuple(ArtifactReport.from_json(a) for a in data["artifacts"]),
            labels=data.get("labels", {}),
            versions=data["versions"],
            timings_s=data.get("timings_s", {}),
            calibration=CalibrationInfo(**data["calibration"]) if data.get("calibration") else None,
            sensitivity=Sensitivity.from_json(data["int8_sensitivity"]) if data.get("int8_sensitivity") else None,
            equalization=Equalization.from_json(data["int8_equalization"]) if data.get("int8_equalization") else None,
            bias_corrections=tuple(BiasCorrection.from_json(c) for c in data.get("int8_bias_correction", ())),
            skipped=tuple(data.get("skipped", ())),
        )
