"""The console summary of a report: one row per artifact with its verdict, then notes.

Reads only the Report (the same data report.json holds), so what the console says and what the
file says cannot disagree. Text from files (paths, labels, converter messages) is escaped before
rich renders it.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .explain import GLOSSARY, checks_text, next_steps, runtime_text
from .schema import ArtifactReport, Report


def render_console(err: Console, report: Report, report_path: Path) -> None:
    """The results table, task accuracy, sensitivity and notes, on `err` (stderr)."""
    table = Table(title=escape(f"{report.model.arch} — {report.model.weights}"), title_justify="left")
    for col in ("target", "quant", "size", "runtime", "max rel", "PSNR dB", "top-1", "verdict"):
        table.add_column(
            col, justify="right" if col in ("size", "max rel", "PSNR dB", "top-1") else "left", overflow="fold"
        )
    notes, gates = [], []
    for a in report.artifacts:
        table.add_row(*_row(a))
        notes += _notes(a)
        if a.validated:
            gates.append(
                f"{'[green]✓[/]' if a.passed else '[red]✗[/]'} {a.target} {a.quant}: "
                + escape(checks_text(a) or "; ".join(a.verdict.failures if a.verdict else ()))
            )
    err.print(table)
    for line in gates:
        err.print(line, soft_wrap=True)
    inputs = report.inputs
    if inputs.reference_accuracy is not None:
        per = ", ".join(
            f"{a.target} {a.quant} {a.verdict.accuracy.accuracy:.3f}"
            for a in report.artifacts
            if a.verdict is not None and a.verdict.accuracy is not None
        )
        err.print(
            f"task accuracy on {inputs.samples} labelled images ({inputs.classes} classes): "
            f"PyTorch {inputs.reference_accuracy:.3f}" + (f"; {per}" if per else "")
        )
    if report.sensitivity is not None:
        worst = report.sensitivity.layers[:3]
        err.print(
            "int8 sensitivity (logits PSNR with only that layer int8): "
            + ", ".join(f"{escape(w.name)} {w.psnr_db:.1f} dB" for w in worst)
            + " ... (report.json)"
        )
    if report.equalization is not None:
        err.print(f"int8 {escape(report.equalization.summary())}", soft_wrap=True)
    for correction in report.bias_corrections:
        err.print(f"int8 {escape(correction.summary())}", soft_wrap=True)
    for note in dict.fromkeys(report.skipped + tuple(notes)):
        err.print(f"[yellow]note:[/] {escape(note)}", soft_wrap=True)
    for name in dict.fromkeys(a.runtime for a in report.artifacts if a.runtime):
        err.print(f"[dim]{escape(name)}: {escape(runtime_text(name))}[/]", soft_wrap=True)
    if any(a.verdict and a.verdict.parity and a.verdict.parity.top1_ties for a in report.artifacts):
        err.print(f"[dim]tie: {dict(GLOSSARY)['tie']}[/]", soft_wrap=True)
    for step in next_steps(report):
        err.print(f"[bold]next:[/] {escape(step)}", soft_wrap=True)
    proof = report.fusion.proof
    fused = (
        "skipped"
        if proof.skipped
        else f"max rel err {proof.max_rel_err:.1e} ({'passed' if proof.passed else 'FAILED'})"
    )
    err.print(f"fusion proof: {fused}")
    err.print(
        f"report: {escape(str(report_path.with_name('report.html')))} (and report.json beside it)", soft_wrap=True
    )


def _row(a: ArtifactReport) -> tuple[str, ...]:
    verdict = a.verdict
    p = verdict.parity if verdict is not None else None
    if a.error:
        judged = "[red]conversion failed[/]"
    elif verdict is not None and verdict.skipped:
        judged = "[yellow]not validated[/] (--no-validate)"
    elif p is None:
        judged = "[yellow]not validated[/]"
    else:
        judged = "[green]passed[/]" if a.passed else "[red]FAILED[/]"
    # The top-1 the gate judged (over decided inputs), with the ties it left out counted here.
    top1 = (
        "-"
        if p is None
        else f"{p.top1_agreement_decided:.3f}"
        + (f" ({p.top1_ties} tie{'s' if p.top1_ties > 1 else ''})" if p.top1_ties else "")
    )
    return (
        a.target,
        a.quant,
        f"{a.size_bytes / 1e6:.1f} MB" if a.size_bytes else "-",
        escape(a.runtime or "-"),
        "-" if p is None else f"{p.max_rel_err:.1e}",
        "-" if p is None else f"{p.psnr_db:.1f}",
        top1,
        judged,
    )


def _notes(a: ArtifactReport) -> list[str]:
    """What the console says under the table about one artifact."""
    notes = []
    verdict = a.verdict
    if a.error:
        notes.append(f"{a.target} {a.quant}: {a.error}")
    elif verdict is not None and not verdict.skipped and not verdict.ran:
        notes.append(f"{a.target} {a.quant}: {'; '.join(verdict.failures)}")
    if verdict is not None and verdict.budget:
        notes.append(f"{a.target} {a.quant}: validated on {verdict.budget}")
    if verdict is not None and verdict.first_divergent_op is not None:
        d = verdict.first_divergent_op
        notes.append(
            f"{a.target} {a.quant}: first op below {d.threshold_db:g} dB in the compressed program: "
            f"{d.op} {d.output} ({d.psnr_db:.1f} dB)"
        )
    if a.device is not None:
        notes.append(f"{a.target} {a.quant}: {a.device.summary}")
    elif a.device_error:
        notes.append(f"{a.target} {a.quant}: {a.device_error}")
    if a.fallback is not None:
        f = a.fallback
        missed = "; ".join(f.all_int8.get("failed", [])) or f"{f.all_int8['psnr_db']:.1f} dB"
        if f.stopped:
            notes.append(f"{a.target} {a.quant}: all-int8 missed its gate ({missed}); no fallback: {f.stopped}")
        else:
            tried = ", ".join(
                f"{t.float_layers} float: " + (f"{t.psnr_db:.1f} dB" if t.psnr_db is not None else str(t.error))
                for t in f.attempts
            )
            notes.append(
                f"{a.target} {a.quant}: all-int8 missed its gate ({missed}); tried {tried}; kept "
                f"{len(f.float_layers)} layer(s) in float"
                + (f": {', '.join(f.float_layers)}" if f.float_layers else "")
                + f" (size x{f.size_ratio:.2f}"
                + (f", latency x{f.latency_ratio:.2f})" if f.latency_ratio is not None else ")")
            )
    return notes
