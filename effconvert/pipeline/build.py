"""Each (target, quant) pair becomes an artifact and its verdict: converted here or handed to the
executor, validated on its runtime, collected in the order the user asked for.

Scheduling, beside a second process: unless it already has a conversion queued, the second process
converts (and validates) the last pair still to do while this one converts from the first — the
two meet in the middle, each converter keeping one core busy. Calibrated pairs (int8, w8a16) stay
here: their calibration, sensitivity ranking and float fallback's decisions live in this process.
Inline, every pair is converted here in order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..convert import Artifact, ModelInfo, convert
from ..errors import ConversionFailed
from ..quantize import Calibration, LayerSensitivity, QuantPlan
from ..report.schema import Fallback
from ..targets import CALIBRATED, FALLBACK_QUANT, TARGETS, ExportOptions, artifact_name
from ..validate import Gate, Validation, Verdict, gate_for, skipped
from .events import Done, EventCallback, Started
from .executor import Checked, Converted, Executor, Prepared


@dataclass(frozen=True)
class Context:
    """What every pair of one run shares."""

    model: torch.nn.Module  # the fused model in float32, as every conversion uses it
    info: ModelInfo
    out_dir: Path
    sample: torch.Tensor
    options: ExportOptions
    gate_override: str | None
    validate: bool
    fallback: bool
    int8_io: bool
    family_fp32_ops: tuple[str, ...]  # op types the family keeps fp32 in a compressed Core ML program
    calibration: Calibration | None
    prepared: Reference  # the reference and the fusion proof, from the executor
    on_event: EventCallback
    # target -> what its int8 quantizes: `model` with scales migrated and biases corrected for the
    # target's activation scheme (pipeline/steps.equalize)
    int8_models: Mapping[str, torch.nn.Module] = field(default_factory=dict)
    validation_inputs: np.ndarray | None = None  # what each artifact is judged on (the fallback simulates on them)

    def model_for(self, target: str, quant: str) -> torch.nn.Module:
        """What a pair converts: the target's int8 model for int8, the fused model otherwise (and
        always what validation compares against)."""
        return self.int8_models.get(target, self.model) if quant == "int8" else self.model

    def plan(self, target: str, quant: str) -> QuantPlan:
        return QuantPlan(
            quant,
            calibration=self.calibration if quant in CALIBRATED else None,
            fp32_ops=self.family_fp32_ops if TARGETS[target].keeps_fp32_ops else (),
            int8_io=self.int8_io,
        )

    def gate(self, quant: str) -> Gate:
        return gate_for(quant, self.gate_override, fp32_noise_floor=self.prepared.result().noise_floor)


class Reference:
    """The executor's `Prepared` (the PyTorch reference and the fusion proof), checked once: a
    failed proof ends the run (FusionProofFailed) wherever it is first read."""

    def __init__(self, future: Future[Prepared], on_event: EventCallback) -> None:
        self._future, self._on_event = future, on_event
        self._checked = False

    def done(self) -> bool:
        return self._future.done()

    def result(self) -> Prepared:
        prepared = self._future.result()
        if not self._checked:
            self._checked = True
            from .steps import FusionProofFailed, report_proof

            if not prepared.proof.passed:
                raise FusionProofFailed.of(prepared.proof)
            report_proof(prepared, self._on_event)
        return prepared


@dataclass
class Built:
    """One pair's outcome: the artifact (or the converter's refusal) and its verdict."""

    target: str
    quant: str
    artifact: Artifact | None = None
    error: str | None = None
    validation: Validation | None = None
    plot: str | None = None
    fallback: Fallback | None = None  # set by fallback.py
    notes: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> Verdict | None:
        return self.validation.verdict if self.validation is not None else None


class _Slot:
    """A pair under way: its conversion or validation may still be running in the executor."""

    def __init__(
        self,
        target: str,
        quant: str,
        *,
        converted: Future[Converted] | None = None,
        built: Built | None = None,
        checked: Future[Checked] | None = None,
    ) -> None:
        self.target, self.quant = target, quant
        self.converted, self.built, self.checked = converted, built, checked

    def ready(self) -> bool:
        pending = self.converted if self.converted is not None else self.checked
        return pending is None or pending.done()

    def finish(self, context: Context) -> Built:
        """Wait for what is still running; report the conversion (if made elsewhere) and the verdict."""
        if self.converted is not None:
            converted = self.converted.result()
            if converted.artifact is None:
                return _refused(context, self.target, self.quant, converted.error or "failed")
            self.built = _converted(context, converted.artifact)
            self.checked = None
            if converted.checked is not None:
                _judged(context, self.built, converted.checked)
        built = self.built
        assert built is not None
        if self.checked is not None:
            _judged(context, built, self.checked.result())
        elif built.artifact is not None and built.validation is None and not context.validate:
            built.validation = Validation("unvalidated", skipped(context.gate(built.quant)))
        return built


# A fallback step: (context, executor, the built int8 pair, its ranking) -> the pair to keep.
FallbackStep = Callable[[Context, Executor, Built, "list[LayerSensitivity]"], Built]


def build_pairs(
    pairs: tuple[tuple[str, str], ...],
    context: Context,
    executor: Executor,
    sensitivity: list[LayerSensitivity] | None,
    fallback: FallbackStep,
) -> list[Built]:
    """Every pair, in the order asked for (see the module docstring for where each runs)."""
    todo = list(enumerate(pairs))
    slots: dict[int, _Slot] = {}
    done: dict[int, Built] = {}
    while todo:
        handed = _hand_over(todo, slots, context, executor)
        if handed is not None:
            todo.remove(handed)
            continue
        index, (target, quant) = todo.pop(0)
        slot = convert_here(context, executor, target, context.plan(target, quant))
        if quant == FALLBACK_QUANT and context.fallback and sensitivity:
            built = slot.finish(context)
            done[index] = (
                fallback(context, executor, built, sensitivity)
                if not built.verdict or not built.verdict.passed
                else built
            )
        else:
            slots[index] = slot
        _collect(slots, done, context, block=False)
    if slots:
        context.on_event(Started("waiting for the second process's conversions and validations"))
    _collect(slots, done, context, block=True)
    return [done[i] for i in range(len(pairs))]


def convert_here(context: Context, executor: Executor, target: str, plan: QuantPlan) -> _Slot:
    """Convert in this process; hand the artifact to the executor for validation."""
    floats = f" ({len(plan.float_layers)} layers float)" if plan.float_layers else ""
    context.on_event(Started(f"converting {target} {plan.quant}{floats}"))
    try:
        artifact = convert(
            context.model_for(target, plan.quant),
            context.info,
            target=target,
            plan=plan,
            out_dir=context.out_dir,
            sample=context.sample,
            options=context.options,
        )
    except ConversionFailed as exc:
        return _Slot(target, plan.quant, built=_refused(context, target, plan.quant, exc.message))
    built = _converted(context, artifact)
    checked = executor.validate(artifact, context.gate_override) if context.validate else None
    return _Slot(target, plan.quant, built=built, checked=checked)


def _hand_over(
    todo: list[tuple[int, tuple[str, str]]], slots: dict[int, _Slot], context: Context, executor: Executor
) -> tuple[int, tuple[str, str]] | None:
    """The last pair still to do that is not calibrated goes to the second process, unless it has a
    conversion queued already (see the module docstring)."""
    busy = any(s.converted is not None and not s.converted.done() for s in slots.values())
    if len(todo) < 2 or not executor.beside or busy:
        return None
    for index, (target, quant) in reversed(todo[1:]):
        if quant not in CALIBRATED:
            future = executor.convert(
                target,
                context.plan(target, quant),
                context.info,
                context.out_dir,
                context.options,
                context.gate_override,
                context.validate,
            )
            slots[index] = _Slot(target, quant, converted=future)
            return index, (target, quant)
    return None


def _collect(slots: dict[int, _Slot], done: dict[int, Built], context: Context, *, block: bool) -> None:
    """Finish the pairs whose work is done (all of them when `block`), in the order asked for."""
    if block or context.prepared.done():
        context.prepared.result()
    for index in sorted(slots):
        if block or slots[index].ready():
            done[index] = slots.pop(index).finish(context)


def _converted(context: Context, artifact: Artifact) -> Built:
    context.on_event(
        Done(
            "convert",
            f"{artifact.path.name} ({artifact.size_bytes / 1e6:.1f} MB)",
            artifact.convert_s,
            artifact=artifact.path.name,
        )
    )
    return Built(artifact.target, artifact.quant, artifact=artifact)


def _refused(context: Context, target: str, quant: str, message: str) -> Built:
    context.on_event(Done("convert", f"{target} {quant}: conversion failed: {message}", status="failed"))
    return Built(target, quant, error=message)


def _judged(context: Context, built: Built, checked: Checked) -> None:
    validation = checked.validation
    built.validation, built.plot = validation, checked.plot
    verdict = validation.verdict
    name = artifact_name(context.info.arch, built.target, built.quant)
    if validation.runtime == "unvalidated":
        context.on_event(
            Done(
                "validate",
                f"{name} not validated: {'; '.join(verdict.failures)}",
                validation.validate_s,
                status="warning",
            )
        )
        return
    judged = "passed" if verdict.passed else "missed its gate: " + "; ".join(verdict.failures)
    context.on_event(
        Done(
            "validate",
            f"{name} on {validation.runtime}: {judged}",
            validation.validate_s,
            status="ok" if verdict.passed else "failed",
        )
    )
