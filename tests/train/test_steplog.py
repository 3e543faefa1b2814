"""train_steps rows: re-running an epoch after a resume replaces its rows, in the catalog
(catalog.train_steps.CatalogSteps) or any other StepWriter."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from catalog.schemas import SchemaError
from catalog.train_steps import CatalogSteps, read_steps
from cstrack.train.steplog import StepLog


def row(epoch: int, step: int, loss: float) -> dict:
    return {"epoch": epoch, "step": step, "loss_total": loss, "loss_box": 0.1, "loss_obj": 0.2, "loss_id": 3.0,
            "lr": 0.005, "images_per_s": 9.5, "time": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)}


class ListWriter:
    """A StepWriter of two columns kept in memory."""

    columns = ("epoch", "step")

    def __init__(self) -> None:
        self.rows = pd.DataFrame(columns=["epoch", "step"])
        self.writes = 0

    def load(self) -> pd.DataFrame:
        return self.rows

    def replace(self, rows: pd.DataFrame) -> None:
        self.rows = rows
        self.writes += 1


def test_flush_replaces_rerun_epochs(tmp_path: Path) -> None:
    log = StepLog(CatalogSteps(tmp_path, "run-1"))
    for s in (0, 1):
        log.add(**row(0, s, 1.0))
    assert log.flush(0) == 2
    log.add(**row(1, 2, 0.9))
    log.flush(1)
    # a crash after epoch 1's rows but before its checkpoint: epoch 1 runs again from a new log
    again = StepLog(CatalogSteps(tmp_path, "run-1"))
    again.add(**row(1, 2, 0.8))
    again.add(**row(1, 3, 0.7))
    assert again.flush(1) == 4
    df = read_steps(tmp_path, "run-1")
    assert df["step"].tolist() == [0, 1, 2, 3]
    assert df["loss_total"].tolist() == [1.0, 1.0, 0.8, 0.7]
    assert set(df["run_id"]) == {"run-1"}


def test_rows_are_validated(tmp_path: Path) -> None:
    log = StepLog(CatalogSteps(tmp_path, "r"))
    with pytest.raises(ValueError, match="expected columns"):
        log.add(epoch=0, step=0)
    with pytest.raises(SchemaError, match="run_id"):
        CatalogSteps(tmp_path, "bad/name")


def test_the_catalog_writer_has_the_tables_columns() -> None:
    assert CatalogSteps.columns == ("epoch", "step", "loss_total", "loss_box", "loss_obj", "loss_id", "lr",
                                    "images_per_s", "time")


def test_any_writer_gets_the_rows_of_its_columns() -> None:
    writer = ListWriter()
    log = StepLog(writer)
    log.add(epoch=0, step=0)
    log.add(epoch=0, step=1)
    assert log.flush(0) == 2
    log.add(epoch=1, step=2)
    assert log.flush(1) == 3
    log.add(epoch=1, step=5)  # epoch 1 again: its old row goes
    assert log.flush(1) == 3
    assert writer.rows["step"].tolist() == [0, 1, 5] and writer.writes == 3
    with pytest.raises(ValueError, match="expected columns"):
        log.add(**row(2, 6, 1.0))
