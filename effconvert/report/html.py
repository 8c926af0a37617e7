"""report.html: one self-contained page (plots inline as PNG data URIs) a person reads in ten
seconds — a verdict banner, one row per artifact, then for each artifact the artifact-vs-reference
logit scatter and the histogram of its errors."""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import numpy as np

from .explain import GLOSSARY, next_steps, runtime_text

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


def render_html(report: dict[str, Any], plots: dict[str, str]) -> str:
    """`plots`: artifact file name -> `plot_png` of its logits vs the reference (absent when not
    validated). Drawn where the artifact was validated, beside the next conversion."""
    model, fusion = report["model"], report["fusion"]
    passed = report["passed"]
    unvalidated = [a for a in report["artifacts"] if a.get("runtime") == "unvalidated"]
    if passed:
        banner = ("ok", "PASSED — every artifact ran on its runtime and met its gate")
    elif unvalidated and all(a.get("parity", {}).get("passed", True) or a in unvalidated
                             for a in report["artifacts"]):
        banner = ("warn", f"NOT VALIDATED — {len(unvalidated)} artifact(s) could not be run here")
    else:
        banner = ("bad", "FAILED — see the rows marked failed")
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>effconvert report — {_e(model['arch'])}</title><style>{STYLE}</style></head><body>",
        f"<h1>{_e(model['arch'])}</h1>",
        f"<div class='sub'>{_e(model['checkpoint'])} · {_e(model['source_layout'])} layout · "
        f"{model['params'] / 1e6:.1f}M params · input {model['input_size']} · {_e(model['weights'])}</div>",
        f"<div class='banner {banner[0]}'>{_e(banner[1])}</div>",
        _fusion_line(fusion),
        _table(report["artifacts"]),
        f"<p class='small'>Inputs: {report['inputs']['samples']} × {_e(report['inputs']['source'])}."
        + (f" Labelled images ({report['inputs']['classes']} classes): PyTorch accuracy "
           f"{report['inputs']['reference_accuracy']:.3f}; accuracy column = each artifact's."
           if "reference_accuracy" in report["inputs"] else "") + "</p>",
        _next_steps(report),
        _explanations(report),
    ]
    for artifact in report["artifacts"]:
        parts.append(_card(artifact, plots.get(artifact.get("path") or "")))
    if report.get("int8_sensitivity"):
        parts.append(_sensitivity(report["int8_sensitivity"], report["artifacts"]))
    versions = ", ".join(f"{k} {v}" for k, v in report["versions"].items())
    parts.append(f"<p class='small'>{_e(versions)}</p></body></html>")
    return "\n".join(parts)


def _sensitivity(table: dict, artifacts: list[dict]) -> str:
    """Ranked per-layer int8 sensitivity; layers an artifact kept in float are marked."""
    kept = {name: a["path"] for a in artifacts for name in a.get("fallback", {}).get("float_layers", [])}
    rows = "".join(f"<tr><td>{i + 1}</td><td>{_e(r['layer'])}</td><td>{_e(r['kind'])}</td>"
                   f"<td>{r['params']:,}</td><td>{r['psnr_db']:.1f}</td>"
                   f"<td>{_e('float in ' + kept[r['layer']]) if r['layer'] in kept else ''}</td></tr>"
                   for i, r in enumerate(table["layers"]))
    return (f"<h2>int8 sensitivity</h2><p class='small'>{_e(table['method'])}; most sensitive first.</p>"
            "<table><tr><th>#</th><th>layer</th><th>kind</th><th>params</th><th>PSNR dB</th><th></th></tr>"
            f"{rows}</table>")


def _next_steps(report: dict) -> str:
    items = "".join(f"<li>{_e(step)}</li>" for step in next_steps(report))
    return f"<h2>What to do next</h2><ul>{items}</ul>" if items else ""


def _explanations(report: dict) -> str:
    """The numbers' definitions, the gates in force, and what each runtime that ran is."""
    terms = "".join(f"<dt>{_e(term)}</dt><dd>{_e(meaning)}</dd>" for term, meaning in GLOSSARY)
    runtimes = dict.fromkeys(a.get("runtime") for a in report["artifacts"] if a.get("runtime"))
    ran = "".join(f"<dt>{_e(name)}</dt><dd>{_e(runtime_text(name))}</dd>" for name in runtimes)
    gates = "".join(f"<li>{_e(a['target'])} {_e(a['quant'])}: "
                    + _e(", ".join(f"{k.replace('_', ' ')} {'at most' if k == 'max_rel_err' else 'at least'} {v:g}"
                                   for k, v in a["parity"].get("thresholds", {}).items())) + "</li>"
                    for a in report["artifacts"] if a.get("parity"))
    rule = report.get("reference", {}).get("fp32_gate_rule", "")
    return (f"<details class='small'><summary>How to read these numbers</summary><dl>{terms}</dl>"
            f"<p>Gates in force (override with <code>--gate psnr=40,top1=0.995</code>):</p><ul>{gates}</ul>"
            + (f"<p>fp32 rule: {_e(rule)}</p>" if rule else "")
            + f"<p>Runtimes:</p><dl>{ran}</dl></details>")


def _fusion_line(fusion: dict) -> str:
    if fusion.get("skipped"):
        return "<p>Fusion: skipped (--no-fuse).</p>"
    verdict = "passed" if fusion["passed"] else "FAILED"
    return (f"<p>Fusion proof: {fusion['modules_fused']} modules fused; on {fusion['samples']} inputs "
            f"float64 fused vs unfused {fusion.get('exact_rel_err', 0.0):.1e} (exact), fp32 max rel err "
            f"{fusion.get('fp32_rel_err', fusion['max_rel_err']):.1e} vs the float64 model "
            f"(gate {fusion['tolerance']:.1e}; the unfused model's own fp32 error is "
            f"{fusion.get('fp32_noise_floor', 0.0):.1e}) — {verdict}.</p>")


def _table(artifacts: list[dict]) -> str:
    with_accuracy = any("accuracy" in a.get("parity", {}) for a in artifacts)
    rows = ["<table><tr><th>target</th><th>quant</th><th>file</th><th>size</th><th>runtime</th>"
            "<th>max rel</th><th>PSNR dB</th><th>top-1</th>" + ("<th>accuracy</th>" if with_accuracy else "")
            + "<th>verdict: each gate beside its value</th></tr>"]
    for a in artifacts:
        p = a.get("parity", {})
        # The top-1 the gate judged (over decided inputs), with the ties it left out and the raw figure.
        ties = (f"<br><span class='small'>{p['top1_ties']} tie{'s' if p['top1_ties'] != 1 else ''} left out; "
                f"{p['top1_agreement']:.3f} over all</span>") if p.get("top1_ties") else ""
        rows.append(
            f"<tr><td>{_e(a['target'])}</td><td>{_e(a['quant'])}</td><td>{_e(a.get('path') or '-')}</td>"
            f"<td class='num'>{_mb(a.get('size_bytes'))}</td><td>{_e(a.get('runtime', '-'))}</td>"
            f"<td class='num'>{_fmt(p.get('max_rel_err'), '{:.1e}')}</td>"
            f"<td class='num'>{_fmt(p.get('psnr_db'), '{:.1f}')}</td>"
            f"<td class='num'>{_fmt(p.get('top1_agreement_decided'), '{:.3f}')}{ties}</td>"
            + (f"<td class='num'>{_fmt(p.get('accuracy'), '{:.3f}')}</td>" if with_accuracy else "")
            + f"<td>{_verdict(a)}</td></tr>")
    rows.append("</table>")
    return "\n".join(rows)


def _verdict(a: dict) -> str:
    p = a.get("parity", {})
    if a.get("error"):
        return f"<b style='color:#9b1c1c'>conversion failed</b>: {_e(a['error'])}"
    if p.get("skipped"):
        return "not validated (--no-validate)"
    if a.get("runtime") == "unvalidated":
        return f"<b style='color:#7a5a00'>not validated</b>: {_e('; '.join(p.get('failures', [])))}"
    checks = "".join(f"<br><span class='small'>{'✓' if c['passed'] else '✗'} {_e(c['text'])}</span>"
                     for c in p.get("checks", []))
    if p.get("passed"):
        return f"<b style='color:#136c2e'>passed</b>{checks}"
    where = ""
    if p.get("first_divergent_op"):
        d = p["first_divergent_op"]
        where = (f"<br><span class='small'>first op below {d['threshold_db']:g} dB in the fp16 program: "
                 f"{_e(d['op'])} <code>{_e(d['output'])}</code> ({d['psnr_db']:.1f} dB)</span>")
    if not checks:
        checks = f"<br><span class='small'>{_e('; '.join(p.get('failures', [])))}</span>"
    return f"<b style='color:#9b1c1c'>FAILED</b>{checks}{where}"


def _card(a: dict, plot: str | None) -> str:
    title = f"{a['target']} {a['quant']} — {a.get('path') or 'not written'}"
    if plot is None:
        return f"<div class='card'><b>{_e(title)}</b><p class='small'>No outputs: {_verdict(a)}</p></div>"
    notes = "".join(f"<li>{_e(n)}</li>" for n in a.get("notes", []) + _device_notes(a.get("device")))
    return (f"<div class='card'><b>{_e(title)}</b> <span class='small'>ran on {_e(a['runtime'])}: "
            f"{_e(runtime_text(a['runtime']))}</span>"
            f"{'<ul class=small>' + notes + '</ul>' if notes else ''}"
            f"<br><img alt='logits and errors' src='data:image/png;base64,{plot}'></div>")


def _device_notes(device: dict | None) -> list[str]:
    if not device or "latency_ms" not in device:
        return [device["error"]] if device and "error" in device else []
    lat, off = device["latency_ms"], device["ops"]["off_ane"]
    rules = sorted({f"rule {o['rule']}: {o['reason']}" for o in off})
    return [f"iPhone 12 (A14) estimate: {lat['estimate']:.2f} ms, band {lat['low']:.2f}–{lat['high']:.2f} ms — "
            f"{device['what']}",
            f"Neural Engine: {device['ops']['ane']} of {device['ops']['total']} ops likely on it"
            + (f"; {len(off)} likely off ({'; '.join(rules)}), {device['segments']} segments" if off else "")
            + f"; 64-byte last-axis rows waste {100 * device['padding']['waste']:.0f}% of the bytes moved"]


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
    ax2.ticklabel_format(axis="x", style="sci", scilimits=(-2, 3))     # short tick labels, no overlap
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
