"""``train``: the trainer from a YAML config; device auto (CUDA when present).  Returns the
exported checkpoint path and its sha256 record."""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.params import TrainParams
from tasks.train import train_model


@flow(name="train", log_prints=True)
def train(params: TrainParams) -> dict[str, Any]:
    return train_model(params.config, params.out_dir, params.device, params.resume)
