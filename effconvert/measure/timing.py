"""Median and p90 wall time of a call, after warm-up (first calls allocate and pack weights); and
of several calls timed in turn, round by round, so that a busy machine weighs on each alike."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Timing:
    median_ms: float
    p90_ms: float
    runs: int

    def as_dict(self) -> dict:
        return asdict(self)


def time_calls(fn: Callable[[], object], *, runs: int, warmup: int = 3) -> Timing:
    if runs < 1:
        raise ValueError(f"runs must be at least 1, got {runs}")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return Timing(float(np.median(times)), float(np.percentile(times, 90)), runs)


SETTLE_S = 0.05  # before each turn: the previous runtime's spinning worker threads go to sleep


def time_alternately(
    calls: dict[str, Callable[[], object]], *, rounds: int, runs: int, warmup: int = 3, settle_s: float = SETTLE_S
) -> dict[str, Timing]:
    """Each call's median over `rounds` rounds of `runs` calls, the calls taking turns round by
    round. One after the other, two artifacts' ratio moved between 0.70 and 1.07 on this machine
    (ExecuTorch int8 / fp32, FastViT-S12): whichever ran during a neighbour's burst lost.

    Each turn starts with a pause and one untimed call: runtimes in one process keep their own
    thread pools, whose workers spin a while after a run (ONNX Runtime's by default). Without it,
    ExecuTorch fp32 timed right after ONNX Runtime fp16 took 40 ms against 33 ms on its own."""
    if rounds < 1 or runs < 1:
        raise ValueError(f"rounds and runs must be at least 1, got {rounds} and {runs}")
    for fn in calls.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, fn in calls.items():
            time.sleep(settle_s)
            fn()
            for _ in range(runs):
                start = time.perf_counter()
                fn()
                times[name].append((time.perf_counter() - start) * 1000)
    return {name: Timing(float(np.median(t)), float(np.percentile(t, 90)), len(t)) for name, t in times.items()}
