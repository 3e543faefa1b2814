"""Compaction: a catalog of years read as fast as one of days.

The store writes one Parquet file per (table, run) (:mod:`catalog.store`), so after a year of
nightly runs over several benchmarks the ``runs`` and ``sequence_metrics`` tables are thousands of
small files, and a reader that opens them all (the latest nightly per dataset, one metric's history)
takes seconds (``docs/scale.md``).  :func:`compact` merges every partition of those tables into one
index file per table, ``ROOT/_index/<table>.parquet``, without changing any row: the partitions stay
where they are (the writers, ``catalog.store.load`` and the DuckDB recipes keep working on them) and
the index is a copy, read back as the same frame.  Its metadata records each partition file's size
and modification time when it was copied.

:func:`load` (``catalog.load``) reads from the index the runs whose partition file is still the one
that was copied, and from the partition files the runs written (or rewritten) since, and leaves out
runs deleted since: the same frame as :func:`catalog.store.load`, always, with a stale or missing
index costing only speed.  Run ``cstrack catalog compact`` after the nightly (or weekly).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from catalog import store
from catalog.schemas import PARTITION, SORT_KEYS, schema

INDEX_DIR = "_index"
INDEXED_TABLES: tuple[str, ...] = ("runs", "sequence_metrics")  # read across runs; events/tracks are read per run
_STAMPS_KEY = b"cstrack.partition_stamps"


@dataclass(frozen=True)
class CompactReport:
    """What :func:`compact` did: per table, the partitions copied and the rows in the index."""

    root: str
    partitions: dict[str, int]
    rows: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {"root": self.root, "partitions": dict(self.partitions), "rows": dict(self.rows)}


def index_path(base: str, table: str) -> str:
    return f"{base}/{INDEX_DIR}/{table}.parquet"


def _stamp(info: dict[str, Any]) -> list[Any] | None:
    """(size, modification time) of a partition file, or None when the filesystem gives no time."""
    mtime = info.get("mtime", info.get("LastModified", info.get("last_modified")))
    if mtime is None:
        return None
    return [int(info.get("size", -1)), str(mtime)]


def _partitions(fs: Any, base: str, table: str) -> dict[str, list[Any] | None]:
    """``{run_id: stamp}`` of every partition file of ``table``."""
    tdir = f"{base}/{table}"
    if not fs.exists(tdir):
        return {}
    found = fs.glob(f"{tdir}/{PARTITION}=*/{store.PART_FILE}", detail=True)
    return {path.rsplit("/", 2)[-2].split("=", 1)[1]: _stamp(info) for path, info in found.items()}


def compact(root: str | Path | None = None, tables: Sequence[str] = INDEXED_TABLES) -> CompactReport:
    """Write ``ROOT/_index/<table>.parquet`` for each of ``tables``: every row of every partition
    (read by :func:`catalog.store.load`, so old partitions' columns come under their names now),
    with each partition's stamp.  Atomic per table (written hidden, then renamed); a run written
    while this runs is simply read from its partition until the next compaction."""
    fs, base = store.filesystem(root)
    partitions: dict[str, int] = {}
    rows: dict[str, int] = {}
    for table in tables:
        schema(table)
        stamps = _partitions(fs, base, table)  # before reading: a file changed after this is not trusted
        df = store.load(table, root=root)
        tbl = store.to_arrow(table, df) if len(df) else schema(table).empty_table()
        meta = dict(tbl.schema.metadata or {})
        meta[_STAMPS_KEY] = json.dumps(stamps, sort_keys=True).encode()
        tbl = tbl.replace_schema_metadata(meta)
        final = index_path(base, table)
        tmp = f"{base}/{INDEX_DIR}/.{table}.parquet.{uuid.uuid4().hex}"
        store._write_file(fs, tmp, tbl)
        fs.mv(tmp, final)
        partitions[table], rows[table] = len(stamps), len(df)
    return CompactReport(str(root if root is not None else store.DEFAULT_ROOT), partitions, rows)


def _index(fs: Any, base: str, table: str) -> tuple[Any, dict[str, Any]] | None:
    path = index_path(base, table)
    if not fs.exists(path):
        return None
    try:
        with fs.open(path, "rb") as fh:
            meta = pq.read_schema(fh).metadata or {}
        stamps = json.loads(meta.get(_STAMPS_KEY, b"{}"))
    except (OSError, ValueError, pa.ArrowInvalid):
        return None  # unreadable index: the partitions are the truth
    return path, stamps


def load(table: str, filters: store.Filters = None, root: str | Path | None = None,
         columns: Sequence[str] | None = None) -> pd.DataFrame:
    """:func:`catalog.store.load` (same arguments, the same frame), served from the compacted
    index for the runs whose partition has not changed since :func:`compact`."""
    if table not in INDEXED_TABLES:
        return store.load(table, filters, root, columns)
    fs, base = store.filesystem(root)
    found = _index(fs, base, table)
    if found is None:
        return store.load(table, filters, root, columns)
    path, stamps = found
    current = _partitions(fs, base, table)
    fresh = sorted(r for r, st in current.items() if st is not None and stamps.get(r) == st)
    stale = sorted(r for r in current if r not in set(fresh))
    sch = schema(table)
    wanted = list(columns) if columns is not None else list(sch.names)
    read_cols = list(dict.fromkeys([*wanted, *SORT_KEYS[table]]))
    expr = store._expression(filters)
    parts = []
    if fresh:
        keep = pc.field(PARTITION).isin(fresh)
        with fs.open(path, "rb") as fh:
            tbl = pq.read_table(fh, columns=read_cols, filters=keep if expr is None else keep & expr)
        parts.append(store._to_pandas(tbl.replace_schema_metadata(None)
                                      .sort_by([(k, "ascending") for k in SORT_KEYS[table]]).select(wanted)))
    if stale or not parts:
        restrict = pc.field(PARTITION).isin(stale)
        parts.append(store.load(table, restrict if expr is None else restrict & expr, root, wanted))
    out = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    if len(parts) > 1:
        out = out.sort_values(list(SORT_KEYS[table]), kind="stable", ignore_index=True)[wanted]
    return out
