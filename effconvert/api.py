"""The public Python API: the whole pipeline in one call, or its stages one at a time.

    import effconvert
    result = effconvert.convert("fastvit_s12.pth", targets=["coreml"], quants=["fp16"])
    result.passed, [a.path for a in result.artifacts], result.report["artifacts"][0]["parity"]

    loaded = effconvert.load("fastvit_s12.pth")            # LoadedModel: timm module + provenance
    fused = effconvert.fuse(loaded)                         # FusedModel: deploy form + its proof
    check = effconvert.validate("out/fastvit_s12_fp16.mlpackage", loaded)   # Validation

Every error a user can cause raises `effconvert.EffconvertError` (subclasses: BadInput,
ConversionFailed, ParityFailed), each with `.message`, `.hint` and the CLI's `.exit_code`.
The CLI (cli.py) is a thin shell over `convert`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from .errors import BadInput
from .fuse import FusedModel, fuse_model
from .load import LoadedModel, load_checkpoint
from .pipeline import PROOF_SAMPLES, Request, StepCallback, run
from .targets import target_of
from .validate import Validation, gate_for, input_set, validate_artifact
from .validate.inputs import InputSet

__all__ = ["ArtifactResult", "Result", "convert", "load", "fuse", "validate"]


@dataclass(frozen=True)
class ArtifactResult:
    """One (target, quant) of a conversion, as report.json describes it."""

    target: str
    quant: str
    path: Path | None            # None when the conversion failed (see `error`)
    size_bytes: int | None
    runtime: str | None          # what executed it for parity, e.g. "litert", "coreml-mil-executor"
    parity: dict[str, Any]       # the report's parity block: metrics, thresholds, failures
    passed: bool
    error: str | None = None


@dataclass(frozen=True)
class Result:
    """What `convert` produced: the artifacts, the report (the dict report.json holds) and the
    exit code the CLI would return (0 passed, 1 a gate failed, 3 a conversion failed)."""

    artifacts: list[ArtifactResult]
    report: dict[str, Any]
    report_path: Path
    out_dir: Path
    exit_code: int

    @property
    def passed(self) -> bool:
        return self.exit_code == 0


def convert(checkpoint: str | Path, targets: Iterable[str] = ("coreml",), quants: Iterable[str] = ("fp16",), *,
            out_dir: str | Path | None = None, arch: str | None = None, image_size: int | None = None,
            samples: int = 32, val_dir: str | Path | None = None, calib_dir: str | Path | None = None,
            calib_samples: int = 64, gate: str | None = None, fuse: bool = True, validate: bool = True,
            labels_file: str | Path | None = None, dynamic_batch: bool = False, layout: str = "nhwc",
            ios: int = 16, input_kind: str = "image", int8_io: bool = False, palettize: int | None = None,
            fallback: bool = True, mean: Iterable[float] | None = None, std: Iterable[float] | None = None,
            crop_pct: float | None = None, on_step: StepCallback | None = None) -> Result:
    """Convert `checkpoint` to every (target, quant) pair, validate each artifact on its runtime and
    write report.json/report.html into `out_dir` (default `effconvert-out/<checkpoint stem>`).

    `checkpoint`: a file, a Hugging Face / timm snapshot folder, or `hf-hub:ORG/NAME` (local cache).
    Targets: coreml, tflite, onnx, executorch, all. Quants: fp32, fp16, int8-weights, int8, pal6, pal4
    (as each target supports: see `effconvert.targets.TARGETS`). The keyword options are the CLI's.
    Raises EffconvertError for bad input; a failed gate or conversion is in the result, not raised.
    """
    path = lambda value: None if value is None else Path(value)   # noqa: E731
    request = Request(
        checkpoint if str(checkpoint).startswith("hf-hub:") else Path(checkpoint), targets=tuple(targets), quants=tuple(quants), out_dir=path(out_dir), arch=arch,
        image_size=image_size, samples=samples, val_dir=path(val_dir), gate=gate, fuse=fuse, validate=validate,
        labels_file=path(labels_file), dynamic_batch=dynamic_batch, layout=layout, ios=ios, input_kind=input_kind,
        calib_dir=path(calib_dir), calib_samples=calib_samples, int8_io=int8_io, palettize=palettize,
        fallback=fallback, mean=None if mean is None else tuple(mean), std=None if std is None else tuple(std),
        crop_pct=crop_pct)
    outcome = run(request, on_step=on_step or (lambda step, message: None))
    artifacts = [ArtifactResult(
        target=e["target"], quant=e["quant"], path=outcome.out_dir / e["path"] if e.get("path") else None,
        size_bytes=e.get("size_bytes"), runtime=e.get("runtime"), parity=e.get("parity", {}),
        passed=not e.get("error") and e.get("parity", {}).get("passed", False), error=e.get("error"))
        for e in outcome.report["artifacts"]]
    return Result(artifacts, outcome.report, outcome.report_path, outcome.out_dir, outcome.exit_code)


def load(checkpoint: str | Path, *, arch: str | None = None, image_size: int | None = None) -> LoadedModel:
    """Read a checkpoint safely (no code from the file runs), recognise its family and layout,
    remap it to timm's keys and load it strictly into the timm model."""
    return load_checkpoint(Path(checkpoint), arch=arch, image_size=image_size)


def fuse(model: LoadedModel, *, inputs: InputSet | None = None) -> FusedModel:
    """The deploy form of a loaded model (reparameterized, BatchNorms and layer scales folded),
    with the numerical proof that it computes what the loaded model computes."""
    import torch

    images = inputs if inputs is not None else input_set(model.preprocessing, samples=PROOF_SAMPLES)
    return fuse_model(model.model, inputs=torch.from_numpy(images.inputs))


def validate(artifact: str | Path, model: LoadedModel, inputs: InputSet | None = None, *,
             quant: str | None = None, gate: str | None = None) -> Validation:
    """Run `artifact` on its runtime against `model` (the PyTorch reference) on `inputs` (default:
    32 built-in images through the model's preprocessing) and judge it by the gate of its quant
    mode (read from the artifact's metadata unless given), overridden by `gate` ("psnr=40,...")."""
    import numpy as np
    import torch

    from .convert import Artifact
    from .convert.metadata import read_provenance

    artifact = Path(artifact)
    if not artifact.exists():
        raise BadInput(f"artifact not found: {artifact}")
    meta = read_provenance(artifact)
    quant = quant or meta.get("effconvert.quant")
    if quant is None:
        raise BadInput(f"{artifact.name} carries no effconvert metadata", hint="pass quant='fp16' (or the mode)")
    images = inputs if inputs is not None else input_set(model.preprocessing, samples=32)
    with torch.no_grad():
        reference = np.concatenate([model.model(torch.from_numpy(images.inputs[i:i + 8])).numpy()
                                    for i in range(0, len(images.inputs), 8)])
    # The runtime reads the input layout from the artifact itself when the metadata has none.
    found = Artifact(target_of(artifact).name, quant, artifact, 0.0, meta.get("effconvert.input_layout", ""))
    return validate_artifact(found, images, reference, gate=gate_for(quant, gate))
