"""report.html: one self-contained page (plots inline as PNG data URIs) a person reads in ten
seconds — a verdict banner, one row per artifact, then for each artifact the artifact-vs-reference
logit scatter and the histogram of its errors."""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import numpy as np

from ..fuse import FusionProof
from .explain import GLOSSARY, next_steps, runtime_text
from .schema import ArtifactReport, Report, Sensitivity

STYLE = """
body{font:14px/1.45 -apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#1d1d1f;max-width:1100px}
h1{font-size:22px;margin:0 0 4px} .sub{color:#666;margin-bottom:16px}
.banner{padding:10px 14px;border-radius:8px;font-weight:600;margin:12px 0}
.ok{background:#e3f5e8;color:#136c2e} .bad{background:#fde8e8;color:#9b1c1c} .warn{background:#fff4d6;color:#7a5a00}
table{border-collapse:collapse;width:100%;margin:8px 0 20px} th,td{padding:6px 10px;border-bottom:1px solid #e5e5e5;text-align:left}
th{background:#f7f7f7;font-weight:600} td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.card{border:1px solid #e5e5e5;border-radius:8px;padding:12px;margin:12px 0} .card img{max-width:100%}
.small{color:#666;font-size:12px}
"""


def render_html(report: Report, plots: dict[str, str]) -> str:
    """`plots`: artifact file name -> `plot_png` of its logits vs the reference (absent when not
    validated). Drawn where the artifact was validated, beside the next conversion."""
    model = report.model
    unvalidated = [a for a in report.artifacts if a.verdict is not None and not a.verdict.ran and not a.verdict.skipped]
    if report.passed:
        banner = ("ok", "PASSED — every artifact ran on its runtime and met its gate")
    elif unvalidated and all(a.passed or a in unvalidated for a in report.artifacts):
        banner = ("warn", f"NOT VALIDATED — {len(unvalidated)} artifact(s) could not be run here")
    else:
        banner = ("bad", "FAILED — see the rows marked failed")
    inputs = report.inputs
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>effconvert report — {_e(model.arch)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{_e(model.arch)}</h1>",
        f"<div class='sub'>{_e(model.checkpoint)} · {_e(model.source_layout)} layout · "
        f"{model.params / 1e6:.1f}M params · input {list(model.input_size)} · {_e(model.weights)}</div>",
        f"<div class='banner {banner[0]}'>{_e(banner[1])}</div>",
        _fusion_line(report.fusion.proof),
        _table(report.artifacts),
        f"<p class='small'>Inputs: {inputs.samples} × {_e(inputs.source)}."
        + (
            f" Labelled images ({inputs.classes} classes): PyTorch accuracy "
            f"{inputs.reference_accuracy:.3f}; accuracy column = each artifact's."
            if inputs.reference_accuracy is not None
            else ""
        )
        + "</p>",
        "".join(f"<p class='small'>Skipped: {_e(note)}</p>" for note in report.skipped),
        _next_steps(report),
        _explanations(report),
    ]
    for artifact in report.artifacts:
        parts.append(_card(artifact, plots.get(artifact.path or "")))
    if report.equalization is not None:
        parts.append(f"<p class='small'>int8: {_e(report.equalization.summary())}</p>")
    for correction in report.bias_corrections:
        parts.append(f"<p class='small'>int8: {_e(correction.summary())}</p>")
    if report.sensitivity is not None:
        parts.append(_sensitivity(report.sensitivity, report.artifacts))
    versions = ", ".join(f"{k} {v}" for k, v in report.versions.items())
    parts.append(f"<p class='small'>{_e(versions)}</p></body></html>")
    return "\n".join(parts)


def _sensitivity(table: Sensitivity, artifacts: tuple[ArtifactReport, ...]) -> str:
    """Ranked per-layer int8 sensitivity; layers an artifact kept in float are marked."""
    kept = {name: a.name for a in artifacts if a.fallback for name in a.fallback.float_layers}
    rows = "".join(
        f"<tr><td>{i + 1}</td><td>{_e(r.name)}</td><td>{_e(r.kind)}</td>"
        f"<td>{r.params:,}</td><td>{r.psnr_db:.1f}</td>"
        f"<td>{_e('float in ' + kept[r.name]) if r.name in kept else ''}</td></tr>"
        for i, r in enumerate(table.layers)
    )
    return (
        f"<h2>int8 sensitivity</h2><p class='small'>{_e(table.method)}; most sensitive first.</p>"
        "<table><tr><th>#</th><th>layer</th><th>kind</th><th>params</th><th>PSNR dB</th><th></th></tr>"
        f"{rows}</table>"
    )


def _next_steps(report: Report) -> str:
    items = "".join(f"<li>{_e(step)}</li>" for step in next_steps(report))
    return f"<h2>What to do next</h2><ul>{items}</ul>" if items else ""


def _explanations(report: Report) -> str:
    """The numbers' definitions, the gates in force, and what each runtime that ran is."""
    terms = "".join(f"<dt>{_e(term)}</dt><dd>{_e(meaning)}</dd>" for term, meaning in GLOSSARY)
    runtimes = dict.fromkeys(a.runtime for a in report.artifacts if a.runtime)
    ran = "".join(f"<dt>{_e(name)}</dt><dd>{_e(runtime_text(name))}</dd>" for name in runtimes)
    gates = "".join(
        f"<li>{_e(a.target)} {_e(a.quant)}: "
        + _e(
            ", ".join(
                f"{k.replace('_', ' ')} {'at most' if k == 'max_rel_err' else 'at least'} {v:g}"
                for k, v in a.verdict.gate.as_dict().items()
            )
        )
        + "</li>"
        for a in report.artifacts
        if a.verdict is not None
    )
    rule = report.reference.fp32_gate_rule
    return (
        f"<details class='small'><summary>How to read these numbers</summary><dl>{terms}</dl>"
        f"<p>Gates in force (override with <code>--gate psnr=40,top1=0.995</code>):</p><ul>{gates}</ul>"
        + (f"<p>fp32 rule: {_e(rule)}</p>" if rule else "")
        + f"<p>Runtimes:</p><dl>{ran}</dl></details>"
    )


def _fusion_line(proof: FusionProof) -> str:
    if proof.skipped:
        return "<p>Fusion: skipped (--no-fuse).</p>"
    verdict = "passed" if proof.passed else "FAILED"
    return (
        f"<p>Fusion proof: {proof.modules_fused} modules fused; on {proof.samples} inputs "
        f"float64 fused vs unfused {proof.exact_rel_err:.1e} (exact), fp32 max rel err "
        f"{proof.fp32_rel_err:.1e} vs the float64 model "
        f"(gate {proof.tolerance:.1e}; the unfused model's own fp32 error is "
        f"{proof.fp32_noise_floor:.1e}) — {verdict}.</p>"
    )


def _table(artifacts: tuple[ArtifactReport, ...]) -> str:
    with_accuracy = any(a.verdict and a.verdict.accuracy for a in artifacts)
    rows = [
        "<table><tr><th>target</th><th>quant</th><th>file</th><th>size</th><th>runtime</th>"
        "<th>max rel</th><th>PSNR dB</th><th>top-1</th>"
        + ("<th>accuracy</th>" if with_accuracy else "")
        + "<th>verdict: each gate beside its value</th></tr>"
    ]
    for a in artifacts:
        p = a.verdict.parity if a.verdict is not None else None
        accuracy = a.verdict.accuracy if a.verdict is not None else None
        # The top-1 the gate judged (over decided inputs), with the ties it left out and the raw figure.
        ties = (
            (
                f"<br><span class='small'>{p.top1_ties} tie{'s' if p.top1_ties != 1 else ''} left out; "
                f"{p.top1_agreement:.3f} over all</span>"
            )
            if p is not None and p.top1_ties
            else ""
        )
        rows.append(
            f"<tr><td>{_e(a.target)}</td><td>{_e(a.quant)}</td><td>{_e(a.path or '-')}</td>"
            f"<td class='num'>{_mb(a.size_bytes)}</td><td>{_e(a.runtime or '-')}</td>"
            f"<td class='num'>{_fmt(p.max_rel_err if p else None, '{:.1e}')}</td>"
            f"<td class='num'>{_fmt(p.psnr_db if p else None, '{:.1f}')}</td>"
            f"<td class='num'>{_fmt(p.top1_agreement_decided if p else None, '{:.3f}')}{ties}</td>"
            + (
                f"<td class='num'>{_fmt(accuracy.accuracy if accuracy else None, '{:.3f}')}</td>"
                if with_accuracy
                else ""
            )
            + f"<td>{_verdict(a)}</td></tr>"
        )
    rows.append("</table>")
    return "\n".join(rows)


def _verdict(a: ArtifactReport) -> str:
    verdict = a.verdict
    if a.error:
        return f"<b style='color:#9b1c1c'>conversion failed</b>: {_e(a.error)}"
    if verdict is None or verdict.skipped:
        return "not validated (--no-validate)"
    if not verdict.ran:
        return f"<b style='color:#7a5a00'>not validated</b>: {_e('; '.join(verdict.failures))}"
    checks = "".join(f"<br><span class='small'>{'✓' if c.passed else '✗'} {_e(c.text)}</span>" for c in verdict.checks)
    budget = f"<br><span class='small'>on {_e(verdict.budget)}</span>" if verdict.budget else ""
    if verdict.passed:
        return f"<b style='color:#136c2e'>passed</b>{checks}{budget}"
    where = ""
    if verdict.first_divergent_op is not None:
        d = verdict.first_divergent_op
        where = (
            f"<br><span class='small'>first op below {d.threshold_db:g} dB in the compressed program: "
            f"{_e(d.op)} <code>{_e(d.output)}</code> ({d.psnr_db:.1f} dB)</span>"
        )
    if not checks:
        checks = f"<br><span class='small'>{_e('; '.join(verdict.failures))}</span>"
    return f"<b style='color:#9b1c1c'>FAILED</b>{checks}{budget}{where}"


def _card(a: ArtifactReport, plot: str | None) -> str:
    title = f"{a.target} {a.quant} — {a.path or 'not written'}"
    if plot is None:
        return f"<div class='card'><b>{_e(title)}</b><p class='small'>No outputs: {_verdict(a)}</p></div>"
    device = list(a.device.notes) if a.device is not None else ([a.device_error] if a.device_error else [])
    notes = "".join(f"<li>{_e(n)}</li>" for n in [*a.notes, *device, *_fallback_lines(a)])
    return (
        f"<div class='card'><b>{_e(title)}</b> <span class='small'>ran on {_e(a.runtime)}: "
        f"{_e(runtime_text(a.runtime))}</span>"
        f"{'<ul class=small>' + notes + '</ul>' if notes else ''}"
        f"<br><img alt='logits and errors' src='data:image/png;base64,{plot}'></div>"
    )


def _fallback_lines(a: ArtifactReport) -> list[str]:
    """Every fallback attempt with its prediction, result and size, and what was kept."""
    f = a.fallback
    if f is None:
        return []
    lines = [
        f"all-int8: {f.all_int8['psnr_db']:.1f} dB, {f.all_int8['size_bytes'] / 1e6:.2f} MB — missed "
        + ("; ".join(f.all_int8.get("failed", [])) or "its gate")
    ]
    for t in f.attempts:
        measured = [f"{t.psnr_db:.1f} dB"] if t.psnr_db is not None else [str(t.error)]
        if t.top1_agreement is not None:
            measured.append(f"top-1 {t.top1_agreement:.3f}")
        if t.size_bytes is not None:
            measured.append(f"{t.size_bytes / 1e6:.2f} MB")
        if t.seconds is not None:
            measured.append(f"{t.seconds:.0f} s")
        result = ", ".join(measured) + (
            "" if t.psnr_db is None else f" — {'passed' if t.passed else 'missed its gate'}"
        )
        lines.append(f"{t.float_layers} layer(s) in float: predicted {t.predicted_psnr_db:.1f} dB, measured {result}")
    if f.stopped:
        return [*lines, f"no fallback: {f.stopped}"]
    lines.append(
        f"kept: {len(f.float_layers)} layer(s) in float ({', '.join(f.float_layers) or 'none'}), size "
        f"x{f.size_ratio:.2f}"
        + (
            f", latency x{f.latency_ratio:.2f}"
            if f.latency_ratio is not None
            else f"; latency {f.latency}"
            if f.latency
            else ""
        )
    )
    return lines


def plot_png(reference: np.ndarray, out: np.ndarray) -> str:
    """The artifact-vs-reference logit scatter and the histogram of its errors, base64 PNG.
    A bare Figure with fixed margins: pyplot's state and tight_layout were 70% of its time."""
    from matplotlib.figure import Figure

    ref, art = reference.ravel(), out.ravel()
    fig = Figure(figsize=(10, 3.6), dpi=90)
    fig.subplots_adjust(left=0.07, right=0.99, bottom=0.15, top=0.91, wspace=0.22)
    ax1, ax2 = fig.subplots(1, 2)
    ax1.scatter(ref, art, s=2, alpha=0.35, color="#2563eb", rasterized=True)
    lo, hi = float(min(ref.min(), art.min())), float(max(ref.max(), art.max()))
    ax1.plot([lo, hi], [lo, hi], color="#999", lw=0.8)
    ax1.set_xlabel("PyTorch logit")
    ax1.set_ylabel("artifact logit")
    ax1.set_title("artifact vs reference")
    err = art.astype(np.float64) - ref.astype(np.float64)
    ax2.hist(err, bins=80, color="#7c3aed")
    ax2.set_yscale("log")
    ax2.ticklabel_format(axis="x", style="sci", scilimits=(-2, 3))  # short tick labels, no overlap
    ax2.set_xlabel("artifact − reference")
    ax2.set_title(f"errors (max |err| {np.abs(err).max():.2e})")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return base64.b64encode(buf.getvalue()).decode()


def _e(text: Any) -> str:
    return html.escape(str(text))


def _fmt(value, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def _mb(size) -> str:
    return "-" if not size else f"{size / 1e6:.1f} MB"
