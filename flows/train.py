"""``train``: the trainer from a YAML config; device auto (CUDA when present).  On CUDA the run
uses one DDP process per visible GPU under ``torchrun`` (``processes``: null), each with AMP;
elsewhere, or with ``processes: 1``, it trains in the flow's process.  Either way it resumes
from the newest checkpoint of its out_dir.  Returns the exported checkpoint path and its sha256
record."""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.params import TrainParams
from tasks.train import train_model, train_model_ddp


@flow(name="train", log_prints=True)
def train(params: TrainParams) -> dict[str, Any]:
    from cstrack.train.launch import processes_for

    n = processes_for(params.device, params.processes)
    print(f"train {params.config}: device {params.device}, {n} process(es)")
    if n == 1:
        return train_model(params.config, params.out_dir, params.device, params.resume)
    return train_model_ddp(params.config, n, params.out_dir, params.device, params.resume)
