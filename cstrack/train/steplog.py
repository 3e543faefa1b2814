"""Per-step training losses, buffered per epoch and handed to a :class:`StepWriter`.

A row holds ``epoch`` (0-based), ``step`` (global batch index, 0-based), ``loss_total`` /
``loss_box`` / ``loss_obj`` / ``loss_id`` (spec §7.5 terms of that batch), ``lr`` (weight-decay
group), ``images_per_s`` (that batch, all processes) and ``time`` (UTC).  The writer owns the
columns: the catalog's (:class:`catalog.train_steps.CatalogSteps`) are those of its
``train_steps`` table (``catalog/schemas.py``), declared there once.

Rows are buffered during an epoch and written when the epoch ends.  A flush replaces the run's
rows of that epoch and later ones, so re-running an epoch after a resume never duplicates steps.
"""

from __future__ import annotations

from typing import Any, Protocol

import pandas as pd


class StepWriter(Protocol):
    """Where one training run's step rows are kept."""

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns of a row."""
        ...

    def load(self) -> pd.DataFrame:
        """The run's rows written so far (at least :attr:`columns`; other columns are dropped)."""
        ...

    def replace(self, rows: pd.DataFrame) -> None:
        """Make ``rows`` (columns :attr:`columns`) the run's rows."""
        ...


class StepLog:
    """Buffer of one run's step rows in front of ``writer``."""

    def __init__(self, writer: StepWriter) -> None:
        self.writer = writer
        self.rows: list[dict[str, Any]] = []

    def add(self, **row: Any) -> None:
        columns = self.writer.columns
        if set(row) != set(columns):
            raise ValueError(f"train_steps row: expected columns {columns}, got {sorted(row)}")
        self.rows.append(row)

    def flush(self, epoch: int) -> int:
        """Write the buffered rows as the rows of ``epoch`` onwards; returns the run's row count."""
        columns = list(self.writer.columns)
        old = self.writer.load()
        keep = old.loc[old["epoch"] < epoch, columns]
        new = pd.DataFrame(self.rows, columns=columns)
        rows = pd.concat([keep, new], ignore_index=True) if len(keep) else new
        self.writer.replace(rows)
        self.rows = []
        return len(rows)
