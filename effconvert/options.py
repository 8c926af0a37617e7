"""The one table of options: every option a conversion takes, written once.

Each field of `Request` is an option: its name is the Python API's keyword
(`effconvert.convert(ckpt, samples=16)`), the batch plan's key (`samples = 16`) and, with dashes,
the CLI's flag (`--samples 16`); its type, default and help are the field's. The CLI's `convert`
command, `effconvert.convert()`, batch plans and the docs' option table are all generated from
`OPTIONS`, so their names, defaults, help and checks cannot disagree. Two spellings differ on
purpose: list options take one value per flag (`--target coreml --target tflite`, or
`--target coreml,tflite`), and options that are on by default are switched off by a `--no-` flag.

Reading a value (`read`) checks its type the same way for a plan's TOML and for Python callers;
`request.py` then checks ranges, combinations, files and folders before anything is read.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from dataclasses import KW_ONLY, dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import BadInput
from .files import HUB_PREFIX
from .names import derived_name
from .targets import (
    CALIBRATED,
    DEFAULT_SOC,
    INPUT_KINDS,
    IOS_TARGETS,
    QUANTS,
    SOCS,
    TARGETS,
    TFLITE_LAYOUTS,
    ExportOptions,
    split_list,
)

# What `effconvert CHECKPOINT` builds with no --target/--quant, from every entry point: the phone
# formats of both platforms (Core ML for the iPhone's Neural Engine, TFLite for Android), in fp16,
# the precision both run on their accelerators without calibration images.
DEFAULT_TARGETS = ("coreml", "tflite")
DEFAULT_QUANTS = ("fp16",)


def _option(
    default: Any,
    help: str,
    *,
    short: str | None = None,
    off: str | None = None,
    choices: tuple[Any, ...] | None = None,
    quants: tuple[str, ...] = (),
    strict: bool = False,
    metavar: str | None = None,
) -> Any:
    """A Request field that is an option (see `Option` for the arguments)."""
    spec = {
        "help": help,
        "short": short,
        "off": off,
        "choices": choices,
        "quants": quants,
        "strict": strict,
        "metavar": metavar,
    }
    return field(default=default, metadata={"option": spec})


@dataclass(frozen=True)
class Request:
    """What a user asks for: one checkpoint and its options (the table above)."""

    checkpoint: Path | str  # a file, a snapshot folder, or "hf-hub:ORG/NAME"
    targets: tuple[str, ...] = _option(
        DEFAULT_TARGETS,
        "Targets: " + ", ".join(TARGETS) + ", or all (every target but those validated on a "
        "simulator: " + ", ".join(t.name for t in TARGETS.values() if not t.in_all) + "); a pair a target does "
        "not offer is skipped with a note",
        short="-t",
        metavar="TARGET",
    )
    quants: tuple[str, ...] = _option(
        DEFAULT_QUANTS,
        "; ".join(f"{q} ({', '.join(t.name for t in TARGETS.values() if q in t.quants)})" for q in QUANTS),
        short="-q",
        metavar="QUANT",
    )
    out: Path | None = _option(None, "Output folder (default: effconvert-out/<checkpoint name>)", short="-o")
    _: KW_ONLY  # the rest by name: twenty positional fields read as noise
    arch: str | None = _option(None, "Architecture override, e.g. fastvit_s12 (default: read from the weights)")
    image_size: int | None = _option(None, "Input resolution (default: the model's)")
    samples: int = _option(32, "Validation inputs")
    val: Path | None = _option(None, "Folder of validation images (class sub-folders: task accuracy too)")
    calib: Path | None = _option(
        None, "Folder of calibration images (default: a built-in set)", quants=CALIBRATED, strict=True
    )
    calib_samples: int = _option(64, "Calibration images to use", quants=CALIBRATED)
    fallback: bool = _option(
        True,
        "Keep the most int8-sensitive layers in float (16-bit on the HTP) when the gate fails",
        off="Keep every layer int8 even if the gate fails",
        quants=("int8",),
    )
    equalize: bool = _option(
        True,
        "Migrate activation range into the weights before int8 where the simulation says it helps",
        off="Quantize the fused model's own scales (to measure the migration's effect)",
        quants=("int8",),
    )
    bias_correction: bool = _option(
        True,
        "Correct each conv/linear's bias for int8's mean error where the simulation says it helps",
        off="Keep the biases as they are (to measure the correction's effect)",
        quants=("int8",),
    )
    int8_io: bool = _option(False, "Integer input/output tensors", quants=("int8",))
    palettize: int | None = _option(None, "Also write N-bit palettized weights", choices=(4, 6))
    gate: str | None = _option(None, "Override gates, e.g. psnr=40,top1=0.995")
    labels: Path | None = _option(None, "Labels file, one per line (default: the checkpoint's, else ImageNet's)")
    fuse: bool = _option(
        True,
        "Fuse (reparameterize, fold BatchNorm and layer scales) before converting",
        off="Convert the unfused model",
    )
    validate: bool = _option(
        True,
        "Run every artifact on its runtime against PyTorch",
        off="Skip runtime parity (the report says not validated)",
    )
    dynamic_batch: bool = _option(False, "Dynamic batch axis")
    layout: str = _option("nhwc", "Input layout", choices=TFLITE_LAYOUTS)
    ios: int = _option(16, "Minimum iOS", choices=IOS_TARGETS)
    input: str = _option("image", "Model input: an RGB image or a normalised tensor", choices=INPUT_KINDS)
    soc: str = _option(
        DEFAULT_SOC,
        "Snapdragon SoC to compile for: " + ", ".join(f"{s.name} ({s.marketing}, {s.phone})" for s in SOCS.values()),
        choices=tuple(SOCS),
    )
    npu_only: bool = _option(False, "Refuse the artifact unless every node runs on the NPU (no CPU fallback)")
    mean: tuple[float, float, float] | None = _option(
        None,
        "Preprocessing mean per RGB channel on 0..1 pixels, e.g. 0.5,0.5,0.5 (default: the checkpoint's "
        "config.json, else timm's)",
    )
    std: tuple[float, float, float] | None = _option(None, "Preprocessing std per RGB channel, e.g. 0.5,0.5,0.5")
    crop_pct: float | None = _option(None, "Eval crop fraction (resize to size/crop_pct, centre-crop)")

    def export_options(self) -> ExportOptions:
        return ExportOptions(
            layout=self.layout,
            ios=self.ios,
            input_kind=self.input,
            dynamic_batch=self.dynamic_batch,
            soc=self.soc,
            npu_only=self.npu_only,
        )

    def options(self) -> dict[str, Any]:
        """Everything that shapes the artifacts, as JSON (report.json's `options`; what a batch
        --resume compares): every option but --out (the checkpoint's sha256 stands for the file)."""
        return {o.name: _plain(getattr(self, o.name)) for o in OPTIONS if o.name != "out"}

    @property
    def output_dir(self) -> Path:
        return Path(self.out) if self.out else default_out_dir(self.checkpoint)


# --- the table, as data -------------------------------------------------------------------------

# What each option's Python type reads as (the same for a plan's TOML and a Python caller).
KINDS = {
    "tuple[str, ...]": "texts",
    "int": "int",
    "int | None": "int",
    "bool": "bool",
    "float | None": "number",
    "str": "text",
    "str | None": "text",
    "Path | None": "path",
    "tuple[float, float, float] | None": "three",
}


@dataclass(frozen=True)
class Option:
    name: str  # Request field = API keyword = plan key
    kind: str  # a value of KINDS
    default: Any
    help: str
    short: str | None  # a one-letter CLI alias
    off: str | None  # on by default: the CLI flag is --no-NAME, and this is what it does
    choices: tuple[Any, ...] | None
    quants: tuple[str, ...]  # applies only to these quants (empty: every quant)
    strict: bool  # refused when no pair uses those quants
    metavar: str | None

    @property
    def negated(self) -> bool:
        return self.off is not None

    @property
    def flag(self) -> str:
        """The CLI flag: one value per flag for lists (--target), --no-NAME for negated options."""
        name = self.name.replace("_", "-")
        if self.kind == "texts":
            name = name.removesuffix("s")
        return f"--no-{name}" if self.negated else f"--{name}"

    @property
    def targets(self) -> tuple[str, ...]:
        """The targets whose row names this option (empty: every target)."""
        return tuple(t.name for t in TARGETS.values() if self.name in t.options)

    @property
    def applies(self) -> str:
        """Where it applies, as help prefixes it: "Core ML", "int8, w8a16", ... ("" everywhere)."""
        return ", ".join(self.targets + self.quants)

    @property
    def full_help(self) -> str:
        """The help of the option's name (the API's and the plan's view)."""
        text = self.help + (f": {' | '.join(map(str, self.choices))}" if self.choices else "")
        return f"{self.applies}: {text}" if self.applies else text

    @property
    def flag_help(self) -> str:
        """The help of the CLI flag (a --no- flag says what switching off does)."""
        text = self.off if self.off is not None else self.help
        return f"{self.applies}: {text}" if self.applies else text


def _table() -> tuple[Option, ...]:
    # The annotations as written (this module postpones their evaluation): "int | None", "Path | None".
    return tuple(
        Option(f.name, KINDS[str(f.type)], f.default, **f.metadata["option"])
        for f in fields(Request)
        if "option" in f.metadata
    )


OPTIONS: tuple[Option, ...] = _table()
BY_NAME: dict[str, Option] = {o.name: o for o in OPTIONS}


def request_from(checkpoint: Path | str, values: Mapping[str, Any], *, where: str = "") -> Request:
    """A Request from option values given by name (the API's keywords, a plan's keys, the CLI's
    parsed flags): unknown names refused with the closest known one, each value's type checked."""
    options = {}
    for key, value in values.items():
        name = key.replace("-", "_")
        spec = BY_NAME.get(name)
        if spec is None:
            close = difflib.get_close_matches(name, list(BY_NAME), n=1)
            raise BadInput(
                f"{where}unknown option {key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""),
                hint="options: " + ", ".join(BY_NAME),
            )
        options[name] = read(spec, value, f"{where}{key}")
    if isinstance(checkpoint, str) and not checkpoint.startswith(HUB_PREFIX):
        checkpoint = Path(checkpoint).expanduser()
    return Request(checkpoint, **options)


def read(option: Option, value: Any, where: str) -> Any:
    """`value` as `option`'s type; a wrong type is one line naming `where` (exit 2)."""
    if value is None and option.default is None:
        return None
    kind = option.kind
    if kind == "texts":
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, Iterable) or isinstance(items, Mapping):
            raise BadInput(_wrong(where, "a string or a list of strings", value))
        texts = [_text(item, where) for item in items]
        if not split_list(texts):
            raise BadInput(_wrong(where, "a string or a non-empty list of strings", value))
        return tuple(split_list(texts))
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadInput(_wrong(where, "an integer", value))
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise BadInput(_wrong(where, "true or false", value))
        return value
    if kind == "number":
        return _number(value, where)
    if kind == "text":
        return _text(value, where)
    if kind == "path":
        if not isinstance(value, (str, Path)) or not str(value).strip():
            raise BadInput(_wrong(where, "a path", value))
        return Path(value).expanduser()
    if kind == "three":
        if isinstance(value, str) or not isinstance(value, Iterable) or len(items := list(value)) != 3:
            raise BadInput(_wrong(where, "3 numbers, one per RGB channel", value))
        return tuple(_number(v, f"{where}[{i}]") for i, v in enumerate(items))
    raise AssertionError(f"option kind {kind!r} has no reader")


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadInput(_wrong(where, "a non-empty string", value))
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BadInput(_wrong(where, "a finite number", value))
    return float(value)


def _wrong(where: str, what: str, value: Any) -> str:
    return f"{where} must be {what}, not {value!r}"[:300]


def three_numbers(flag: str, text: str | None) -> tuple[float, ...] | None:
    """'0.485,0.456,0.406' (the CLI's form of a `three` option) -> three floats."""
    if text is None:
        return None
    try:
        values = tuple(float(part) for part in text.replace(" ", ",").split(",") if part)
    except ValueError:
        values = ()
    if len(values) != 3:
        raise BadInput(
            f"{flag} {text!r} needs 3 comma-separated numbers, one per RGB channel", hint=f"e.g. {flag} 0.5,0.5,0.5"
        )
    return values


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return str(value) if isinstance(value, Path) else value


CHECKPOINT_SUFFIXES = (".pth.tar", ".safetensors", ".pth", ".pt", ".tar", ".bin", ".ckpt")


def default_out_dir(checkpoint: Path | str) -> Path:
    """effconvert-out/<checkpoint name without its suffix> (an hf-hub id: ORG--NAME), made a safe
    folder name (`...pth` would otherwise name `..`: names.py)."""
    text = str(checkpoint)
    if text.startswith(HUB_PREFIX):
        return Path("effconvert-out") / derived_name(text[len(HUB_PREFIX) :].replace("/", "--"))
    name = Path(checkpoint).name
    for suffix in CHECKPOINT_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return Path("effconvert-out") / derived_name(name)
