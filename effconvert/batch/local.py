"""Jobs on this machine: N worker processes, each running one job at a time.

One process per slot (not a shared pool) so that a worker that dies — SIGKILL, the OOM killer, a
crash in a converter's C++ — costs exactly the job it was running: that job is recorded as crashed
with its signal, a fresh worker takes the slot, the other jobs go on. Workers start with `spawn`
(torch's threads do not survive `fork`) and ignore SIGINT from their first instruction (it is
ignored while they are started, and an ignored signal stays ignored across exec): Ctrl-C reaches
the whole process group, and the driver decides — it sends each busy worker SIGTERM, which unwinds
the pipeline's `finally` blocks (private temporary folder, output lock) before the process exits;
a second SIGTERM (the group's, then the driver's) does not cut that cleanup short (signals.py).

A worker killed outright (SIGKILL, the OOM killer) runs no `finally`: each worker's temporary files
live in a folder the driver made for it and removes when the worker is gone, and the driver sweeps
the dead worker's job folder (its lock file, a conversion's temporary folder).
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection, wait
from pathlib import Path

from .. import signals
from ..atomic import remove_stale_temporaries
from ..workspace import remove_dead_lock
from .job import JobResult, run_job
from .plan import Job

STOP_GRACE_S = 30  # a worker's time to clean up after SIGTERM before SIGKILL


def _worker(conn: Connection, threads: int, temp: str) -> None:
    signals.install(sigint=False)  # SIGTERM unwinds (Terminated); SIGINT stays ignored
    os.environ["TMPDIR"] = tempfile.tempdir = temp
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # converters' own thread pools too
        os.environ[name] = str(threads)
    try:
        while (job := conn.recv()) is not None:
            conn.send(run_job(job, threads))
    except (KeyboardInterrupt, EOFError, BrokenPipeError):
        pass


class _Slot:
    def __init__(self, context, threads: int):
        self.conn, child = context.Pipe()
        self.temp = tempfile.mkdtemp(prefix="effconvert-worker-")
        self.process = context.Process(target=_worker, args=(child, threads, self.temp), daemon=True)
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # inherited: ignored from the start
        try:
            self.process.start()
        finally:
            signal.signal(signal.SIGINT, previous)
        child.close()
        self.job: Job | None = None

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(STOP_GRACE_S)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()
        shutil.rmtree(self.temp, ignore_errors=True)


def _sweep(job: Job) -> None:
    """What a worker killed mid-job leaves in the job's folder: its lock, a conversion's temporary."""
    out = Path(job.out_dir)
    if out.is_dir() and remove_dead_lock(out):
        remove_stale_temporaries(out)


def run_local(
    jobs: list[Job], workers: int, threads: int, on_start: Callable[[Job], None] = lambda job: None
) -> Iterator[JobResult]:
    """Yield each job's result as it finishes. Interrupting the generator's consumer (Ctrl-C)
    stops every worker cleanly; jobs not finished are simply not yielded."""
    context = multiprocessing.get_context("spawn")
    pending = list(jobs)
    slots = [_Slot(context, threads) for _ in range(min(workers, len(jobs)))]
    try:
        while pending or any(slot.job for slot in slots):
            for slot in slots:
                if slot.job is None and pending:
                    slot.job = pending.pop(0)
                    slot.conn.send(slot.job)
                    on_start(slot.job)
            busy = [slot for slot in slots if slot.job is not None]
            ready = wait([slot.conn for slot in busy] + [slot.process.sentinel for slot in busy])
            for index, slot in enumerate(slots):
                if slot.job is None or not (slot.conn in ready or slot.process.sentinel in ready):
                    continue
                job, slot.job = slot.job, None
                try:
                    result = slot.conn.recv()
                except (EOFError, OSError):  # the worker died mid-job
                    slot.process.join()
                    result = JobResult(
                        job.name,
                        "crashed",
                        error=f"worker process died ({_exit_text(slot.process)})"
                        " — its completed artifacts stand; --resume reruns the job",
                    )
                    slot.stop()
                    _sweep(job)
                    slots[index] = _Slot(context, threads)
                yield result
    finally:
        for slot in slots:
            slot.stop()


def _exit_text(process) -> str:
    code = process.exitcode
    if code is not None and code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"
