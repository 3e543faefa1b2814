"""EMA update formula (spec §8): ema = d ema + (1 - d) model, d(u) = 0.9999 (1 - exp(-u / 2000))."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from cstrack.train.ema import ModelEMA


def test_decay_values() -> None:
    ema = ModelEMA(nn.Linear(1, 1))
    assert ema.decay_at(0) == 0.0
    assert ema.decay_at(2000) == pytest.approx(0.9999 * (1 - math.exp(-1)), abs=1e-12)
    assert ema.decay_at(2000) == pytest.approx(0.63205735, abs=1e-8)
    assert ema.decay_at(10**6) == pytest.approx(0.9999)


def test_update_formula_and_buffers() -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    with torch.no_grad():
        model[0].weight.fill_(1.0)
    ema = ModelEMA(model, decay=0.5, tau=1.0)
    with torch.no_grad():
        model[0].weight.fill_(3.0)
        model[1].running_mean.fill_(2.0)
    model[1].num_batches_tracked.fill_(7)
    d1 = ema.update(model)
    assert d1 == pytest.approx(0.5 * (1 - math.exp(-1)))  # 0.31606
    expected = d1 * 1.0 + (1 - d1) * 3.0  # 2.36788
    assert torch.allclose(ema.module[0].weight, torch.full((2, 2), expected))
    assert torch.allclose(ema.module[1].running_mean, torch.full((2,), (1 - d1) * 2.0))
    assert int(ema.module[1].num_batches_tracked) == 7  # integers are copied, not averaged
    d2 = ema.update(model)
    assert d2 == pytest.approx(0.5 * (1 - math.exp(-2)))
    assert torch.allclose(ema.module[0].weight, torch.full((2, 2), d2 * expected + (1 - d2) * 3.0))
    assert ema.updates == 2
    assert not any(p.requires_grad for p in ema.module.parameters())


def test_state_round_trip() -> None:
    model = nn.Linear(3, 1)
    a = ModelEMA(model)
    a.update(model)
    b = ModelEMA(nn.Linear(3, 1))
    b.load_state_dict(a.state_dict())
    assert b.updates == 1
    assert torch.equal(b.module.weight, a.module.weight)
