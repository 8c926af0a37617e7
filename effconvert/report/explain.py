"""Words for the numbers: each gate beside the value it judged, what a tie is, what each runtime is,
and what to do next. Console and report.html both read these, so they say the same thing."""

from __future__ import annotations

from ..runtime import RUNTIMES
from ..targets import CALIBRATED, TARGETS
from ..validate.metrics import TIE_MARGIN
from .schema import ArtifactReport, Report

GLOSSARY = (
    ("max rel err", "max |artifact − PyTorch| / max |PyTorch| over every logit of every input"),
    ("PSNR", "20·log10(range of the PyTorch logits / RMS error), in dB; higher is closer"),
    ("top-1", "share of inputs where the artifact's top class is PyTorch's"),
    (
        "tie",
        f"an input whose two highest PyTorch logits are within {100 * TIE_MARGIN:g}% of the logit range: "
        "any rounding may swap them, so the top-1 gate counts only the other (decided) inputs",
    ),
)
# Quant modes whose weights (or activations) are quantized: calibration and --val are the levers.
COMPRESSED = (*CALIBRATED, "int8-weights", "pal4", "pal6")
SYNTHETIC_NOTE = (
    "the weights are synthetic (make-checkpoint): an untrained head's top-1 decides on margins "
    "that any rounding moves, so top-1 and task accuracy are weak evidence here — judge by PSNR "
    "and cosine, and convert the trained checkpoint for a verdict that counts"
)


def checks_text(artifact: ArtifactReport, *, only_failed: bool = False) -> str:
    """ "PSNR 67.7 dB ≥ 35, top-1 1.000 ≥ 0.99 (over 32 decided inputs)" for a validated artifact."""
    checks = artifact.verdict.checks if artifact.verdict is not None else ()
    return ", ".join(c.text for c in checks if not (only_failed and c.passed))


def runtime_text(name: str | None) -> str:
    info = RUNTIMES.get(name or "")
    return info.description if info else (name or "")


def next_steps(report: Report) -> list[str]:
    """What a person does with this report, most useful first; never what they already did."""
    calibrated = bool(report.options.get("calib"))
    labelled = bool(report.options.get("val"))
    steps = []
    for a in report.artifacts:
        verdict = a.verdict
        if a.error:
            steps.append(
                f"{a.name}: the converter refused the model (named above); try another target or "
                "--no-fuse, and report the op if it is one of ours"
            )
        elif verdict is not None and not verdict.skipped and not verdict.ran:
            steps.append(f"{a.name}: not run here; check it on its device before shipping")
        elif verdict is not None and not verdict.passed:
            missed = checks_text(a, only_failed=True) or "; ".join(verdict.failures)
            if a.quant in COMPRESSED:
                levers = (
                    ([] if calibrated or a.quant not in CALIBRATED else ["calibrate on your own images (--calib DIR)"])
                    + ([] if labelled else ["judge on labelled images (--val DIR)"])
                    + ["keep fp16"]
                )
                steps.append(
                    f"{a.name}: missed {missed}; "
                    + ", ".join(levers[:-1])
                    + (" or " if len(levers) > 1 else "")
                    + levers[-1]
                )
            else:
                steps.append(
                    f"{a.name}: missed {missed}; see the first diverging op in report.html, or ship the fp32 artifact"
                )
    if report.model.synthetic and any(a.verdict and a.verdict.ran and not a.passed for a in report.artifacts):
        steps.append(SYNTHETIC_NOTE)
    if not steps and report.passed:
        apps = {
            p: [TARGETS[a.target].suffix for a in report.artifacts if p in TARGETS[a.target].platforms]
            for t in TARGETS.values()
            for p in t.platforms
        }
        takes = "; ".join(f"{p} takes {' or '.join(dict.fromkeys(s))}" for p, s in apps.items() if s)
        steps.append(
            "every artifact met its gate: embed one in a sample app with "
            "`effconvert app ios|android --artifact PATH --out DIR`" + (f" ({takes})" if takes else "")
        )
    return steps
