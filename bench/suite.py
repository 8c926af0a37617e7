"""The benchmark suite (`make bench`): latency, size and conversion time, as ratios measured in one run.

    .venv/bin/python bench/suite.py [ARCH ...] [--threads N] [--runs N]

For each model (make-checkpoint weights in the authors' layout, default fastvit_s12,
efficientformer_l1, efficientvit_m0):
  - PyTorch eager, unfused vs fused (the reparameterization claim on this CPU);
  - TFLite fp32 of effconvert's fused pipeline vs the raw toolchain's direct conversion of the
    unfused model (litert_torch.convert, NCHW, nothing else);
  - fp16 / int8 / int8-weights vs fp32, size and latency, per target;
  - ONNX Runtime vs TFLite vs ExecuTorch (XNNPACK, fp32 and int8) vs PyTorch; the MIL executor
    (a reference interpreter, not device speed) vs PyTorch eager;
  - effconvert's end-to-end wall time vs the time inside the raw converter calls it makes;
  - the hardware floor: FLOPs / measured sgemm rate, and each runtime's share of it.
Writes bench/results/latest.json and bench/results/latest.md (which the README includes).
Every artifact runs in its own child process for its peak memory; latencies are timed in this one,
every artifact and torch in turn, round by round (a busy machine weighs on each alike).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

MODELS = ("fastvit_s12", "efficientformer_l1", "efficientvit_m0")
RESULTS = Path(__file__).parent / "results"
ROUNDS = 8  # latency: every artifact timed in turn, --runs calls each spread over this many rounds
# (column, target, quant): the artifacts the pipeline writes and the suite times.
ARTIFACTS = (
    ("TFLite fp32", "tflite", "fp32"),
    ("TFLite fp16", "tflite", "fp16"),
    ("TFLite int8", "tflite", "int8"),
    ("TFLite int8-weights", "tflite", "int8-weights"),
    ("ORT fp32", "onnx", "fp32"),
    ("ORT fp16", "onnx", "fp16"),
    ("ExecuTorch fp32", "executorch", "fp32"),
    ("ExecuTorch int8", "executorch", "int8"),
    ("MIL fp32", "coreml", "fp32"),
    ("MIL fp16", "coreml", "fp16"),
    ("MIL int8-weights", "coreml", "int8-weights"),
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("archs", nargs="*", default=list(MODELS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()

    from effconvert.measure import sgemm_gflops

    gflops = sgemm_gflops(args.threads)
    print(f"sgemm: {gflops:.0f} GFLOP/s with {args.threads} threads", flush=True)
    models = [bench_model(arch, args.threads, args.runs, gflops) for arch in args.archs]
    result = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "threads": args.threads,
        "runs": args.runs,
        "sgemm_gflops": gflops,
        "models": models,
        "suite_seconds": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    markdown = render(result)
    args.out.write_text(markdown, encoding="utf-8")
    print(markdown)


def bench_model(arch: str, threads: int, runs: int, gflops: float) -> dict:
    from effconvert.fuse import fuse_model
    from effconvert.load import family_of_arch, load_checkpoint
    from effconvert.measure import bench_artifact, model_flops, runtime_call, time_alternately
    from effconvert.pipeline import Request, run
    from effconvert.synth.checkpoint import make_checkpoint
    from effconvert.validate import input_set

    family = family_of_arch(arch)
    layout = family.original.name
    row: dict = {"arch": arch, "layout": layout, "latency_ms": {}, "p90_ms": {}, "size_mb": {}, "added_rss_mb": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ckpt = tmp / f"{arch}.pth.tar"
        make_checkpoint(arch, ckpt, layout=layout, seed=0)

        # effconvert end to end, as a user runs it (load, fuse + proof, convert, validate, report;
        # its second process converting and checking beside it), in a fresh process: it pays the
        # converters' imports as a user's first run does. The raw converter calls are timed again
        # in a second fresh process making the same conversions one after another, with nothing
        # beside them (no second process, no validation): the denominator.
        report, row["e2e_s"] = _in_child(ckpt, tmp / "out", True)  # report.json as data
        entries = report["artifacts"]
        row["toolchain_same_run_s"] = round(sum(e["timings_s"]["toolchain"] for e in entries), 2)
        row["convert_s"] = round(sum(e["timings_s"]["convert"] for e in entries), 2)
        row["validate_s"] = round(sum(e["timings_s"].get("validate", 0) for e in entries), 2)
        alone, row["convert_only_s"] = _in_child(ckpt, tmp / "alone", False)
        row["toolchain_s"] = round(sum(e["timings_s"]["toolchain"] for e in alone["artifacts"]), 2)
        # fallback=False: the bench times the all-int8 graph, whatever its parity verdict.
        int8_runs = [
            run(Request(ckpt, ("tflite",), ("int8", "int8-weights"), tmp / "out", fallback=False)),
            run(Request(ckpt, ("executorch",), ("int8",), tmp / "out", fallback=False)),
            run(Request(ckpt, ("coreml",), ("int8-weights",), tmp / "out")),
        ]
        paths = {(e["target"], e["quant"]): tmp / "out" / e["path"] for e in entries if e.get("path")}
        paths.update({(a.target, a.quant): a.path for r in int8_runs for a in r.artifacts})
        row["passed"] = report["passed"] and all(r.report.to_json()["passed"] for r in int8_runs)
        row["parity"] = {
            f"{e['target']} {e['quant']}": _parity_cell(e)
            for e in entries + [e for r in int8_runs for e in r.report.to_json()["artifacts"]]
        }

        loaded = load_checkpoint(ckpt)
        unfused = loaded.model.eval()
        inputs = input_set(loaded.preprocessing, samples=8)
        x = torch.from_numpy(inputs.inputs[:1])
        fused = fuse_model(unfused, inputs=torch.from_numpy(inputs.inputs)).model.eval()
        row["gflops"] = model_flops(fused, x) / 1e9
        row["latency_ms"]["hardware floor"] = row["gflops"] / gflops * 1000

        raw_path = tmp / "raw_unfused.tflite"
        row["raw_tflite_convert_s"] = raw_tflite(unfused, x, raw_path)

        measured = [("TFLite raw unfused fp32", raw_path)] + [
            (col, paths[(t, q)]) for col, t, q in ARTIFACTS if (t, q) in paths
        ]
        from effconvert.errors import EffconvertError

        for column, path in measured:
            try:
                result = bench_artifact(path, threads=threads, runs=3)  # memory and size; latency below
            except EffconvertError as exc:  # a runtime that cannot run it: a finding, in the table
                row.setdefault("failed", {})[column] = exc.message
                print(f"  {arch} {column}: FAILED {exc.message}", flush=True)
                continue
            row["size_mb"][column] = result.size_bytes / 1e6
            row["added_rss_mb"][column] = result.added_rss_mb
        # Latency: torch and every artifact that ran, opened side by side in this process and timed
        # in turn, round by round, so that the ratios compare runs under the same machine load.
        timed = time_alternately(
            {
                "torch eager unfused": torch.no_grad()(lambda: unfused(x)),
                "torch eager fused": torch.no_grad()(lambda: fused(x)),
                **{
                    column: runtime_call(path, threads=threads) for column, path in measured if column in row["size_mb"]
                },
            },
            rounds=ROUNDS,
            runs=max(runs // ROUNDS, 1),
        )
        for column, timing in timed.items():
            row["latency_ms"][column] = timing.median_ms
            row["p90_ms"][column] = timing.p90_ms
            print(f"  {arch} {column}: {timing.median_ms:.1f} ms, {row['size_mb'].get(column, 0):.1f} MB", flush=True)
    print(f"{arch}: e2e {row['e2e_s']} s, inside the converters {row['toolchain_s']} s", flush=True)
    return row


def _in_child(ckpt: Path, out: Path, validate: bool) -> tuple[dict, float]:
    """Every target, fp32 + fp16, in a fresh process: (report, wall seconds of the pipeline run)."""
    import concurrent.futures
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(_timed_run, str(ckpt), str(out), validate).result()


def _timed_run(ckpt: str, out: str, validate: bool) -> tuple[dict, float]:
    from effconvert.pipeline import Request, run

    start = time.perf_counter()
    outcome = run(
        Request(Path(ckpt), ("all",), ("fp32", "fp16"), Path(out), validate=validate),
        second_process=None if validate else False,
    )
    return outcome.report.to_json(), round(time.perf_counter() - start, 2)


def raw_tflite(model: torch.nn.Module, sample: torch.Tensor, out: Path) -> float:
    """What a user without effconvert does: litert_torch.convert on the unfused model, NCHW."""
    from effconvert.quiet import quiet, quiet_native_stderr

    start = time.perf_counter()
    with quiet(), quiet_native_stderr():
        import litert_torch

        litert_torch.config.show_progress = False
        litert_torch.convert(model.eval(), (sample,)).export(str(out))
    return round(time.perf_counter() - start, 2)


def _parity_cell(entry: dict) -> str:
    p = entry.get("parity", {})
    if "max_rel_err" not in p:
        return "not validated"
    number = f"rel {p['max_rel_err']:.1e}" if entry["quant"] == "fp32" else f"{p['psnr_db']:.0f} dB"
    return ("pass " if p["passed"] else "FAIL ") + number


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [
            line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")
        ]
        cpu = names[0] if names else cpu
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "system": f"{platform.system()} {platform.machine()}",
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def render(result: dict) -> str:
    m = result["machine"]
    lines = [
        f"Benchmarks — {result['date'][:10]}, {m['cpu']} ({m['cores']} cores, {m['system']}), "
        f"{result['threads']} threads, batch 1, median of {result['runs']} runs after warm-up; "
        f"sgemm {result['sgemm_gflops']:.0f} GFLOP/s; make-checkpoint weights; suite "
        f"{result['suite_seconds'] / 60:.1f} min. Absolute times move on a shared machine; the ratios "
        "(last table) are measured in one run.",
        "",
    ]
    columns = ["torch eager unfused", "torch eager fused", "TFLite raw unfused fp32"] + [c for c, _, _ in ARTIFACTS]
    lines += [
        "Latency, ms (hardware floor = FLOPs / sgemm rate):",
        "",
        "| model | GFLOPs | floor | " + " | ".join(columns) + " |",
        "|---" * (len(columns) + 3) + "|",
    ]
    for r in result["models"]:
        lat = r["latency_ms"]
        lines.append(
            f"| {r['arch']} | {r['gflops']:.2f} | {lat['hardware floor']:.1f} | "
            + " | ".join(f"{lat[c]:.1f}" if c in lat else "—" for c in columns)
            + " |"
        )
    sized = ["TFLite raw unfused fp32"] + [c for c, _, _ in ARTIFACTS]
    lines += [
        "",
        "Size, MB / memory the runtime added while loading and running it, MB:",
        "",
        "| model | " + " | ".join(sized) + " |",
        "|---" * (len(sized) + 1) + "|",
    ]
    for r in result["models"]:
        lines.append(
            f"| {r['arch']} | "
            + " | ".join(
                f"{r['size_mb'][c]:.1f} / {r['added_rss_mb'][c]:.0f}" if c in r["size_mb"] else "—" for c in sized
            )
            + " |"
        )
    lines += [
        "",
        "Conversion, seconds (effconvert runs all targets, fp32 + fp16, with proof and validation, in a "
        "fresh process, its second process converting from the end of the list and checking beside it; the "
        "raw converter calls — including the converters' own imports — timed in a second fresh process "
        "making the same conversions one after another, nothing beside them, no validation). The end-to-end "
        "run's own sums add both processes' seconds, each slowed by the other:",
        "",
        "| model | effconvert end to end | inside raw converter calls | same, summed in the end-to-end run | "
        "convert incl. ours, summed | validate, summed (second process) | raw litert_torch.convert, unfused |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result["models"]:
        lines.append(
            f"| {r['arch']} | {r['e2e_s']:.1f} | {r['toolchain_s']:.1f} | "
            f"{r.get('toolchain_same_run_s', r['toolchain_s']):.1f} | {r['convert_s']:.1f} | "
            f"{r['validate_s']:.1f} | {r['raw_tflite_convert_s']:.1f} |"
        )
    lines += [
        "",
        "Parity of the timed artifacts (fp32: max rel err; others: PSNR):",
        "",
        "| model | " + " | ".join(result["models"][0]["parity"]) + " |",
        "|---" * (len(result["models"][0]["parity"]) + 1) + "|",
    ]
    for r in result["models"]:
        lines.append(f"| {r['arch']} | " + " | ".join(r["parity"].values()) + " |")
    failures = [(r["arch"], c, m) for r in result["models"] for c, m in r.get("failed", {}).items()]
    if failures:
        lines += ["", "Artifacts their runtime could not run (— in the tables above):", ""]
        lines += [f"- {arch} {column}: {message}" for arch, column, message in failures]
    ratios = ratio_rows(result["models"])
    lines += [
        "",
        "Ratios (latency unless marked; < 1 means the first is faster or smaller):",
        "",
        "| ratio | " + " | ".join(r["arch"] for r in result["models"]) + " |",
        "|---" * (len(result["models"]) + 1) + "|",
    ]
    for name, values in ratios:
        lines.append(f"| {name} | " + " | ".join("—" if v is None else f"{v:.2f}" for v in values) + " |")
    return "\n".join(lines) + "\n"


RATIOS = (
    ("torch eager fused / unfused", "latency_ms", "torch eager fused", "torch eager unfused"),
    ("TFLite fp32 effconvert / raw unfused conversion", "latency_ms", "TFLite fp32", "TFLite raw unfused fp32"),
    ("TFLite fp16 / fp32", "latency_ms", "TFLite fp16", "TFLite fp32"),
    ("TFLite int8 / fp32", "latency_ms", "TFLite int8", "TFLite fp32"),
    ("TFLite int8-weights / fp32", "latency_ms", "TFLite int8-weights", "TFLite fp32"),
    ("ORT fp16 / fp32", "latency_ms", "ORT fp16", "ORT fp32"),
    ("ExecuTorch int8 / fp32", "latency_ms", "ExecuTorch int8", "ExecuTorch fp32"),
    ("ExecuTorch fp32 / LiteRT fp32 (both XNNPACK)", "latency_ms", "ExecuTorch fp32", "TFLite fp32"),
    ("ExecuTorch int8 / LiteRT int8 (both XNNPACK)", "latency_ms", "ExecuTorch int8", "TFLite int8"),
    ("MIL fp16 / fp32", "latency_ms", "MIL fp16", "MIL fp32"),
    ("MIL int8-weights / fp32", "latency_ms", "MIL int8-weights", "MIL fp32"),
    ("size: TFLite fp16 / fp32", "size_mb", "TFLite fp16", "TFLite fp32"),
    ("size: TFLite int8 / fp32", "size_mb", "TFLite int8", "TFLite fp32"),
    ("size: TFLite int8-weights / fp32", "size_mb", "TFLite int8-weights", "TFLite fp32"),
    ("size: ExecuTorch int8 / fp32", "size_mb", "ExecuTorch int8", "ExecuTorch fp32"),
    ("size: Core ML fp16 / fp32", "size_mb", "MIL fp16", "MIL fp32"),
    ("size: Core ML int8-weights / fp32", "size_mb", "MIL int8-weights", "MIL fp32"),
    ("ORT fp32 / TFLite fp32", "latency_ms", "ORT fp32", "TFLite fp32"),
    ("TFLite fp32 / torch eager fused", "latency_ms", "TFLite fp32", "torch eager fused"),
    ("ORT fp32 / torch eager fused", "latency_ms", "ORT fp32", "torch eager fused"),
    ("MIL executor fp32 / torch eager fused", "latency_ms", "MIL fp32", "torch eager fused"),
    ("floor share: torch eager fused", "latency_ms", "hardware floor", "torch eager fused"),
    ("floor share: TFLite fp32", "latency_ms", "hardware floor", "TFLite fp32"),
    ("floor share: ORT fp32", "latency_ms", "hardware floor", "ORT fp32"),
    ("floor share: MIL fp32", "latency_ms", "hardware floor", "MIL fp32"),
)


def ratio_rows(models: list[dict]) -> list[tuple[str, list[float | None]]]:
    rows = []
    for name, table, top, bottom in RATIOS:
        values = [r[table][top] / r[table][bottom] if top in r[table] and bottom in r[table] else None for r in models]
        rows.append((name, values))
    rows.append(
        (
            "conversion: effconvert end to end / inside raw converter calls",
            [r["e2e_s"] / r["toolchain_s"] for r in models],
        )
    )
    rows.append(
        (
            "conversion: effconvert convert step, summed over both processes / inside raw converter calls",
            [r["convert_s"] / r["toolchain_s"] for r in models],
        )
    )
    return rows


if __name__ == "__main__":
    main()
