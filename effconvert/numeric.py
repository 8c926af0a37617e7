"""The error measures every stage shares: relative error (design.md's max_rel_err), PSNR and
top-1 agreement over the inputs the reference decides.

One definition each, so the fusion proof, parity, the int8 sensitivity table, the fallback's
simulation and the Core ML divergence localisation all mean the same thing by the same word.
Computed in float64.
"""

from __future__ import annotations

import math

import numpy as np


def rgb(values: object) -> tuple[float, float, float]:
    """Three numbers, one per RGB channel (a mean, a std), as floats."""
    r, g, b = (float(v) for v in values)  # type: ignore[attr-defined]  # any iterable of 3 numbers
    return r, g, b


def _float64(x) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor, without importing torch here
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def max_errors(out, ref) -> tuple[float, float]:
    """(max |out - ref|, that divided by max |ref|) over the whole batch. A zero reference gives
    rel 0 when out is zero too, inf otherwise."""
    out, ref = _float64(out), _float64(ref)
    diff = float(np.abs(out - ref).max()) if out.size else 0.0
    scale = float(np.abs(ref).max()) if ref.size else 0.0
    if scale > 0:
        return diff, diff / scale
    return diff, 0.0 if diff == 0 else math.inf


def psnr_db(out, ref) -> float:
    """20 log10(range(ref) / rmse). inf when identical; -inf when the reference is constant or the
    error is not finite (an fp16 overflow), so a gate on it fails rather than reading NaN."""
    out, ref = _float64(out), _float64(ref)
    mse = float(np.mean((out - ref) ** 2))
    if mse == 0:
        return math.inf
    peak = float(ref.max() - ref.min())
    if peak == 0 or not math.isfinite(mse):
        return -math.inf
    return 20 * math.log10(peak / math.sqrt(mse))


TIE_MARGIN = 0.01  # of the reference logits' range (max - min over the batch)


def decided_top1(out, ref) -> tuple[float, int]:
    """(top-1 agreement over the inputs the reference decides, how many it does not).

    Decided: the reference's top-1 leads its runner-up by >= TIE_MARGIN of the logit range.
    Random-direction synthetic heads make near-ties common (a margin of 0.3 % of the range flips
    under any fp16 rounding); a trained head has few. 1.0 when no input is decided."""
    out, ref = _float64(out), _float64(ref)
    peak = float(ref.max() - ref.min())
    ordered = np.sort(ref, axis=-1)
    margin = ordered[:, -1] - ordered[:, -2] if ref.shape[-1] > 1 else np.full(len(ref), np.inf)
    decided = margin >= TIE_MARGIN * peak
    agree = out.argmax(-1) == ref.argmax(-1)
    return (float(np.mean(agree[decided])) if decided.any() else 1.0), int((~decided).sum())
