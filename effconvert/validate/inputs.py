"""Validation inputs: a folder of the user's images, or built-in natural-looking images, both
through the model's own preprocessing (load/preprocessing.py), the path the artifacts' embedded
metadata describes."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import BadInput
from ..limits import MAX_IMAGE_PIXELS
from ..load.preprocessing import Preprocessing
from ..quiet import first_line
from ..runtime import Batch
from .natural_images import natural_images

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
BUILTIN_SEED = 20_260


@dataclass(frozen=True)
class InputSet:
    pixels: np.ndarray  # N, H, W, 3 uint8 at the model's input size (what an app feeds)
    inputs: np.ndarray  # N, 3, H, W float32, normalised (what the model computes on)
    source: str  # "built-in synthetic natural images (seed ...)" or the folder
    # ImageFolder layout (one sub-folder per class, sorted = class index, torchvision's rule):
    # the true class of every input, for task accuracy. None for unlabelled inputs.
    labels: np.ndarray | None = None
    class_folders: tuple[str, ...] = ()

    @property
    def batch(self) -> Batch:
        """What a runtime runs: both forms of the same images."""
        return Batch(self.inputs, self.pixels)

    def first(self, n: int) -> InputSet:
        """The first `n` inputs (a slow runtime's budget), labels kept in step."""
        labels = None if self.labels is None else self.labels[:n]
        return replace(self, pixels=self.pixels[:n], inputs=self.inputs[:n], labels=labels)


def input_set(
    preprocessing: Preprocessing,
    *,
    samples: int,
    folder: Path | None = None,
    seed: int = BUILTIN_SEED,
    flag: str = "--val",
) -> InputSet:
    if samples < 1:
        raise BadInput(f"{flag.replace('--val', '--samples')} must be at least 1, got {samples}")
    if folder is None:
        h, w = preprocessing.size
        raw = natural_images(samples, (int(h * 1.15), int(w * 1.15)), seed=seed)
        images = [Image.fromarray(img) for img in raw]
        source = f"built-in synthetic natural images (seed {seed})"
        labels, classes = None, tuple[str, ...]()
    else:
        images, labels, classes = _read_folder(Path(folder), samples, flag)
        source = str(folder)
    pixels = np.stack([preprocessing.pixels(img) for img in images])
    return InputSet(pixels, preprocessing.normalize(pixels), source, labels, classes)


def check_image_folder(folder: Path, samples: int, flag: str) -> None:
    """Refuse a folder that cannot give `samples` images, naming the first bad image, before any
    image is decoded (headers only: a decompression bomb is refused by its header)."""
    for path, _ in pick_images(folder, samples, flag)[0]:
        with open_image(path) as image:
            _check_complete(path, image.format)


def pick_images(folder: Path, samples: int, flag: str = "--val") -> tuple[list[tuple[Path, int]], tuple[str, ...]]:
    """The images a run uses, with their class index (-1 unlabelled), and the class folders.
    ImageFolder layout (one sub-folder per class) is labelled; anything else is not."""
    folder = Path(folder)
    if not folder.exists():
        raise BadInput(f"{flag} folder not found: {folder}")
    if not folder.is_dir():
        raise BadInput(f"{flag} {folder} is a file, not a folder of images")
    try:
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        classes = tuple(sorted(d.name for d in folder.iterdir() if d.is_dir()))
    except OSError as exc:
        raise BadInput(f"{flag} folder {folder} cannot be read: {exc.strerror or exc}") from None
    if not files:
        raise BadInput(f"{flag} folder {folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    labelled = bool(classes) and all(p.parent.parent == folder for p in files)
    if not labelled:
        return [(p, -1) for p in files[:samples]], ()
    # Round-robin over classes, so --samples N covers every class rather than the first few.
    by_class = [[p for p in files if p.parent.name == c] for c in classes]
    picked: list[tuple[Path, int]] = []
    for depth in range(max(len(b) for b in by_class)):
        picked += [(b[depth], i) for i, b in enumerate(by_class) if depth < len(b)]
    return picked[:samples], classes


def open_image(path: Path) -> Image.Image:
    """Open an image file's header, refusing what PIL cannot identify and what is too large to decode."""
    try:
        with _own_pixel_limit():
            image = Image.open(path)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        reason = "not an image PIL can decode" if isinstance(exc, UnidentifiedImageError) else first_line(exc)
        raise BadInput(f"cannot read image {path}: {reason}") from None
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        image.close()
        raise BadInput(
            f"image {path} is {width}x{height} = {width * height:,} pixels, more than the "
            f"{MAX_IMAGE_PIXELS:,} allowed (a decompression bomb, or a photo to downscale first)"
        )
    return image


# The bytes a complete file of the format ends with (near its end: writers may pad after them).
_TRAILERS = {"JPEG": b"\xff\xd9", "PNG": b"IEND"}
_TRAILER_WINDOW = 4096


def _check_complete(path: Path, kind: str | None) -> None:
    """A truncated JPEG or PNG (its end marker missing) is refused now, from its last bytes, rather
    than when it is decoded after the model has loaded."""
    trailer = _TRAILERS.get(kind or "")
    if trailer is None:
        return
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - _TRAILER_WINDOW))
        if trailer not in f.read():
            raise BadInput(f"cannot read image {path}: truncated ({kind} without its end marker)")


@contextlib.contextmanager
def _own_pixel_limit():
    """PIL's bomb check raises without the size; ours (on the header, before decoding) names it."""
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def _read_folder(folder: Path, samples: int, flag: str) -> tuple[list[Image.Image], np.ndarray | None, tuple[str, ...]]:
    picked, classes = pick_images(folder, samples, flag)
    images = []
    for path, _ in picked:
        try:
            with open_image(path) as img:
                images.append(img.convert("RGB"))
        except OSError as exc:  # a header that decodes, a body that does not
            raise BadInput(f"cannot read image {path}: {first_line(exc)}") from None
    labels = np.array([label for _, label in picked]) if classes else None
    return images, labels, classes
