"""Command line: parse options, call the pipeline, hand rendering to report/console.py.

effconvert CHECKPOINT [--target ...] [--quant ...] [options]   (the `convert` command)
effconvert demo | inspect PATH | make-checkpoint ARCH -o FILE | bench ARTIFACT...
"""

from __future__ import annotations

import contextlib
import inspect
import json
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import TaskID
from rich.table import Table
from rich.text import Text
from typer.core import TyperCommand, TyperGroup

from . import signals
from .errors import BadInput, EffconvertError, os_error_of
from .options import OPTIONS, Option, Request, request_from, three_numbers
from .targets import CHECKPOINT_LAYOUTS, ORIGINAL_LAYOUT, SOCS, TARGETS

if TYPE_CHECKING:
    from .batch import JobResult, Plan
    from .pipeline import Event, Outcome

_SUFFIXES = ", ".join(t.suffix for t in TARGETS.values())


class _Flagless:
    """Help as a user reads it: typer 0.29 shows every flag with a `<bool>` type (a flag takes no
    value: it shows none) and a required argument as `{NAME}` in the usage line (shown: NAME)."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces: list[str] = super().collect_usage_pieces(ctx)  # type: ignore[misc]  # typer is untyped here
        # "{ARTIFACT...}..." (a metavar with dots, nargs=-1) reads "ARTIFACT..."
        return [p.replace("{", "").replace("}", "").replace("......", "...") for p in pieces]

    def get_params(self, ctx: Any) -> list[Any]:
        params: list[Any] = super().get_params(ctx)  # type: ignore[misc]  # typer is untyped here
        for param in params:
            if getattr(param, "is_flag", False) and param.metavar is None:
                param.metavar = " "
        return params


class _Group(_Flagless, TyperGroup):
    pass


class _Command(_Flagless, TyperCommand):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.help and not self.short_help:  # the command list keeps a docstring's line breaks
            self.short_help = " ".join(inspect.cleandoc(self.help).split("\n\n")[0].split())


app = typer.Typer(
    cls=_Group,
    add_completion=True,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Efficient vision transformer checkpoint -> phone-ready artifact + parity report.",
)
# Not a terminal (a pipe, a CI log): wide enough that tables never fold a word in two.
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 200)
out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
INTERNAL_ERROR_EXIT = 4
SUBCOMMANDS = ("convert", "demo", "batch", "inspect", "make-checkpoint", "app", "bench", "device")


@contextlib.contextmanager
def _guarded(
    debug: bool,
    finished: list[str] | None = None,
    left: str = "no report written, no partial artifact left; rerun to complete",
) -> Iterator[None]:
    """Every error becomes one line and an exit code; an interrupt says what finished."""
    try:
        yield
    except typer.Exit:
        raise
    except KeyboardInterrupt as exc:
        signum = signals.signal_of(exc)
        finished = getattr(exc, "finished", finished)  # the run's own account of what is on disk
        done = f"finished: {', '.join(finished)}" if finished else "nothing finished"
        err.print(f"[bold red]interrupted[/] ({signum.name}): {escape(done)}; {escape(left)}", soft_wrap=True)
        raise typer.Exit(code=signals.INTERRUPT_EXITS[signum]) from None
    except Exception as exc:  # noqa: BLE001 - every error becomes one line + an exit code
        _fail(exc, debug)


def labelled(label: str, style: str, text: str) -> Text:
    """`label: text` for the terminal: the label styled, the text (user data: paths, option values,
    checkpoint keys) never read as markup — not escaped either (rich's escape of a trailing backslash
    prints two) — and on one line (line breaks, tabs, control characters become spaces)."""
    return Text.assemble((label, style), " ", "".join(c if c.isprintable() else " " for c in str(text)))


def _fail(exc: BaseException, debug: bool) -> None:
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    if not isinstance(exc, EffconvertError):
        exc = os_error_of(exc) or exc  # a full disk, a name too long: the user's to fix, not a bug
    if isinstance(exc, EffconvertError):
        err.print(labelled("error:", "bold red", exc.message), soft_wrap=True)
        if exc.hint:
            err.print(labelled("hint:", "dim", exc.hint), soft_wrap=True)
        raise typer.Exit(code=exc.exit_code) from None
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    err.print(labelled("internal error:", "bold red", f"{type(exc).__name__}: {first[:300]}"), soft_wrap=True)
    err.print("[dim]hint:[/] this is a bug in effconvert; rerun with --debug for the traceback", soft_wrap=True)
    raise typer.Exit(code=INTERNAL_ERROR_EXIT) from None


def _flag(*names: str, help: str) -> Any:
    """An on/off flag (no value, no default shown)."""
    return typer.Option(False, *names, help=help, show_default=False, metavar=" ")


def _cli_option(option: Option) -> inspect.Parameter:
    """One parameter of the convert command, from the option table."""
    kind = option.kind
    flags = [option.flag] + ([option.short] if option.short else [])
    if kind == "bool":
        default: Any = False  # a plain flag: --no-fuse for an option on by default
        annotation: Any = bool
    elif kind == "texts":
        default, annotation = list(option.default), list[str]
    elif kind == "three":
        default, annotation = None, str | None
    else:
        default = option.default
        base = {"int": int, "number": float, "text": str, "path": Path}[kind]
        annotation = base | None if option.default is None else base
    metavar = option.metavar or ("|".join(map(str, option.choices)) if option.choices else None)
    if kind == "bool":
        metavar = " "  # a flag takes no value: typer would show <bool>
    param = typer.Option(default, *flags, help=option.flag_help, metavar=metavar, show_default=kind != "bool")
    return inspect.Parameter(option.name, inspect.Parameter.KEYWORD_ONLY, default=param, annotation=annotation)


def _from_cli(option: Option, value: Any) -> Any:
    if option.kind == "bool" and option.negated:
        return not value
    if option.kind == "three":
        return three_numbers(option.flag, value)
    return value


def convert_cmd(checkpoint: Path, *, app_platforms: list[str], as_json: bool, debug: bool, **values: Any) -> None:
    """Convert CHECKPOINT, validate every artifact on its runtime, write report.json."""
    from .pipeline import run
    from .report.console import render_console
    from .workspace import private_tempdir

    finished: list[str] = []
    with _guarded(debug, finished):
        request = request_from(checkpoint, {o.name: _from_cli(o, values[o.name]) for o in OPTIONS})
        _check_apps(app_platforms, request)
        with private_tempdir(), _Progress(finished) as progress:
            outcome = run(request, progress)
        _write_apps(app_platforms, outcome)
    render_console(err, outcome.report, outcome.report_path)
    if as_json:
        out.print_json(json.dumps(outcome.report.to_json(), allow_nan=True))
    raise typer.Exit(code=outcome.exit_code)


_CONVERT_SIGNATURE = inspect.Signature(
    [
        inspect.Parameter(
            "checkpoint",
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            annotation=Path,
            default=typer.Argument(
                ...,
                metavar="CHECKPOINT",
                help="Checkpoint: .pth, .pth.tar, .pt or .safetensors file, a Hugging Face / timm "
                "snapshot folder, or hf-hub:ORG/NAME (local cache)",
            ),
        ),
        *(_cli_option(o) for o in OPTIONS),
        inspect.Parameter(
            "app_platforms",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=list[str],
            default=typer.Option(
                [], "--app", metavar="PLATFORM", help="Also write a sample app: ios | android (repeatable)"
            ),
        ),
        inspect.Parameter(
            "as_json",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=bool,
            default=typer.Option(False, "--json", help="Print report.json to stdout", show_default=False, metavar=" "),
        ),
        inspect.Parameter(
            "debug",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=bool,
            default=typer.Option(False, "--debug", help="Show tracebacks", show_default=False, metavar=" "),
        ),
    ]
)
convert_cmd.__signature__ = _CONVERT_SIGNATURE  # type: ignore[attr-defined]  # typer reads the generated one
app.command("convert", cls=_Command)(convert_cmd)


def _check_apps(platforms: list[str], request: Request) -> None:
    """--app needs its artifact among the targets: refused before anything is converted."""
    from .apps import PLATFORMS, either
    from .targets import check_pairs

    names = {target for target, _ in check_pairs(request.targets, request.quants, request.palettize).pairs}
    for platform in platforms:
        spec = PLATFORMS.get(platform)
        if spec is None:
            raise BadInput(f"unknown app platform {platform!r}", hint=f"choose from: {', '.join(PLATFORMS)}")
        if not set(spec.targets) & names:
            takes = either(m.suffix for m in spec.models)
            raise BadInput(
                f"--app {platform} needs a {takes} artifact, and no --target {' or '.join(spec.targets)} was asked for",
                hint=f"add --target {spec.target}",
            )


OPEN_PROJECT = {
    "ios": "open {path}/EffconvertClassifier.xcodeproj in Xcode, pick your team, run on an iPhone",
    "android": "build it with ./gradlew assembleDebug in {path}, or open the folder in Android Studio",
}


def _write_apps(platforms: list[str], outcome: Outcome) -> None:
    from .apps import PLATFORMS, embed_app

    for platform in dict.fromkeys(platforms):
        spec = PLATFORMS[platform]
        by_model = [[a for a in outcome.artifacts if spec.model_for(a.path) is m] for m in spec.models]
        candidates = next((found for found in by_model if found), [])  # the platform's default runtime first
        if not candidates:
            raise BadInput(f"--app {platform} needs a {spec.suffix} artifact; add the matching --target")
        project = embed_app(platform, candidates[-1].path, outcome.out_dir / f"{platform}-app")
        err.print(
            f"[green]✓[/] app       {platform}: {escape(str(project.path))} (model "
            f"{escape(candidates[-1].path.name)}); " + escape(OPEN_PROJECT[platform].format(path=project.path)),
            soft_wrap=True,
        )


class _Progress:
    """The step running now (a live line on a terminal), and one line per finished step with its own
    time: a green ✓, a red ✗ for a failure, a yellow ! for a warning (a skip, a fallback, a run that
    could not be validated)."""

    MARKS: ClassVar[dict[str, str]] = {"ok": "[green]✓[/]", "failed": "[red]✗[/]", "warning": "[yellow]![/]"}

    def __init__(self, finished: list[str]) -> None:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.finished = finished
        self.bar = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err, transient=True
        )
        self.task: TaskID | None = None

    def __enter__(self) -> _Progress:
        self.bar.__enter__()
        self.task = self.bar.add_task("starting", total=None)
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(None, None, None)

    def __call__(self, event: Event) -> None:
        from .pipeline import Started

        if isinstance(event, Started):
            if self.task is not None:
                self.bar.reset(self.task, description=escape(event.what))
            return
        if event.artifact is not None and event.status == "ok":  # recorded before it is shown: a signal
            self.finished.append(event.artifact)  # may come between
        seconds = f" [dim]({event.seconds:.1f} s)[/]" if event.seconds is not None else ""
        self.bar.console.print(
            f"{self.MARKS[event.status]} {event.step:<11} {escape(event.message)}{seconds}", soft_wrap=True
        )


_DEMO_HELP = (
    "Built-in default: a make-checkpoint FastViT-S12 in Apple's released layout, converted to every "
    f"target of --target all ({', '.join(t.name for t in TARGETS.values() if t.in_all)}) in fp32 and fp16 "
    "(the pairs a target offers), each validated on its runtime."
)


@app.command("demo", cls=_Command, help=_DEMO_HELP)
def demo_cmd(
    out_dir: Path = typer.Option(Path("effconvert-out/demo"), "--out", "-o", help="Output folder"),
    debug: bool = _flag("--debug", help="Show tracebacks"),
) -> None:
    from .pipeline import run
    from .report.console import render_console
    from .synth.checkpoint import make_checkpoint
    from .workspace import check_output_dir, private_tempdir

    finished: list[str] = []
    with _guarded(debug, finished):
        check_output_dir(out_dir)
        ckpt = out_dir / "fastvit_s12.pth.tar"
        err.print(f"writing a synthetic FastViT-S12 checkpoint (Apple layout): {escape(str(ckpt))}", soft_wrap=True)
        make_checkpoint("fastvit_s12", ckpt, layout="apple", seed=0)
        with private_tempdir(), _Progress(finished) as progress:
            outcome = run(Request(ckpt, targets=("all",), quants=("fp32", "fp16"), out=out_dir), progress)
    render_console(err, outcome.report, outcome.report_path)
    for artifact in outcome.artifacts:
        err.print(f"artifact: {escape(str(artifact.path))}", soft_wrap=True)
    raise typer.Exit(code=outcome.exit_code)


@app.command("batch", cls=_Command)
def batch_cmd(
    plan: Path = typer.Argument(
        ...,
        metavar="PLAN",
        help="Plan (TOML): checkpoints (paths, globs or make = variants) x targets x "
        "quants, with per-entry options; see docs/guides/batch.md",
    ),
    out_dir: Path | None = typer.Option(
        None, "--out", "-o", help="Output folder (default: the plan's out, else effconvert-batch/<plan name>)"
    ),
    workers: int | None = typer.Option(None, help="Jobs at once on this machine (default: cores / --threads)"),
    threads: int = typer.Option(1, help="CPU threads per job"),
    ray: str | None = typer.Option(
        None,
        "--ray",
        help="Run the jobs as Ray tasks: a cluster ADDRESS, auto (the "
        "cluster `ray start` runs here) or local (start one); "
        "--out must be a path every node sees",
    ),
    resume: bool = _flag(
        "--resume",
        help="Skip jobs whose report was made from the same checkpoint bytes, effconvert version and options",
    ),
    debug: bool = _flag("--debug", help="Show tracebacks"),
) -> None:
    """Convert many checkpoints (a model zoo): one ordinary job per checkpoint, on local worker
    processes or a Ray cluster; writes batch.json, index.html and matrix.md beside the job folders.
    Exit 0 all passed, 1 some gate failed, 3 some job failed."""
    from .batch import run_batch

    finished: list[str] = []
    left = "batch.json and index.html record them, no partial artifact left; rerun with --resume to complete"
    with _guarded(debug, finished, left), _BatchProgress(finished) as progress:
        outcome = run_batch(
            plan,
            out_dir=out_dir,
            workers=workers,
            threads=threads,
            ray=ray,
            resume=resume,
            on_result=progress.done,
            on_plan=progress.planned,
        )
    counts = ", ".join(f"{n} {status}" for status, n in sorted(outcome.record["counts"].items()))
    err.print(
        f"batch: {len(outcome.results)} jobs ({counts}) in {outcome.record['wall_s']:.0f} s; "
        f"index: {escape(str(outcome.index_path))} (batch.json, matrix.md beside it)",
        soft_wrap=True,
    )
    raise typer.Exit(code=outcome.exit_code)


class _BatchProgress:
    """One line per finished job above an overall bar: jobs done / total, elapsed, ETA."""

    _MARKS: ClassVar[dict[str, str]] = {"passed": "[green]✓[/]", "gate-failed": "[red]✗[/]"}

    def __init__(self, finished: list[str]) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.finished = finished
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=err,
            transient=True,
        )
        self.task: TaskID | None = None

    def __enter__(self) -> _BatchProgress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(None, None, None)

    def planned(self, plan: Plan, todo: int) -> None:
        resumed = len(plan.jobs) - todo
        err.print(
            f"{escape(plan.path.name)}: {len(plan.jobs)} jobs"
            + (f", {resumed} done earlier (--resume)" if resumed else "")
            + f" -> {escape(str(plan.out_dir))}",
            soft_wrap=True,
        )
        self.task = self.bar.add_task("jobs", total=len(plan.jobs), completed=0)

    def done(self, result: JobResult, done: int, total: int) -> None:
        mark = self._MARKS.get(result.status, "[bold red]✗[/]")
        cells = result.report.artifacts if result.report is not None else ()
        passed = sum(1 for a in cells if a.passed)
        what = f"{passed}/{len(cells)} artifacts passed" if cells else escape(result.error or "")
        when = "earlier run (--resume)" if result.resumed else f"{result.seconds:.0f} s"
        self.bar.console.print(
            f"{mark} {escape(result.name):<24} {result.status:<17} {what} [dim]({when})[/]", soft_wrap=True
        )
        self.finished.append(result.name)
        if self.task is not None:
            self.bar.update(self.task, completed=done)


@app.command("app", cls=_Command)
def app_cmd(
    platform: str = typer.Argument(..., help="ios | android", metavar="PLATFORM"),
    artifact: Path = typer.Option(
        ...,
        "--artifact",
        "-a",
        help="An artifact the platform's app runs: "
        + "; ".join(
            f"{p}: {', '.join(t.suffix for t in TARGETS.values() if p in t.platforms)}"
            for p in dict.fromkeys(p for t in TARGETS.values() for p in t.platforms)
        ),
    ),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Folder for the app project"),
    debug: bool = _flag("--debug", help="Show tracebacks"),
) -> None:
    """Write a sample app project with ARTIFACT and its manifest embedded."""
    from .apps import embed_app

    with _guarded(debug):
        project = embed_app(platform, artifact, out_dir)
    m = project.manifest
    err.print(
        escape(
            f"wrote {project.path}: {m['arch']} {m['quant']} on {m['runtime']}, input "
            f"{m['input_name']!r} {m['input_shape']} ({m['input_layout']}), {len(m['labels'])} labels"
        ),
        soft_wrap=True,
    )
    err.print(f"next: {escape(OPEN_PROJECT[platform].format(path=project.path))}", soft_wrap=True)


@app.command("make-checkpoint", cls=_Command)
def make_checkpoint_cmd(
    arch: str = typer.Argument(..., help="timm name, e.g. fastvit_s12", metavar="ARCH"),
    output: Path = typer.Option(..., "--output", "--out", "-o", help="File to write (.pth, .pth.tar, .safetensors)"),
    layout: str = typer.Option(
        "timm",
        help=" | ".join((ORIGINAL_LAYOUT, *CHECKPOINT_LAYOUTS))
        + f" (each family writes its own; {ORIGINAL_LAYOUT}: the family's authors' release)",
    ),
    seed: int = typer.Option(0, help="Seed; the same seed writes the same weights"),
    debug: bool = _flag("--debug", help="Show tracebacks"),
) -> None:
    """Write a deterministic checkpoint whose numbers behave like a trained model's (not trained)."""
    from .synth.checkpoint import make_checkpoint

    with _guarded(debug):
        made = make_checkpoint(arch, output, layout=layout, seed=seed)
    err.print(
        f"wrote {escape(str(made.path))} ({made.arch}, {made.layout} layout, seed {made.seed}): "
        f"logit std {made.stats.logit_std:.2f}, {made.stats.distinct_top1} distinct top-1 classes "
        f"over {made.stats.images} images — synthetic, not a trained model"
    )


@app.command("inspect", cls=_Command)
def inspect_cmd(
    path: Path = typer.Argument(..., help=f"A checkpoint or an artifact ({_SUFFIXES})", metavar="PATH"),
    debug: bool = _flag("--debug", help="Show tracebacks"),
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


@app.command("bench", cls=_Command)
def bench_cmd(
    artifacts: list[Path] = typer.Argument(
        ..., help=f"Artifacts ({_SUFFIXES}), each run on its runtime", metavar="ARTIFACT..."
    ),
    threads: int = typer.Option(2, help="Runtime threads"),
    runs: int = typer.Option(20, help="Timed runs per artifact (after 3 warm-up runs)"),
    as_json: bool = _flag("--json", help="Print JSON instead of a table"),
    debug: bool = _flag("--debug", help="Show tracebacks"),
) -> None:
    """Latency (median, p90), peak memory and size of artifacts, each on its runtime."""
    import dataclasses

    from .measure import bench_artifact, check_bench_options, mil_fixed_cost
    from .runtime import RUNTIMES
    from .runtime.coreml import MIL_EXECUTOR

    finished: list[str] = []
    with _guarded(debug, finished):
        check_bench_options(artifacts, threads=threads, runs=runs)
        results = []
        for path in artifacts:
            results.append(bench_artifact(path, threads=threads, runs=runs))
            finished.append(path.name)
        mil = [r for r in results if r.runtime == MIL_EXECUTOR]
        if mil:  # the MIL executor's fixed cost (torch, coremltools) apart from each package's
            fixed = mil_fixed_cost(threads=threads)
            results = [
                dataclasses.replace(r, fixed_rss_mb=fixed.added_rss_mb, fixed_library_rss_mb=fixed.library_rss_mb)
                if r.runtime == MIL_EXECUTOR
                else r
                for r in results
            ]
            mil = [r for r in results if r.runtime == MIL_EXECUTOR]
    if as_json:
        out.print_json(json.dumps([r.as_dict() for r in results]))
        return
    fastest = min(r.timing.median_ms for r in results)
    table = Table(title=f"batch 1, {threads} threads, median and p90 of {runs} runs", title_justify="left")
    for name in ("artifact", "runtime", "size MB", "median ms", "p90 ms", "peak RSS MB", "added MB", "vs fastest"):
        table.add_column(name, justify="left" if name in ("artifact", "runtime") else "right")
    for r in results:
        table.add_row(
            escape(Path(r.path).name),
            r.runtime + ("" if r.device_speed else " *"),
            f"{r.size_bytes / 1e6:.1f}",
            f"{r.timing.median_ms:.2f}",
            f"{r.timing.p90_ms:.2f}",
            f"{r.peak_rss_mb:.0f}",
            f"{r.added_rss_mb:.0f}",
            f"{r.timing.median_ms / fastest:.2f}x",
        )
    out.print(table)
    for name in dict.fromkeys(r.runtime for r in results if not r.device_speed):
        out.print(f"* {name}: {escape(RUNTIMES[name].description)}; its time is not device speed")
    if mil:
        out.print(
            f"  the MIL executor's fixed memory (importing torch and coremltools, the executor; measured on a "
            f"one-conv package): {mil[0].fixed_rss_mb:.0f} MiB. Beyond it, per package (its program, weights "
            f"and activations; not the input batch): "
            + "; ".join(
                f"{escape(Path(r.path).name)} {r.package_rss_mb:.1f} MiB ({r.package_rss_ratio:.2f}x its size)"
                for r in mil
            )
            + ". Apart, torch's kernel code its ops page in beyond the one conv's (shared library "
            "pages, the same for any model running those kernels): "
            + "; ".join(f"{escape(Path(r.path).name)} {r.library_beyond_fixed_mb:.0f} MiB" for r in mil)
        )


@app.command("device", cls=_Command)
def device_cmd(
    path: Path = typer.Argument(
        ...,
        metavar="PATH",
        help="An artifact with a device model ("
        + ", ".join(t.suffix for t in TARGETS.values() if t.device)
        + "), or a checkpoint (converted first, in a temporary folder: "
        "to Core ML, or for a Snapdragon with --soc)",
    ),
    soc: str | None = typer.Option(
        None,
        help="A checkpoint's Snapdragon SoC: "
        + ", ".join(f"{s.name} ({s.phone})" for s in SOCS.values())
        + " (the qnn target; default for a qnn artifact: its own)",
    ),
    quant: str = typer.Option("fp16", help="A checkpoint's precision (its target's quant modes)"),
    image_size: int | None = typer.Option(None, help="A checkpoint's input resolution (default: the model's)"),
    as_json: bool = _flag("--json", help="Print the JSON report"),
    debug: bool = _flag("--debug", help="Show tracebacks"),
) -> None:
    """Which ops likely leave the phone's accelerator (each with its rule or the compiler's reason) and a
    latency estimate with its band (a cost model calibrated on published measurements, not a measurement)."""
    import tempfile

    from .device import device_report
    from .targets import target_of

    with _guarded(debug):
        with_device = [t for t in TARGETS.values() if t.device]
        if any(path.name.lower().endswith(t.suffix) for t in TARGETS.values()):
            if soc is not None:
                raise BadInput("--soc applies to a checkpoint; an artifact was compiled for its own SoC")
            target_of(path)
            report = device_report(path)
        else:
            from .pipeline import run

            target = next(t for t in with_device if ("soc" in t.options) == (soc is not None))
            options = {"soc": soc} if soc is not None else {}
            request = request_from(
                path,
                {
                    "targets": (target.name,),
                    "quants": (quant,),
                    "image_size": image_size,
                    "samples": 1,
                    "validate": False,
                    **options,
                },
                where="device: ",
            )
            with tempfile.TemporaryDirectory(prefix="effconvert-device-") as tmp, _Progress([]) as progress:
                from dataclasses import replace

                outcome = run(replace(request, out=Path(tmp)), progress)
                report = device_report(outcome.artifacts[0].path)
    if as_json:
        out.print_json(json.dumps(report.to_json()))
        return
    out.print(escape(report.summary))
    out.print(f"[dim]{escape(report.what)}[/]", soft_wrap=True)
    off = report.residency.off
    for op in off[:20]:
        rule = f"rule {op.rule}: " if op.rule is not None else ""
        out.print(
            escape(
                f"  off {report.residency.accelerator.upper()}: {op.type} {op.op} — {rule}{op.reason} ({op.source})"
            ),
            soft_wrap=True,
        )
    if len(off) > 20:
        out.print(f"  ... {len(off) - 20} more (--json lists all)")


def _version(value: bool) -> None:
    if value:
        from ._version import __version__

        out.print(f"effconvert {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit"
    ),
) -> None:
    """Efficient vision transformer checkpoint -> phone-ready artifact + parity report."""


def main(argv: list[str] | None = None) -> None:
    """Console entry point: `effconvert CKPT ...` means `effconvert convert CKPT ...`."""
    signals.install()
    # The process is effconvert's own: the MIL executor's heap settings apply (runtime/mil/heap.py).
    from .runtime.mil import heap

    heap.settle()
    app(args=with_default_command(sys.argv[1:] if argv is None else argv), prog_name="effconvert")


def with_default_command(args: list[str]) -> list[str]:
    if args and args[0] not in SUBCOMMANDS and args[0] not in ("--help", "-h", "--version"):
        return ["convert", *args]
    return list(args)
