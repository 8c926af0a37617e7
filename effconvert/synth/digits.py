"""Small models that are actually trained, so quantization can be judged by accuracy.

FastViT-T8 (also EfficientViT-B0 and EfficientFormerV2-S0) at 64x64 on scikit-learn's handwritten digits (1,797 real 8x8 scans, upsampled to RGB
PNGs in an ImageFolder layout). Train and held-out images go through the model's own eval
preprocessing (load/preprocessing.py) — the path `--val` and `--calib` use — so the measured
accuracy is the accuracy a user of the artifacts gets. Deterministic (seeded, single-threaded
data order); built once per cache directory, never committed.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..atomic import atomic_path
from ..load.preprocessing import Preprocessing

ARCH = "fastvit_t8"
# Other families trained the same way. EfficientViT-B0's linear attention takes any input size;
# EfficientFormerV2 sizes its attention biases by the input (built with img_size=64; the
# checkpoint's image_size tells the loader). V1's biases are fixed to 224x224: too slow to train here.
# MobileOne trains from its multi-branch form: the shared recipe left MobileOne-S0 at 0.61 held-out;
# twice the steps at 1.5x the rate reach 0.95 (measured 2026-12-06).
ARCHS = ("fastvit_t8", "efficientvit_b0", "efficientformerv2_s0", "mobileone_s0")
IMAGE_SIZE = 64
PNG_SIZE = 72  # written a little larger: eval preprocessing resizes and centre-crops
HELD_OUT = 0.2
STEPS = 300
LEARNING_RATE = 2e-3
RECIPES = {"mobileone_s0": (600, 3e-3)}  # (steps, learning rate) where the shared ones fall short
BATCH = 64
SEED = 0


@dataclass(frozen=True)
class DigitsModel:
    checkpoint: Path
    train_dir: Path  # ImageFolder layout, classes "0".."9" (calibration images)
    val_dir: Path  # held-out images, same layout
    accuracy: float  # held-out, PyTorch fp32


def cache_dir() -> Path:
    return Path(os.environ.get("EFFCONVERT_CACHE", Path.home() / ".cache" / "effconvert")) / "digits"


def digits_model(root: Path | None = None, arch: str = ARCH) -> DigitsModel:
    """The cached trained checkpoint and its image folders; trains (1-2.5 min on 2 cores) if absent."""
    if arch not in ARCHS:
        raise ValueError(f"no digits recipe for {arch} (have: {', '.join(ARCHS)})")
    root = Path(root) if root else cache_dir()
    ckpt = root / f"{arch}_digits_{IMAGE_SIZE}.pth"
    with _cache_lock(root):  # two processes sharing a cache (test workers) train once
        train_dir, val_dir = digits_images(root)
        if not ckpt.exists():
            _train(ckpt, train_dir, val_dir, arch)
    info = torch.load(ckpt, map_location="cpu", weights_only=True)["effconvert"]
    return DigitsModel(ckpt, train_dir, val_dir, float(info["held_out_accuracy"]))


@contextlib.contextmanager
def _cache_lock(root: Path) -> Iterator[None]:
    """An exclusive lock on the cache folder while its images or a model are written."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def digits_images(root: Path | None = None) -> tuple[Path, Path]:
    """The train and held-out image folders (ImageFolder layout), written if absent."""
    root = Path(root) if root else cache_dir()
    train_dir, val_dir = root / "train", root / "val"
    if not (train_dir.is_dir() and val_dir.is_dir()):
        _write_images(train_dir, val_dir)
    return train_dir, val_dir


def preprocessing(arch: str = ARCH) -> Preprocessing:
    return Preprocessing.from_timm(arch, image_size=IMAGE_SIZE)


def _write_images(train_dir: Path, val_dir: Path) -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = np.random.default_rng(SEED).permutation(len(digits.target))
    cut = int(len(order) * (1 - HELD_OUT))
    for folder, indices in ((train_dir, order[:cut]), (val_dir, order[cut:])):
        with atomic_path(folder) as tmp:
            tmp.mkdir(parents=True)
            for i in indices:
                pixels = (digits.images[i] * (255 / 16)).astype(np.uint8)  # 0..16 -> 0..255
                img = Image.fromarray(pixels).resize((PNG_SIZE, PNG_SIZE), Image.Resampling.BILINEAR).convert("RGB")
                (tmp / str(digits.target[i])).mkdir(exist_ok=True)
                img.save(tmp / str(digits.target[i]) / f"{i:04d}.png")


def _load_folder(folder: Path, arch: str) -> tuple[torch.Tensor, torch.Tensor]:
    from ..validate.inputs import input_set

    images = input_set(preprocessing(arch), samples=10_000, folder=folder)
    return torch.from_numpy(images.inputs), torch.from_numpy(images.labels)


def _train(ckpt: Path, train_dir: Path, val_dir: Path, arch: str) -> None:
    from ..load import build_model
    from .checkpoint import write_state

    torch.manual_seed(SEED)
    x_train, y_train = _load_folder(train_dir, arch)
    x_val, y_val = _load_folder(val_dir, arch)
    model = build_model(arch, num_classes=10, image_size=IMAGE_SIZE)
    steps, rate = RECIPES.get(arch, (STEPS, LEARNING_RATE))
    optimizer = torch.optim.AdamW(model.parameters(), lr=rate, weight_decay=0.05)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=rate, total_steps=steps)
    gen = torch.Generator().manual_seed(SEED)
    model.train()
    for _ in range(steps):
        batch = torch.randint(0, len(x_train), (BATCH,), generator=gen)
        shift = torch.randint(-3, 4, (2,), generator=gen).tolist()  # light augmentation
        images = torch.roll(x_train[batch], shifts=shift, dims=(2, 3))
        loss = torch.nn.functional.cross_entropy(model(images), y_train[batch], label_smoothing=0.1)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    model.eval()
    with torch.no_grad():
        accuracy = float((model(x_val).argmax(-1) == y_val).float().mean())
    info = {
        "synthetic": False,
        "arch": arch,
        "seed": SEED,
        "layout": "timm",
        "image_size": IMAGE_SIZE,
        "held_out_accuracy": round(accuracy, 4),
        "held_out_images": len(y_val),
        "note": f"effconvert digits model: {arch} trained on scikit-learn digits at {IMAGE_SIZE}x{IMAGE_SIZE}",
    }
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    write_state(ckpt, {k: v.detach().clone() for k, v in model.state_dict().items()}, info)
