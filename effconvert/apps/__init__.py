"""`effconvert app ios|android`: copy a sample app template and embed an artifact plus its
manifest, so the project builds without edits. The templates are the source projects in the
repository's `apps/` folder.

| platform | artifact    | where the model goes                         | manifest                      |
|----------|-------------|----------------------------------------------|-------------------------------|
| ios      | .mlpackage  | EffconvertClassifier/Model.mlpackage         | EffconvertClassifier/manifest.json |
| android  | .tflite     | app/src/main/assets/model.tflite             | app/src/main/assets/manifest.json |
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..atomic import atomic_path
from ..errors import BadInput
from ..targets import TARGETS
from .manifest import coreml_manifest, tflite_manifest

TEMPLATES = Path(__file__).resolve().parents[2] / "apps"


@dataclass(frozen=True)
class Platform:
    name: str
    target: str                  # a row of the target table (targets.py)
    template: str
    model_path: str
    manifest_path: str
    manifest: Callable[[Path], dict[str, Any]]

    @property
    def suffix(self) -> str:
        return TARGETS[self.target].suffix


PLATFORMS: dict[str, Platform] = {p.name: p for p in (
    Platform("ios", "coreml", "ios", "EffconvertClassifier/Model.mlpackage",
             "EffconvertClassifier/manifest.json", coreml_manifest),
    Platform("android", "tflite", "android", "app/src/main/assets/model.tflite",
             "app/src/main/assets/manifest.json", tflite_manifest),
)}


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
    if not artifact.name.endswith(spec.suffix):
        wanted = " or ".join(f"{p.suffix} for {p.name}" for p in PLATFORMS.values())
        raise BadInput(f"{artifact.name} cannot go into the {platform} app: it needs a {spec.suffix} artifact",
                       hint=f"apps take {wanted}")
    template = TEMPLATES / spec.template
    if not template.is_dir():
        raise BadInput(f"app template not found at {template}",
                       hint="effconvert app needs the repository's apps/ folder (install from a checkout)")
    manifest = spec.manifest(artifact)
    out = Path(out)
    with atomic_path(out) as tmp:
        shutil.copytree(template, tmp, ignore=shutil.ignore_patterns("build", ".gradle", "*.xcuserstate"))
        model = tmp / spec.model_path
        model.parent.mkdir(parents=True, exist_ok=True)
        if artifact.is_dir():
            shutil.copytree(artifact, model)
        else:
            shutil.copyfile(artifact, model)
        (tmp / spec.manifest_path).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return AppProject(platform, out, out / spec.model_path, manifest)
