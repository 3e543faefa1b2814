"""The catalog's ``train_steps`` table as the trainer's step writer
(:class:`cstrack.train.steplog.StepWriter`): one run's rows under a catalog root."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from catalog import store
from catalog.schemas import file_schema

TABLE = "train_steps"


class CatalogSteps:
    """The ``train_steps`` rows of run ``run_id`` under the catalog ``root`` (the run id is checked
    here, before any training)."""

    columns: tuple[str, ...] = tuple(file_schema(TABLE).names)

    def __init__(self, root: str | Path, run_id: str) -> None:
        self.root = Path(root)
        self.run_id = store.check_run_id(run_id)

    @classmethod
    def for_training(cls, config: Any) -> CatalogSteps:
        """Where a :class:`cstrack.train.TrainConfig`'s rows go: run ``config.name`` under
        :meth:`~cstrack.train.TrainConfig.steps_dir`."""
        return cls(config.steps_dir(), config.name)

    def load(self) -> pd.DataFrame:
        return read_steps(self.root, self.run_id)

    def replace(self, rows: pd.DataFrame) -> None:
        store.write(TABLE, rows, self.root, run_id=self.run_id, mode="replace")


def read_steps(root: str | Path, run_id: str) -> pd.DataFrame:
    """The ``train_steps`` rows of ``run_id`` (sorted by epoch and step)."""
    return store.load(TABLE, {"run_id": run_id}, root)
