"""A batch plan (TOML) read into jobs, every job checked before the first one runs.

    out = "effconvert-batch/zoo"        # optional; --out wins
    [defaults]                          # options every entry starts from
    targets = ["onnx", "tflite"]
    quants = ["fp32", "fp16"]
    samples = 16

    [[checkpoints]]
    path = "models/*.pth"               # files, globs, snapshot folders, hf-hub:ORG/NAME, or a list
    calib = "calib/"                    # any convert option, by its name (options.py; - or _)
    quants = ["int8"]

    [[checkpoints]]
    make = "fastvit_*"                  # synthetic checkpoints: variant names or globs, "*" = all
    make_layout = "original"            # timm (default) | original (the authors' release) | apple ...
    seed = 0

One job per checkpoint: the ordinary pipeline with the entry's targets x quants, as the CLI and the
API run it (the same option table, the same defaults). A pair a target does not offer is skipped
with a note (ExecuTorch fp16); the matrix shows those cells as not offered. The plan is data from a
file: every key and type is checked, a bad one is one line naming where, exit 2. Paths are relative
to the plan's folder; `~` is the home folder.
"""

from __future__ import annotations

import difflib
import fnmatch
import glob
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import BadInput
from ..files import HUB_PREFIX
from ..names import confined, derived_name, plain_name
from ..options import BY_NAME, OPTIONS, Request, default_out_dir, request_from
from ..parsing import toml_data
from ..request import check_request
from ..targets import CHECKPOINT_LAYOUTS, ORIGINAL_LAYOUT

CHECKPOINTS_FOLDER = "checkpoints"  # under --out: where make = ... checkpoints are written
MAX_JOBS = 10_000
MAX_PLAN_BYTES = 1 << 20


@dataclass(frozen=True)
class MakeSpec:
    """A synthetic checkpoint the job writes first (effconvert make-checkpoint)."""

    arch: str
    layout: str
    seed: int


@dataclass(frozen=True)
class Job:
    """One checkpoint through the ordinary pipeline. `request.out_dir` is the job's own folder."""

    name: str
    request: Request
    make: MakeSpec | None = None
    named: bool = False  # the plan chose the name (name = ...): never changed

    @property
    def checkpoint(self) -> Path:
        return Path(self.request.checkpoint)

    @property
    def out_dir(self) -> Path:
        return self.request.output_dir


@dataclass(frozen=True)
class Plan:
    path: Path
    out_dir: Path
    jobs: tuple[Job, ...]


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadInput(f"{where} must be a non-empty string, not {value!r}"[:300])
    return value


def _texts(value: Any, where: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise BadInput(f"{where} must be a string or a non-empty list of strings, not {value!r}"[:300])
    return tuple(_text(item, f"{where}[{i}]") for i, item in enumerate(items))


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadInput(f"{where} must be an integer, not {value!r}"[:300])
    return value


_SOURCE_KEYS = {"path", "make", "make_layout", "seed", "name"}


def read_plan(path: Path, out_dir: Path | None = None) -> Plan:
    """Read and check a plan: every entry expanded to its checkpoints, every job's request checked
    (checkpoint path, options, folders) as `effconvert CHECKPOINT ...` would check it."""
    path = Path(path)
    data = _parse(path)
    where = path.name
    _known(data, {"out", "defaults", "checkpoints"}, where)
    base = path.resolve().parent
    if out_dir is not None:
        out = Path(out_dir)
    elif "out" in data:
        out = base / _text(data["out"], f"{where}: out")
    else:
        out = Path("effconvert-batch") / path.stem
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise BadInput(f"{where}: [defaults] must be a table of options")
    _known(defaults, set(BY_NAME), f"{where}: [defaults]")
    entries = data.get("checkpoints")
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise BadInput(f"{where} lists no checkpoints", hint="add [[checkpoints]] tables with path = ... or make = ...")
    jobs: list[Job] = []
    named: dict[str, str] = {}  # a name = ... -> the entry that chose it
    for index, entry in enumerate(entries):
        label = f"{where}: checkpoints[{index}]"
        _known(entry, set(BY_NAME) | _SOURCE_KEYS, label)
        options = {**defaults, **{k: v for k, v in entry.items() if k not in _SOURCE_KEYS}}
        for name, checkpoint, make in _sources(entry, base, out, label):
            if "name" in entry:
                if name in named:
                    raise BadInput(f"{named[name]} and {label} both have name = {name!r}", hint="one name per entry")
                named[name] = label
            request = request_from(checkpoint, options, where=f"{label}.")
            jobs.append(Job(name, replace(_resolved(request, base), out=out / name), make, "name" in entry))
    if len(jobs) > MAX_JOBS:
        raise BadInput(f"{where} expands to {len(jobs)} jobs, more than {MAX_JOBS}")
    jobs = _unique_names(jobs, out, where)
    for job in jobs:
        confined(job.out_dir, out, f"{where}: job {job.name}: its folder")
    for job in jobs:
        try:
            # a make = ... checkpoint is written by the job itself: all but the file is checked
            check_request(job.request, checkpoint=job.make is None)
        except BadInput as exc:
            raise BadInput(f"{where}: job {job.name}: {exc.message}", hint=exc.hint) from None
    return Plan(path, out, tuple(jobs))


def _parse(path: Path) -> dict:
    if not path.is_file():
        raise BadInput(f"plan {path} " + ("is a folder, not a file" if path.is_dir() else "not found"))
    if path.stat().st_size > MAX_PLAN_BYTES:
        raise BadInput(f"plan {path} is {path.stat().st_size:,} bytes; a plan is at most {MAX_PLAN_BYTES:,}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"plan {path} is not UTF-8 text") from None
    return toml_data(text, f"plan {path}")


def _known(table: dict, allowed: set[str], where: str) -> None:
    for key in table:
        normal = key.replace("-", "_")
        if normal not in allowed:
            close = difflib.get_close_matches(normal, sorted(allowed), n=1)
            raise BadInput(
                f"{where}: unknown key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""),
                hint="keys: " + ", ".join(sorted(allowed)),
            )


def _resolved(request: Request, base: Path) -> Request:
    """A plan's relative paths name files beside the plan."""
    paths = {
        o.name: base / getattr(request, o.name)
        for o in OPTIONS
        if o.kind == "path" and getattr(request, o.name) is not None
    }
    return replace(request, **paths)


def _sources(entry: dict, base: Path, out: Path, where: str) -> list[tuple[str, Path, MakeSpec | None]]:
    """(job name, checkpoint path, make spec) for each checkpoint an entry names."""
    if ("path" in entry) == ("make" in entry):
        raise BadInput(f"{where} needs exactly one of path = ... (checkpoint files) or make = ... (synthetic)")
    if "path" in entry:
        if "make_layout" in entry or "seed" in entry:
            raise BadInput(f"{where}: make_layout and seed apply to make = ... entries")
        found: list[Path] = []
        for pattern in _texts(entry["path"], f"{where}.path"):
            if pattern.startswith(HUB_PREFIX):  # a Hugging Face id, from the local cache
                found.append(Path(pattern))
                continue
            pattern = str(Path(pattern).expanduser())
            full = pattern if Path(pattern).is_absolute() else str(base / pattern)
            matches = sorted(glob.glob(full)) if glob.has_magic(pattern) else [full]
            if not matches:
                raise BadInput(f"{where}.path {pattern!r} matches no file (relative to {base})")
            found += [Path(m) for m in matches]
        sources: list[tuple[str, Path, MakeSpec | None]] = [
            (default_out_dir(p).name, p, None) for p in dict.fromkeys(found)
        ]
    else:
        sources = _made(entry, out, where)
    if "name" in entry:
        if len(sources) != 1:
            raise BadInput(f"{where}: name = ... names one checkpoint; this entry has {len(sources)}")
        name = plain_name(_text(entry["name"], f"{where}.name"), f"{where}.name")
        if name == CHECKPOINTS_FOLDER:
            raise BadInput(f"{where}.name {name!r} is taken: the plan's made checkpoints go there")
        sources = [(name, *sources[0][1:])]
    return sources


def _made(entry: dict, out: Path, where: str) -> list[tuple[str, Path, MakeSpec | None]]:
    from ..load import FAMILIES  # timm's registry: only for plans that make checkpoints

    variants = {arch: family for family in FAMILIES.values() for arch in family.variants}
    layout = _text(entry.get("make_layout", "timm"), f"{where}.make_layout")
    if layout != ORIGINAL_LAYOUT and layout not in CHECKPOINT_LAYOUTS:
        raise BadInput(
            f"{where}.make_layout {layout!r} is unknown",
            hint="choose from: " + ", ".join((ORIGINAL_LAYOUT, *CHECKPOINT_LAYOUTS)),
        )
    seed = _int(entry.get("seed", 0), f"{where}.seed")
    sources: list[tuple[str, Path, MakeSpec | None]] = []
    for pattern in _texts(entry["make"], f"{where}.make"):
        archs = [a for a in variants if fnmatch.fnmatchcase(a, pattern)]
        if not archs:
            close = difflib.get_close_matches(pattern, list(variants), n=1)
            raise BadInput(
                f"{where}.make {pattern!r} matches no variant effconvert knows"
                + (f" (did you mean {close[0]!r}?)" if close else ""),
                hint="effconvert --help lists the families; '*' means every variant",
            )
        for arch in archs:
            family = variants[arch]
            try:
                chosen = family.layout(layout).name
            except KeyError:
                raise BadInput(
                    f"{where}: {arch} has no {layout!r} layout",
                    hint="its layouts: " + ", ".join((ORIGINAL_LAYOUT, *(known.name for known in family.layouts))),
                ) from None
            file = out / CHECKPOINTS_FOLDER / f"{arch}-{chosen}-seed{seed}.pth.tar"
            sources.append((arch, file, MakeSpec(arch, chosen, seed)))
    return sources


def _unique_names(jobs: list[Job], out: Path, where: str) -> list[Job]:
    """Two checkpoints with one stem (models/a/x.pth, models/b/x.pth): the parent folder joins the
    name. A name the plan chose is never changed: a later one clashing with an earlier is refused."""
    seen: dict[str, Job] = {}
    result = []
    for job in jobs:
        name = job.name
        if name in seen and job.named:
            raise BadInput(
                f"{where}: name = {name!r} (for {job.checkpoint}) is already the folder of {seen[name].checkpoint}",
                hint="choose another name = ...",
            )
        if name in seen:
            if seen[name].checkpoint == job.checkpoint and seen[name].make == job.make:
                raise BadInput(
                    f"{where}: {job.checkpoint} is listed twice",
                    hint="one entry per checkpoint; give the second a different name = ...",
                )
            name = derived_name(
                job.checkpoint.name.removesuffix(".pth.tar") if job.make else f"{job.checkpoint.parent.name}--{name}"
            )
            if name in seen:
                raise BadInput(f"{where}: two jobs would write to {out / name}", hint="give one a name = ...")
            job = Job(name, replace(job.request, out=out / name), job.make, job.named)
        seen[name] = job
        result.append(job)
    return result
