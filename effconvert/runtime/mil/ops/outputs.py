"""MIL ops: outputs."""

from __future__ import annotations

from .registry import op


@op("classify")
def _classify(probabilities, classes, op):
    probs = probabilities.flatten().tolist()
    labels = list(classes)
    best = max(range(len(probs)), key=probs.__getitem__)
    return labels[best], dict(zip(labels, probs))
