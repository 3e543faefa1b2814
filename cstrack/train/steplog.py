"""Per-step training losses as rows of the catalog's ``train_steps`` table (:mod:`catalog.store`).

Columns (``catalog.schemas.TRAIN_STEPS``): ``run_id`` (the config's ``name``), ``epoch`` (0-based),
``step`` (global batch index, 0-based), ``loss_total`` / ``loss_box`` / ``loss_obj`` / ``loss_id``
(spec §7.5 terms of that batch), ``lr`` (weight-decay group), ``images_per_s`` (that batch, all
processes) and ``time`` (UTC).

Rows are buffered during an epoch and written when the epoch ends.  A flush replaces the run's
rows of that epoch and later ones, so re-running an epoch after a resume never duplicates steps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

TABLE = "train_steps"
COLUMNS = ("epoch", "step", "loss_total", "loss_box", "loss_obj", "loss_id", "lr", "images_per_s", "time")


class StepLog:
    """Buffer of ``train_steps`` rows of one run (``run_id``) under the catalog ``root``."""

    def __init__(self, root: str | Path, run_id: str) -> None:
        from catalog.store import check_run_id

        self.root = Path(root)
        self.run_id = check_run_id(run_id)
        self.rows: list[dict[str, Any]] = []

    def add(self, **row: Any) -> None:
        if set(row) != set(COLUMNS):
            raise ValueError(f"train_steps row: expected columns {COLUMNS}, got {sorted(row)}")
        self.rows.append(row)

    def flush(self, epoch: int) -> int:
        """Write the buffered rows as the rows of ``epoch`` onwards; returns the run's row count."""
        from catalog import store

        old = read_steps(self.root, self.run_id)
        keep = old[old["epoch"] < epoch].drop(columns=["run_id"])
        new = pd.DataFrame(self.rows, columns=list(COLUMNS))
        rows = pd.concat([keep, new], ignore_index=True) if len(keep) else new
        store.write(TABLE, rows, self.root, run_id=self.run_id, mode="replace")
        self.rows = []
        return len(rows)


def read_steps(root: str | Path, run_id: str) -> pd.DataFrame:
    """The ``train_steps`` rows of ``run_id`` (sorted by epoch and step)."""
    from catalog import store

    return store.load(TABLE, {"run_id": run_id}, root)
