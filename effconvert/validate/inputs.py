"""Validation inputs: a folder of the user's images, or built-in natural-looking images, both
through the model's own preprocessing (load/preprocessing.py), the path the artifacts' embedded
metadata describes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import BadInput
from ..load.preprocessing import Preprocessing
from ..runtime import Batch
from .natural_images import natural_images

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
BUILTIN_SEED = 20_260


@dataclass(frozen=True)
class InputSet:
    pixels: np.ndarray        # N, H, W, 3 uint8 at the model's input size (what an app feeds)
    inputs: np.ndarray        # N, 3, H, W float32, normalised (what the model computes on)
    source: str               # "built-in synthetic natural images (seed ...)" or the folder
    # ImageFolder layout (one sub-folder per class, sorted = class index, torchvision's rule):
    # the true class of every input, for task accuracy. None for unlabelled inputs.
    labels: np.ndarray | None = None
    class_folders: tuple[str, ...] = ()

    @property
    def batch(self) -> Batch:
        """What a runtime runs: both forms of the same images."""
        return Batch(self.inputs, self.pixels)


def input_set(preprocessing: Preprocessing, *, samples: int, folder: Path | None = None,
              seed: int = BUILTIN_SEED) -> InputSet:
    if samples < 1:
        raise BadInput(f"--samples must be at least 1, got {samples}")
    if folder is None:
        h, w = preprocessing.size
        raw = natural_images(samples, (int(h * 1.15), int(w * 1.15)), seed=seed)
        images = [Image.fromarray(img) for img in raw]
        source = f"built-in synthetic natural images (seed {seed})"
        labels, classes = None, ()
    else:
        images, labels, classes = _read_folder(Path(folder), samples)
        source = str(folder)
    pixels = np.stack([preprocessing.pixels(img) for img in images])
    return InputSet(pixels, preprocessing.normalize(pixels), source, labels, classes)


def _read_folder(folder: Path, samples: int) -> tuple[list[Image.Image], np.ndarray | None, tuple[str, ...]]:
    if not folder.is_dir():
        raise BadInput(f"image folder not found: {folder}")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise BadInput(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {folder}")
    classes = tuple(sorted(d.name for d in folder.iterdir() if d.is_dir()))
    labelled = bool(classes) and all(p.parent.parent == folder for p in files)
    if labelled:
        # Round-robin over classes, so --samples N covers every class rather than the first few.
        by_class = [[p for p in files if p.parent.name == c] for c in classes]
        picked: list[tuple[Path, int]] = []
        for depth in range(max(len(b) for b in by_class)):
            picked += [(b[depth], i) for i, b in enumerate(by_class) if depth < len(b)]
        picked = picked[:samples]
    else:
        picked, classes = [(p, -1) for p in files[:samples]], ()
    images = []
    for path, _ in picked:
        try:
            with Image.open(path) as img:
                images.append(img.convert("RGB"))
        except (UnidentifiedImageError, OSError) as exc:
            raise BadInput(f"cannot read image {path}: {exc}") from exc
    labels = np.array([label for _, label in picked]) if labelled else None
    return images, labels, classes
