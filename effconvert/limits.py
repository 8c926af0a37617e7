"""The documented bounds on what a user may ask for. Every bound here is checked before anything is
read or written (request.py), so a request that would exhaust memory is refused with the number it
would need instead of being killed by the operating system."""

from __future__ import annotations

MIN_IMAGE_SIZE = 32  # the total stride of every supported family: smaller is not an image to them
MAX_IMAGE_SIZE = 1024  # 4.6x the largest native size (MCi2's 256 ... EfficientFormer-L7's 224)
MAX_SAMPLES = 4096  # validation / calibration images per run
MAX_INPUT_BYTES = 2 << 30  # float32 inputs held at once (N x 3 x H x W x 4 bytes), 2 GiB
MAX_IMAGE_PIXELS = 64_000_000  # one image file (8000 x 8000); larger is a decompression bomb to us
MAX_LABELS_BYTES = 16 << 20  # a labels file: 16 MiB is ~100x ImageNet-21k's names
MAX_THREADS = 256  # runtime threads for `bench`
MAX_RUNS = 10_000  # timed runs for `bench`


def input_bytes(samples: int, height: int, width: int) -> int:
    """Memory the float32 inputs of `samples` images take (pixels, logits and copies come on top)."""
    return samples * 3 * height * width * 4


def gib(n: int) -> str:
    return f"{n / (1 << 30):.1f} GiB"
