"""The public Python API: the whole pipeline in one call, or its stages one at a time.

    import effconvert
    result = effconvert.convert("fastvit_s12.pth", targets=["coreml"], quants=["fp16"])
    result.passed, result.files, result.artifacts[0].verdict.parity.psnr_db

    loaded = effconvert.load("fastvit_s12.pth")            # LoadedModel: timm module + provenance
    fused = effconvert.fuse(loaded)                         # FusedModel: deploy form + its proof
    check = effconvert.validate("out/fastvit_s12_fp16.mlpackage", loaded)   # Validation

`convert`'s keyword options are the CLI's, by the same names (options.py holds them once; the
keywords are also listed in `help(effconvert.convert)`). Every error a user can cause raises
`effconvert.EffconvertError` (subclasses: BadInput, ConversionFailed, ParityFailed), each with
`.message`, `.hint` and the CLI's `.exit_code`; a failed gate or conversion is in the result.

A call leaves the caller's process as it was: no allocator settings, temporary-folder or
environment changes, no child process left running, no signal handler replaced.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import BadInput
from .fuse import FusedModel, fuse_model
from .load import LoadedModel, load_checkpoint
from .options import OPTIONS, request_from
from .pipeline import EventCallback, run
from .pipeline.events import ignore
from .pipeline.steps import PROOF_SAMPLES
from .report.schema import ArtifactReport, Report
from .targets import target_of
from .validate import Validation, gate_for, input_set, validate_artifact
from .validate.inputs import InputSet

__all__ = ["Result", "convert", "fuse", "load", "validate"]


@dataclass(frozen=True)
class Result:
    """What `convert` produced: the typed report (what report.json holds), where it was written, and
    the exit code the CLI would return (0 passed, 1 a gate failed, 3 a conversion failed)."""

    report: Report
    report_path: Path
    out_dir: Path

    @property
    def artifacts(self) -> tuple[ArtifactReport, ...]:
        return self.report.artifacts

    @property
    def files(self) -> list[Path]:
        """Every artifact written, in the order asked for."""
        return [self.out_dir / a.path for a in self.report.artifacts if a.path]

    @property
    def exit_code(self) -> int:
        return self.report.exit_code

    @property
    def passed(self) -> bool:
        return self.exit_code == 0


def convert(checkpoint: str | Path, *, on_event: EventCallback | None = None, **options: Any) -> Result:
    """Convert `checkpoint` to every (target, quant) pair, validate each artifact on its runtime and
    write report.json/report.html into `out` (default `effconvert-out/<checkpoint stem>`).

    `checkpoint`: a file, a Hugging Face / timm snapshot folder, or `hf-hub:ORG/NAME` (local cache).
    `on_event`: called with each progress event (pipeline.events). Options, by keyword:
    """
    request = request_from(checkpoint, options, where="convert(): ")
    outcome = run(request, on_event or ignore)
    return Result(outcome.report, outcome.report_path, outcome.out_dir)


# help(), IDEs and the docs see every option with its default, from the one table.
_SIGNATURE = inspect.Signature(
    [
        inspect.Parameter("checkpoint", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation="str | Path"),
        *(
            inspect.Parameter(o.name, inspect.Parameter.KEYWORD_ONLY, default=o.default, annotation=o.kind)
            for o in OPTIONS
        ),
        inspect.Parameter("on_event", inspect.Parameter.KEYWORD_ONLY, default=None),
    ]
)
convert.__signature__ = _SIGNATURE  # type: ignore[attr-defined]  # a function object takes one
convert.__doc__ = (
    (convert.__doc__ or "") + "".join(f"\n    {o.name} = {o.default!r}: {o.full_help}" for o in OPTIONS) + "\n"
)


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


def validate(
    artifact: str | Path,
    model: LoadedModel,
    inputs: InputSet | None = None,
    *,
    quant: str | None = None,
    gate: str | None = None,
) -> Validation:
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
        reference = np.concatenate(
            [model.model(torch.from_numpy(images.inputs[i : i + 8])).numpy() for i in range(0, len(images.inputs), 8)]
        )
    target = target_of(artifact)
    # The runtime reads the input layout from the artifact itself when the metadata has none.
    found = Artifact(target.name, quant, artifact, 0.0, meta.get("effconvert.input_layout", ""))
    return validate_artifact(found, images, reference, gate=gate_for(quant, gate), budget=target.validation_budget)
