"""Words for the numbers: each gate beside the value it judged, what a tie is, what each runtime is,
and what to do next. Console and report.html both read these, so they say the same thing."""

from __future__ import annotations

from ..runtime import RUNTIME_DESCRIPTIONS
from ..validate.metrics import TIE_MARGIN

GLOSSARY = (
    ("max rel err", "max |artifact − PyTorch| / max |PyTorch| over every logit of every input"),
    ("PSNR", "20·log10(range of the PyTorch logits / RMS error), in dB; higher is closer"),
    ("top-1", "share of inputs where the artifact's top class is PyTorch's"),
    ("tie", f"an input whose two highest PyTorch logits are within {100 * TIE_MARGIN:g}% of the logit range: "
            "any rounding may swap them, so the top-1 gate counts only the other (decided) inputs"),
)


def checks_text(entry: dict, *, only_failed: bool = False) -> str:
    """"PSNR 67.7 dB ≥ 35, top-1 1.000 ≥ 0.99 (over 32 decided inputs)" for a validated entry."""
    checks = entry.get("parity", {}).get("checks", [])
    return ", ".join(c["text"] for c in checks if not (only_failed and c["passed"]))


def runtime_text(name: str | None) -> str:
    return RUNTIME_DESCRIPTIONS.get(name or "", name or "")


def next_steps(report: dict) -> list[str]:
    """What a person does with this report, most useful first."""
    steps = []
    for a in report["artifacts"]:
        name, p = a.get("path") or f"{a['target']} {a['quant']}", a.get("parity", {})
        if a.get("error"):
            steps.append(f"{name}: the converter refused the model (named above); try another target or "
                         "--no-fuse, and report the op if it is one of ours")
        elif a.get("runtime") == "unvalidated" and not p.get("skipped"):
            steps.append(f"{name}: not run here; check it on its device before shipping")
        elif not p.get("passed", True):
            if a["quant"] in ("int8", "int8-weights", "pal4", "pal6"):
                steps.append(f"{name}: missed {checks_text(a, only_failed=True)}; calibrate on your own images "
                             "(--calib DIR), judge on labelled ones (--val DIR), or keep fp16")
            else:
                steps.append(f"{name}: missed {checks_text(a, only_failed=True)}; see the first diverging op "
                             "in report.html, or ship the fp32 artifact")
    if not steps and report.get("passed"):
        suffixes = {a["target"]: a["path"] for a in report["artifacts"] if a.get("path")}
        steps.append("every artifact met its gate: embed one in a sample app with "
                     "`effconvert app ios|android --artifact PATH --out DIR`"
                     + ("" if "executorch" not in suffixes else " (android takes .tflite or .pte)"))
    return steps
