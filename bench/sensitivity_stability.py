"""How many calibration images the int8 sensitivity ranking needs: the ranking on 2, 4, 8 (the
default, quantize/sensitivity.SIMULATION_BATCH) and 16 images, each compared with the one on 32.

    .venv/bin/python bench/sensitivity_stability.py [ARCH ...]

Per batch size: seconds, Spearman's rank correlation with the 32-image ranking, and how many of
the fallback's candidates (its largest float set: a quarter of the layers) are the same layers.
Make-checkpoint weights, built-in calibration images. Writes bench/results/sensitivity_stability.md.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"
BATCHES = (2, 4, 8, 16)
REFERENCE = 32


def rank_of(ranking) -> dict[str, int]:
    return {s.name: i for i, s in enumerate(ranking)}


def spearman(a: dict[str, int], b: dict[str, int]) -> float:
    names = list(a)
    x = np.array([a[n] for n in names], dtype=float)
    y = np.array([b[n] for n in names], dtype=float)
    return float(np.corrcoef(x, y)[0, 1])


def main(archs: list[str]) -> None:
    import torch

    from effconvert.fuse import fuse_model
    from effconvert.load import load_checkpoint
    from effconvert.pipeline import CALIBRATION_SEED
    from effconvert.quantize.fallback import MAX_FRACTION
    from effconvert.quantize.sensitivity import layer_sensitivity
    from effconvert.synth.checkpoint import make_checkpoint
    from effconvert.validate import input_set

    torch.set_num_threads(2)
    lines = [
        "| model | images | seconds | Spearman vs 32 images | fallback candidates shared |",
        "|---|---|---|---|---|",
    ]
    for arch in archs:
        with tempfile.TemporaryDirectory() as tmp:
            ckpt = Path(tmp) / f"{arch}.pth"
            make_checkpoint(arch, ckpt, seed=0)
            loaded = load_checkpoint(ckpt)
        calibration = input_set(loaded.preprocessing, samples=REFERENCE, seed=CALIBRATION_SEED).inputs
        fused = fuse_model(loaded.model, inputs=torch.from_numpy(calibration[:8])).model
        with torch.no_grad():
            reference = layer_sensitivity(fused, calibration, batch=REFERENCE)
        top = max(1, int(len(reference) * MAX_FRACTION))
        head = {s.name for s in reference[:top]}
        for batch in BATCHES:
            start = time.perf_counter()
            with torch.no_grad():
                ranking = layer_sensitivity(fused, calibration, batch=batch)
            seconds = time.perf_counter() - start
            shared = len(head & {s.name for s in ranking[:top]})
            lines.append(
                f"| {arch} | {batch} | {seconds:.1f} | {spearman(rank_of(reference), rank_of(ranking)):.3f} | "
                f"{shared} of {top} |"
            )
            print(lines[-1], flush=True)
    text = (
        "int8 sensitivity ranking vs the number of calibration images (make-checkpoint weights, built-in "
        f"images; reference: {REFERENCE} images; 2 threads)\n\n" + "\n".join(lines) + "\n"
    )
    (RESULTS / "sensitivity_stability.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main(sys.argv[1:] or ["fastvit_t8", "efficientvit_m0"])
