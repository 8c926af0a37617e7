"""effconvert: a trained efficient-ViT checkpoint in, a phone-ready artifact and a parity report out."""

__version__ = "0.1.0"
