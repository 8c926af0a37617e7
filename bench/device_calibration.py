"""Calibrate the A14 cost model (effconvert/device/cost.py) on effconvert/device/data/published_a14.csv
and measure its error honestly; then estimate the variants with no published number given to us.

    .venv/bin/python bench/device_calibration.py [--work DIR]

Each calibration row's variant is converted as a user would (make-checkpoint weights, Core ML fp16
at the published input size); its program's features are read from the .mlpackage. The three
parameters are fitted on all rows (what effconvert ships, effconvert/device/a14_calibration.json), and
again leaving out each variant and each family to measure what an unseen model's error looks like.
Writes bench/results/device.{json,md}.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "effconvert" / "device" / "data" / "published_a14.csv"
# Variants with no number in the calibration file, at their native sizes (checked afterwards
# against published numbers we were not given).
HELD_OUT = (
    ("efficientformer_l1", 224),
    ("efficientformer_l3", 224),
    ("efficientformer_l7", 224),
    ("efficientformerv2_s0", 224),
    ("efficientformerv2_s1", 224),
    ("efficientformerv2_s2", 224),
    ("efficientformerv2_l", 224),
    ("fastvit_mci0", 256),
    ("fastvit_mci1", 256),
    ("fastvit_mci2", 256),
)


def package(arch: str, size: int, work: Path) -> Path:
    from effconvert.pipeline import Request, run
    from effconvert.synth.checkpoint import make_checkpoint

    out = work / f"{arch}_{size}"
    path = out / f"{arch}_fp16.mlpackage"
    if not path.exists():
        ckpt = work / f"{arch}.pth"
        if not ckpt.exists():
            make_checkpoint(arch, ckpt, layout="timm", seed=0)
        run(Request(ckpt, ("coreml",), ("fp16",), out, image_size=size, samples=1, validate=False))
    return path


def main() -> None:
    from effconvert.device.cost import CALIBRATION_FILE, Calibration, Features, estimate_ms, fit, predict_s
    from effconvert.device.features import op_costs
    from effconvert.runtime.mil.program import load_program

    parser = argparse.ArgumentParser()
    parser.add_argument("--work", type=Path, default=Path.home() / ".cache" / "effconvert" / "device")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    rows = [r for r in csv.DictReader(line for line in PUBLISHED.open() if not line.startswith("#"))]
    data = []
    for r in rows:
        features = Features.of(op_costs(load_program(package(r["arch"], int(r["input"]), args.work))))
        data.append((r["arch"], r["arch"].split("_")[0], features, float(r["latency_ms"]) / 1e3))
        print(r["arch"], features, flush=True)
    params = fit([(f, s) for _, _, f, s in data])
    table = []
    for arch, family, f, seconds in data:
        variant = fit([(g, t) for a, _, g, t in data if a != arch])
        family_fit = fit([(g, t) for _, fam, g, t in data if fam != family])
        table.append(
            {
                "arch": arch,
                "published_ms": seconds * 1e3,
                "fitted_ms": predict_s(f, params) * 1e3,
                "loo_variant_ms": predict_s(f, variant) * 1e3,
                "loo_family_ms": predict_s(f, family_fit) * 1e3,
            }
        )
    for row in table:
        for key in ("fitted", "loo_variant", "loo_family"):
            row[f"{key}_error"] = row[f"{key}_ms"] / row["published_ms"] - 1
    variant_max = max(abs(r["loo_variant_error"]) for r in table)
    family_max = max(abs(r["loo_family_error"]) for r in table)
    calibration = {
        "s_flop": params[0],
        "s_op": params[1],
        "s_fixed": params[2],
        "band": round(variant_max, 4),
        "fitted_on": str(PUBLISHED.name),
        "date": str(datetime.date.today()),
        "loo": {
            "rows": [{k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()} for r in table],
            "variant_max_error": round(variant_max, 4),
            "family_max_error": round(family_max, 4),
        },
    }
    CALIBRATION_FILE.write_text(json.dumps(calibration, indent=1) + "\n", encoding="utf-8")
    shipped = Calibration.load()
    estimates = []
    for arch, size in HELD_OUT:
        f = Features.of(op_costs(load_program(package(arch, size, args.work))))
        estimates.append(
            {
                "arch": arch,
                "input": size,
                **estimate_ms(f, shipped),
                "ane_ops": f.ane_ops,
                "off_ane_ops": f.off_ops,
                "gflops": round((f.ane_flops + f.off_flops) / 1e9, 3),
            }
        )
        print(arch, estimates[-1], flush=True)
    results = ROOT / "bench" / "results"
    (results / "device.json").write_text(
        json.dumps({"calibration": calibration, "estimates": estimates}, indent=1), encoding="utf-8"
    )
    (results / "device.md").write_text(render(calibration, estimates), encoding="utf-8")
    splice_readme(calibration)
    print(render(calibration, estimates))


def splice_readme(calibration: dict) -> None:
    """The compact leave-one-out table into README.md, between its device markers."""
    rows = ["| calibration row | published ms | leave one variant out | leave one family out |", "|---|---|---|---|"]
    rows += [
        f"| {r['arch']} | {r['published_ms']:.2f} | {r['loo_variant_ms']:.2f} ({100 * r['loo_variant_error']:+.0f}%) | "
        f"{r['loo_family_ms']:.2f} ({100 * r['loo_family_error']:+.0f}%) |"
        for r in calibration["loo"]["rows"]
    ]
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    start, end = "<!-- device:start -->", "<!-- device:end -->"
    head, rest = text.split(start, 1)
    readme.write_text(head + start + "\n" + "\n".join(rows) + "\n" + end + rest.split(end, 1)[1], encoding="utf-8")


def render(calibration: dict, estimates: list[dict]) -> str:
    lines = [
        f"A14 latency estimate — calibrated {calibration['date']} on the 12 rows of published_a14.csv "
        f"(Apple's FastViT ×7 at 256, MobileOne ×5 at 224); s_flop {calibration['s_flop']:.3g} s, "
        f"s_op {calibration['s_op']:.3g} s, s_fixed {calibration['s_fixed']:.3g} s. Estimates, not measurements.",
        "",
        "| variant | published ms | fitted on all | leave-one-variant-out | error | leave-one-family-out | error |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in calibration["loo"]["rows"]:
        lines.append(
            f"| {r['arch']} (calibration row) | {r['published_ms']:.3f} | {r['fitted_ms']:.3f} | "
            f"{r['loo_variant_ms']:.3f} | {100 * r['loo_variant_error']:+.1f}% | {r['loo_family_ms']:.3f} | "
            f"{100 * r['loo_family_error']:+.1f}% |"
        )
    lines += [
        "",
        f"Worst leave-one-variant-out error {100 * calibration['loo']['variant_max_error']:.1f}% (the band "
        f"every estimate carries); worst leave-one-family-out {100 * calibration['loo']['family_max_error']:.1f}%.",
        "",
        "Variants with no published number in the calibration file:",
        "",
        "| variant | input | estimate ms | band ms | GFLOPs | ops on ANE / off |",
        "|---|---|---|---|---|---|",
    ]
    for e in estimates:
        lines.append(
            f"| {e['arch']} | {e['input']} | {e['estimate']:.3f} | {e['low']:.3f}–{e['high']:.3f} | "
            f"{e['gflops']:.2f} | {e['ane_ops']} / {e['off_ane_ops']} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
