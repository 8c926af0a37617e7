"""Command line: parse options, call the pipeline, hand rendering to report/console.py.

    effconvert CHECKPOINT [--target ...] [--quant ...] [options]   (the `convert` command)
    effconvert demo | inspect PATH | make-checkpoint ARCH -o FILE | bench ARTIFACT...
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import replace
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .errors import BadInput, EffconvertError
from .report.console import render_console
from .targets import CHECKPOINT_LAYOUTS, INPUT_KINDS, IOS_TARGETS, QUANTS, TARGETS, TFLITE_LAYOUTS

# Help text from the tables the options are checked against, so help and checks cannot disagree.
_TARGET_HELP = " | ".join(TARGETS) + " | all (every target that supports the quant); repeat or comma-separate"
_QUANT_HELP = "; ".join(f"{q} ({', '.join(t.name for t in TARGETS.values() if q in t.quants)})" for q in QUANTS) \
    + "; repeat or comma-separate"
_SUFFIXES = ", ".join(t.suffix for t in TARGETS.values())

app = typer.Typer(add_completion=True, no_args_is_help=True, pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]},
                  help="Efficient vision transformer checkpoint -> phone-ready artifact + parity report.")
err = Console(stderr=True, highlight=False)
out = Console(highlight=False)
INTERNAL_ERROR_EXIT = 4
INTERRUPT_EXITS = {signal.SIGINT: 130, signal.SIGTERM: 143}    # 128 + the signal, as shells report it
SUBCOMMANDS = ("convert", "demo", "batch", "inspect", "make-checkpoint", "app", "bench", "device")


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every `finally` (temporary folders, locks) runs."""


def _on_sigterm(signum, frame) -> None:
    raise Terminated()


@contextlib.contextmanager
def _guarded(debug: bool, finished: list[str] | None = None,
             left: str = "no report written, no partial artifact left; rerun to complete"):
    """Every error becomes one line and an exit code; an interrupt says what finished."""
    try:
        yield
    except typer.Exit:
        raise
    except KeyboardInterrupt as exc:
        signum = signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT
        done = f"finished: {', '.join(finished)}" if finished else "nothing finished"
        err.print(f"[bold red]interrupted[/] ({signal.Signals(signum).name}): {done}; {left}", soft_wrap=True)
        raise typer.Exit(code=INTERRUPT_EXITS[signum]) from None
    except Exception as exc:  # noqa: BLE001 - every error becomes one line + an exit code
        _fail(exc, debug)


def _fail(exc: BaseException, debug: bool) -> None:
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    if isinstance(exc, EffconvertError):
        err.print(f"[bold red]error:[/] {exc.message}", soft_wrap=True)
        if exc.hint:
            err.print(f"[dim]hint:[/] {exc.hint}", soft_wrap=True)
        raise typer.Exit(code=exc.exit_code) from None
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    err.print(f"[bold red]internal error:[/] {type(exc).__name__}: {first[:300]}", soft_wrap=True)
    err.print("[dim]hint:[/] this is a bug in effconvert; rerun with --debug for the traceback",
              soft_wrap=True)
    raise typer.Exit(code=INTERNAL_ERROR_EXIT) from None


@app.command("convert")
def convert_cmd(
    checkpoint: Path = typer.Argument(..., help="Checkpoint: .pth, .pth.tar, .pt or .safetensors file, a Hugging "
                                                "Face / timm snapshot folder, or hf-hub:ORG/NAME (local cache)"),
    target: List[str] = typer.Option(["coreml"], "--target", "-t", help=_TARGET_HELP),
    quant: List[str] = typer.Option(["fp32"], "--quant", "-q", help=_QUANT_HELP),
    arch: Optional[str] = typer.Option(None, help="Architecture override, e.g. fastvit_s12"),
    image_size: Optional[int] = typer.Option(None, help="Input resolution (default: the model's)"),
    out_dir: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder"),
    samples: int = typer.Option(32, help="Validation inputs"),
    val: Optional[Path] = typer.Option(None, help="Folder of validation images (class sub-folders: accuracy)"),
    calib: Optional[Path] = typer.Option(None, help="int8: folder of calibration images (default: built-in set)"),
    calib_samples: int = typer.Option(64, help="int8: calibration images to use"),
    int8_io: bool = typer.Option(False, "--int8-io", help="TFLite int8: integer input/output tensors"),
    palettize: Optional[int] = typer.Option(None, help="Core ML: also write N-bit palettized weights (4 | 6)"),
    no_fallback: bool = typer.Option(False, "--no-fallback",
                                     help="int8: keep every layer int8 even if the gate fails"),
    gate: Optional[str] = typer.Option(None, help="Override gates, e.g. psnr=40,top1=0.995"),
    labels: Optional[Path] = typer.Option(None, help="Labels file, one per line"),
    no_fuse: bool = typer.Option(False, "--no-fuse", help="Convert the unfused model"),
    no_validate: bool = typer.Option(False, "--no-validate", help="Skip runtime parity"),
    dynamic_batch: bool = typer.Option(False, "--dynamic-batch", help="ONNX: dynamic batch axis"),
    layout: str = typer.Option("nhwc", help="TFLite input layout: " + " | ".join(TFLITE_LAYOUTS)),
    ios: int = typer.Option(16, help="Core ML minimum iOS: " + " | ".join(map(str, IOS_TARGETS))),
    input_kind: str = typer.Option("image", "--input", help="Core ML input: " + " | ".join(INPUT_KINDS)),
    mean: Optional[str] = typer.Option(None, help="Preprocessing mean per RGB channel, e.g. 0.5,0.5,0.5 "
                                                  "(default: the checkpoint's config.json, else timm's)"),
    std: Optional[str] = typer.Option(None, help="Preprocessing std per RGB channel, e.g. 0.5,0.5,0.5"),
    crop_pct: Optional[float] = typer.Option(None, help="Eval crop fraction (resize to size/crop_pct, centre-crop)"),
    app_platforms: List[str] = typer.Option([], "--app", help="Also write a sample app: ios | android (repeatable)"),
    as_json: bool = typer.Option(False, "--json", help="Print report.json to stdout"),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks"),
) -> None:
    """Convert CHECKPOINT, validate every artifact on its runtime, write report.json."""
    from .pipeline import Request, run

    request = Request(checkpoint, targets=tuple(target), quants=tuple(quant), out_dir=out_dir, arch=arch,
                      image_size=image_size, samples=samples, val_dir=val, gate=gate, fuse=not no_fuse,
                      validate=not no_validate, labels_file=labels, dynamic_batch=dynamic_batch, layout=layout,
                      ios=ios, input_kind=input_kind, calib_dir=calib, calib_samples=calib_samples,
                      int8_io=int8_io, palettize=palettize, fallback=not no_fallback)
    finished: list[str] = []
    with _guarded(debug, finished):
        request = replace(request, mean=_three("--mean", mean), std=_three("--std", std), crop_pct=crop_pct)
        _check_apps(app_platforms, request)
        with _Progress(finished) as progress:
            outcome = run(request, on_step=progress.done, on_start=progress.start)
        _write_apps(app_platforms, outcome)
    render_console(err, outcome.report, outcome.report_path)
    if as_json:
        out.print_json(json.dumps(outcome.report, allow_nan=True))
    raise typer.Exit(code=outcome.exit_code)


def _three(flag: str, text: str | None) -> tuple[float, float, float] | None:
    """'0.485,0.456,0.406' -> three floats; anything else is refused naming the flag."""
    if text is None:
        return None
    try:
        values = tuple(float(part) for part in text.replace(" ", ",").split(",") if part)
    except ValueError:
        values = ()
    if len(values) != 3:
        raise BadInput(f"{flag} {text!r} needs 3 comma-separated numbers, one per RGB channel",
                       hint=f"e.g. {flag} 0.5,0.5,0.5")
    return values


def _check_apps(platforms: List[str], request) -> None:
    """--app needs its artifact among the targets: refused before anything is converted."""
    from .apps import PLATFORMS
    from .targets import TARGETS, split_list

    targets = split_list(request.targets)
    names = list(TARGETS) if "all" in targets else targets
    for platform in platforms:
        spec = PLATFORMS.get(platform)
        if spec is None:
            raise BadInput(f"unknown app platform {platform!r}", hint=f"choose from: {', '.join(PLATFORMS)}")
        if not set(spec.targets) & set(names):
            takes = " or ".join(m.suffix for m in spec.models)
            raise BadInput(f"--app {platform} needs a {takes} artifact, and no --target "
                           f"{' or '.join(spec.targets)} was asked for", hint=f"add --target {spec.target}")


OPEN_PROJECT = {"ios": "open {path}/EffconvertClassifier.xcodeproj in Xcode, pick your team, run on an iPhone",
                "android": "open the folder {path} in Android Studio and run it on a device"}


def _write_apps(platforms: List[str], outcome) -> None:
    from .apps import PLATFORMS, embed_app

    for platform in dict.fromkeys(platforms):
        spec = PLATFORMS[platform]
        by_model = [[a for a in outcome.artifacts if a.path.name.endswith(m.suffix)] for m in spec.models]
        candidates = next((found for found in by_model if found), [])   # the platform's default runtime first
        if not candidates:
            raise BadInput(f"--app {platform} needs a {spec.suffix} artifact; add the matching --target")
        project = embed_app(platform, candidates[-1].path, outcome.out_dir / f"{platform}-app")
        err.print(f"[green]✓[/] app       {platform}: {project.path} (model {candidates[-1].path.name}); "
                  + OPEN_PROJECT[platform].format(path=project.path))


class _Progress:
    """The step running now with its elapsed time (a live line on a terminal), and one line per
    finished step: a green ✓, or a red ✗ when the step reports a failure."""

    def __init__(self, finished: list[str]) -> None:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.finished = finished
        self.bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                            console=err, transient=True)
        self.task = None
        self.clock = time.perf_counter()

    def __enter__(self) -> "_Progress":
        self.bar.__enter__()
        self.task = self.bar.add_task("starting", total=None)
        return self

    def __exit__(self, *exc) -> None:
        self.bar.__exit__(*exc)

    def start(self, what: str) -> None:
        self.bar.reset(self.task, description=what)
        self.clock = time.perf_counter()

    def done(self, step: str, message: str) -> None:
        failed = "FAILED" in message
        mark = "[red]✗[/]" if failed else "[green]✓[/]"
        seconds = time.perf_counter() - self.clock
        if step == "convert" and not failed:     # recorded before it is shown: a signal may come between
            self.finished.append(message.split(" ")[0])          # the pipeline names the artifact first
        self.bar.console.print(f"{mark} {step:<9} {escape(message)} [dim]({seconds:.1f} s)[/]", soft_wrap=True)


@app.command("demo")
def demo_cmd(
    out_dir: Path = typer.Option(Path("effconvert-out/demo"), "--out", "-o", help="Output folder"),
    debug: bool = typer.Option(False, "--debug"),
) -> None:
    """Built-in default: a make-checkpoint FastViT-S12 in Apple's released layout, converted to
    Core ML, TFLite and ONNX in fp32 and fp16, each validated on its runtime."""
    from .synth.checkpoint import make_checkpoint
    from .pipeline import Request, run
    from .workspace import check_output_dir

    finished: list[str] = []
    with _guarded(debug, finished):
        check_output_dir(out_dir)
        ckpt = out_dir / "fastvit_s12.pth.tar"
        err.print(f"writing a synthetic FastViT-S12 checkpoint (Apple layout): {ckpt}")
        make_checkpoint("fastvit_s12", ckpt, layout="apple", seed=0)
        with _Progress(finished) as progress:
            outcome = run(Request(ckpt, ("all",), ("fp32", "fp16"), out_dir),
                          on_step=progress.done, on_start=progress.start)
    render_console(err, outcome.report, outcome.report_path)
    for artifact in outcome.artifacts:
        err.print(f"artifact: {artifact.path}")
    raise typer.Exit(code=outcome.exit_code)


@app.command("batch")
def batch_cmd(
    plan: Path = typer.Argument(..., help="Plan (TOML): checkpoints (paths, globs or make = variants) x targets x "
                                          "quants, with per-entry options; see docs/guides/batch.md"),
    out_dir: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (default: the plan's out, "
                                                                    "else effconvert-batch/<plan name>)"),
    workers: Optional[int] = typer.Option(None, help="Jobs at once on this machine (default: cores / --threads)"),
    threads: int = typer.Option(1, help="CPU threads per job"),
    ray: Optional[str] = typer.Option(None, "--ray", help="Run the jobs as Ray tasks: a cluster ADDRESS, auto (the "
                                                          "cluster `ray start` runs here) or local (start one); "
                                                          "--out must be a path every node sees"),
    resume: bool = typer.Option(False, "--resume", help="Skip jobs whose report was made from the same checkpoint "
                                                        "bytes, effconvert version and options"),
    debug: bool = typer.Option(False, "--debug"),
) -> None:
    """Convert many checkpoints (a model zoo): one ordinary job per checkpoint, on local worker
    processes or a Ray cluster; writes batch.json, index.html and matrix.md beside the job folders.
    Exit 0 all passed, 1 some gate failed, 3 some job failed."""
    from .batch import run_batch

    finished: list[str] = []
    left = "batch.json and index.html record them, no partial artifact left; rerun with --resume to complete"
    with _guarded(debug, finished, left), _BatchProgress(finished) as progress:
        outcome = run_batch(plan, out_dir=out_dir, workers=workers, threads=threads, ray=ray, resume=resume,
                            on_result=progress.done, on_plan=progress.planned)
    counts = ", ".join(f"{n} {status}" for status, n in sorted(outcome.record["counts"].items()))
    err.print(f"batch: {len(outcome.results)} jobs ({counts}) in {outcome.record['wall_s']:.0f} s; "
              f"index: {outcome.index_path} (batch.json, matrix.md beside it)", soft_wrap=True)
    raise typer.Exit(code=outcome.exit_code)


class _BatchProgress:
    """One line per finished job above an overall bar: jobs done / total, elapsed, ETA."""

    _MARKS = {"passed": "[green]✓[/]", "gate-failed": "[red]✗[/]"}

    def __init__(self, finished: list[str]) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
            TimeRemainingColumn

        self.finished = finished
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            TextColumn("ETA"), TimeRemainingColumn(), console=err, transient=True)
        self.task = None

    def __enter__(self) -> "_BatchProgress":
        self.bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.bar.__exit__(*exc)

    def planned(self, plan, todo: int) -> None:
        resumed = len(plan.jobs) - todo
        err.print(f"{plan.path.name}: {len(plan.jobs)} jobs" + (f", {resumed} done earlier (--resume)" if resumed else "")
                  + f" -> {plan.out_dir}", soft_wrap=True)
        self.task = self.bar.add_task("jobs", total=len(plan.jobs), completed=0)

    def done(self, result, done: int, total: int) -> None:
        mark = self._MARKS.get(result.status, "[bold red]✗[/]")
        cells = [a for a in (result.report or {}).get("artifacts", [])]
        passed = sum(1 for a in cells if a.get("parity", {}).get("passed") and not a.get("error"))
        what = f"{passed}/{len(cells)} artifacts passed" if cells else escape(result.error or "")
        when = "earlier run (--resume)" if result.resumed else f"{result.seconds:.0f} s"
        self.bar.console.print(f"{mark} {escape(result.name):<24} {result.status:<17} {what} [dim]({when})[/]",
                               soft_wrap=True)
        self.finished.append(result.name)
        self.bar.update(self.task, completed=done)


@app.command("app")
def app_cmd(
    platform: str = typer.Argument(..., help="ios | android"),
    artifact: Path = typer.Option(..., "--artifact", "-a", help=".mlpackage (ios); .tflite or .pte (android)"),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Folder for the app project"),
    debug: bool = typer.Option(False, "--debug"),
) -> None:
    """Write a sample app project with ARTIFACT and its manifest embedded."""
    from .apps import embed_app

    with _guarded(debug):
        project = embed_app(platform, artifact, out_dir)
    m = project.manifest
    err.print(f"wrote {project.path}: {m['arch']} {m['quant']}, input {m['input_name']} {m['input_shape']} "
              f"({m['input_layout']}), {len(m['labels'])} labels")
    err.print(f"next: {OPEN_PROJECT[platform].format(path=project.path)}")


@app.command("make-checkpoint")
def make_checkpoint_cmd(
    arch: str = typer.Argument(..., help="timm name, e.g. fastvit_s12"),
    output: Path = typer.Option(..., "--output", "--out", "-o", help="File to write (.pth, .pth.tar, .safetensors)"),
    layout: str = typer.Option("timm", help=" | ".join(CHECKPOINT_LAYOUTS) + " (each family writes its own)"),
    seed: int = typer.Option(0, help="Seed; the same seed writes the same weights"),
    debug: bool = typer.Option(False, "--debug"),
) -> None:
    """Write a deterministic checkpoint whose numbers behave like a trained model's (not trained)."""
    from .synth.checkpoint import make_checkpoint

    with _guarded(debug):
        made = make_checkpoint(arch, output, layout=layout, seed=seed)
    err.print(f"wrote {made.path} ({made.arch}, {made.layout} layout, seed {made.seed}): "
              f"logit std {made.stats.logit_std:.2f}, {made.stats.distinct_top1} distinct top-1 classes "
              f"over {made.stats.images} images — synthetic, not a trained model")


@app.command("inspect")
def inspect_cmd(
    path: Path = typer.Argument(..., help=f"A checkpoint or an artifact ({_SUFFIXES})"),
    debug: bool = typer.Option(False, "--debug"),
) -> None:
    """What a checkpoint or artifact holds."""
    from .inspect import inspect_path

    with _guarded(debug):
        rows = inspect_path(path)
    table = Table(show_header=False, title=str(path), title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        table.add_row(escape(key), escape(value))
    out.print(table)


@app.command("bench")
def bench_cmd(
    artifacts: List[Path] = typer.Argument(..., help=f"Artifacts ({_SUFFIXES}), each run on its runtime"),
    threads: int = typer.Option(2, help="Runtime threads"),
    runs: int = typer.Option(20, help="Timed runs per artifact (after 3 warm-up runs)"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table"),
    debug: bool = typer.Option(False, "--debug"),
) -> None:
    """Latency (median, p90), peak memory and size of artifacts, each on its runtime."""
    import dataclasses

    from .measure import bench_artifact, check_bench_options, mil_fixed_cost

    finished: list[str] = []
    with _guarded(debug, finished):
        check_bench_options(artifacts, threads=threads, runs=runs)
        results = []
        for path in artifacts:
            results.append(bench_artifact(path, threads=threads, runs=runs))
            finished.append(path.name)
        if any(not r.device_speed for r in results):          # the MIL executor: its fixed cost apart
            fixed = mil_fixed_cost(threads=threads)
            results = [r if r.device_speed else dataclasses.replace(
                r, fixed_rss_mb=fixed.added_rss_mb, fixed_library_rss_mb=fixed.library_rss_mb) for r in results]
    if as_json:
        out.print_json(json.dumps([r.as_dict() for r in results]))
        return
    fastest = min(r.timing.median_ms for r in results)
    table = Table(title=f"batch 1, {threads} threads, median and p90 of {runs} runs", title_justify="left")
    for name in ("artifact", "runtime", "size MB", "median ms", "p90 ms", "peak RSS MB", "added MB", "vs fastest"):
        table.add_column(name, justify="left" if name in ("artifact", "runtime") else "right")
    for r in results:
        table.add_row(escape(Path(r.path).name), r.runtime + ("" if r.device_speed else " *"), f"{r.size_bytes / 1e6:.1f}",
                      f"{r.timing.median_ms:.2f}", f"{r.timing.p90_ms:.2f}", f"{r.peak_rss_mb:.0f}",
                      f"{r.added_rss_mb:.0f}", f"{r.timing.median_ms / fastest:.2f}x")
    out.print(table)
    if not all(r.device_speed for r in results):
        out.print("* coreml-mil-executor: effconvert's reference interpreter of the Core ML program (Linux has no "
                  "Core ML); its time is not device speed — use Xcode's performance report on a phone")
        mil = [r for r in results if not r.device_speed]
        out.print(f"  its fixed memory (importing torch and coremltools, the executor; measured on a one-conv "
                  f"package): {mil[0].fixed_rss_mb:.0f} MiB. Beyond it, per package (its program, weights and "
                  f"activations; not the input batch): " + "; ".join(
                      f"{escape(Path(r.path).name)} {r.package_rss_mb:.1f} MiB "
                      f"({r.package_rss_ratio:.2f}x its size)" for r in mil)
                  + ". Apart, torch's kernel code its ops page in beyond the one conv's (shared library "
                    "pages, the same for any model running those kernels): " + "; ".join(
                      f"{escape(Path(r.path).name)} {r.library_beyond_fixed_mb:.0f} MiB" for r in mil))


@app.command("device")
def device_cmd(
    path: Path = typer.Argument(..., help="A Core ML .mlpackage, or a checkpoint (converted to Core ML fp16 first, "
                                          "in a temporary folder)"),
    image_size: Optional[int] = typer.Option(None, help="Checkpoint input resolution (default: the model's)"),
    as_json: bool = typer.Option(False, "--json", help="Print the JSON report"),
    debug: bool = typer.Option(False, "--debug"),
) -> None:
    """Which ops likely leave the iPhone Neural Engine (published rules, each with its source) and an
    A14 latency estimate with its band (a calibrated cost model, not a measurement)."""
    import tempfile

    from .device import device_report, summary_line

    with _guarded(debug):
        if path.name.endswith(".mlpackage"):
            report = device_report(path)
        else:
            from .pipeline import Request, run

            with tempfile.TemporaryDirectory(prefix="effconvert-device-") as tmp:
                with _Progress([]) as progress:
                    outcome = run(Request(path, ("coreml",), ("fp16",), Path(tmp), image_size=image_size, samples=1,
                                          validate=False), on_step=progress.done, on_start=progress.start)
                report = device_report(outcome.artifacts[0].path)
    if as_json:
        out.print_json(json.dumps(report))
        return
    out.print(summary_line(report))
    out.print(f"[dim]{report['what']}; band = the worst leave-one-variant-out error on the calibration rows[/]")
    for op in report["ops"]["off_ane"][:20]:
        out.print(f"  off ANE: {op['type']} {escape(op['op'])} — rule {op['rule']}: {op['reason']} ({op['source']})")
    if len(report["ops"]["off_ane"]) > 20:
        out.print(f"  ... {len(report['ops']['off_ane']) - 20} more (--json lists all)")


def _version(value: bool) -> None:
    if value:
        from ._version import __version__

        out.print(f"effconvert {__version__}")
        raise typer.Exit()


@app.callback()
def _options(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                          help="Print the version and exit")) -> None:
    """Efficient vision transformer checkpoint -> phone-ready artifact + parity report."""


def main(argv: list[str] | None = None) -> None:
    """Console entry point: `effconvert CKPT ...` means `effconvert convert CKPT ...`."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    # A shell starts background jobs with SIGINT ignored, and Python then keeps ignoring it; the
    # interrupt contract (a message, exit 130, no partial file) holds however effconvert was started.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    app(args=with_default_command(sys.argv[1:] if argv is None else argv), prog_name="effconvert")


def with_default_command(args: list[str]) -> list[str]:
    if args and args[0] not in SUBCOMMANDS and args[0] not in ("--help", "-h", "--version"):
        return ["convert", *args]
    return list(args)
