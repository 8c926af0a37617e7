"""Convert a model zoo: `effconvert batch PLAN.toml` — many checkpoints, each an ordinary pipeline
job, on local worker processes or on a Ray cluster; batch.json + index.html + matrix.md beside the
per-checkpoint folders.

    from effconvert.batch import run_batch
    outcome = run_batch("zoo.toml", workers=2)              # or ray="auto"
    outcome.exit_code, outcome.index_path

Every job is checked before the first one runs (a bad plan is exit 2, nothing written). Jobs fail
alone: a failing or killed job is recorded and the others go on. batch.json is rewritten after each
job, so a killed batch still says what finished; `resume=True` skips jobs whose report was made from
the same checkpoint bytes, effconvert version and options.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..atomic import write_text_atomic
from ..errors import BadInput
from ..limits import MAX_THREADS
from ..workspace import check_output_dir, output_lock
from .index import batch_record, render_index, render_matrix
from .job import JobResult, finished_earlier
from .plan import Job, Plan, read_plan

__all__ = ["BatchOutcome", "Job", "JobResult", "Plan", "default_workers", "read_plan", "run_batch"]

ResultCallback = Callable[[JobResult, int, int], None]  # (result, done so far, total)
INTERRUPTED_EXIT = 130  # 128 + SIGINT, as a shell reports ^C


@dataclass(frozen=True)
class BatchOutcome:
    plan: Plan
    results: dict[str, JobResult]
    record: dict  # what batch.json holds
    out_dir: Path
    exit_code: int  # 0 all passed, 1 some gate failed, 3 some job failed

    @property
    def index_path(self) -> Path:
        return self.out_dir / "index.html"


def default_workers(threads: int) -> int:
    """As many jobs at once as the machine has cores for (cores / threads per job)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // threads)


def check_batch_options(workers: int | None, threads: int) -> None:
    for flag, value in (("--workers", workers), ("--threads", threads)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_THREADS
        ):
            raise BadInput(f"{flag} {value} is out of range: from 1 to {MAX_THREADS}")


def exit_code_of(results: list[JobResult]) -> int:
    codes = {result.exit_code for result in results}
    return 3 if 3 in codes else 1 if 1 in codes else 0


def run_batch(
    plan_path: str | Path,
    *,
    out_dir: str | Path | None = None,
    workers: int | None = None,
    threads: int = 1,
    ray: str | None = None,
    resume: bool = False,
    on_result: ResultCallback = lambda result, done, total: None,
    on_start: Callable[[Job], None] = lambda job: None,
    on_plan: Callable[[Plan, int], None] = lambda plan, todo: None,
) -> BatchOutcome:
    """Run every job of the plan; see the module docstring. `ray`: a cluster address, "auto" (the
    cluster `ray start` runs on this machine) or "local" (start one for this batch)."""
    check_batch_options(workers, threads)
    plan = read_plan(Path(plan_path), None if out_dir is None else Path(out_dir))
    check_output_dir(plan.out_dir)
    workers = workers or default_workers(threads)
    runner = "local processes"
    if ray is not None:
        from .cluster import connect

        runner, cpus = connect(ray, workers)
        workers = max(1, cpus // threads)  # what Ray can run at once
    started = time.perf_counter()
    results: dict[str, JobResult] = {}
    with output_lock(plan.out_dir):
        todo = []
        before = _earlier_record(plan.out_dir) if resume else {}
        for job in plan.jobs:
            earlier = finished_earlier(job) if resume else None
            if earlier is not None:
                known = before.get(job.name, {})
                if known.get("checkpoint_sha256") == earlier.checkpoint_sha256 and known.get("seconds"):
                    earlier.seconds, earlier.peak_rss_mb, earlier.worker = (
                        known["seconds"],
                        known.get("peak_rss_mb"),
                        known.get("worker") or "",
                    )
                results[job.name] = earlier
            else:
                todo.append(job)
        on_plan(plan, len(todo))
        for result in results.values():
            on_result(result, len(results), len(plan.jobs))
        interrupted: int | None = INTERRUPTED_EXIT  # until the loop ends: what an interrupted run exits with
        try:
            if ray is not None:
                from .cluster import run_ray

                finished = run_ray(todo, threads)
            else:
                from .local import run_local

                finished = run_local(todo, workers, threads, on_start)
            for result in finished:
                results[result.name] = result
                on_result(result, len(results), len(plan.jobs))
                _write(plan, results, runner, workers, threads, started, interrupted=None)
            interrupted = None
        except BaseException as exc:
            # ^C is KeyboardInterrupt (130); the CLI raises SIGTERM as a KeyboardInterrupt with its own code.
            interrupted = getattr(exc, "exit_code", INTERRUPTED_EXIT) if isinstance(exc, KeyboardInterrupt) else None
            raise
        finally:
            record = _write(plan, results, runner, workers, threads, started, interrupted=interrupted)
    return BatchOutcome(plan, results, record, plan.out_dir, record["exit_code"])


def _earlier_record(out_dir: Path) -> dict[str, dict]:
    """The jobs of the batch.json an earlier run left (for a resumed job's time and memory)."""
    try:
        record = json.loads((out_dir / "batch.json").read_text(encoding="utf-8"))
        return {job["name"]: job for job in record["jobs"] if isinstance(job, dict) and "name" in job}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _write(
    plan: Plan,
    results: dict[str, JobResult],
    runner: str,
    workers: int,
    threads: int,
    started: float,
    *,
    interrupted: int | None,
) -> dict:
    """batch.json, index.html and matrix.md as they stand: after every job, so a killed batch
    (even SIGKILL) leaves a record of what finished. `interrupted`: the exit code of an interrupt."""
    code = interrupted if interrupted is not None else exit_code_of(list(results.values()))
    record = batch_record(
        plan,
        results,
        runner=runner,
        workers=workers,
        threads=threads,
        seconds=time.perf_counter() - started,
        exit_code=code,
        interrupted=interrupted is not None,
    )
    write_text_atomic(plan.out_dir / "batch.json", json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    write_text_atomic(plan.out_dir / "index.html", render_index(record))
    write_text_atomic(plan.out_dir / "matrix.md", render_matrix(record))
    return record
