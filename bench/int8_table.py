"""int8 by family x target, from the batch `bench/zoo_int8.toml` (run by `make bench-int8-table`):
for each job's report.json, each int8 artifact's all-int8 numbers (before any fallback), the scale
migration the run chose, and what the fallback kept or why it stopped. Writes
bench/results/int8_by_family.{json,md}; docs/guides/quantizing.md shows the table.

    python bench/int8_table.py [BATCH_FOLDER]   (default effconvert-batch/zoo-int8)
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def rows_of(report: dict) -> list[dict]:
    arch = report["model"]["arch"]
    migration = report.get("int8_equalization") or {}
    simulated = migration.get("simulated_psnr_db") or {}
    rows = []
    for artifact in report["artifacts"]:
        if artifact.get("quant") != "int8" or artifact.get("error"):
            continue
        parity, fallback = artifact["parity"], artifact.get("fallback")
        first = fallback["all_int8"] if fallback else {"psnr_db": parity["psnr_db"]}
        rows.append(
            {
                "arch": arch,
                "target": artifact["target"],
                "migration": (
                    f"α {migration['alpha']}, {migration['pairs']} pairs, sim {simulated['without']:.1f} → "
                    f"{simulated['with']:.1f} dB"
                    if migration.get("applied")
                    else f"not kept ({migration['pairs']} pairs)"
                    if migration.get("pairs")
                    else "no pair (GELU/Hardswish blocks)"
                ),
                "all_int8_psnr_db": round(first["psnr_db"], 1),
                "all_int8_failed": first.get("failed", []) if fallback else list(parity["failures"]),
                "kept_psnr_db": round(parity["psnr_db"], 1),
                "kept_top1": round(parity["top1_agreement_decided"], 3),
                "float_layers": len(fallback["float_layers"]) if fallback else 0,
                "attempts": len(fallback["attempts"]) if fallback else 0,
                "stopped": (fallback or {}).get("prediction", {}).get("stopped", ""),
                "passed": parity["passed"],
            }
        )
    return rows


def markdown(rows: list[dict]) -> str:
    lines = [
        "| model | target | scale migration | all-int8 PSNR | kept PSNR | kept top-1 (decided inputs) | float layers kept (attempts) | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        fallback = f"{r['float_layers']} ({r['attempts']})" if r["attempts"] else "—"
        if r["stopped"]:
            fallback = f"none: {r['stopped']}"
        lines.append(
            f"| {r['arch']} | {r['target']} | {r['migration']} | {r['all_int8_psnr_db']} dB | {r['kept_psnr_db']} dB | "
            f"{r['kept_top1']:.3f} | {fallback} | {'pass' if r['passed'] else 'miss'} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "effconvert-batch/zoo-int8")
    rows = []
    for report in sorted(folder.glob("*/report.json")):
        rows.extend(rows_of(json.loads(report.read_text(encoding="utf-8"))))
    if not rows:
        raise SystemExit(f"no int8 report under {folder}: run `make bench-int8-table`")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "int8_by_family.json").write_text(
        json.dumps({"date": date.today().isoformat(), "rows": rows}, indent=1), encoding="utf-8"
    )
    (RESULTS / "int8_by_family.md").write_text(markdown(rows), encoding="utf-8")
    print(markdown(rows))


if __name__ == "__main__":
    main()
