"""effconvert's own metadata inside a checkpoint (what make-checkpoint and the digits trainer write):
a pickled `effconvert` dict, or `effconvert.*` keys in a safetensors header.

A checkpoint is untrusted data, so its metadata is validated like a command-line option: a bad value
is refused with one line naming it (exit 2), never a crash deeper in the pipeline.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import BadInput
from ..limits import MAX_IMAGE_SIZE, MIN_IMAGE_SIZE

SAFETENSORS_PREFIX = "effconvert."
_TEXT_LIMIT = 200  # a longer string is shortened before it reaches a report


@dataclass(frozen=True)
class CheckpointMetadata:
    image_size: int | None = None  # the resolution the weights were trained at
    synthetic: bool = False  # make-checkpoint weights, not a trained model
    seed: int | None = None
    arch: str | None = None
    layout: str | None = None  # the layout make-checkpoint wrote

    def as_dict(self) -> dict[str, Any]:
        return {"synthetic": self.synthetic, "seed": self.seed, "arch": self.arch, "layout": self.layout}


def from_pickle(value: object) -> CheckpointMetadata:
    """The `effconvert` entry of a pickled checkpoint (absent: empty metadata)."""
    if value is None:
        return CheckpointMetadata()
    if not isinstance(value, Mapping):
        raise BadInput(f"checkpoint metadata 'effconvert' is a {type(value).__name__}, expected a dict")
    return _parse(value)


def from_safetensors(header: Mapping[str, str]) -> CheckpointMetadata:
    return _parse({k[len(SAFETENSORS_PREFIX) :]: v for k, v in header.items() if k.startswith(SAFETENSORS_PREFIX)})


def _parse(fields: Mapping[Any, Any]) -> CheckpointMetadata:
    return CheckpointMetadata(
        image_size=image_size_value(fields.get("image_size"), "checkpoint metadata image_size"),
        synthetic=fields.get("synthetic") in (True, "true", "True"),
        seed=_int_or_none(fields.get("seed")),
        arch=_text_or_none(fields.get("arch")),
        layout=_text_or_none(fields.get("layout")),
    )


def image_size_value(value: object, what: str = "--image-size") -> int | None:
    """An image size from an option or from metadata: a whole number in the documented range."""
    if value is None or value == "":
        return None
    number = _int_or_none(value)
    allowed = f"a whole number of pixels from {MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE}"
    if number is None:
        shown = repr(value) if isinstance(value, str) else _text_or_none(value)
        raise BadInput(f"{what} {shown} is not {allowed}", hint="e.g. 224 or 256")
    if not MIN_IMAGE_SIZE <= number <= MAX_IMAGE_SIZE:
        raise BadInput(
            f"{what} {number} is out of range: {allowed}",
            hint=f"below {MIN_IMAGE_SIZE} the models' total stride leaves no image; the upper "
            "bound keeps memory predictable",
        )
    return number


def _int_or_none(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if (
        isinstance(value, str)
        and value.strip().isascii()
        and value.strip().lstrip("-").isdigit()
        and len(value.strip()) <= 12
    ):
        return int(value.strip())
    return None


def _text_or_none(value: object) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= _TEXT_LIMIT else text[:_TEXT_LIMIT] + "…"
