"""validate: run every artifact on a real runtime and compare it with the PyTorch reference.

Owns the gates (gates.py), the parity metrics (metrics.py), the inputs (inputs.py: the user's
image folders or built-in natural-looking images) and divergence localisation (localize.py).
Running an artifact is runtime/'s job; a parity number is only ever computed from outputs the
runtime produced for the artifact on disk.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..convert.artifact import Artifact
from ..quiet import first_line
from ..runtime import Runtime, RuntimeUnavailable, open_runtime
from .gates import DEFAULT_GATES, Gate, gate_for, parse_gate
from .inputs import InputSet, input_set
from .metrics import Parity, parity
from .localize import first_divergent_op

__all__ = ["Validation", "validate_artifact", "input_set", "InputSet", "Gate", "gate_for",
           "parse_gate", "DEFAULT_GATES", "Parity", "parity", "task_accuracy"]


@dataclass
class Validation:
    runtime: str                          # what executed the artifact, or "unvalidated"
    passed: bool
    parity: Parity | None
    gate: Gate
    failures: list[str] = field(default_factory=list)
    validate_s: float = 0.0
    outputs: np.ndarray | None = None     # the artifact's logits, for plots
    first_divergent_op: dict | None = None   # Core ML: where a failing fp16 program diverges
    accuracy: dict | None = None          # labelled inputs: the artifact's and the reference's

    def report_dict(self) -> dict:
        body = {"passed": self.passed, "thresholds": self.gate.as_dict(), "failures": self.failures}
        if self.parity is not None:
            body.update(self.parity.as_dict())
            body["checks"] = self.gate.checks(self.parity)
        if self.first_divergent_op is not None:
            body["first_divergent_op"] = self.first_divergent_op
        if self.accuracy is not None:
            body.update(self.accuracy)
        return body


def validate_artifact(artifact: Artifact, inputs: InputSet, reference: np.ndarray, *,
                      gate: Gate) -> Validation:
    start = time.perf_counter()
    try:
        runtime: Runtime = open_runtime(artifact.path, input_layout=artifact.input_layout or None)
        outputs = runtime.run(inputs.batch)
    except RuntimeUnavailable as exc:
        return Validation("unvalidated", False, None, gate, [exc.message],
                          time.perf_counter() - start)
    except Exception as exc:  # noqa: BLE001 - a runtime refusing the artifact is a finding, not a crash
        return Validation("unvalidated", False, None, gate,
                          [f"the {artifact.target} runtime could not run the artifact: {first_line(exc)}"],
                          time.perf_counter() - start)
    measured = parity(outputs, reference)
    failures = gate.check(measured)
    divergent = None
    if failures and runtime.name == "coreml-mil-executor" and artifact.quant != "fp32":
        worst = int(np.abs(outputs - reference).max(axis=-1).argmax())
        divergent = first_divergent_op(runtime, inputs, psnr_db=gate.psnr, sample=worst)
    accuracy = None
    if inputs.labels is not None:
        accuracy = {"accuracy": task_accuracy(outputs, inputs.labels),
                    "reference_accuracy": task_accuracy(reference, inputs.labels),
                    "labelled_samples": int(len(inputs.labels))}
    return Validation(runtime.name, not failures, measured, gate, failures,
                      time.perf_counter() - start, outputs, divergent, accuracy)


def task_accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy against the true classes (ImageFolder order = class index)."""
    return float(np.mean(logits.argmax(-1) == labels))
