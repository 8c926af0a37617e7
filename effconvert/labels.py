"""Class labels embedded in artifacts: ImageNet-1k names (shipped inside timm, no download) for
1000-class heads, a user file otherwise, numbered placeholders as the last resort."""

from __future__ import annotations

from pathlib import Path

from .errors import BadInput
from .limits import MAX_LABELS_BYTES

IMAGENET_CLASSES = 1000


def imagenet_labels() -> list[str]:
    from timm.data import ImageNetInfo

    info = ImageNetInfo("imagenet-1k")
    return [info.index_to_description(i) for i in range(IMAGENET_CLASSES)]


def read_labels_file(path: Path) -> list[str]:
    """The non-empty lines of a UTF-8 text file; anything else (binary, huge, missing) is refused."""
    if not path.exists():
        raise BadInput(f"--labels file not found: {path}")
    if not path.is_file():
        raise BadInput(f"--labels {path} is not a file")
    if path.stat().st_size > MAX_LABELS_BYTES:
        raise BadInput(
            f"--labels {path} is {path.stat().st_size:,} bytes; a labels file is at most "
            f"{MAX_LABELS_BYTES:,} (one class name per line)"
        )
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise BadInput(f"cannot read --labels {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise BadInput(
            f"--labels {path} is not UTF-8 text (byte {exc.start} is 0x{exc.object[exc.start]:02x})",
            hint="one class name per line, UTF-8",
        ) from None
    if "\x00" in text:
        raise BadInput(
            f"--labels {path} is a binary file (it contains NUL bytes)", hint="one class name per line, UTF-8"
        )
    return [line.strip() for line in text.splitlines() if line.strip()]


def labels_for(
    num_classes: int, labels_file: Path | None = None, known: tuple[str, ...] | None = None
) -> tuple[list[str], str]:
    """(labels, source) for a head with `num_classes` outputs: the user's file, the names the
    checkpoint came with (`known`, from a snapshot's config.json), ImageNet's, or numbers."""
    if labels_file is not None:
        labels = read_labels_file(Path(labels_file))
        if len(labels) != num_classes:
            raise BadInput(f"labels file has {len(labels)} labels, the model has {num_classes} classes")
        return labels, Path(labels_file).name
    if known:
        return list(known), "config.json label_names"
    if num_classes == IMAGENET_CLASSES:
        return imagenet_labels(), "imagenet-1k"
    return [f"class_{i}" for i in range(num_classes)], "numbered"
