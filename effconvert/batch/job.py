"""One batch job, run where a worker runs it (a local process or a Ray task), and what it returns.

A job is the ordinary pipeline into its own folder, with that pipeline's guarantees: atomic
artifacts, report.json written last, a private temporary folder. Whatever happens inside becomes
a `JobResult` (plain data, picklable): a failing job is recorded, it never stops the others.
"""

from __future__ import annotations

import json
import os
import resource
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from .._version import __version__
from ..errors import BadInput, EffconvertError
from ..files import sha256_of
from ..load.snapshot import is_snapshot
from ..load.snapshot import resolve as resolve_snapshot
from ..report.schema import Report
from .plan import Job

# status -> the batch exit code it contributes (the worst wins): design.md's codes, per job.
STATUS_EXIT = {"passed": 0, "gate-failed": 1, "refused": 3, "conversion-failed": 3, "crashed": 3}


@dataclass
class JobResult:
    name: str
    status: str  # a key of STATUS_EXIT
    seconds: float = 0.0
    error: str | None = None
    peak_rss_mb: float | None = None
    worker: str = ""  # pid@host that ran it
    checkpoint_sha256: str | None = None
    resumed: bool = False  # --resume: the report of an earlier run stands, nothing ran
    report: Report | None = field(default=None, repr=False)  # the job's report

    @property
    def exit_code(self) -> int:
        return STATUS_EXIT[self.status]


def run_job(job: Job, threads: int) -> JobResult:
    """Write the synthetic checkpoint if the job makes one, then run the pipeline. Never raises
    for a job's own failure: that is the result."""
    import socket

    import torch

    torch.set_num_threads(threads)
    worker = f"{os.getpid()}@{socket.gethostname()}"
    started = time.perf_counter()
    try:
        if job.make is not None and not job.checkpoint.exists():
            from ..synth.checkpoint import make_checkpoint

            make_checkpoint(job.make.arch, job.checkpoint, layout=job.make.layout, seed=job.make.seed)
        from ..pipeline import run

        # One process per job: a job uses the `threads` cores it declared (to Ray, or to the pool's
        # slots), and a batch's parallelism is its jobs side by side.
        outcome = run(job.request, second_process=False)
        status = {0: "passed", 1: "gate-failed"}.get(outcome.exit_code, "conversion-failed")
        failed = [f"{a.target} {a.quant}: {a.error}" for a in outcome.report.artifacts if a.error]
        result = JobResult(
            job.name,
            status,
            error="; ".join(failed) or None,
            report=outcome.report,
            checkpoint_sha256=outcome.report.model.sha256,
        )
    except EffconvertError as exc:  # refused once the checkpoint was read (e.g. its size)
        result = JobResult(
            job.name,
            "refused" if isinstance(exc, BadInput) else "conversion-failed",
            error=exc.message + (f" ({exc.hint})" if exc.hint else ""),
        )
    except Exception as exc:  # noqa: BLE001 - one job's bug is that job's result, not the batch's end
        where = traceback.extract_tb(exc.__traceback__)[-1]
        result = JobResult(
            job.name, "crashed", error=f"{type(exc).__name__}: {exc} ({Path(where.filename).name}:{where.lineno})"[:500]
        )
    result.seconds = round(time.perf_counter() - started, 2)
    result.peak_rss_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    result.worker = worker
    return result


def finished_earlier(job: Job) -> JobResult | None:
    """--resume: the job's report exists and was made from the same checkpoint bytes, effconvert
    version and options; its result then stands. Anything else (no report, a killed run, another
    version or option) runs the job again."""
    path = job.out_dir / "report.json"
    if not path.is_file() or not (job.out_dir / "report.html").is_file():
        return None
    try:  # a snapshot folder or hf-hub id: its weights file's bytes
        weights = resolve_snapshot(job.checkpoint)[0] if is_snapshot(job.checkpoint) else job.checkpoint
    except BadInput:
        return None
    if not weights.is_file():
        return None
    try:
        report = Report.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    same = (
        report.versions.get("effconvert") == __version__
        and dict(report.options) == job.request.options()
        and all((job.out_dir / a.path).exists() for a in report.artifacts if a.path)
    )
    if not same:
        return None
    sha256 = sha256_of(weights)
    if report.model.sha256 != sha256:
        return None
    status = "passed" if report.passed else ("conversion-failed" if report.conversion_failed else "gate-failed")
    return JobResult(
        job.name,
        status,
        seconds=report.timings_s.get("total", 0.0),
        checkpoint_sha256=sha256,
        report=report,
        resumed=True,
    )
