"""What a device model says about an artifact, as data every device module returns: which ops its
accelerator likely takes (residency) and an estimate of the phone's latency with its band.

Each device module (apple.py, snapdragon.py) fills `summary` (one line for the console and inspect)
and `notes` (the report's lines) in its own words; report/ renders them without knowing the device.
`to_json()` keeps the device's own key for its accelerator (`ops.ane`/`ops.off_ane` for the Neural
Engine, `ops.htp`/`ops.off_htp` for the Hexagon NPU).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class OffAccelerator:
    """One op likely placed off the accelerator, and the published rule or the compiler's reason."""

    op: str  # the op's name (its output) in the program
    type: str  # the op type
    reason: str
    source: str  # where the rule or the reason comes from
    rule: int | None = None  # the rule's number in the device's rule table, when a rule decided

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"op": self.op, "type": self.type}
        if self.rule is not None:
            body["rule"] = self.rule
        return {**body, "reason": self.reason, "source": self.source}


@dataclass(frozen=True)
class Residency:
    accelerator: str  # its key in report.json: "ane" | "htp" | "gpu"
    total: int  # ops counted
    on: int  # of which on the accelerator
    off: tuple[OffAccelerator, ...]

    @property
    def share(self) -> float:
        return self.on / self.total if self.total else 1.0

    def by_type(self) -> dict[str, int]:
        """Op type -> ops of that type off the accelerator, most first."""
        counts: dict[str, int] = {}
        for op in self.off:
            counts[op.type] = counts.get(op.type, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


@dataclass(frozen=True)
class Estimate:
    """A latency estimate and its band, in ms: never a bare number."""

    estimate: float
    low: float
    high: float


@dataclass(frozen=True)
class DeviceReport:
    device: str  # e.g. "apple-a14-ane", "snapdragon-sm8650-htp"
    what: str  # what the estimate is (a calibrated model, not a measurement) and what it was fitted on
    residency: Residency
    latency_ms: Estimate | None
    summary: str  # one line: the estimate with its band, the residency
    notes: tuple[str, ...] = ()  # the report's lines
    details: Mapping[str, Any] = field(default_factory=dict)  # the device's own figures (padding, calibration, ...)

    def to_json(self) -> dict[str, Any]:
        key = self.residency.accelerator
        ops = {
            "total": self.residency.total,
            key: self.residency.on,
            f"off_{key}": [o.to_json() for o in self.residency.off],
        }
        body: dict[str, Any] = {"device": self.device}
        if self.latency_ms is not None:
            body["latency_ms"] = vars(self.latency_ms)
        return {
            **body,
            "what": self.what,
            "ops": ops,
            **self.details,
            "summary": self.summary,
            "notes": list(self.notes),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DeviceReport:
        ops = data["ops"]
        key = next(k for k in ops if k != "total" and not k.startswith("off_"))
        off = tuple(
            OffAccelerator(o["op"], o["type"], o["reason"], o["source"], o.get("rule")) for o in ops[f"off_{key}"]
        )
        latency = data.get("latency_ms")
        reserved = {"device", "latency_ms", "what", "ops", "summary", "notes"}
        return cls(
            data["device"],
            data["what"],
            Residency(key, ops["total"], ops[key], off),
            Estimate(**latency) if latency else None,
            data.get("summary", ""),
            tuple(data.get("notes", ())),
            {k: v for k, v in data.items() if k not in reserved},
        )
