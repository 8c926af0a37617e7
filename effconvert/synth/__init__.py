"""synth: deterministic stand-ins for what we cannot download — natural-looking images and
checkpoints whose numbers behave like a trained model's."""

from .images import natural_images

__all__ = ["natural_images"]
