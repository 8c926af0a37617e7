"""The console summary of a report: one row per artifact with its verdict, then notes.

Reads only the report dict (the same data report.json holds), so what the console says and what
the file says cannot disagree.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table


def render_console(err: Console, report: dict, report_path: Path) -> None:
    """The results table, task accuracy, sensitivity and notes, on `err` (stderr)."""
    fusion = report["fusion"]
    table = Table(title=f"{report['model']['arch']} — {report['model']['weights']}", title_justify="left")
    for col in ("target", "quant", "size", "runtime", "max rel", "PSNR dB", "top-1", "verdict"):
        table.add_column(col, justify="right" if col in ("size", "max rel", "PSNR dB", "top-1") else "left")
    notes = []
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
            verdict = "[green]passed[/]" if p.get("passed") else "[red]FAILED[/] " + "; ".join(p.get("failures", []))
            if p.get("first_divergent_op"):
                d = p["first_divergent_op"]
                notes.append(f"{a['target']} {a['quant']}: first op below {d['threshold_db']:g} dB: "
                             f"{d['op']} {d['output']} ({d['psnr_db']:.1f} dB)")
        if a.get("fallback"):
            f = a["fallback"]
            notes.append(f"{a['target']} {a['quant']}: missed its gate all-int8 ({f['all_int8']['psnr_db']:.1f} dB); "
                         f"{len(f['float_layers'])} most sensitive layer(s) kept in float: "
                         f"{', '.join(f['float_layers'])} (size x{f['size_ratio']:.2f}"
                         + (f", latency x{f['latency_ratio']:.2f})" if "latency_ratio" in f else ")"))
        table.add_row(a["target"], a["quant"],
                      f"{a['size_bytes'] / 1e6:.1f} MB" if a.get("size_bytes") else "-",
                      a.get("runtime", "-"), _num(p.get("max_rel_err"), "{:.1e}"),
                      _num(p.get("psnr_db"), "{:.1f}"), _num(p.get("top1_agreement"), "{:.3f}")
                      + (f" ({p['top1_ties']} tie{'s' if p['top1_ties'] > 1 else ''})" if p.get("top1_ties") else ""),
                      verdict)
    err.print(table)
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
    fused = "skipped" if fusion.get("skipped") else f"max rel err {fusion['max_rel_err']:.1e} ({'passed' if fusion['passed'] else 'FAILED'})"
    err.print(f"fusion proof: {fused}")
    err.print(f"report: {report_path}")


def _num(value, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)
