"""Calibrate the Snapdragon HTP cost model (effconvert/device/snapdragon_cost.py) on Qualcomm AI
Hub's published latencies (effconvert/device/data/published_snapdragon.csv) and measure its error
honestly: leave-one-model-out, with the model structure chosen inside each fold.

    .venv/bin/python bench/snapdragon_calibration.py [--work DIR] [--only MODEL ...] [--fit-only]

1. Features. Each calibration row's architecture is built from torchvision or timm (no weights:
   latency does not depend on their values) at its published input size, exported and compiled
   exactly as `--target qnn` compiles (convert/qnn.py: ONNX, QNN preprocessing, QDQ for w8a8 and
   w8a16, the QNN compiler for the row's SoC), and its features read from what the artifact records
   (the graph's work, the compiler's op mix). Cached per (model, precision) under --work: the
   compiler's op mix for SM8650 and SM8750 was identical on every one of the first 11 (model,
   precision) pairs compiled for both, so one compile serves both SoCs' rows.
2. Structure. For each (SoC, precision), every subset of the candidate features that at least
   three calibration models carry is scored by leave-one-model-out error; the subset whose worse
   figure is nearest its bar (median 15 %, 90th percentile 30 %) is shipped, fitted on all rows.
3. Honest error. The same choice is repeated inside each leave-one-model-out fold (nested), so the
   error reported — the table written to docs/results/snapdragon-latency.md — is that of the whole
   procedure on a model it never saw.

Writes effconvert/device/data/snapdragon_calibration.json and docs/results/snapdragon-latency.md.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import itertools
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "effconvert" / "device" / "data" / "published_snapdragon.csv"
OUT_JSON = ROOT / "effconvert" / "device" / "data" / "snapdragon_calibration.json"
OUT_DOC = ROOT / "docs" / "results" / "snapdragon-latency.md"

# AI Hub's model id -> (library, architecture). Their ids name torchvision's or timm's models; the
# parameter counts printed beside the published ones check each choice.
ARCHITECTURES = {
    "beit": ("timm", "beit_base_patch16_224"),
    "convnext_base": ("torchvision", "convnext_base"),
    "convnext_tiny": ("torchvision", "convnext_tiny"),
    "convnext_v2_base": ("timm", "convnextv2_base"),
    "densenet121": ("torchvision", "densenet121"),
    "dla102x": ("timm", "dla102x"),
    "efficientnet_b0": ("torchvision", "efficientnet_b0"),
    "efficientnet_b4": ("torchvision", "efficientnet_b4"),
    "efficientnet_lite4": ("timm", "tf_efficientnet_lite4"),
    "efficientnet_v2_s": ("torchvision", "efficientnet_v2_s"),
    "efficientvit_l2_cls": ("timm", "efficientvit_l2"),
    "googlenet": ("torchvision", "googlenet"),
    "inception_v3": ("torchvision", "inception_v3"),
    "inception_v4": ("timm", "inception_v4"),
    "mnasnet05": ("torchvision", "mnasnet0_5"),
    "mobilenet_v2": ("torchvision", "mobilenet_v2"),
    "mobilenet_v3_large": ("torchvision", "mobilenet_v3_large"),
    "mobilenet_v3_small": ("torchvision", "mobilenet_v3_small"),
    "mobilenet_v4": ("timm", "mobilenetv4_conv_medium"),
    "nasnet": ("timm", "nasnetalarge"),
    "regnet": ("torchvision", "regnet_x_3_2gf"),
    "regnet_y_800mf": ("torchvision", "regnet_y_800mf"),
    "resnet101": ("torchvision", "resnet101"),
    "resnet18": ("torchvision", "resnet18"),
    "resnet50": ("torchvision", "resnet50"),
    "resnext101": ("torchvision", "resnext101_32x8d"),
    "resnext50": ("torchvision", "resnext50_32x4d"),
    "sequencer2d": ("timm", "sequencer2d_s"),
    "shufflenet_v2": ("torchvision", "shufflenet_v2_x0_5"),
    "squeezenet1_1": ("torchvision", "squeezenet1_1"),
    "swin_base": ("torchvision", "swin_b"),
    "swin_small": ("torchvision", "swin_s"),
    "swin_tiny": ("torchvision", "swin_t"),
    "vit": ("torchvision", "vit_b_16"),
    "wideresnet50": ("torchvision", "wide_resnet50_2"),
}
# Precisions of the published rows we calibrate (their *_mixed_int16 variants are a handful of rows).
PRECISIONS = {"float": "fp16", "w8a8": "int8", "w8a16": "w8a16"}
CALIBRATION_IMAGES = 4  # the QDQ ranges do not change the compiled program's cost


def published_rows() -> list[dict[str, str]]:
    lines = [line for line in PUBLISHED.open(encoding="utf-8") if not line.startswith("#")]
    return [r for r in csv.DictReader(lines) if r["precision"] in PRECISIONS]


def build(model_id: str):
    import torch

    library, name = ARCHITECTURES[model_id]
    torch.manual_seed(0)
    if library == "timm":
        import timm

        return timm.create_model(name, pretrained=False).eval()
    import torchvision

    extra = {"aux_logits": False, "init_weights": False} if name in ("inception_v3", "googlenet") else {}
    return torchvision.models.get_model(name, weights=None, **extra).eval()


def _export(model, sample, out: Path, exporter: str) -> None:
    """effconvert's exporter, as --target qnn exports; torch.onnx's TorchScript one where torch.export
    or the QNN compiler fails on that graph (BEiT: torch.export; ConvNeXt: a QNN EP crash)."""
    import torch

    from effconvert.convert.onnx import export_onnx

    if exporter == "effconvert":
        export_onnx(model, sample, out, quant="fp32", metadata={})
    else:
        torch.onnx.export(
            model, (sample,), str(out), dynamo=False, opset_version=18, input_names=["input"], output_names=["logits"]
        )


def cached(row: dict[str, str], work: Path) -> dict | None:
    """The cached compile of the row's (model, precision): for its SoC if there is one, else the other's."""
    own = work / f"{row['model']}_{row['soc']}_{row['precision']}.json"
    for path in (own, *sorted(work.glob(f"{row['model']}_SM*_{row['precision']}.json"))):
        if path.exists() and path.name.split("_SM")[0] == row["model"]:
            return json.loads(path.read_text())
    return None


def features_for(row: dict[str, str], work: Path) -> dict | None:
    """The row's (model, precision) compiled as --target qnn compiles it for the row's SoC, or the
    cached compile of the same (model, precision) for the other SoC (the op mix is the same)."""
    cache = work / f"{row['model']}_{row['soc']}_{row['precision']}.json"
    found = cached(row, work)
    if found is not None:
        return found
    if row["model"] not in ARCHITECTURES:
        return None
    import numpy as np
    import torch

    from effconvert.convert.onnx_graph import graph_stats
    from effconvert.convert.qnn import _preprocess, compile_context
    from effconvert.errors import ConversionFailed
    from effconvert.quantize import Calibration, QuantPlan
    from effconvert.quantize.qnn import quantize_qdq

    size = int(row["input"].split("x")[-1])
    quant = PRECISIONS[row["precision"]]
    model = build(row["model"])
    params = sum(p.numel() for p in model.parameters())
    sample = torch.randn(1, 3, size, size)
    started = time.perf_counter()
    failures: list[str] = []
    for exporter in ("effconvert", "torchscript"):
        with tempfile.TemporaryDirectory(prefix="effconvert-calib-") as tmp:
            folder = Path(tmp)
            try:
                _export(model, sample, folder / "exported.onnx", exporter)
                _preprocess(folder / "exported.onnx", folder / "float.onnx")
                source = folder / "float.onnx"
                if quant != "fp16":
                    images = np.random.default_rng(0).standard_normal((CALIBRATION_IMAGES, 3, size, size))
                    pixels = np.zeros((CALIBRATION_IMAGES, size, size, 3), dtype=np.uint8)
                    calibration = Calibration(images.astype(np.float32), pixels, "random", builtin=True)
                    quantize_qdq(source, folder / "qdq.onnx", QuantPlan(quant, calibration=calibration))
                    source = folder / "qdq.onnx"
                trace = compile_context(
                    source, folder / "ctx.onnx", row["soc"], fp16=quant == "fp16", trace_dir=folder / "trace"
                )
                graph = graph_stats(folder / "float.onnx", quant)
            except (ConversionFailed, ValueError, RuntimeError) as exc:
                failures.append(f"{exporter}: {str(exc)[:160]}")
                continue
        break
    else:
        raise RuntimeError("; ".join(failures))
    found = {
        "graph": graph,
        "trace": trace,
        "params": params,
        "seconds": round(time.perf_counter() - started, 1),
        "exported_with": exporter,
        "failed_first": failures,
    }
    cache.write_text(json.dumps(found))
    return found


def _fit_and_predict(train: list[tuple[dict, float]], x: dict, features: tuple[str, ...]) -> float:
    from effconvert.device.snapdragon_cost import fit

    weights = fit(train, features)
    return sum(w * x[f] for f, w in zip(features, weights, strict=True))


def _loo_errors(rows: list[tuple[str, dict, float]], features: tuple[str, ...]) -> list[float]:
    errors = []
    for i, (_, x, ms) in enumerate(rows):
        train = [(xx, mm) for j, (_, xx, mm) in enumerate(rows) if j != i]
        errors.append(_fit_and_predict(train, x, features) / ms - 1)
    return errors


def _score(errors: list[float]) -> tuple[float, float]:
    absolute = sorted(abs(e) for e in errors)
    return statistics.median(absolute), _p90(absolute)


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


CANDIDATES = (
    *("gmacs", "melementwise", "activation_mb", "weight_mb", "hops", "transposes", "cpu_nodes"),
    *("matmuls", "layernorms", "softmaxes", "reshapes", "convs"),
)
# The bar: median |error| <= 15 %, 90th percentile <= 30 %. A subset is scored by how far
# its worse figure is from its bar, so a low median cannot hide a long tail.
BAR = (0.15, 0.30)


# A feature enters the choice only where at least this many calibration models carry it (at least a
# tenth of its largest value): a weight fitted on one or two models is their residual, not a cost.
# Without it the int8 fit priced ShuffleNet's channel shuffles by ViT's transposes alone: +613 %.
CARRIED_BY = 3


def _carried(rows: list[tuple[str, dict, float]]) -> tuple[str, ...]:
    def carriers(f: str) -> int:
        top = max(x[f] for _, x, _ in rows)
        return sum(x[f] >= 0.1 * top for _, x, _ in rows) if top > 0 else 0

    return tuple(f for f in CANDIDATES if carriers(f) >= CARRIED_BY)


def _subsets(candidates: tuple[str, ...]) -> list[tuple[str, ...]]:
    found = []
    for k in range(1, 5):
        for combo in itertools.combinations(candidates, k):
            found.append(("fixed", *combo))
            found.append(combo)
    return found


def choose(rows: list[tuple[str, dict, float]]) -> tuple[tuple[str, ...], tuple[float, float]]:
    """The feature subset whose leave-one-model-out (median, p90) |error| on `rows` is nearest BAR,
    among the features enough of `rows` carry."""
    scored = [(_score(_loo_errors(rows, s)), s) for s in _subsets(_carried(rows))]
    (median, p90), best = min(scored, key=lambda t: (_against_bar(*t[0]), len(t[1])))
    return best, (median, p90)


def _against_bar(median: float, p90: float) -> float:
    return max(median / BAR[0], p90 / BAR[1])


def main() -> None:
    from effconvert.device.snapdragon_cost import features_of, fit, key

    parser = argparse.ArgumentParser()
    parser.add_argument("--work", type=Path, default=Path.home() / ".cache" / "effconvert" / "snapdragon")
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--fit-only", action="store_true", help="use the cached features only")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    groups: dict[str, list[tuple[str, dict, float]]] = {}
    skipped = []
    for row in published_rows():
        if args.only and row["model"] not in args.only:
            continue
        try:
            found = cached(row, args.work) if args.fit_only else features_for(row, args.work)
        except Exception as exc:  # noqa: BLE001 - a row we cannot build is named, the fit goes on
            skipped.append(f"{row['model']} {row['soc']} {row['precision']}: {type(exc).__name__}: {exc}"[:240])
            print("skipped", skipped[-1], flush=True)
            continue
        if found is None:
            why = (
                "not compiled yet (--fit-only)" if row["model"] in ARCHITECTURES else "no torchvision/timm architecture"
            )
            skipped.append(f"{row['model']} {row['soc']} {row['precision']}: {why}")
            continue
        x = features_of(found["graph"], found["trace"])
        groups.setdefault(key(row["soc"], PRECISIONS[row["precision"]]), []).append(
            (row["model"], x, float(row["latency_ms"]))
        )
        print(
            row["model"],
            row["soc"],
            row["precision"],
            f"{found['params'] / 1e6:.2f}M params (published "
            f"{row['params']}), {sum(found['trace']['qnn_ops'].values())} HTP ops (published layers "
            f"{row['layers_npu']}), {found['seconds']} s",
            flush=True,
        )
    fits, table = {}, []
    for group, rows in sorted(groups.items()):
        if len(rows) < 6:
            continue
        features, _ = choose(rows)
        weights = fit([(x, ms) for _, x, ms in rows], features)
        nested = []  # the whole procedure (choice + fit) on each model it did not see
        for i, (model, x, ms) in enumerate(rows):
            rest = rows[:i] + rows[i + 1 :]
            chosen, _ = choose(rest)
            predicted = _fit_and_predict([(xx, mm) for _, xx, mm in rest], x, chosen)
            nested.append(
                {
                    "model": model,
                    "published_ms": ms,
                    "estimate_ms": round(predicted, 3),
                    "error": round(predicted / ms - 1, 4),
                    "features": list(chosen),
                }
            )
        median, p90 = _score([r["error"] for r in nested])
        fits[group] = {
            "features": list(features),
            "weights": list(weights),
            "band": round(p90, 4),
            # Where the calibration models lie: an estimate outside says it extrapolates.
            "ranges": {f: [min(x[f] for _, x, _ in rows), max(x[f] for _, x, _ in rows)] for f in features},
            "loo": {"median_abs_error": round(median, 4), "p90_abs_error": round(p90, 4), "rows": nested},
        }
        table.append((group, len(rows), median, p90, features))
        print(group, f"median {median:.1%}, p90 {p90:.1%}", features, flush=True)
    OUT_JSON.write_text(
        json.dumps(
            {"source": PUBLISHED.name, "date": str(datetime.date.today()), "fits": fits, "skipped": skipped}, indent=1
        )
        + "\n",
        encoding="utf-8",
    )
    _write_doc(table, fits, skipped)


def _write_doc(table: list, fits: dict, skipped: list[str]) -> None:
    lines = [
        "# Snapdragon latency estimate: measured error",
        "",
        f"Generated by `bench/snapdragon_calibration.py` on {datetime.date.today()} from "
        "`effconvert/device/data/published_snapdragon.csv` (Qualcomm AI Hub, ONNX Runtime + QNN on the Galaxy "
        "S24 / S25). Each published model was compiled as `--target qnn` compiles; the error is "
        "leave-one-model-out with the feature choice repeated inside each fold (nested), so it is the error on a "
        "model the cost model never saw.",
        "",
        "| SoC precision | models | median abs error | 90th percentile | features shipped |",
        "|---|---|---|---|---|",
    ]
    for group, n, median, p90, features in table:
        lines.append(f"| {group} | {n} | {median:.1%} | {p90:.1%} | {', '.join(features)} |")
    lines += ["", "Per model (estimate on the model left out vs the published latency):", ""]
    for group, data in fits.items():
        lines += [f"## {group}", "", "| model | published ms | estimate ms | error |", "|---|---|---|---|"]
        for r in data["loo"]["rows"]:
            lines.append(f"| {r['model']} | {r['published_ms']:.3f} | {r['estimate_ms']:.3f} | {r['error']:+.1%} |")
        lines.append("")
    if skipped:
        lines += ["Rows left out:", ""] + [f"- {s}" for s in skipped] + [""]
    OUT_DOC.write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
