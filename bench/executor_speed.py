"""MIL executor vs fused PyTorch eager, batch 1, same thread count, measured in one run.

    .venv/bin/python bench/executor_speed.py [ARCH] [--threads N] [--runs N]

Prints median latencies and their ratio (target in the MIL-executor issue: <= 1.5x for
fastvit_s12 fp32). Ratios hold on a shared, noisy machine; absolute times do not.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def median_ms(fn, runs: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    from effconvert.convert import ModelInfo, convert
    from effconvert.fuse import fuse_model
    from effconvert.labels import labels_for
    from effconvert.load import Preprocessing
    from effconvert.synth.checkpoint import realistic_model
    from effconvert.validate import input_set
    from effconvert.validate.mil import MILExecutor

    parser = argparse.ArgumentParser()
    parser.add_argument("arch", nargs="?", default="fastvit_s12")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    pre = Preprocessing.from_timm(args.arch)
    model, _ = realistic_model(args.arch)
    inputs = input_set(pre, samples=8)
    fused = fuse_model(model, inputs=torch.from_numpy(inputs.inputs)).model
    labels, source = labels_for(1000)
    info = ModelInfo(args.arch, "bench", "-", "timm", 1000, pre, tuple(labels), source, "synthetic")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for quant in ("fp32", "fp16"):
            artifact = convert(fused, info, target="coreml", quant=quant, out_dir=Path(tmp),
                               sample=torch.from_numpy(inputs.inputs[:1]))
            executor = MILExecutor(artifact.path)
            feed = {"image": inputs.pixels[:1].transpose(0, 3, 1, 2).astype(np.float32)}
            x = torch.from_numpy(inputs.inputs[:1])
            with torch.no_grad():
                eager = median_ms(lambda: fused(x), args.runs)
            mil = median_ms(lambda: executor.run(feed), args.runs)
            rows.append((quant, eager, mil))
    print(f"{args.arch}, batch 1, {args.threads} threads, median of {args.runs}")
    print(f"{'program':8} {'torch eager (fused) ms':>24} {'MIL executor ms':>16} {'ratio':>6}")
    for quant, eager, mil in rows:
        print(f"{quant:8} {eager:24.1f} {mil:16.1f} {mil / eager:6.2f}")


if __name__ == "__main__":
    main()
