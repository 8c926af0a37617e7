"""int8 before any fallback: scale migration (quantize/equalize.py) and least-error activation
ranges (quantize/ranges.py). Small hand-built models, no conversion: the effect on artifacts is
measured by the slow tests and the closing notes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from effconvert.quantize import simulated_psnr
from effconvert.quantize.equalize import Equalization, equalized, scale_pairs
from effconvert.quantize.ranges import least_error_range


class Skewed(nn.Module):
    """A MobileOne-like chain (dense conv -> ReLU -> depthwise -> ReLU -> 1x1 -> ReLU -> linear)
    whose channels leave each conv at ranges 1000x apart, plus the shapes the migration must
    leave alone: a residual add (two users), a GELU and a grouped conv."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.pw = nn.Conv2d(16, 32, 1)
        self.grouped = nn.Conv2d(32, 32, 3, padding=1, groups=4)
        self.gelu_in = nn.Conv2d(32, 32, 1)
        self.after_gelu = nn.Conv2d(32, 32, 1)
        self.head = nn.Linear(32, 10)
        with torch.no_grad():
            spread = torch.logspace(-1.5, 1.5, 16)
            self.stem.weight.mul_(spread.reshape(-1, 1, 1, 1))
            self.stem.bias.mul_(spread)
            self.dw.weight.div_(spread.reshape(-1, 1, 1, 1))  # every channel matters downstream alike
            self.pw.weight.mul_(torch.logspace(-1.5, 1.5, 32).reshape(-1, 1, 1, 1))

    def forward(self, x):
        x = torch.relu(self.stem(x))
        x = torch.relu(self.dw(x))
        x = torch.relu(self.pw(x))
        x = x + self.grouped(x)  # pw's output has two users: not a pair
        x = self.after_gelu(nn.functional.gelu(self.gelu_in(x)))  # GELU does not commute with a scale
        return self.head(x.mean((2, 3)))


@pytest.fixture(scope="module")
def calibration():
    return np.random.default_rng(0).standard_normal((16, 3, 16, 16)).astype(np.float32)


def test_pairs_are_found_only_where_a_scale_commutes(calibration):
    pairs = scale_pairs(Skewed().eval(), torch.from_numpy(calibration[:1]))
    assert [(p.producer, p.consumer, p.through_relu, p.depthwise) for p in pairs] == [
        ("stem", "dw", True, True),
        ("dw", "pw", True, False),
    ]


def test_migration_is_exact_in_float_and_simulates_better(calibration):
    model = Skewed().eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    migrated, done = equalized(model, calibration)
    assert done.applied and done.pairs == 2 and done.alpha is not None
    assert done.simulated_after_db > done.simulated_before_db + 3
    assert done.simulated_after_db == pytest.approx(simulated_psnr(migrated, calibration, [()], batch=32)[0], abs=0.01)
    x = torch.from_numpy(calibration)
    with torch.no_grad():
        reference, out = model(x), migrated(x)
    assert float((out - reference).abs().max() / reference.abs().max()) < 1e-5
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the original untouched
    assert not torch.equal(migrated.stem.weight, model.stem.weight)
    assert Equalization.from_json(done.to_json()) == done


def test_a_migration_that_does_not_help_is_not_kept(calibration):
    class Flat(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 8, 1), nn.Conv2d(8, 4, 1)
            with torch.no_grad():
                self.a.weight.fill_(0.2)
                self.a.bias.fill_(0.1)

        def forward(self, x):
            return self.b(torch.relu(self.a(x))).mean((2, 3))

    model = Flat().eval()
    kept, done = equalized(model, calibration)
    assert kept is model and done.pairs == 1 and not done.applied
    assert "not kept" in done.summary()


def test_a_graph_without_pairs_says_so(calibration):
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.GELU(), nn.Conv2d(4, 4, 1), nn.Flatten()).eval()
    kept, done = equalized(model, calibration)
    assert kept is model and done.pairs == 0 and "no producer/consumer pair" in done.summary()


@pytest.mark.parametrize("symmetric", [True, False])
def test_least_error_range_cuts_a_rare_outlier_and_errs_less(symmetric):
    rng = np.random.default_rng(1)
    values = torch.from_numpy(np.abs(rng.standard_normal(100_000)).astype(np.float32))
    values[0] = largest = 3 * float(values.max())  # one value far out, as a rare calibration image gives
    low, high = least_error_range(values, 0.0, largest, symmetric=symmetric)
    assert low == 0.0 and high < largest

    def error(hi: float) -> float:
        step = hi / (127 if symmetric else 255)
        return float(
            ((torch.clamp(torch.round(values / step), 0, 127 if symmetric else 255) * step - values) ** 2).mean()
        )

    assert error(high) < error(largest)


def test_least_error_range_keeps_a_range_without_outliers_and_a_constant():
    values = torch.linspace(-1.0, 1.0, 4096)
    low, high = least_error_range(values, -1.0, 1.0, symmetric=True)
    assert low == pytest.approx(-1.0) and high == pytest.approx(1.0)
    assert least_error_range(torch.zeros(10), 0.0, 0.0, symmetric=False) == (0.0, 0.0)
