"""Seeded natural-looking RGB images: 1/f spectra, correlated colour channels, soft-edged shapes.

Natural images have power falling as 1/f^2 and strongly correlated channels; white noise has
neither, so BN statistics, calibration ranges and parity measured on white noise describe inputs
no camera produces. These images are not a data set: they exercise the same statistics.
"""

from __future__ import annotations

import numpy as np


def natural_images(n: int, size: tuple[int, int] = (288, 288), *, seed: int = 0) -> np.ndarray:
    """`n` different images, NHWC uint8, identical for identical (n, size, seed)."""
    rng = np.random.default_rng(seed)
    return np.stack([_one_image(rng, size) for _ in range(n)])


def _one_image(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    h, w = size
    image = _pink_noise(rng, h, w)  # H, W, 3 in ~[-1, 1]
    image = image @ _colour_mixing(rng).T  # correlated channels
    image += _shapes(rng, h, w)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    image += rng.normal(0, 0.3) * yy[..., None] + rng.normal(0, 0.3) * xx[..., None]  # lighting
    lo, hi = np.percentile(image, [1, 99])
    image = (image - lo) / max(hi - lo, 1e-6)
    image = image * rng.uniform(0.6, 1.0) + rng.uniform(0.0, 0.3)  # exposure / contrast
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


def _pink_noise(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f = np.sqrt(fx**2 + fy**2)
    f[0, 0] = 1.0
    alpha = rng.uniform(0.9, 1.4)  # amplitude ~ 1/f^alpha
    amplitude = 1.0 / f**alpha
    amplitude[0, 0] = 0.0
    channels = []
    for _ in range(3):
        phase = rng.uniform(0, 2 * np.pi, amplitude.shape)
        spectrum = amplitude * np.exp(1j * phase)
        c = np.fft.irfft2(spectrum, s=(h, w))
        channels.append(c / (c.std() + 1e-8))
    return np.stack(channels, axis=-1) * 0.35


def _colour_mixing(rng: np.random.Generator) -> np.ndarray:
    base = np.full((3, 3), 0.6) + np.eye(3) * 0.4  # mostly luminance
    return base + rng.normal(0, 0.15, (3, 3))


def _shapes(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    out = np.zeros((h, w, 3))
    yy, xx = np.mgrid[0:h, 0:w]
    for _ in range(rng.integers(2, 7)):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        ry, rx = rng.uniform(0.05, 0.35) * h, rng.uniform(0.05, 0.35) * w
        colour = rng.uniform(-0.8, 0.8, 3)
        if rng.random() < 0.5:  # ellipse
            d = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
            mask = _soft_inside(d, rng.uniform(4, 30))
        else:  # rotated rectangle
            t = rng.uniform(0, np.pi)
            u = (xx - cx) * np.cos(t) + (yy - cy) * np.sin(t)
            v = -(xx - cx) * np.sin(t) + (yy - cy) * np.cos(t)
            d = np.maximum(np.abs(u) / rx, np.abs(v) / ry)
            mask = _soft_inside(d, rng.uniform(4, 30))
        out = out * (1 - mask[..., None]) + colour * mask[..., None]
    return out


def _soft_inside(distance: np.ndarray, sharpness: float) -> np.ndarray:
    """~1 inside the unit contour, ~0 outside, with a soft edge (a logistic, overflow-free)."""
    return 0.5 * (1 - np.tanh(0.5 * (distance - 1) * sharpness))
