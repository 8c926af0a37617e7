"""Benchmark one artifact on its runtime, in a fresh child process.

A child per artifact gives each one a clean peak-memory figure (the runtime, its arena and the
weights, not what earlier artifacts left behind) and its own thread pools.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import platform
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import ArtifactFailed, BadInput, EffconvertError
from ..files import check_artifact, size_on_disk
from ..limits import MAX_RUNS, MAX_THREADS
from ..quiet import first_line
from .timing import Timing, time_calls


@dataclass(frozen=True)
class ArtifactBench:
    path: str
    target: str
    runtime: str
    size_bytes: int
    threads: int
    timing: Timing
    peak_rss_mb: float  # the child process's high-water mark
    added_rss_mb: float  # of which loading and running the artifact added
    # Of the added memory, shared-library pages (.so code and read-only data) the run paged in:
    # file-backed, shared with every process using those libraries, the same for any model that
    # runs the same kernels. Linux only (0 elsewhere).
    library_rss_mb: float = 0.0
    # The MIL executor only: what `mil_fixed_cost` measured on the one-conv package (importing
    # torch and coremltools, the executor itself), and the library pages of that.
    fixed_rss_mb: float | None = None
    fixed_library_rss_mb: float | None = None
    # The input batch the child made after its baseline (pixels and normalised floats): the
    # caller's data, not the runtime's; left out of package_rss_mb (the one-conv probe's is ~0).
    input_mb: float = 0.0

    @property
    def package_rss_mb(self) -> float | None:
        """What this package costs beyond the fixed part: the private memory (its program, its
        weights, its activations and what the allocator keeps of them) the run added beyond the
        probe's. Library code its ops page in beyond the probe's is torch's, reported apart."""
        if self.fixed_rss_mb is None:
            return None
        return max(
            (self.added_rss_mb - self.library_rss_mb - self.input_mb)
            - (self.fixed_rss_mb - (self.fixed_library_rss_mb or 0.0)),
            0.0,
        )

    @property
    def package_rss_ratio(self) -> float | None:
        """package_rss_mb over the package's size, both in MiB."""
        if self.package_rss_mb is None or not self.size_bytes:
            return None
        return self.package_rss_mb * 2**20 / self.size_bytes

    @property
    def library_beyond_fixed_mb(self) -> float | None:
        if self.fixed_rss_mb is None:
            return None
        return max(self.library_rss_mb - (self.fixed_library_rss_mb or 0.0), 0.0)

    @property
    def device_speed(self) -> bool:
        """False for a runtime whose time says nothing about a phone: the MIL executor (a reference
        interpreter of a Core ML program), the QNN HTP simulator."""
        from ..runtime import RUNTIMES

        return RUNTIMES[self.runtime].device_speed

    def as_dict(self) -> dict:
        return {
            **asdict(self),
            "timing": self.timing.as_dict(),
            "device_speed": self.device_speed,
            **(
                {}
                if self.fixed_rss_mb is None
                else {
                    "package_rss_mb": self.package_rss_mb,
                    "package_rss_ratio": self.package_rss_ratio,
                    "library_beyond_fixed_mb": self.library_beyond_fixed_mb,
                }
            ),
            **({} if self.device_speed else {"note": f"{self.runtime}: not device speed"}),
        }


def check_bench_options(paths: list[Path], *, threads: int, runs: int) -> None:
    """Refuse bad options and unusable paths before any artifact is opened."""
    from ..targets import target_of

    if not 1 <= threads <= MAX_THREADS:
        raise BadInput(f"--threads {threads} is out of range: from 1 to {MAX_THREADS}")
    if not 1 <= runs <= MAX_RUNS:
        raise BadInput(f"--runs {runs} is out of range: from 1 to {MAX_RUNS}")
    for path in map(Path, paths):
        check_artifact(path)
        target_of(path)


def bench_artifact(path: Path, *, threads: int = 2, runs: int = 20, warmup: int = 3) -> ArtifactBench:
    path = Path(path)
    check_bench_options([path], threads=threads, runs=runs)
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        try:
            result = pool.submit(_measure_in_child, str(path), threads, runs, warmup).result()
        except concurrent.futures.process.BrokenProcessPool:
            raise ArtifactFailed(
                f"{path.name}: its runtime crashed the measuring process (the file is damaged or not what its name says)"
            ) from None
    if "error" in result:
        raise (ArtifactFailed if result.get("fails_at_run") else BadInput)(result["error"])
    return ArtifactBench(
        str(path),
        result["target"],
        result["runtime"],
        size_on_disk(path),
        threads,
        Timing(**result["timing"]),
        result["peak_rss_mb"],
        result["added_rss_mb"],
        result["library_rss_mb"],
        input_mb=result["input_mb"],
    )


def time_artifact(path: Path, *, threads: int = 2, runs: int = 10, warmup: int = 3) -> Timing:
    """The artifact's latency on its runtime, timed in this process: no memory figures, and no
    child — the caller may be a batch worker, which multiprocessing lets have none (daemonic)."""
    return time_calls(runtime_call(path, threads=threads), runs=runs, warmup=warmup)


def runtime_call(path: Path, *, threads: int = 2) -> Callable[[], object]:
    """One inference of the artifact on its runtime, opened here, on a noise batch of its input shape."""
    from ..runtime import noise_batch, open_runtime

    runtime = open_runtime(Path(path), threads=threads)
    batch = noise_batch((1, *runtime.input_shape[1:]))
    return lambda: runtime.run(batch)


def mil_fixed_cost(*, threads: int = 2) -> ArtifactBench:
    """The MIL executor's fixed memory: what loading and running the smallest package (one 3x3
    convolution, fp16) adds in a fresh child, measured as any artifact is (its `added_rss_mb`, and
    the library pages of that in `library_rss_mb`). It is torch and coremltools being imported and
    the executor itself; what a real package adds beyond it is the package's own cost."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="effconvert-fixed-") as tmp:
        path = one_conv_package(Path(tmp) / "one_conv.mlpackage")
        return bench_artifact(path, threads=threads, runs=3)


def one_conv_package(path: Path) -> Path:
    """The smallest real package: input 1x3x8x8, one 3x3 conv to 4 channels, fp16 weights."""
    import numpy as np

    from ..quiet import quiet

    with quiet():
        import coremltools as ct
        from coremltools.converters.mil import Builder as mb

        weight = np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32)

        @mb.program(input_specs=[mb.TensorSpec(shape=(1, 3, 8, 8))], opset_version=ct.target.iOS16)
        def program(x):
            return mb.conv(x=x, weight=weight, pad_type="same", name="y")

        ct.convert(
            program,
            convert_to="mlprogram",
            minimum_deployment_target=ct.target.iOS16,
            compute_precision=ct.precision.FLOAT16,
            skip_model_load=True,
        ).save(str(path))
    return path


def _measure_in_child(path: str, threads: int, runs: int, warmup: int) -> dict:
    from ..runtime import noise_batch, open_runtime
    from ..runtime.mil import heap
    from ..targets import target_of

    heap.settle()  # this child measures memory as the CLI would run the artifact
    try:
        before, library_before = _rss_mb("VmRSS"), _library_rss_mb()
        target = target_of(Path(path))
        runtime = open_runtime(Path(path), threads=threads)
        if len(runtime.input_shape) != 4:
            return {
                "error": f"{Path(path).name}: its input is {list(runtime.input_shape)}, not an image batch (N, C, H, W)"
            }
        batch = noise_batch((1, *runtime.input_shape[1:]))
    except EffconvertError as exc:  # sent back as text: exceptions pickle badly
        return {"error": exc.message}
    try:
        timing = time_calls(lambda: runtime.run(batch), runs=runs, warmup=warmup)
    except EffconvertError as exc:
        return {"error": exc.message, "fails_at_run": exc.exit_code == ArtifactFailed.exit_code}
    except Exception as exc:  # noqa: BLE001 - the runtime's own error, for an artifact it loaded
        return {
            "error": f"{Path(path).name} loads but fails when {runtime.name} runs it: {first_line(exc)}",
            "fails_at_run": True,
        }
    peak = _rss_mb("VmHWM")
    return {
        "target": target.name,
        "runtime": runtime.name,
        "timing": timing.as_dict(),
        "peak_rss_mb": peak,
        "added_rss_mb": max(peak - before, 0.0),
        "input_mb": (batch.inputs.nbytes + (batch.pixels.nbytes if batch.pixels is not None else 0)) / 2**20,
        "library_rss_mb": max(_library_rss_mb() - library_before, 0.0),
    }


def _library_rss_mb() -> float:
    """Resident pages of the shared libraries (.so files) mapped in this process, MB: code and
    read-only data, file-backed. A package's own files (a mapped weight.bin) are not counted here.
    0 where /proc/self/smaps does not exist."""
    smaps = Path(f"/proc/{os.getpid()}/smaps")
    if not smaps.exists():
        return 0.0
    total_kb, library = 0, False
    for line in smaps.read_text().splitlines():
        if line[:1] in "0123456789abcdef" and "-" in line.split(" ", 1)[0]:  # a mapping's header
            fields = line.split()
            library = len(fields) > 5 and ".so" in Path(fields[5]).name
        elif library and line.startswith("Rss:"):
            total_kb += int(line.split()[1])
    return total_kb / 1024


def _rss_mb(field: str) -> float:
    """Resident memory from /proc (Linux); elsewhere the peak from getrusage for both fields."""
    status = Path(f"/proc/{os.getpid()}/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024 if platform.system() == "Darwin" else 1024)
