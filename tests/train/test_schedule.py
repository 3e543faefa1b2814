"""Warm-up and step schedule values at chosen iterations, computed by hand (spec §8, Q18)."""

from __future__ import annotations

import pytest

from cstrack.train.config import OptimSection
from cstrack.train.schedule import Schedule

# lr0 0.01, warm-up max(2 epochs x 5 iterations, 4) = 10 iterations, 4 epochs, drop after epoch 2.
OPT = OptimSection(lr0=0.01, warmup_epochs=2, warmup_min_iters=4, drop_epoch=2, drop_factor=0.1)


def sched() -> Schedule:
    return Schedule(OPT, epochs=4, iters_per_epoch=5, accumulate_max=4)


def test_warmup_length_is_the_larger_of_epochs_and_minimum() -> None:
    assert sched().warmup_iters == 10
    assert Schedule(OptimSection(warmup_epochs=0.5, warmup_min_iters=4), 4, 5, 1).warmup_iters == 4
    # spec §8 defaults: max(3 epochs, 1000 iterations)
    assert Schedule(OptimSection(), 30, 100, 8).warmup_iters == 1000
    assert Schedule(OptimSection(), 30, 500, 8).warmup_iters == 1500


def test_first_iteration() -> None:
    v = sched().values(0, 0)
    assert v.warmup
    assert v.lr == {"no_decay": 0.0, "decay": 0.0, "bias": pytest.approx(0.1)}
    assert v.momentum == pytest.approx(0.9)
    assert v.accumulate == 1


def test_mid_warmup() -> None:
    # it 6 of 10 (t = 0.6), epoch 1 of 4: f = 0.1 + 0.9 (1 + cos(pi/4)) / 2 = 0.868198
    # target = 0.01 * 0.868198 = 0.00868198
    v = sched().values(6, 1)
    assert v.lr["decay"] == pytest.approx(0.6 * 0.00868198, abs=1e-8)  # 0.00520919
    assert v.lr["no_decay"] == pytest.approx(0.00520919, abs=1e-8)
    assert v.lr["bias"] == pytest.approx(0.1 + (0.00868198 - 0.1) * 0.6, abs=1e-8)  # 0.04520919
    assert v.momentum == pytest.approx(0.93)
    assert v.accumulate == 3  # round(1 + 3 * 0.6) = round(2.8)


def test_after_warmup_step_drop() -> None:
    s = sched()
    v = s.values(10, 1)
    assert not v.warmup
    assert v.lr == {"no_decay": 0.01, "decay": 0.01, "bias": 0.01}
    assert v.momentum == 0.95
    assert v.accumulate == 4
    v = s.values(12, 2)  # epoch 2 >= drop_epoch: lr0 x 0.1
    assert v.lr["decay"] == pytest.approx(0.001)
    assert s.values(19, 3).lr["bias"] == pytest.approx(0.001)


def test_no_warmup() -> None:
    s = Schedule(OptimSection(lr0=0.02, warmup_epochs=0, warmup_min_iters=0), 3, 5, 2)
    v = s.values(0, 0)
    assert not v.warmup and v.lr["decay"] == 0.02 and v.accumulate == 2
