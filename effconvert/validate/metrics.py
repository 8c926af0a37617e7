"""Parity metrics of an artifact's outputs against the PyTorch reference, on the same inputs."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..numeric import TIE_MARGIN, decided_top1, max_errors, psnr_db

__all__ = ["TIE_MARGIN", "Parity", "parity"]


@dataclass(frozen=True)
class Parity:
    samples: int
    max_abs_err: float
    max_rel_err: float  # max|out - ref| / max|ref| over the batch (design.md)
    mean_abs_err: float
    cosine: float  # over the whole batch, flattened
    min_sample_cosine: float  # the worst single input
    psnr_db: float  # 20 log10(range(ref) / rmse)
    top1_agreement: float  # over every sample
    top5_overlap: float
    # Over samples the reference decides (numeric.decided_top1): the top-1 gate uses this; both
    # numbers are reported, and how many samples were ties.
    top1_agreement_decided: float = 1.0
    top1_ties: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def parity(out: np.ndarray, ref: np.ndarray) -> Parity:
    if out.shape != ref.shape:
        raise ValueError(f"output shape {out.shape} differs from reference {ref.shape}")
    out, ref = out.astype(np.float64), ref.astype(np.float64)
    diff = np.abs(out - ref)
    max_abs, max_rel = max_errors(out, ref)
    psnr = psnr_db(out, ref)
    agree = out.argmax(-1) == ref.argmax(-1)
    top1_decided, ties = decided_top1(out, ref)
    k = min(5, ref.shape[-1])
    top_out = np.argsort(-out, axis=-1)[:, :k]
    top_ref = np.argsort(-ref, axis=-1)[:, :k]
    overlap = np.mean([len(set(a) & set(b)) / k for a, b in zip(top_out, top_ref)])
    return Parity(
        samples=len(ref),
        max_abs_err=max_abs,
        max_rel_err=max_rel,
        mean_abs_err=float(diff.mean()),
        cosine=_cosine(out.ravel(), ref.ravel()),
        min_sample_cosine=min(_cosine(a, b) for a, b in zip(out, ref)),
        psnr_db=float(psnr),
        top1_agreement=float(np.mean(agree)),
        top5_overlap=float(overlap),
        top1_agreement_decided=top1_decided,
        top1_ties=ties,
    )


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return float(na == nb)
    return float(np.dot(a, b) / (na * nb))
