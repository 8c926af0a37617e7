"""The float fallback as a step: a calibrated artifact missed its gate, so its most sensitive layers
are kept in float, as many as the simulation predicts the gate needs (quantize/fallback.py decides,
this step converts and validates) — at most MAX_CONVERSIONS more conversions.

Every attempt is validated on its runtime. An attempt that cannot be built or run is recorded with
its error and the best artifact so far is kept (its file restored): the run never ends on a
fallback, and the folder never holds an artifact the report does not describe.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from ..files import size_on_disk
from ..quantize import LayerSensitivity
from ..quantize import fallback as policy
from ..quantize.sensitivity import simulated as simulate
from ..report.schema import Fallback, FallbackAttempt
from ..runtime import RUNTIMES
from ..targets import TARGETS
from ..validate import Verdict
from .build import Built, Context, convert_here
from .events import Done, Started
from .executor import Executor

LATENCY_ELSEWHERE = "not measured: this runtime's time is not the device's (see the runtime's description)"


FALLBACK_BATCH = 32  # validation inputs the fallback simulates on: top-1 needs more than the ranking's 8


def float_fallback(context: Context, executor: Executor, first: Built, sensitivity: list[LayerSensitivity]) -> Built:
    """`first`: the all-int8 artifact, validated, that missed its gate."""
    verdict = first.verdict
    if first.artifact is None or verdict is None or verdict.parity is None or first.validation is None:
        return first  # not built, or not run: nothing to measure the simulation against
    context.on_event(Started("predicting how many layers the gate needs in float (simulated W8A8)"))
    sets = policy.candidates(sensitivity)
    assert context.calibration is not None
    simulated = simulate(
        context.model_for(first.target, first.quant),
        context.calibration.inputs,
        sets,
        symmetric=TARGETS[first.target].symmetric_activations,
        batch=FALLBACK_BATCH,
        reference=context.model,  # what validation compares against (the int8 model's biases may be corrected)
        judged_on=context.validation_inputs,
    )
    predictions = [policy.Prediction(len(s), sim.psnr_db, sim.top1) for s, sim in zip(sets, simulated, strict=True)]
    aim = _aim(verdict)
    offsets = measured = _offsets(verdict, predictions[0])
    with tempfile.TemporaryDirectory(prefix="effconvert-fallback-") as keep:
        all_int8 = _copy(first.artifact.path, Path(keep) / "all-int8")
        best, best_copy, best_count, last = first, all_int8, 0, first
        attempts: list[FallbackAttempt] = []
        count, stopped = 0, ""
        for _ in range(policy.MAX_CONVERSIONS):
            choice = policy.choose(predictions, offsets, aim, above=count)
            if choice.float_layers is None:
                stopped = choice.why_stop if not attempts else ""
                break
            count = choice.float_layers
            predicted = next(p for p in predictions if p.float_layers == count)
            context.on_event(
                Done(
                    "fallback",
                    f"{first.artifact.path.name}: missed its gate; {count} layer(s) in "
                    f"float (predicted {_predicted_text(predicted, offsets, aim)})",
                    status="warning",
                )
            )
            plan = context.plan(first.target, first.quant).keeping_float(tuple(s.name for s in sensitivity[:count]))
            started = time.perf_counter()
            attempt = last = convert_here(context, executor, first.target, plan).finish(context)
            seconds = round(time.perf_counter() - started, 1)
            verdict_of = attempt.verdict
            if attempt.artifact is None or verdict_of is None or verdict_of.parity is None:
                why = attempt.error or "; ".join(verdict_of.failures if verdict_of else ())
                attempts.append(
                    FallbackAttempt(
                        count,
                        round(predicted.predicted(offsets.psnr_db), 2),
                        None,
                        False,
                        error=f"could not {'build' if attempt.artifact is None else 'run'}: {why}"[:300],
                        seconds=seconds,
                    )
                )
                break
            attempts.append(
                FallbackAttempt(
                    count,
                    round(predicted.predicted(offsets.psnr_db), 2),
                    verdict_of.parity.psnr_db,
                    verdict_of.passed,
                    top1_agreement=round(verdict_of.parity.top1_agreement_decided, 4),
                    size_bytes=attempt.artifact.size_bytes,
                    seconds=seconds,
                    predicted_top1=round(predicted.predicted_top1(offsets.top1), 4) if aim.top1 is not None else None,
                )
            )
            if _better(attempt, best):
                best, best_count = attempt, count
                best_copy = _copy(attempt.artifact.path, Path(keep) / f"float-{count}")
            if verdict_of.passed:
                break
            offsets = _offsets(verdict_of, predicted)  # re-measured at this count
        if stopped:
            context.on_event(
                Done(
                    "fallback", f"{first.artifact.path.name}: missed its gate; no fallback: {stopped}", status="warning"
                )
            )
        if not attempts and not stopped:
            return first
        if best is not last:
            _restore(best_copy, first.artifact.path)
        best.fallback = _record(
            context, first, best, attempts, best_count, sensitivity, predictions, measured, all_int8, aim, stopped
        )
        return best


def _aim(verdict: Verdict) -> policy.Aim:
    """The failed checks the fallback can move: PSNR (cosine moves with it) and top-1."""
    failed = {c.metric: c.threshold for c in verdict.checks if not c.passed}
    psnr = verdict.gate.psnr if ("psnr_db" in failed or "cosine" in failed) else None
    return policy.Aim(psnr_db=psnr, top1=failed.get("top1_agreement"))


def _offsets(verdict: Verdict, at: policy.Prediction) -> policy.Offsets:
    parity = verdict.parity
    assert parity is not None
    return policy.Offsets(parity.psnr_db - at.simulated_psnr_db, parity.top1_agreement_decided - at.simulated_top1)


def _predicted_text(p: policy.Prediction, offsets: policy.Offsets, aim: policy.Aim) -> str:
    parts = [f"{p.predicted(offsets.psnr_db):.1f} dB"]
    if aim.top1 is not None:
        parts.append(f"top-1 {p.predicted_top1(offsets.top1):.2f}")
    return ", ".join(parts)


def _better(attempt: Built, best: Built) -> bool:
    """By the gate: one that passes, else the one whose worst check misses by less (relative to its
    threshold: a top-1 that failed is judged by top-1, not by a PSNR that already passed)."""
    a, b = attempt.verdict, best.verdict
    assert a is not None and b is not None
    return (a.passed, _worst_margin(a)) > (b.passed, _worst_margin(b))


def _worst_margin(verdict: Verdict) -> float:
    margins = [
        ((c.threshold - c.value) if c.rule == "at most" else (c.value - c.threshold)) / (abs(c.threshold) or 1.0)
        for c in verdict.checks
    ]
    return min(margins, default=0.0)


def _record(
    context: Context,
    first: Built,
    kept: Built,
    attempts: list[FallbackAttempt],
    count: int,
    sensitivity: list[LayerSensitivity],
    predictions: list[policy.Prediction],
    offsets: policy.Offsets,
    all_int8: Path,
    aim: policy.Aim,
    stopped: str,
) -> Fallback:
    assert first.artifact is not None and kept.artifact is not None and first.verdict is not None
    first_parity = first.verdict.parity
    assert first_parity is not None
    # The artifact's path holds the kept attempt's bytes by now: the all-int8 size is its copy's.
    all_int8_bytes = size_on_disk(all_int8)
    before = {
        "size_bytes": all_int8_bytes,
        "psnr_db": first_parity.psnr_db,
        "failed": [c.text for c in first.verdict.checks if not c.passed],
    }
    prediction = {
        "method": f"PSNR and top-1 (decided inputs) of the logits on {FALLBACK_BATCH} validation inputs with every "
        "other conv/linear in simulated W8A8 (the target's activation scheme, ranges over the calibration images), "
        "plus the runtime's measured offset from the simulation",
        "aimed_at": [name for name, value in (("psnr_db", aim.psnr_db), ("top1_agreement", aim.top1)) if value],
        "offset_db": round(offsets.psnr_db, 2),
        "offset_top1": round(offsets.top1, 4),
        "simulated": [
            {
                "float_layers": p.float_layers,
                "simulated_psnr_db": round(p.simulated_psnr_db, 2),
                "simulated_top1": round(p.simulated_top1, 4),
            }
            for p in predictions
        ],
        **({"stopped": stopped} if stopped else {}),
    }
    size_ratio = kept.artifact.size_bytes / all_int8_bytes
    runtime = kept.validation.runtime if kept.validation is not None else "unvalidated"
    latency_ms = latency_ratio = None
    latency = None
    if RUNTIMES[runtime].device_speed and kept is not first:
        context.on_event(Started("timing the fallback's artifact against the all-int8 one"))
        before_ms, latency_ms = _latencies_ms(all_int8, kept.artifact.path)
        before["latency_ms"] = before_ms
        latency_ratio = latency_ms / before_ms
    else:
        latency = LATENCY_ELSEWHERE
    return Fallback(
        tuple(s.name for s in sensitivity[:count]),
        tuple(attempts),
        before,
        prediction,
        size_ratio,
        latency_ms,
        latency_ratio,
        latency,
    )


def _copy(path: Path, to: Path) -> Path:
    to = to.with_name(to.name + "".join(path.suffixes))
    if path.is_dir():
        shutil.copytree(path, to)
    else:
        shutil.copyfile(path, to)
    return to


def _restore(copy: Path, path: Path) -> None:
    """Put the kept attempt's bytes back at the artifact's path (a later attempt overwrote them)."""
    from ..atomic import atomic_path

    with atomic_path(path) as tmp:
        if copy.is_dir():
            shutil.copytree(copy, tmp)
        else:
            shutil.copyfile(copy, tmp)


def _latencies_ms(a: Path, b: Path, rounds: int = 2) -> tuple[float, float]:
    """Median latency of two artifacts, timed alternately (a, b, a, b) so that a busy machine
    weighs on both; the best round of each. What the float fallback costs. In this process: a
    batch worker may not start a measuring child."""
    from ..measure.artifacts import time_artifact

    times: dict[Path, list[float]] = {a: [], b: []}
    for _ in range(rounds):
        for path in (a, b):
            times[path].append(time_artifact(path, threads=2, runs=10).median_ms)
    return round(min(times[a]), 3), round(min(times[b]), 3)
