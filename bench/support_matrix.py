"""Support matrix: every variant x {coreml, tflite, onnx} x {fp32, fp16}, converted from an
original-layout make-checkpoint and validated on its runtime. Writes a markdown table.

    .venv/bin/python bench/support_matrix.py [ARCH ...] [--out bench/results/support_matrix.md]

Long (minutes per variant): not part of `make test`. Each variant's row is kept in
bench/results/support_matrix.json, so the matrix can be (re)run in parts; the markdown table is
rendered from all rows recorded so far, in family order.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import tempfile
import time
from pathlib import Path


def main() -> None:
    from effconvert.load import FAMILIES
    from effconvert.pipeline import Request, run
    from effconvert.synth.checkpoint import make_checkpoint

    parser = argparse.ArgumentParser()
    parser.add_argument("archs", nargs="*")
    parser.add_argument("--out", type=Path, default=Path("bench/results/support_matrix.md"))
    parser.add_argument("--samples", type=int, default=16)
    args = parser.parse_args()
    store = args.out.with_suffix(".json")
    rows = json.loads(store.read_text()) if store.exists() else {}
    for family in FAMILIES.values():
        layout = next(l.name for l in family.layouts if l.name != "timm" and not l.fused)
        for arch in family.variants:
            if args.archs and arch not in args.archs:
                continue
            with tempfile.TemporaryDirectory() as tmp:
                ckpt = Path(tmp) / f"{arch}.pth.tar"
                make_checkpoint(arch, ckpt, layout=layout, seed=0)
                start = time.perf_counter()
                outcome = run(Request(ckpt, ("all",), ("fp32", "fp16"), Path(tmp) / "out", samples=args.samples))
                seconds = time.perf_counter() - start
            report = outcome.report
            cells = []
            for entry in report["artifacts"]:
                p = entry.get("parity", {})
                if entry.get("error"):
                    cells.append(f"conversion failed: {entry['error']}")
                elif "max_rel_err" not in p:
                    cells.append("not validated: " + "; ".join(p.get("failures", [])))
                else:
                    verdict = "✅" if p["passed"] else "❌"
                    number = f"rel {p['max_rel_err']:.1e}" if entry["quant"] == "fp32" else f"{p['psnr_db']:.0f} dB"
                    why = "" if p["passed"] else " (" + "; ".join(p.get("failures", [])) + ")"
                    cells.append(f"{verdict} {number}, {entry['size_bytes'] / 1e6:.1f} MB{why}")
            rows[arch] = {"layout": layout, "fusion": report["fusion"]["max_rel_err"], "cells": cells,
                          "seconds": seconds, "date": str(datetime.date.today()),
                          "header": [a["target"] + " " + a["quant"] for a in report["artifacts"]]}
            print(arch, cells, flush=True)
            store.parent.mkdir(parents=True, exist_ok=True)
            store.write_text(json.dumps(rows, indent=1, ensure_ascii=False), encoding="utf-8")
    order = [v for f in FAMILIES.values() for v in f.variants if v in rows]
    header = rows[order[0]]["header"]
    lines = [
        f"Support matrix — {datetime.date.today()}, {platform.machine()} Linux, make-checkpoint weights "
        f"(original authors' layout), {args.samples} inputs. fp32 cells: max rel err vs PyTorch; fp16 "
        "cells: PSNR of the logits. Core ML runs on effconvert's MIL executor, TFLite on LiteRT, ONNX on "
        "ONNX Runtime.",
        "",
        "| variant | layout | fusion rel err | " + " | ".join(header) + " | time |",
        "|---" * (len(header) + 4) + "|",
    ]
    for arch in order:
        row = rows[arch]
        lines.append(f"| {arch} | {row['layout']} | {row['fusion']:.1e} | " + " | ".join(row["cells"])
                     + f" | {row['seconds']:.0f} s |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
