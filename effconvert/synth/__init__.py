"""synth: deterministic stand-ins for what we cannot download — checkpoints whose numbers behave
like a trained model's (checkpoint.py, weights.py) and small models actually trained on the
digits (digits.py). The natural-looking images they use are validation's built-in inputs
(validate/natural_images.py)."""
