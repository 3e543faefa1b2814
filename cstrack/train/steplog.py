"""Per-step training losses as rows of the catalog's ``train_steps`` table.

Rows are buffered during an epoch and written when the epoch's checkpoint is written, one Parquet
part per (run, epoch): ``<root>/train_steps/<run>/epoch_NNN.parquet``.  Re-running an epoch after a
resume overwrites its part, so the table never holds duplicate steps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from cstrack.fsutil import atomic_path

TABLE = "train_steps"

SCHEMA = pa.schema([
    ("run", pa.string()),
    ("config_hash", pa.string()),
    ("epoch", pa.int32()),  # 0-based
    ("iteration", pa.int64()),  # global batch index, 0-based
    ("batch_images", pa.int32()),  # images in this batch on all processes
    ("lr", pa.float64()),  # lr of the weight-decay group
    ("lr_bias", pa.float64()),
    ("momentum", pa.float64()),
    ("accumulate", pa.int32()),
    ("optimizer_step", pa.bool_()),  # whether the optimiser stepped after this batch
    ("loss_total", pa.float64()),  # (box + obj + eta id) * B, spec §7.5
    ("loss_box", pa.float64()),
    ("loss_obj", pa.float64()),
    ("loss_id", pa.float64()),
    ("images_per_s", pa.float64()),  # this batch, all processes
    ("seconds", pa.float64()),  # wall time since the run (or resume) started
    ("time", pa.timestamp("ms", tz="UTC")),
    ("world_size", pa.int32()),
    ("device", pa.string()),
])
COLUMNS = tuple(SCHEMA.names)


class StepLog:
    """Buffer of ``train_steps`` rows for one run."""

    def __init__(self, root: str | Path, run: str, config_hash: str) -> None:
        self.dir = Path(root) / TABLE / run
        self.run = run
        self.config_hash = config_hash
        self.rows: list[dict[str, Any]] = []

    def add(self, **row: Any) -> None:
        row = {"run": self.run, "config_hash": self.config_hash, **row}
        missing = set(COLUMNS) - set(row)
        if missing:
            raise ValueError(f"train_steps row lacks {sorted(missing)}")
        self.rows.append(row)

    def flush(self, epoch: int) -> Path | None:
        """Write the buffered rows as the part of ``epoch`` (atomically) and clear the buffer."""
        if not self.rows:
            return None
        table = pa.Table.from_pylist(self.rows, schema=SCHEMA)
        path = self.dir / f"epoch_{epoch:03d}.parquet"
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp)
        self.rows = []
        return path


def read_steps(root: str | Path, run: str | None = None) -> pa.Table:
    """All ``train_steps`` rows under ``root`` (of one ``run`` when given), ordered by run and iteration."""
    base = Path(root) / TABLE
    parts = sorted((base / run).glob("epoch_*.parquet")) if run else sorted(base.glob("*/epoch_*.parquet"))
    if not parts:
        return SCHEMA.empty_table()
    table = pa.concat_tables([pq.read_table(p, schema=SCHEMA) for p in parts])
    return table.sort_by([("run", "ascending"), ("iteration", "ascending")])
