"""Jobs on a Ray cluster (`pip install effconvert[ray]`): the same `run_job`, as Ray tasks.

Each task declares what a job needs (`threads` CPUs, JOB_MEMORY bytes) so Ray places it where that
is free. Artifacts are written by the task itself into the job's folder under `--out`, which must
be a path every node sees (a shared filesystem): copying hundreds of MB of artifacts through the
object store to the driver would double the traffic for no gain. Only the `JobResult` (the report,
a few kB) comes back. A task whose worker dies is recorded as crashed, not retried: `--resume`
reruns it, and a job that kills its worker (out of memory) would otherwise kill three more.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

from ..errors import BadInput
from ..quiet import first_line
from .job import JobResult, run_job
from .plan import Job

# Declared per task, a margin over what jobs were measured to need: MobileOne-S0 and EfficientViT-M0
# (onnx + executorch, fp32 + fp16) peaked at 1.2 and 1.1 GiB of RSS here; batch.json records every
# job's `peak_rss_mb`, the figure to size a cluster's tasks by for bigger models.
JOB_MEMORY = 4 << 30
LOCAL = "local"  # --ray local: a Ray instance started for this batch, on this machine


def connect(address: str, workers: int) -> tuple[str, int]:
    """Join the cluster at `address` ("auto": the one `ray start` runs here; "local": start one
    with `workers` CPUs). An already initialised Ray (a notebook, a test) is used as it is.
    Returns (what was joined, its CPUs)."""
    try:
        import ray
    except ImportError:
        raise BadInput("--ray needs Ray, which is not installed", hint="pip install 'effconvert[ray]'") from None
    if not ray.is_initialized():
        _check_reachable(address)
        try:
            if address == LOCAL:
                ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
            else:
                ray.init(address=address, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise BadInput(
                f"--ray {address}: cannot join a Ray cluster: {first_line(exc)[:200]}",
                hint="start one with `ray start --head`, or use --ray local",
            ) from None
    cpus = int(ray.cluster_resources().get("CPU", 0))
    return f"Ray {ray.__version__} ({cpus} CPUs)", cpus


PROBE_TIMEOUT_S = 3.0


def _check_reachable(address: str) -> None:
    """A HOST:PORT address that does not answer is refused in seconds (Ray itself retries for ~20 s)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto", "local", or a form Ray resolves itself
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_TIMEOUT_S).close()
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise BadInput(
            f"--ray {address}: nothing answers there within {PROBE_TIMEOUT_S:.0f} s ({reason})",
            hint="start one with `ray start --head`, or use --ray local",
        ) from None


def run_ray(jobs: list[Job], threads: int) -> Iterator[JobResult]:
    """Yield each job's result as its task finishes; on interrupt, cancel the rest."""
    import ray

    task = ray.remote(num_cpus=threads, memory=JOB_MEMORY, max_retries=0)(run_job)
    running = {task.remote(job, threads): job for job in jobs}
    try:
        while running:
            done, _ = ray.wait(list(running), num_returns=1)
            for ref in done:
                job = running.pop(ref)
                try:
                    yield ray.get(ref)
                except ray.exceptions.RayError as exc:
                    yield JobResult(
                        job.name, "crashed", error=f"Ray task failed: {type(exc).__name__}: {first_line(exc)}"
                    )
    finally:
        for ref in running:
            ray.cancel(ref, force=True)
