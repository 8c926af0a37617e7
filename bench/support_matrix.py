"""Support matrix: every variant x every target x {fp32, fp16}, converted from an original-layout
make-checkpoint and validated on its runtime. Writes a markdown table.

    .venv/bin/python bench/support_matrix.py [ARCH ...] [--targets all|coreml,tflite,...] [--out ...]

Long (minutes per variant): not part of `make test`. Each variant's cells are kept in
bench/results/support_matrix.json by column ("<target> <quant>"), so the matrix can be (re)run in
parts — some variants, or one new target for every variant — and the markdown table is rendered
from all cells recorded so far, in family order. A (target, quant) the target does not offer gets a
cell saying why (e.g. ExecuTorch fp16), never an empty one.
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
    parser.add_argument("--targets", default="all", help="comma list of targets to (re)run, default all")
    parser.add_argument("--render", action="store_true", help="only re-render the table from the stored cells")
    args = parser.parse_args()
    from effconvert.targets import TARGETS, split_list

    targets = list(TARGETS) if args.targets == "all" else split_list([args.targets])
    store = args.out.with_suffix(".json")
    rows = json.loads(store.read_text()) if store.exists() else {}
    for family in [] if args.render else FAMILIES.values():
        layout = next(l.name for l in family.layouts if l.name != "timm" and not l.fused)
        for arch in family.variants:
            if args.archs and arch not in args.archs:
                continue
            with tempfile.TemporaryDirectory() as tmp:
                ckpt = Path(tmp) / f"{arch}.pth.tar"
                make_checkpoint(arch, ckpt, layout=layout, seed=0)
                start = time.perf_counter()
                # One run per set of targets offering the same quants (ExecuTorch: fp32 only).
                groups: dict[tuple[str, ...], list[str]] = {}
                for target in targets:
                    offered = tuple(q for q in ("fp32", "fp16") if q in TARGETS[target].quants)
                    groups.setdefault(offered, []).append(target)
                outcomes = [run(Request(ckpt, tuple(group), quants, Path(tmp) / "out", samples=args.samples))
                            for quants, group in groups.items() if quants]
                seconds = time.perf_counter() - start
            report = {**outcomes[0].report, "artifacts": [a for o in outcomes for a in o.report["artifacts"]]}
            cells = {}
            for target in targets:
                for quant, why in TARGETS[target].refused:
                    if quant in ("fp32", "fp16"):
                        cells[f"{target} {quant}"] = f"not offered: {why}"
            for entry in report["artifacts"]:
                column = f"{entry['target']} {entry['quant']}"
                p = entry.get("parity", {})
                if entry.get("error"):
                    cells[column] = f"conversion failed: {entry['error']}"
                elif "max_rel_err" not in p:
                    cells[column] = "not validated: " + "; ".join(p.get("failures", []))
                else:
                    verdict = "✅" if p["passed"] else "❌"
                    number = f"rel {p['max_rel_err']:.1e}" if entry["quant"] == "fp32" else f"{p['psnr_db']:.0f} dB"
                    why = "" if p["passed"] else " (" + "; ".join(p.get("failures", [])) + ")"
                    cells[column] = f"{verdict} {number}, {entry['size_bytes'] / 1e6:.1f} MB{why}"
            row = _upgrade(rows.get(arch, {}))
            row.update(layout=layout, fusion=report["fusion"]["max_rel_err"], date=str(datetime.date.today()))
            row["cells"].update(cells)
            row["seconds"][",".join(targets)] = seconds
            rows[arch] = row
            print(arch, cells, flush=True)
            store.parent.mkdir(parents=True, exist_ok=True)
            store.write_text(json.dumps(rows, indent=1, ensure_ascii=False), encoding="utf-8")
    order = [v for f in FAMILIES.values() for v in f.variants if v in rows]
    rows = {arch: _upgrade(row) for arch, row in rows.items()}
    header = [f"{t} {q}" for t in TARGETS for q in ("fp32", "fp16")
              if any(f"{t} {q}" in rows[arch]["cells"] for arch in order)]
    lines = [
        f"Support matrix — {datetime.date.today()}, {platform.machine()} Linux, make-checkpoint weights "
        f"(original authors' layout), {args.samples} inputs. fp32 cells: max rel err vs PyTorch; fp16 "
        "cells: PSNR of the logits. Core ML runs on effconvert's MIL executor, TFLite on LiteRT, ONNX on "
        "ONNX Runtime, ExecuTorch on its own runtime (XNNPACK). time: seconds per run of the targets named.",
        "",
        "| variant | layout | fusion rel err | " + " | ".join(header) + " | time |",
        "|---" * (len(header) + 4) + "|",
    ]
    for arch in order:
        row = rows[arch]
        lines.append(f"| {arch} | {row['layout']} | {row['fusion']:.1e} | "
                     + " | ".join(row["cells"].get(column, "—") for column in header)
                     + " | " + ", ".join(f"{k}: {v:.0f} s" for k, v in row["seconds"].items()) + " |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))



def _upgrade(row: dict) -> dict:
    """Rows written before cells were keyed by column: a list aligned with `header`, one time."""
    if not row:
        return {"cells": {}, "seconds": {}}
    if isinstance(row.get("cells"), list):
        row = {**row, "cells": dict(zip(row.pop("header"), row["cells"])),
               "seconds": {"coreml,tflite,onnx": row["seconds"]}}
    return row


if __name__ == "__main__":
    main()
