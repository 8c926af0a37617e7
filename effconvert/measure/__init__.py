"""measure: latency, memory and the hardware floor, for `effconvert bench` and bench/.

Numbers on a shared machine move between runs; ratios measured in one run hold. Everything here
returns plain dataclasses; rendering is the CLI's or the bench script's job.
"""

from .artifacts import ArtifactBench, bench_artifact, check_bench_options, mil_fixed_cost, runtime_call
from .floor import model_flops, sgemm_gflops
from .timing import Timing, time_alternately, time_calls

__all__ = [
    "ArtifactBench",
    "Timing",
    "bench_artifact",
    "check_bench_options",
    "mil_fixed_cost",
    "model_flops",
    "runtime_call",
    "sgemm_gflops",
    "time_alternately",
    "time_calls",
]
