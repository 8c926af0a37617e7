"""Sample apps: `effconvert app` embeds the artifact and a manifest that agrees with the
artifact's real signature; every Swift/Kotlin source parses; the app's preprocessing is the one
the manifest describes."""

from __future__ import annotations

import json
import math
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from effconvert.apps import PLATFORMS, TEMPLATES, embed_app

tree_sitter = pytest.importorskip("tree_sitter")


@pytest.fixture(scope="module")
def converted(t8_all):
    return t8_all  # the session's T8 run: its Core ML and TFLite fp16 artifacts go into the apps


@pytest.fixture(scope="module")
def projects(converted, tmp_path_factory):
    root = tmp_path_factory.mktemp("projects")
    ios = embed_app("ios", converted.out_dir / "fastvit_t8_fp16.mlpackage", root / "ios-app")
    android = embed_app("android", converted.out_dir / "fastvit_t8_fp16.tflite", root / "android-app")
    return {"ios": ios, "android": android, "report": converted.report.to_json()}


def _artifact_entry(report, target, quant="fp16"):
    return next(a for a in report["artifacts"] if (a["target"], a["quant"]) == (target, quant))


def test_ios_project_holds_model_and_manifest_matching_the_spec(projects):
    import coremltools as ct

    project = projects["ios"]
    assert (project.path / "EffconvertClassifier.xcodeproj" / "project.pbxproj").exists()
    assert (project.model / "Manifest.json").exists(), "the .mlpackage is copied whole"
    manifest = json.loads((project.path / PLATFORMS["ios"].manifest_path).read_text())
    spec = ct.utils.load_spec(str(project.model))
    [feature] = spec.description.input
    image = feature.type.imageType
    assert manifest["input_name"] == feature.name == "image" and manifest["input_layout"] == "image"
    assert manifest["input_shape"] == [1, 3, image.height, image.width] == [1, 3, 256, 256]
    assert manifest["output_name"] == "logits" and manifest["output_shape"] == [1, 1000]
    assert manifest["preprocessing"]["normalization"] == "in-model"
    assert manifest["sha256"] == _artifact_entry(projects["report"], "coreml")["sha256"]
    assert len(manifest["labels"]) == 1000 and manifest["arch"] == "fastvit_t8" and manifest["quant"] == "fp16"


def test_android_project_holds_model_and_manifest_matching_the_interpreter(projects):
    from ai_edge_litert.interpreter import Interpreter

    project = projects["android"]
    manifest = json.loads((project.path / PLATFORMS["android"].manifest_path).read_text())
    interpreter = Interpreter(model_path=str(project.model))
    [inp], [out] = interpreter.get_input_details(), interpreter.get_output_details()
    assert manifest["input_name"] == inp["name"] and manifest["input_shape"] == [int(d) for d in inp["shape"]]
    assert manifest["input_layout"] == "nhwc" and manifest["input_shape"] == [1, 256, 256, 3]
    assert manifest["output_name"] == out["name"] and manifest["output_shape"] == [int(d) for d in out["shape"]]
    assert manifest["preprocessing"]["mean"] == [0.485, 0.456, 0.406]
    assert manifest["sha256"] == _artifact_entry(projects["report"], "tflite")["sha256"]


def test_mismatched_artifact_is_refused_and_nothing_written(converted, tmp_path, cli):
    result = cli("app", "ios", "--artifact", converted.out_dir / "fastvit_t8_fp16.tflite", "--out", tmp_path / "x")
    assert result.exit_code == 2 and "needs a .mlpackage artifact" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "x").exists()
    result = cli(
        "app", "android", "--artifact", converted.out_dir / "fastvit_t8_fp16.mlpackage", "--out", tmp_path / "y"
    )
    assert result.exit_code == 2 and "needs a .tflite, .pte or .qnn.onnx artifact" in result.output
    result = cli("app", "windows", "--artifact", converted.out_dir / "fastvit_t8_fp16.tflite", "--out", tmp_path / "z")
    assert result.exit_code == 2 and "unknown app platform" in result.output


@pytest.mark.slow  # 13-51 s: in make test-slow (the default suite's budget)
def test_convert_with_app_flags_writes_both_projects(tmp_path, checkpoints, cli):
    result = cli(
        checkpoints("fastvit_t8"),
        "--target",
        "coreml",
        "--target",
        "tflite",
        "--no-validate",
        "--app",
        "ios",
        "--app",
        "android",
        "--out",
        tmp_path,
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "ios-app" / "EffconvertClassifier" / "Model.mlpackage").is_dir()
    assert (tmp_path / "android-app" / "app" / "src" / "main" / "assets" / "model.tflite").is_file()


def _parser(language: str):
    import tree_sitter_kotlin
    import tree_sitter_swift

    module = {"swift": tree_sitter_swift, "kotlin": tree_sitter_kotlin}[language]
    return tree_sitter.Parser(tree_sitter.Language(module.language()))


def _sources(root: Path, suffix: str) -> list[Path]:
    return sorted(root.rglob(f"*{suffix}"))


@pytest.mark.parametrize("language, suffix", [("swift", ".swift"), ("kotlin", ".kt"), ("kotlin", ".kts")])
def test_every_app_source_parses(language, suffix):
    parser = _parser(language)
    files = _sources(TEMPLATES, suffix)
    assert files, f"no {suffix} files in {TEMPLATES}"
    for path in files:
        tree = parser.parse(path.read_bytes())
        assert not tree.root_node.has_error, f"syntax error in {path.relative_to(TEMPLATES)}"


def test_parser_catches_a_syntax_error():
    assert _parser("swift").parse(b"struct A { func f( { }").root_node.has_error
    assert _parser("kotlin").parse(b"fun f( { val = }").root_node.has_error


def test_android_xml_and_xcode_project_are_well_formed():
    for path in _sources(TEMPLATES / "android", ".xml"):
        ET.parse(path)
    pbxproj = (TEMPLATES / "ios" / "EffconvertClassifier.xcodeproj" / "project.pbxproj").read_text()
    assert pbxproj.count("{") == pbxproj.count("}") and pbxproj.count("(") == pbxproj.count(")")
    defined = set(re.findall(r"^\t\t([0-9A-F]{24}) .*= \{", pbxproj, re.M))
    referenced = set(re.findall(r"\b([0-9A-F]{24})\b", pbxproj))
    assert defined and referenced <= defined, f"undefined objects: {referenced - defined}"
    assert "PBXFileSystemSynchronizedRootGroup" in pbxproj and "NSCameraUsageDescription" in pbxproj


def _kotlin_geometry(width: int, height: int, size: int, crop_pct: float) -> tuple[int, int, int, int]:
    """ImagePreprocessor.resizeAndCrop's arithmetic, transcribed (Kotlin round = half to even)."""
    scaled = math.floor(size / crop_pct)
    if width <= height:
        w, h = scaled, int(scaled * height / width)
    else:
        w, h = int(scaled * width / height), scaled
    return w, h, round((w - size) / 2.0), round((h - size) / 2.0)


def test_android_preprocessing_is_the_manifest_transform():
    """The Kotlin code's geometry and normalisation are the ones effconvert validates with."""
    from effconvert.load import Preprocessing

    source = (TEMPLATES / "android" / "app/src/main/java/dev/effconvert/classifier/ImagePreprocessor.kt").read_text()
    for expression in (
        "floor(size / manifest.cropPct).toInt()",
        "(scaled.toDouble() * source.height / source.width).toInt()",
        "(scaled.toDouble() * source.width / source.height).toInt()",
        "round((width - size) / 2.0).toInt()",
        "round((height - size) / 2.0).toInt()",
        "(rgb[c] - manifest.mean[c]) / manifest.std[c]",
        '"nchw"',
    ):
        assert expression in source, expression
    for arch in ("fastvit_t8", "fastvit_mci0"):
        pre = Preprocessing.from_timm(arch)
        size = pre.size[0]
        for width, height in ((640, 480), (480, 640), (1280, 720), (301, 299), (257, 1001), (999, 998)):
            from PIL import Image

            image = Image.new("RGB", (width, height))
            scaled_w, scaled_h, left, top = _kotlin_geometry(width, height, size, pre.crop_pct)
            boxes = []
            original_crop = Image.Image.crop
            Image.Image.crop = lambda self, box, boxes=boxes, crop=original_crop: (
                boxes.append((self.size, box)) or crop(self, box)
            )
            try:
                pre.resize_and_crop(image)
            finally:
                Image.Image.crop = original_crop
            [(resized, box)] = boxes
            assert resized == (scaled_w, scaled_h) and box[:2] == (left, top), (arch, width, height)


def test_ios_preprocessing_is_the_manifest_transform():
    """Vision keeps the central crop_pct (regionOfInterest), then the centre square, scaled to the
    input — the region timm's eval transform keeps; normalisation is inside the model."""
    source = (TEMPLATES / "ios" / "EffconvertClassifier" / "Classifier.swift").read_text()
    assert "request.imageCropAndScaleOption = .centerCrop" in source
    assert "let crop = CGFloat(manifest.preprocessing.cropPct)" in source
    assert "CGRect(x: (1 - crop) / 2, y: (1 - crop) / 2, width: crop, height: crop)" in source
    manifest_swift = (TEMPLATES / "ios" / "EffconvertClassifier" / "ModelManifest.swift").read_text()
    for key in ('"input_size"', '"crop_pct"', '"input_layout"', '"output_name"'):
        assert key in manifest_swift, key


def test_app_readmes_give_build_steps():
    for platform, words in (("ios", ("Xcode 16", "iOS 16")), ("android", ("gradlew", "minSdk 26"))):
        text = (TEMPLATES / platform / "README.md").read_text()
        assert all(w in text for w in words) and f"effconvert app {platform}" in text


def test_android_runtimes_are_the_exporters_versions():
    """The app's runtimes (one version catalog) are the versions of the exporters that write their
    models (constraints.txt): a newer exporter's model is not guaranteed to load in an older runtime."""
    import tomllib

    catalog = tomllib.loads((TEMPLATES / "android" / "gradle" / "libs.versions.toml").read_text())["versions"]
    pins = dict(
        line.split("==")
        for line in (TEMPLATES.parent / "constraints.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    for runtime, exporter in (
        ("litert", "ai-edge-litert"),
        ("executorch", "executorch"),
        ("onnxruntime", "onnxruntime"),
        ("onnxruntime-qnn", "onnxruntime-qnn"),
    ):
        assert catalog[runtime] == pins[exporter], (runtime, catalog[runtime], exporter, pins[exporter])
    qnn = pytest.importorskip("onnxruntime_qnn")
    assert catalog["qnn-runtime"] == qnn.build_and_package_info.qnn_version  # the SDK the binaries come from
    gradle = (TEMPLATES / "android" / "app" / "build.gradle.kts").read_text()
    assert not re.search(r'"[\w.-]+:[\w.-]+:\d', gradle), "a version outside the catalog"


def test_android_project_builds_from_the_command_line_with_its_wrapper():
    wrapper = TEMPLATES / "android" / "gradlew"
    assert wrapper.is_file() and os.access(wrapper, os.X_OK)
    assert (TEMPLATES / "android" / "gradle" / "wrapper" / "gradle-wrapper.jar").stat().st_size > 10_000
    properties = (TEMPLATES / "android" / "gradle" / "wrapper" / "gradle-wrapper.properties").read_text()
    assert "gradle-8.9-bin.zip" in properties  # the Gradle that Android Gradle Plugin 8.7 needs
    assert "./gradlew assembleDebug" in (TEMPLATES / "android" / "README.md").read_text()
