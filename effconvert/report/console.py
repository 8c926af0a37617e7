"""The console summary of a report: one row per artifact with its verdict, then notes.

Reads only the report dict (the same data report.json holds), so what the console says and what
the file says cannot disagree.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from .explain import GLOSSARY, checks_text, next_steps, runtime_text


def render_console(err: Console, report: dict, report_path: Path) -> None:
    """The results table, task accuracy, sensitivity and notes, on `err` (stderr)."""
    fusion = report["fusion"]
    table = Table(title=f"{report['model']['arch']} — {report['model']['weights']}", title_justify="left")
    for col in ("target", "quant", "size", "runtime", "max rel", "PSNR dB", "top-1", "verdict"):
        table.add_column(col, justify="right" if col in ("size", "max rel", "PSNR dB", "top-1") else "left",
                         overflow="fold")
    notes, gates = [], []
    for a in report["artifacts"]:
        p = a.get("parity", {})
        if a.get("error"):
            verdict = "[red]conversion failed[/]"
            notes.append(f"{a['target']} {a['quant']}: {a['error']}")
        elif p.get("skipped"):
            verdict = "[yellow]not validated[/] (--no-validate)"
        elif a.get("runtime") == "unvalidated":
            verdict = "[yellow]not validated[/]"
            notes.append(f"{a['target']} {a['quant']}: {'; '.join(p.get('failures', []))}")
        else:
            verdict = "[green]passed[/]" if p.get("passed") else "[red]FAILED[/]"
            gates.append(f"{'[green]✓[/]' if p.get('passed') else '[red]✗[/]'} {a['target']} {a['quant']}: "
                         + (checks_text(a) or "; ".join(p.get("failures", []))))
            if p.get("first_divergent_op"):
                d = p["first_divergent_op"]
                notes.append(f"{a['target']} {a['quant']}: first op below {d['threshold_db']:g} dB: "
                             f"{d['op']} {d['output']} ({d['psnr_db']:.1f} dB)")
        if a.get("device", {}).get("latency_ms"):
            d = a["device"]
            lat, off = d["latency_ms"], len(d["ops"]["off_ane"])
            notes.append(f"{a['target']} {a['quant']}: A14 estimate {lat['estimate']:.2f} ms "
                         f"({lat['low']:.2f}–{lat['high']:.2f}, a calibrated model, not a measurement); "
                         + (f"{off} op(s) likely off the Neural Engine ({d['ops']['off_ane'][0]['reason']})"
                            if off else "every op likely on the Neural Engine"))
        if a.get("fallback"):
            f = a["fallback"]
            missed = "; ".join(f["all_int8"].get("failed", [])) or f"{f['all_int8']['psnr_db']:.1f} dB"
            notes.append(f"{a['target']} {a['quant']}: all-int8 missed its gate ({missed}); "
                         f"{len(f['float_layers'])} most sensitive layer(s) kept in float: "
                         f"{', '.join(f['float_layers'])} (size x{f['size_ratio']:.2f}"
                         + (f", latency x{f['latency_ratio']:.2f})" if "latency_ratio" in f else ")"))
        table.add_row(a["target"], a["quant"],
                      f"{a['size_bytes'] / 1e6:.1f} MB" if a.get("size_bytes") else "-",
                      a.get("runtime", "-"), _num(p.get("max_rel_err"), "{:.1e}"),
                      _num(p.get("psnr_db"), "{:.1f}"),
                      # the figure the gate judged: over decided inputs (ties left out, counted here)
                      _num(p.get("top1_agreement_decided"), "{:.3f}")
                      + (f" ({p['top1_ties']} tie{'s' if p['top1_ties'] > 1 else ''})" if p.get("top1_ties") else ""),
                      verdict)
    err.print(table)
    for line in gates:
        err.print(line, soft_wrap=True)
    inputs = report.get("inputs", {})
    if "reference_accuracy" in inputs:
        per = ", ".join(f"{a['target']} {a['quant']} {a['parity']['accuracy']:.3f}" for a in report["artifacts"]
                        if "accuracy" in a.get("parity", {}))
        err.print(f"task accuracy on {inputs['samples']} labelled images ({inputs['classes']} classes): "
                  f"PyTorch {inputs['reference_accuracy']:.3f}" + (f"; {per}" if per else ""))
    if report.get("int8_sensitivity"):
        worst = report["int8_sensitivity"]["layers"][:3]
        err.print("int8 sensitivity (logits PSNR with only that layer int8): "
                  + ", ".join(f"{w['layer']} {w['psnr_db']:.1f} dB" for w in worst) + " ... (report.json)")
    for note in dict.fromkeys(notes):
        err.print(f"[yellow]note:[/] {note}", soft_wrap=True)
    runtimes = dict.fromkeys(a.get("runtime") for a in report["artifacts"] if a.get("runtime"))
    for name in runtimes:
        err.print(f"[dim]{name}: {runtime_text(name)}[/]", soft_wrap=True)
    if any(a.get("parity", {}).get("top1_ties") for a in report["artifacts"]):
        err.print(f"[dim]tie: {dict(GLOSSARY)['tie']}[/]", soft_wrap=True)
    for step in next_steps(report):
        err.print(f"[bold]next:[/] {step}", soft_wrap=True)
    fused = "skipped" if fusion.get("skipped") else f"max rel err {fusion['max_rel_err']:.1e} ({'passed' if fusion['passed'] else 'FAILED'})"
    err.print(f"fusion proof: {fused}")
    err.print(f"report: {report_path.with_name('report.html')} (and report.json beside it)")


def _num(value, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)
