"""What a batch leaves beside the job folders: batch.json (every job and cell), index.html (the
matrix, each cell linking to its report) and matrix.md (the same matrix for a README).

A cell is one (target, quant) of one checkpoint: passed / gate failed / conversion failed / not
offered by the target / job failed. Cells come from the jobs' own report.json, never recomputed.
"""

from __future__ import annotations

import datetime
import html
import platform
from pathlib import Path
from typing import Any

from ..report.html import STYLE
from ..report.schema import ArtifactReport
from ..targets import QUANTS, TARGETS, check_pairs, split_list
from .job import JobResult
from .plan import Job, Plan

SCHEMA = "effconvert.batch/1"
_VERDICT = {"passed": "✅", "gate-failed": "❌", "conversion-failed": "💥", "not-offered": "—", "job-failed": "⚠️"}
_MARK = {"passed": "✓", "gate-failed": "✗", "conversion-failed": "✗", "not-offered": "", "job-failed": "!"}  # any font


def cells_of(job: Job, result: JobResult | None) -> dict[str, dict[str, Any]]:
    """Column "target quant" -> cell, for every pair the job asked for (not-offered ones included)."""
    request = job.request
    targets, quants = split_list(list(request.targets)), split_list(list(request.quants))
    named = [t for t in targets if t != "all"]
    cells: dict[str, dict[str, Any]] = {}
    for target in named:
        for quant in quants:
            if quant not in TARGETS[target].quants:
                cells[f"{target} {quant}"] = {
                    "status": "not-offered",
                    "text": f"not offered: {TARGETS[target].why_not(quant)}",
                }
    pairs = check_pairs(request.targets, request.quants, request.palettize).pairs
    if result is None or result.report is None:
        why = "not run" if result is None else f"job {result.status}: {result.error}"
        cells.update({f"{t} {q}": {"status": "job-failed", "text": why} for t, q in pairs})
        return cells
    for artifact in result.report.artifacts:
        cells[f"{artifact.target} {artifact.quant}"] = _cell(job, artifact)
    return cells


def _cell(job: Job, artifact: ArtifactReport) -> dict[str, Any]:
    if artifact.error:
        return {"status": "conversion-failed", "text": f"conversion failed: {artifact.error}"}
    link = {"artifact": f"{job.name}/{artifact.path}", "sha256": artifact.sha256, "size_bytes": artifact.size_bytes}
    verdict = artifact.verdict
    if verdict is None or verdict.parity is None:
        failures = "; ".join(verdict.failures) if verdict is not None else "no verdict"
        return {"status": "gate-failed", "text": f"not validated: {failures}", **link}
    p = verdict.parity
    number = f"rel {p.max_rel_err:.1e}" if artifact.quant == "fp32" else f"{p.psnr_db:.0f} dB"
    why = "" if verdict.passed else " (" + "; ".join(verdict.failures) + ")"
    size = (artifact.size_bytes or 0) / 1e6
    return {"status": "passed" if verdict.passed else "gate-failed", "text": f"{number}, {size:.1f} MB{why}", **link}


def batch_record(
    plan: Plan,
    results: dict[str, JobResult],
    *,
    runner: str,
    workers: int,
    threads: int,
    seconds: float,
    exit_code: int,
    interrupted: bool = False,
) -> dict[str, Any]:
    jobs: list[dict[str, Any]] = []
    for job in plan.jobs:
        result = results.get(job.name)
        report = result.report if result is not None else None
        jobs.append(
            {
                "name": job.name,
                "checkpoint": str(job.checkpoint),
                **(
                    {"made": {"arch": job.make.arch, "layout": job.make.layout, "seed": job.make.seed}}
                    if job.make
                    else {}
                ),
                "checkpoint_sha256": result.checkpoint_sha256 if result else None,
                "out": job.name,
                "report": f"{job.name}/report.html" if report else None,
                "status": result.status if result else "interrupted" if interrupted else "pending",
                "resumed": bool(result and result.resumed),
                "seconds": result.seconds if result else None,
                "peak_rss_mb": result.peak_rss_mb if result else None,
                "worker": result.worker if result else None,
                "error": result.error if result else None,
                "arch": report.model.arch if report else (job.make.arch if job.make else None),
                "layout": report.model.source_layout if report else None,
                "fusion_max_rel_err": report.fusion.proof.max_rel_err if report else None,
                "options": job.request.options(),
                "cells": cells_of(job, result),
            }
        )
    counts: dict[str, int] = {}
    for entry in jobs:
        counts[entry["status"]] = counts.get(entry["status"], 0) + 1
    return {
        "schema": SCHEMA,
        "plan": str(plan.path),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {platform.system()}",
        "runner": runner,
        "workers": workers,
        "threads_per_job": threads,
        "wall_s": round(seconds, 1),
        "exit_code": exit_code,
        "interrupted": interrupted,
        "counts": counts,
        "jobs": jobs,
    }


def columns(record: dict[str, Any]) -> list[str]:
    """Every column some job has, in the targets table's order, then the quants' order."""
    present = {column for job in record["jobs"] for column in job["cells"]}
    return [f"{t} {q}" for t in TARGETS for q in QUANTS if f"{t} {q}" in present]


def render_matrix(record: dict[str, Any]) -> str:
    header = columns(record)
    lines = [
        f"Support matrix — {record['date'][:10]}, {record['machine']}, `effconvert batch {Path(record['plan']).name}` "
        f"({record['runner']}: {record['workers']} job(s) at once × {record['threads_per_job']} thread(s); "
        f"{_times(record)}). fp32 cells: max rel err vs PyTorch; other cells: PSNR of the "
        "logits vs PyTorch. Core ML runs on effconvert's MIL executor, TFLite on LiteRT, ONNX on ONNX Runtime, "
        "ExecuTorch on its runtime (XNNPACK). time: the job's seconds (one checkpoint, every target).",
        "",
        "| checkpoint | layout | fusion rel err | " + " | ".join(header) + " | time |",
        "|---" * (len(header) + 4) + "|",
    ]
    for job in record["jobs"]:
        fusion = f"{job['fusion_max_rel_err']:.1e}" if job["fusion_max_rel_err"] is not None else "—"
        cells = [_verdict(job["cells"][c]) if c in job["cells"] else "—" for c in header]
        seconds = f"{job['seconds']:.0f} s" if job["seconds"] is not None else "—"
        lines.append(f"| {job['name']} | {job['layout'] or '—'} | {fusion} | " + " | ".join(cells) + f" | {seconds} |")
    return "\n".join(lines) + "\n"


def _times(record: dict[str, Any]) -> str:
    """This run's wall time, the jobs' own times summed, and how many came from earlier runs."""
    jobs = record["jobs"]
    summed = sum(job["seconds"] or 0 for job in jobs)
    resumed = sum(1 for job in jobs if job["resumed"])
    return f"wall {record['wall_s'] / 60:.1f} min, the jobs' own times sum to {summed / 60:.0f} min" + (
        f", {resumed} of {len(jobs)} jobs from earlier runs (--resume)" if resumed else ""
    )


def _verdict(cell: dict) -> str:
    mark = _VERDICT[cell["status"]]
    return cell["text"] if cell["status"] == "not-offered" else f"{mark} {cell['text']}"


_INDEX_STYLE = """
body{max-width:none} td.cell{font-size:12px;white-space:nowrap} td.passed{background:#e3f5e8} td.gate-failed{background:#fde8e8}
td.conversion-failed,td.job-failed{background:#fbd5d5} td.not-offered{color:#888}
td a{color:inherit}
"""


def render_index(record: dict[str, Any]) -> str:
    header = columns(record)
    counts = record["counts"]
    passed = counts.get("passed", 0)
    total = len(record["jobs"])
    others = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()) if s not in ("passed", "pending"))
    if counts.get("pending"):
        banner = (
            "warn",
            f"RUNNING — {total - counts['pending']} of {total} jobs done: {passed} passed"
            + (f", {others}" if others else ""),
        )
    elif passed == total:
        banner = ("ok", f"PASSED — all {total} jobs")
    else:
        banner = ("bad", f"{total - passed} of {total} jobs did not pass: {others}")
    e = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>effconvert batch — "
        f"{e(Path(record['plan']).name)}</title><style>{STYLE}{_INDEX_STYLE}</style></head><body>",
        f"<h1>effconvert batch — {e(Path(record['plan']).name)}</h1>",
        f"<div class='sub'>{e(record['date'])} · {e(record['machine'])} · {e(record['runner'])}, "
        f"{record['workers']} job(s) at once × {record['threads_per_job']} thread(s) · {e(_times(record))}</div>",
        f"<div class='banner {banner[0]}'>{e(banner[1])}</div>",
        "<table><tr><th>checkpoint</th>" + "".join(f"<th>{e(c)}</th>" for c in header) + "<th>time</th></tr>",
    ]
    for job in record["jobs"]:
        row = [f"<td>{_link(job['report'], job['name'])}<div class='small'>{e(job['layout'] or '')}</div></td>"]
        for column in header:
            cell = job["cells"].get(column)
            if cell is None:
                row.append("<td class='cell'>—</td>")
                continue
            text = "not offered" if cell["status"] == "not-offered" else f"{_MARK[cell['status']]} {cell['text']}"
            if len(text) > 40:  # the whole text is the cell's tooltip
                text = text[:39] + "…"
            target = job["report"] if cell.get("artifact") else None
            row.append(f"<td class='cell {cell['status']}' title='{e(cell['text'])}'>{_link(target, text)}</td>")
        seconds = f"{job['seconds']:.0f} s" if job["seconds"] is not None else "—"
        resumed = "<div class='small'>earlier run</div>" if job["resumed"] else ""
        row.append(f"<td class='num'>{seconds}{resumed}</td>")
        parts.append("<tr>" + "".join(row) + "</tr>")
    parts.append(
        "</table><h2>Jobs</h2><table><tr><th>job</th><th>status</th><th>seconds</th>"
        "<th>peak memory</th><th>worker</th><th>error</th></tr>"
    )
    for job in record["jobs"]:
        memory = f"{job['peak_rss_mb'] / 1024:.1f} GiB" if job["peak_rss_mb"] else "—"
        seconds = f"{job['seconds']:.0f}" if job["seconds"] is not None else "—"
        parts.append(
            f"<tr><td>{e(job['name'])}</td><td>{e(job['status'])}{' (resumed)' if job['resumed'] else ''}"
            f"</td><td class='num'>{seconds}</td><td class='num'>{memory}</td>"
            f"<td class='small'>{e(job['worker'] or '')}</td><td class='small'>{e(job['error'] or '')}</td></tr>"
        )
    parts.append(
        "</table><p class='small'>Each cell links to its job's report.html (per-artifact parity, "
        "plots, next steps). batch.json beside this page holds every field.</p></body></html>"
    )
    return "\n".join(parts)


def _link(href: str | None, text: str) -> str:
    return f"<a href='{html.escape(href)}'>{html.escape(text)}</a>" if href else html.escape(text)
