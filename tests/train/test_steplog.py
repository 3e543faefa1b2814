"""train_steps rows in the catalog: re-running an epoch after a resume replaces its rows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from catalog.schemas import SchemaError
from cstrack.train.steplog import StepLog, read_steps


def row(epoch: int, step: int, loss: float) -> dict:
    return {"epoch": epoch, "step": step, "loss_total": loss, "loss_box": 0.1, "loss_obj": 0.2, "loss_id": 3.0,
            "lr": 0.005, "images_per_s": 9.5, "time": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)}


def test_flush_replaces_rerun_epochs(tmp_path: Path) -> None:
    log = StepLog(tmp_path, "run-1")
    for s in (0, 1):
        log.add(**row(0, s, 1.0))
    assert log.flush(0) == 2
    log.add(**row(1, 2, 0.9))
    log.flush(1)
    # a crash after epoch 1's rows but before its checkpoint: epoch 1 runs again from a new log
    again = StepLog(tmp_path, "run-1")
    again.add(**row(1, 2, 0.8))
    again.add(**row(1, 3, 0.7))
    assert again.flush(1) == 4
    df = read_steps(tmp_path, "run-1")
    assert df["step"].tolist() == [0, 1, 2, 3]
    assert df["loss_total"].tolist() == [1.0, 1.0, 0.8, 0.7]
    assert set(df["run_id"]) == {"run-1"}


def test_rows_are_validated(tmp_path: Path) -> None:
    log = StepLog(tmp_path, "r")
    with pytest.raises(ValueError, match="expected columns"):
        log.add(epoch=0, step=0)
    with pytest.raises(SchemaError, match="run_id"):
        StepLog(tmp_path, "bad/name")
