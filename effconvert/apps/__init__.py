"""`effconvert app ios|android`: copy a sample app template and embed an artifact plus its
manifest, so the project builds without edits. The templates are the source projects in the
repository's `apps/` folder.

| platform | artifact    | where the model goes                         | manifest                      |
|----------|-------------|----------------------------------------------|-------------------------------|
| ios      | .mlpackage  | EffconvertClassifier/Model.mlpackage         | EffconvertClassifier/manifest.json |
| android  | .tflite     | app/src/main/assets/model.tflite (LiteRT, the default) | app/src/main/assets/manifest.json |
| android  | .pte        | app/src/main/assets/model.pte (ExecuTorch)   | app/src/main/assets/manifest.json |
| android  | .qnn.onnx   | app/src/main/assets/model.qnn.onnx (ONNX Runtime + QNN, the NPU) | app/src/main/assets/manifest.json |
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable, Iterable
from typing import Any

from ..atomic import atomic_path
from ..errors import BadInput
from ..targets import TARGETS
from .manifest import coreml_manifest, executorch_manifest, qnn_manifest, tflite_manifest

TEMPLATES = Path(__file__).resolve().parents[2] / "apps"


@dataclass(frozen=True)
class Model:
    target: str                  # a row of the target table (targets.py)
    path: str                    # where the artifact goes in the project
    manifest: Callable[[Path], dict[str, Any]]

    @property
    def suffix(self) -> str:
        return TARGETS[self.target].suffix


@dataclass(frozen=True)
class Platform:
    name: str
    template: str
    manifest_path: str
    models: tuple[Model, ...]    # the artifacts its app can run; the first is the default

    @property
    def target(self) -> str:
        return self.models[0].target

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(m.target for m in self.models)

    @property
    def suffix(self) -> str:
        return self.models[0].suffix

    @property
    def model_path(self) -> str:
        return self.models[0].path

    def model_for(self, artifact: Path) -> Model | None:
        """The model slot for `artifact`: the one of its target (.qnn.onnx is not an .onnx here)."""
        from ..targets import target_of

        try:
            target = target_of(artifact).name
        except BadInput:
            return None
        return next((m for m in self.models if m.target == target), None)


PLATFORMS: dict[str, Platform] = {p.name: p for p in (
    Platform("ios", "ios", "EffconvertClassifier/manifest.json",
             (Model("coreml", "EffconvertClassifier/Model.mlpackage", coreml_manifest),)),
    Platform("android", "android", "app/src/main/assets/manifest.json",
             (Model("tflite", "app/src/main/assets/model.tflite", tflite_manifest),
              Model("executorch", "app/src/main/assets/model.pte", executorch_manifest),
              Model("qnn", "app/src/main/assets/model.qnn.onnx", qnn_manifest))),
)}


def either(names: Iterable[str]) -> str:
    """'.tflite, .pte or .qnn.onnx'"""
    items = list(names)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


@dataclass(frozen=True)
class AppProject:
    platform: str
    path: Path
    model: Path
    manifest: dict[str, Any]


def embed_app(platform: str, artifact: Path, out: Path) -> AppProject:
    spec = PLATFORMS.get(platform)
    if spec is None:
        raise BadInput(f"unknown app platform {platform!r}", hint=f"choose from: {', '.join(PLATFORMS)}")
    artifact = Path(artifact)
    if not artifact.exists():
        raise BadInput(f"artifact not found: {artifact}")
    model_spec = spec.model_for(artifact)
    if model_spec is None:
        takes = either(m.suffix for m in spec.models)
        wanted = "; ".join(f"{p.name}: {either(m.suffix for m in p.models)}" for p in PLATFORMS.values())
        raise BadInput(f"{artifact.name} cannot go into the {platform} app: it needs a {takes} artifact",
                       hint=f"apps take {wanted}")
    template = TEMPLATES / spec.template
    if not template.is_dir():
        raise BadInput(f"app template not found at {template}",
                       hint="effconvert app needs the repository's apps/ folder (install from a checkout)")
    manifest = model_spec.manifest(artifact)
    out = Path(out)
    with atomic_path(out) as tmp:
        shutil.copytree(template, tmp, ignore=shutil.ignore_patterns("build", ".gradle", "*.xcuserstate"))
        model = tmp / model_spec.path
        model.parent.mkdir(parents=True, exist_ok=True)
        if artifact.is_dir():
            shutil.copytree(artifact, model)
        else:
            shutil.copyfile(artifact, model)
        (tmp / spec.manifest_path).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return AppProject(platform, out, out / model_spec.path, manifest)
