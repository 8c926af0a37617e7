"""Jobs on this machine: N worker processes, each running one job at a time.

One process per slot (not a shared pool) so that a worker that dies — SIGKILL, the OOM killer, a
crash in a converter's C++ — costs exactly the job it was running: that job is recorded as crashed
with its signal, a fresh worker takes the slot, the other jobs go on. Workers start with `spawn`
(torch's threads do not survive `fork`) and ignore SIGINT: Ctrl-C reaches the whole process group,
and the driver decides — it sends each busy worker SIGTERM, which unwinds the pipeline's `finally`
blocks (private temporary folder, output lock) before the process exits.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection, wait

from .job import JobResult, run_job
from .plan import Job

STOP_GRACE_S = 30  # a worker's time to clean up after SIGTERM before SIGKILL


class _Stop(BaseException):
    """SIGTERM in a worker: unwinds like KeyboardInterrupt, past `except Exception`."""


def _raise_stop(signum, frame) -> None:
    raise _Stop()


def _worker(conn: Connection, threads: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _raise_stop)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # converters' own thread pools too
        os.environ[name] = str(threads)
    try:
        while (job := conn.recv()) is not None:
            conn.send(run_job(job, threads))
    except (_Stop, EOFError):
        pass


class _Slot:
    def __init__(self, context, threads: int):
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_worker, args=(child, threads), daemon=True)
        self.process.start()
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
