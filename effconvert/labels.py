"""Class labels embedded in artifacts: ImageNet-1k names (shipped inside timm, no download) for
1000-class heads, a user file otherwise, numbered placeholders as the last resort."""

from __future__ import annotations

from pathlib import Path

from .errors import BadInput

IMAGENET_CLASSES = 1000


def imagenet_labels() -> list[str]:
    from timm.data import ImageNetInfo

    info = ImageNetInfo("imagenet-1k")
    return [info.index_to_description(i) for i in range(IMAGENET_CLASSES)]


def labels_for(num_classes: int, labels_file: Path | None = None) -> tuple[list[str], str]:
    """(labels, source) for a head with `num_classes` outputs."""
    if labels_file is not None:
        try:
            labels = [line.strip() for line in Path(labels_file).read_text(encoding="utf-8").splitlines()
                      if line.strip()]
        except OSError as exc:
            raise BadInput(f"cannot read labels file {labels_file}: {exc.strerror}") from exc
        if len(labels) != num_classes:
            raise BadInput(f"labels file has {len(labels)} labels, the model has {num_classes} classes")
        return labels, Path(labels_file).name
    if num_classes == IMAGENET_CLASSES:
        return imagenet_labels(), "imagenet-1k"
    return [f"class_{i}" for i in range(num_classes)], "numbered"
