"""The stages in order — the only place that knows the order:

    check the request -> load -> inputs -> fuse -> calibrate -> rank layers
      -> for each (target, quant): convert -> validate (-> float fallback) -> report

Every exit-2 refusal happens in `check_request`, before the first read or write; artifacts and
the report are each written atomically. The steps are functions from plain data to plain data
(steps.py, build.py, fallback.py); where the checks and some conversions run — a second process
beside this one, or inline — is the executor's business (executor.py). Progress leaves through
`on_event` as typed events (events.py), so nothing here draws.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..convert import Artifact
from ..options import Request
from ..report.schema import Report
from ..request import check_request
from ..targets import artifact_name
from ..workspace import check_not_in_use
from . import steps
from .build import Context, Reference, build_pairs
from .events import Done, Event, EventCallback, Started, ignore
from .executor import Executor, SecondProcessFailed, keep_second_process
from .fallback import float_fallback

__all__ = [
    "Done",
    "Event",
    "EventCallback",
    "Outcome",
    "Request",
    "SecondProcessFailed",
    "Started",
    "keep_second_process",
    "run",
]


@dataclass(frozen=True)
class Outcome:
    report: Report
    report_path: Path
    out_dir: Path
    artifacts: tuple[Artifact, ...]  # the files written, in the order asked for

    @property
    def exit_code(self) -> int:
        return self.report.exit_code


def run(request: Request, on_event: EventCallback = ignore, *, second_process: bool | None = None) -> Outcome:
    """Check everything, then load, convert, validate and report. `second_process`: the checks
    and some conversions in a second process (None: when there are two cores; a batch job passes
    False — a batch runs jobs side by side)."""
    pairs = check_request(request)
    check_not_in_use(request.output_dir)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="effconvert-run-") as tmp, Executor(second_process) as executor:
        loaded = steps.load(request, pairs, on_event)
        inputs = steps.inputs_for(loaded, request, on_event)
        fused = steps.fuse(loaded, request, inputs, executor, Path(tmp), on_event)
        calibration = steps.calibrate(loaded, request, pairs, on_event)
        paths = [request.output_dir / artifact_name(loaded.model.arch, t, q) for t, q in pairs.pairs]
        with steps.writing(request.output_dir, executor, paths) as out_dir:
            int8 = steps.equalize(fused.model, calibration, request, pairs, on_event)
            sensitivity = steps.rank_layers(fused.model if int8 is None else int8.migrated, calibration, on_event)
            context = Context(
                fused.model,
                loaded.info,
                out_dir,
                fused.sample,
                request.export_options(),
                request.gate,
                request.validate,
                request.fallback,
                request.int8_io,
                steps.family_fp32_ops(loaded),
                calibration,
                Reference(fused.prepared, on_event),
                on_event,
                int8.by_target if int8 else {},
                inputs.inputs,
            )
            built = build_pairs(pairs.pairs, context, executor, sensitivity, float_fallback)
            report = steps.assemble_report(
                loaded,
                request,
                pairs,
                inputs,
                fused,
                context.prepared.result(),
                calibration,
                sensitivity,
                int8,
                built,
                started,
            )
            report_path = steps.write_outputs(report, built, out_dir)
    return Outcome(report, report_path, out_dir, tuple(b.artifact for b in built if b.artifact is not None))
