"""LiteRT GPU delegate readiness of one variant per family: the fp32 TFLite of a make-checkpoint
model, read by `effconvert device` (device/android_gpu.py, rules from LiteRT's GPU compatibility
checks). Writes bench/results/android_gpu.{json,md}; docs/guides/device.md shows the table.

    .venv/bin/python bench/android_gpu.py [--arch ARCH ...]
"""

from __future__ import annotations

import argparse
import datetime
import json
import tempfile
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
ONE_PER_FAMILY = (
    "fastvit_t8",
    "efficientformer_l1",
    "efficientformerv2_s0",
    "efficientvit_m0",
    "efficientvit_b0",
    "mobileone_s0",
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--arch", nargs="*", default=list(ONE_PER_FAMILY))
    args = parser.parse_args()

    import effconvert
    from effconvert.synth.checkpoint import make_checkpoint

    rows = []
    with tempfile.TemporaryDirectory(prefix="effconvert-gpu-") as tmp:
        for arch in args.arch:
            ckpt = make_checkpoint(arch, Path(tmp) / f"{arch}.pth", layout="timm").path
            result = effconvert.convert(ckpt, targets=["tflite"], quants=["fp32"], out=Path(tmp) / arch, validate=False)
            [entry] = result.report.artifacts
            assert entry.device is not None, entry.device_error
            report = entry.device.to_json()
            rows.append(
                {
                    "arch": arch,
                    "ops": report["ops"]["total"],
                    "gpu": report["ops"]["gpu"],
                    "off": [{"type": o["type"], "reason": o["reason"]} for o in report["ops"]["off_gpu"]],
                    "gpu_partitions": report["gpu_partitions"],
                }
            )
            print(arch, entry.device.summary, flush=True)
    date = datetime.datetime.now(datetime.UTC).date().isoformat()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "android_gpu.json").write_text(json.dumps({"date": date, "rows": rows}, indent=1), encoding="utf-8")
    lines = [
        f"fp32 TFLite of make-checkpoint models ({date}, `bench/android_gpu.py`):",
        "",
        "| variant | ops | on the GPU delegate | left on the CPU (the rule) | GPU parts |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        off: dict[str, tuple[int, str]] = {}
        for o in row["off"]:
            count, _ = off.get(o["type"], (0, o["reason"]))
            off[o["type"]] = (count + 1, o["reason"])
        left = "; ".join(f"{t} x{n} ({why})" for t, (n, why) in off.items()) or "none: the whole graph"
        lines.append(f"| {row['arch']} | {row['ops']} | {row['gpu']} | {left} | {row['gpu_partitions']} |")
    (RESULTS / "android_gpu.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
