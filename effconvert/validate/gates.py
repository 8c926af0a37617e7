"""Parity gates: the thresholds an artifact must meet, per quant mode, overridable by `--gate`.

All thresholds in one visible table; a gate is never widened silently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

from ..errors import BadInput
from .metrics import Parity


@dataclass(frozen=True)
class GateCheck:
    """One gate beside the value it judged."""

    metric: str  # max_rel_err | psnr_db | top1_agreement | cosine
    value: float
    threshold: float
    rule: str  # "at most" | "at least"
    passed: bool
    text: str  # "PSNR 67.7 dB ≥ 35"


@dataclass(frozen=True)
class Gate:
    max_rel: float | None = None  # max_rel_err <= this
    psnr: float | None = None  # psnr_db >= this
    top1: float | None = None  # top1_agreement >= this
    cosine: float | None = None  # cosine >= this

    def check(self, p: Parity) -> list[str]:
        """Failed conditions, as readable strings (empty = passed)."""
        failed = []
        if self.max_rel is not None and not p.max_rel_err <= self.max_rel:
            failed.append(f"max_rel_err {p.max_rel_err:.2e} > {self.max_rel:g}")
        if self.psnr is not None and not p.psnr_db >= self.psnr:
            failed.append(f"psnr_db {p.psnr_db:.1f} < {self.psnr:g}")
        if self.top1 is not None and not p.top1_agreement_decided >= self.top1:
            failed.append(
                f"top1_agreement {p.top1_agreement_decided:.3f} < {self.top1:g} "
                f"(over {p.samples - p.top1_ties} decided samples)"
            )
        if self.cosine is not None and not p.cosine >= self.cosine:
            failed.append(f"cosine {p.cosine:.6f} < {self.cosine:g}")
        return failed

    def checks(self, p: Parity) -> tuple[GateCheck, ...]:
        """Each gate beside the value it judged, as a person reads it: "PSNR 67.7 dB >= 35"."""
        rows = []
        decided = p.samples - p.top1_ties
        for name, label, value, fmt, threshold, at_most in (
            ("max_rel_err", "max rel err", p.max_rel_err, "{:.2e}", self.max_rel, True),
            ("psnr_db", "PSNR", p.psnr_db, "{:.1f} dB", self.psnr, False),
            ("top1_agreement", "top-1", p.top1_agreement_decided, "{:.3f}", self.top1, False),
            ("cosine", "cosine", p.cosine, "{:.6f}", self.cosine, False),
        ):
            if threshold is None:
                continue
            passed = bool(value <= threshold) if at_most else bool(value >= threshold)
            sign = ("≤" if passed else ">") if at_most else ("≥" if passed else "<")
            text = f"{label} {fmt.format(value)} {sign} {threshold:g}"
            if name == "top1_agreement":
                text += f" (over {decided} decided input{'s' if decided != 1 else ''}" + (
                    f"; {p.top1_ties} tie{'s' if p.top1_ties != 1 else ''} left out)" if p.top1_ties else ")"
                )
            rows.append(GateCheck(name, value, threshold, "at most" if at_most else "at least", passed, text))
        return tuple(rows)

    def as_dict(self) -> dict[str, float]:
        """report.json's `thresholds`: metric name -> threshold, for the gates in force."""
        return {_METRIC[f.name]: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    @classmethod
    def from_dict(cls, thresholds: dict[str, float]) -> Gate:
        by_metric = {metric: name for name, metric in _METRIC.items()}
        return cls(**{by_metric[k]: v for k, v in thresholds.items()})


_METRIC = {"max_rel": "max_rel_err", "psnr": "psnr_db", "top1": "top1_agreement", "cosine": "cosine"}


DEFAULT_GATES: dict[str, Gate] = {
    "fp32": Gate(max_rel=1e-4),
    "fp16": Gate(psnr=35.0, top1=0.99),
    "int8-weights": Gate(psnr=30.0, top1=0.95),
    "int8": Gate(psnr=25.0, top1=0.90),
    "w8a16": Gate(psnr=30.0, top1=0.95),  # 16-bit activations: between int8 and int8 weights
    "pal6": Gate(psnr=30.0, top1=0.95),  # 64 levels per tensor: close to int8 weights
    "pal4": Gate(psnr=20.0, top1=0.90),  # 16 levels per tensor: a size/accuracy trade, judged on --val
}


# An fp32 artifact cannot be held closer to PyTorch fp32 than PyTorch fp32 itself is to the exact
# (float64) model: networks that amplify rounding (EfficientViT-M's cascaded attention roughly
# doubles it per block) get max_rel = max(1e-4, factor x that noise floor), shown in the report.
FP32_NOISE_FACTOR = 4.0


def gate_for(quant: str, override: str | None = None, *, fp32_noise_floor: float = 0.0) -> Gate:
    gate = DEFAULT_GATES[quant]
    if quant == "fp32" and gate.max_rel is not None:
        gate = replace(gate, max_rel=max(gate.max_rel, FP32_NOISE_FACTOR * fp32_noise_floor))
    return replace(gate, **parse_gate(override)) if override else gate


# What a gate value can be: a fraction for agreements, non-negative for errors and dB.
GATE_RANGES = {"max_rel": (0.0, float("inf")), "psnr": (0.0, 1000.0), "top1": (0.0, 1.0), "cosine": (-1.0, 1.0)}


def parse_gate(text: str) -> dict[str, float]:
    """'psnr=40,top1=0.995' -> {'psnr': 40.0, 'top1': 0.995}."""
    known = [f.name for f in fields(Gate)]
    values = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        name, _, value = item.partition("=")
        if name not in known:
            raise BadInput(f"unknown gate {name!r} in --gate {text!r}", hint=f"gates: {', '.join(known)}")
        try:
            number = float(value)
        except ValueError:
            raise BadInput(
                f"gate {name} needs a number, got {value!r}", hint="e.g. --gate psnr=40,top1=0.995"
            ) from None
        if not math.isfinite(number):
            raise BadInput(f"gate {name} needs a finite number, got {value!r}")
        low, high = GATE_RANGES[name]
        if not low <= number <= high:
            raise BadInput(f"gate {name} {number:g} is out of range: from {low:g} to {high:g}")
        values[name] = number
    return values
