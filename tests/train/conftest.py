"""Tiny training configs on the 8 real PETS frames of ``head8`` (64x64 input, fast on CPU)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cstrack.train.config import TrainConfig


@pytest.fixture
def tiny_config(head8: Path, tmp_path: Path) -> TrainConfig:
    return TrainConfig.from_dict({
        "name": "tiny",
        "out_dir": str(tmp_path / "run"),
        "data": {"sequences": [{"path": str(head8)}], "input_size": [64, 64], "resize": "letterbox"},
        "epochs": 2,
        "batch": 4,
        "nominal_batch": 8,
        "optim": {"warmup_epochs": 1, "warmup_min_iters": 0},
        "ema": {"tau": 2.0},
        "device": "cpu",
        "deterministic": True,
        "keep_checkpoints": 5,
    })
