"""Input preprocessing a model expects, from timm's pretrained config, and the one code path that
applies it. Validation, calibration and the metadata embedded in artifacts all use this, so what
an artifact claims is exactly what was measured.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np
from PIL import Image

from ..numeric import rgb

_PIL_INTERPOLATION = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
}


@dataclass(frozen=True)
class Preprocessing:
    input_size: tuple[int, int, int]  # C, H, W
    mean: tuple[float, float, float]  # on 0..1 pixels
    std: tuple[float, float, float]
    crop_pct: float
    crop_mode: str  # "center" (timm's eval default)
    interpolation: str

    @classmethod
    def from_timm(cls, arch: str, *, image_size: int | None = None) -> Preprocessing:
        import timm

        cfg = timm.models.get_pretrained_cfg(arch)
        if cfg is None:
            raise KeyError(f"timm has no pretrained config for {arch}")
        c, h, w = cfg.input_size
        if image_size is not None:
            h = w = image_size
        return cls(
            (c, h, w),
            rgb(cfg.mean),
            rgb(cfg.std),
            float(cfg.crop_pct or 1.0),
            cfg.crop_mode or "center",
            cfg.interpolation or "bicubic",
        )

    def with_overrides(self, *, mean=None, std=None, crop_pct=None, interpolation=None) -> Preprocessing:
        """The same transform with the values given replaced (a fine-tuned model's own statistics)."""
        return replace(
            self,
            mean=tuple(mean) if mean is not None else self.mean,
            std=tuple(std) if std is not None else self.std,
            crop_pct=float(crop_pct) if crop_pct is not None else self.crop_pct,
            interpolation=interpolation or self.interpolation,
        )

    @property
    def size(self) -> tuple[int, int]:
        return self.input_size[1], self.input_size[2]

    def as_dict(self) -> dict:
        return asdict(self)

    def resize_and_crop(self, image: Image.Image) -> Image.Image:
        """timm eval transform: resize the short side to size/crop_pct, then center-crop size."""
        h, w = self.size
        scale_h, scale_w = math.floor(h / self.crop_pct), math.floor(w / self.crop_pct)
        iw, ih = image.size
        if iw <= ih:
            new_w, new_h = scale_w, int(scale_w * ih / iw)
        else:
            new_w, new_h = int(scale_h * iw / ih), scale_h
        image = image.convert("RGB").resize((new_w, new_h), _PIL_INTERPOLATION[self.interpolation])
        left, top = round((new_w - w) / 2.0), round((new_h - h) / 2.0)
        return image.crop((left, top, left + w, top + h))

    def pixels(self, image: Image.Image) -> np.ndarray:
        """An RGB image -> HWC uint8 pixels at the model's input size (what an app feeds)."""
        return np.asarray(self.resize_and_crop(image), dtype=np.uint8)

    def normalize(self, pixels: np.ndarray) -> np.ndarray:
        """NHWC (or HWC) uint8 pixels -> NCHW (or CHW) float32 model input."""
        x: np.ndarray = pixels.astype(np.float32) / 255.0
        x = (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(np.moveaxis(x, -1, -3))
