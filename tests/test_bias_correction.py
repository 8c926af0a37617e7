"""Bias correction before int8 (quantize/bias_correction.py): small hand-built models, no
conversion; what it does to artifacts is measured by the slow digits tests and the closing notes."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch
from torch import nn

from effconvert.quantize.bias_correction import BiasCorrection, bias_corrected, with_corrected_biases
from effconvert.quantize.sensitivity import QUANTIZABLE, input_ranges, quantized


class Biased(nn.Module):
    """Every weight of `first` sits 0.45 of an int8 step above a grid point (one weight per channel
    sets the step), so rounding lowers every output by the same sign; the inputs are positive, so the
    shift does not average out. `second` has no bias of its own (it keeps none); `head` reads tokens (a linear on
    the last axis of a 3-d tensor)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.first = nn.Conv2d(3, 8, 3, padding=1)
        self.second = nn.Conv2d(8, 8, 1, bias=False)
        self.head = nn.Linear(8, 4)
        with torch.no_grad():
            step = 1.0 / 127
            grid = torch.randint(0, 8, self.first.weight.shape).float()  # small weights: the shift is large
            self.first.weight.copy_((grid + 0.45) * step)
            self.first.weight[:, 0, 0, 0] = 1.0  # the widest weight: the per-channel step is 1/127
            self.second.weight.uniform_(0.0, 0.3)  # the shifts add up rather than cancel

    def forward(self, x):
        x = torch.relu(self.second(torch.relu(self.first(x))))
        return self.head(x.flatten(2).transpose(1, 2)).mean(1)


@pytest.fixture(scope="module")
def calibration():
    return np.random.default_rng(0).uniform(0, 1, (64, 3, 8, 8)).astype(np.float32)


def _simulated_mean_error(model: nn.Module, images: np.ndarray) -> float:
    """The largest |mean over images and positions| of `first`'s int8 output error, per channel."""
    x = torch.from_numpy(images)
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, QUANTIZABLE)]
    with torch.no_grad():
        ranges = input_ranges(model, layers, x)
        reference = model.first(x)
        with contextlib.ExitStack() as stack:
            stack.enter_context(quantized(model.first, *ranges["first"]))
            out = model.first(x)
    return float((out - reference).mean(dim=(0, 2, 3)).abs().max())


def test_the_correction_cancels_the_mean_error_and_moves_only_biases(calibration):
    model = Biased().eval()
    corrected = bias_corrected(model, calibration)
    float_model = Biased().eval()  # what the corrected biases are measured against
    before = _simulated_mean_error(model, calibration[32:])
    shift = (corrected.first.bias - float_model.first.bias).abs().max().detach()
    assert before > 0.02 and float(shift) == pytest.approx(before, rel=0.2)
    for name, param in model.named_parameters():
        if name.endswith("weight"):
            assert torch.equal(param, dict(corrected.named_parameters())[name])  # int8 weights unchanged
    assert corrected.second.bias is None  # no bias added: a new one would cost file size
    assert torch.equal(model.first.bias, float_model.first.bias)  # the original untouched


def test_kept_when_the_held_out_simulation_improves(calibration):
    model = Biased().eval()
    kept, done = with_corrected_biases(model, calibration)
    assert done.applied and done.layers == 2 and kept is not model
    assert done.simulated_after_db > done.simulated_before_db + 1
    assert "bias correction over 2 layers" in done.summary()
    assert BiasCorrection.from_json(done.to_json()) == done


def test_not_kept_when_it_does_not_hold_on_images_it_was_not_fitted_to(calibration):
    """Fitted on the first 32 calibration images, judged on the next 32: here the means it learnt
    (positive inputs) do not hold on the others (centred inputs), and the model is left as it was."""
    model = Biased().eval()
    shifted = calibration.copy()
    shifted[32:] -= 0.5
    kept, done = with_corrected_biases(model, shifted)
    assert kept is model and not done.applied and "not kept" in done.summary()
    assert done.simulated_after_db < done.simulated_before_db


@pytest.mark.parametrize("asked", [("tflite", "coreml", "executorch"), ("coreml",)])
def test_each_target_quantizes_the_model_of_its_own_scheme(calibration, tmp_path, asked):
    """TFLite and ExecuTorch share one correction (affine activations); Core ML quantizes the model
    uncorrected (its `corrects_biases` column), and the report says which targets each correction is for."""
    from effconvert.options import Request
    from effconvert.pipeline.steps import equalize
    from effconvert.quantize import Calibration
    from effconvert.targets import Pairs

    model = Biased().eval()
    pixels = np.zeros((len(calibration), 8, 8, 3), dtype=np.uint8)
    request = Request(tmp_path / "x.pth", asked, ("int8",), tmp_path / "out", equalize=False)
    int8 = equalize(
        model, Calibration(calibration, pixels, "test", True), request, Pairs(tuple((t, "int8") for t in asked)), print
    )
    assert int8 is not None and int8.migrated is model and int8.equalization is None
    assert int8.by_target["coreml"] is model
    if "tflite" in asked:
        (done,) = int8.bias_corrections
        assert done.targets == ("tflite", "executorch") and not done.symmetric and done.applied
        assert int8.by_target["tflite"] is int8.by_target["executorch"] is not model
    else:
        assert int8.bias_corrections == ()
