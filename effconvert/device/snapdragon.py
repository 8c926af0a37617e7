"""A Snapdragon phone's NPU (Hexagon HTP), from a .qnn.onnx alone: which nodes the QNN compiler put on
the HTP and which stay on the CPU (its own account, kept in the artifact by convert/qnn.py), and a
latency estimate on the phone the SoC is in, for the artifact's precision (snapdragon_cost.py: a
cost model calibrated on Qualcomm AI Hub's published measurements — an estimate with its measured
error, never a measurement).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..convert.qnn import GRAPH_KEY, RESIDENCY_KEY, read_metadata
from ..errors import BadInput
from ..targets import SOCS
from .report import DeviceReport, Estimate, OffAccelerator, Residency
from .snapdragon_cost import SnapdragonCalibration, estimate_ms

COMPILER = "the QNN compiler (ONNX Runtime's framework-op trace, recorded when the artifact was compiled)"


def device_report(path: Path) -> DeviceReport:
    meta = read_metadata(Path(path))
    soc_name, quant = meta.get("effconvert.soc"), meta.get("effconvert.quant")
    if soc_name not in SOCS or RESIDENCY_KEY not in meta or GRAPH_KEY not in meta:
        raise BadInput(f"{Path(path).name} carries no compiled-for-SoC record: not a qnn artifact of effconvert's")
    soc = SOCS[soc_name]
    trace = json.loads(meta[RESIDENCY_KEY])
    graph = json.loads(meta[GRAPH_KEY])
    off = tuple(
        OffAccelerator(c["node"], c["type"], c["reason"] or "the QNN HTP backend does not take this node", COMPILER)
        for c in trace["cpu_nodes"]
    )
    residency = Residency("htp", trace["total_nodes"], trace["htp_nodes"], off)
    calibration = SnapdragonCalibration.load()
    estimate = estimate_ms(graph, trace, soc.name, str(quant), calibration)
    latency = Estimate(**estimate["latency_ms"]) if estimate is not None else None
    outside = estimate["extrapolated"] if estimate is not None else []
    beyond = f"; extrapolated — outside the calibration models' range: {', '.join(outside)}" if outside else ""
    what = (
        f"an estimate for the {soc.phone} ({soc.name}, {soc.marketing}) from a cost model calibrated on "
        "Qualcomm AI Hub's published ONNX Runtime + QNN latencies (effconvert/device/data/"
        "published_snapdragon.csv), not a measurement"
        if latency is not None
        else f"no latency estimate for {quant} on {soc.name}: " + calibration.missing(soc.name, str(quant))
    )
    where = f"{residency.on}/{residency.total} ONNX nodes on the {soc.name} HTP" + (
        f", {len(off)} on the CPU ({', '.join(f'{t} x{n}' for t, n in residency.by_type().items())})" if off else ""
    )
    summary = (
        f"{soc.phone} ({soc.name}) {quant} estimate {latency.estimate:.2f} ms ({latency.low:.2f}–"
        f"{latency.high:.2f}, a calibrated model, not a measurement{'; extrapolated' if outside else ''}); "
        if latency is not None
        else "no latency estimate; "
    ) + where
    notes = (
        (
            f"{soc.phone} ({soc.name}) estimate: {latency.estimate:.2f} ms, band {latency.low:.2f}–"
            f"{latency.high:.2f} ms — {what}{beyond}",
        )
        if latency is not None
        else (what,)
    ) + (f"Hexagon HTP: {where}; HTP ops: " + ", ".join(f"{k} {v}" for k, v in trace["qnn_ops"].items()),)
    details = {
        "soc": {"name": soc.name, "marketing": soc.marketing, "phone": soc.phone, "htp_arch": soc.htp_arch},
        "precision": quant,
        "graph": graph,
        "qnn_ops": trace["qnn_ops"],
    }
    if estimate is not None:
        details["calibration"] = estimate["calibration"]
        details["extrapolated"] = outside
    return DeviceReport(f"snapdragon-{soc.name.lower()}-htp", what, residency, latency, summary, notes, details)
