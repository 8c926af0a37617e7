"""validate: run every artifact on a real runtime and compare it with the PyTorch reference.

Owns the gates (gates.py), the parity metrics (metrics.py), the inputs (inputs.py: the user's
image folders or built-in natural-looking images) and divergence localisation (localize.py).
Running an artifact is runtime/'s job; a parity number is only ever computed from outputs the
runtime produced for the artifact on disk.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..convert.artifact import Artifact
from ..quiet import first_line
from ..runtime import DivergentOp, Localizing, Runtime, RuntimeUnavailable, open_runtime
from ..targets import Budget
from .gates import DEFAULT_GATES, Gate, GateCheck, gate_for, parse_gate
from .inputs import InputSet, input_set
from .metrics import Parity, parity

__all__ = [
    "DEFAULT_GATES",
    "Accuracy",
    "Gate",
    "GateCheck",
    "InputSet",
    "Parity",
    "Validation",
    "Verdict",
    "gate_for",
    "input_set",
    "parity",
    "parse_gate",
    "skipped",
    "task_accuracy",
    "validate_artifact",
]


@dataclass(frozen=True)
class Accuracy:
    """Task accuracy on labelled inputs: the artifact's and the PyTorch reference's."""

    accuracy: float
    reference_accuracy: float
    labelled_samples: int


@dataclass(frozen=True)
class Verdict:
    """An artifact judged by its gate: report.json's `parity` block."""

    passed: bool
    gate: Gate
    failures: tuple[str, ...] = ()
    parity: Parity | None = None  # None: not run (see failures), or not validated (skipped)
    first_divergent_op: DivergentOp | None = None  # where a failing compressed program diverges
    accuracy: Accuracy | None = None
    skipped: bool = False  # --no-validate
    budget: str | None = None  # which inputs a slow runtime ran, and why

    @property
    def checks(self) -> tuple[GateCheck, ...]:
        return self.gate.checks(self.parity) if self.parity is not None else ()

    @property
    def ran(self) -> bool:
        """The runtime produced outputs that the gate judged."""
        return self.parity is not None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"passed": self.passed, "thresholds": self.gate.as_dict()}
        if self.skipped:
            return {**body, "skipped": True}
        body["failures"] = list(self.failures)
        if self.parity is not None:
            body.update(self.parity.as_dict())
            body["checks"] = [vars(c) for c in self.checks]
        if self.budget is not None:
            body["budget"] = self.budget
        if self.first_divergent_op is not None:
            body["first_divergent_op"] = vars(self.first_divergent_op)
        if self.accuracy is not None:
            body.update(vars(self.accuracy))
        return body

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Verdict:
        metrics = {k: data[k] for k in Parity.__dataclass_fields__ if k in data}
        divergent = data.get("first_divergent_op")
        return cls(
            passed=data["passed"],
            gate=Gate.from_dict(data.get("thresholds", {})),
            failures=tuple(data.get("failures", ())),
            parity=Parity(**metrics) if metrics else None,
            first_divergent_op=DivergentOp(**divergent) if divergent else None,
            accuracy=Accuracy(data["accuracy"], data["reference_accuracy"], data["labelled_samples"])
            if "accuracy" in data
            else None,
            skipped=bool(data.get("skipped", False)),
            budget=data.get("budget"),
        )


@dataclass
class Validation:
    """One artifact run on its runtime: the verdict, what ran it, how long, and its outputs."""

    runtime: str  # what executed the artifact, or "unvalidated"
    verdict: Verdict
    validate_s: float = 0.0
    outputs: np.ndarray | None = field(default=None, repr=False)  # the artifact's logits, for plots

    @property
    def passed(self) -> bool:
        return self.verdict.passed

    @property
    def failures(self) -> tuple[str, ...]:
        return self.verdict.failures


def validate_artifact(
    artifact: Artifact, inputs: InputSet, reference: np.ndarray, *, gate: Gate, budget: Budget | None = None
) -> Validation:
    """Run `artifact` on its runtime and judge its outputs against `reference` by `gate`. `budget`:
    a runtime that takes seconds per input runs as many as fit in its time (at least its minimum)."""
    start = time.perf_counter()
    note = None
    try:
        runtime: Runtime = open_runtime(artifact.path, input_layout=artifact.input_layout or None)
        if budget is not None and len(inputs.inputs) > budget.minimum:
            first = runtime.run(inputs.batch[:1])  # also the warm-up: its time is not the pace
            clock = time.perf_counter()
            second = runtime.run(inputs.batch[1:2])
            pace = time.perf_counter() - clock
            count = budget.inputs(pace, len(inputs.inputs))
            if count < len(inputs.inputs):
                note = budget.note(count, len(inputs.inputs), pace)
                inputs, reference = inputs.first(count), reference[:count]
            outputs = np.concatenate([first, second, runtime.run(inputs.batch[2:])])
        else:
            outputs = runtime.run(inputs.batch)
    except RuntimeUnavailable as exc:
        return _not_run(exc.message, gate, start)
    except Exception as exc:  # noqa: BLE001 - a runtime refusing the artifact is a finding, not a crash
        return _not_run(f"the {artifact.target} runtime could not run the artifact: {first_line(exc)}", gate, start)
    measured = parity(outputs, reference)
    failures = tuple(gate.check(measured))
    divergent = None
    if failures and isinstance(runtime, Localizing) and artifact.quant != "fp32":
        worst = int(np.abs(outputs - reference).max(axis=-1).argmax())
        divergent = runtime.first_divergent_op(inputs.batch, psnr_db=gate.psnr, sample=worst)
    accuracy = None
    if inputs.labels is not None:
        accuracy = Accuracy(
            task_accuracy(outputs, inputs.labels), task_accuracy(reference, inputs.labels), len(inputs.labels)
        )
    verdict = Verdict(not failures, gate, failures, measured, divergent, accuracy, budget=note)
    return Validation(runtime.name, verdict, time.perf_counter() - start, outputs)


def _not_run(why: str, gate: Gate, start: float) -> Validation:
    return Validation("unvalidated", Verdict(False, gate, (why,)), time.perf_counter() - start)


def skipped(gate: Gate) -> Verdict:
    """The verdict of an artifact built with --no-validate: nothing ran, nothing failed."""
    return Verdict(True, gate, skipped=True)


def task_accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy against the true classes (ImageFolder order = class index)."""
    return float(np.mean(logits.argmax(-1) == labels))
