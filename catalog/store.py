"""Write and read the catalog's Hive-partitioned Parquet tables on any fsspec filesystem.

Layout: ``ROOT/<table>/run_id=<id>/part-0.parquet``, one file per (table, run).  ``ROOT`` is a
local folder (default ``./results``) or any fsspec URL (``file:///...``, ``memory://...``,
``s3://...`` with s3fs installed).

- **Schema checked on write**: a missing or unknown column, a value of the wrong kind (text in
  a number column, a float in an integer column, a naive timestamp) or a null in a required
  column raises :class:`~catalog.schemas.SchemaError` naming table and column.
- **Atomic**: a partition file is written under a hidden temporary name (``.part-0.parquet.*``,
  which readers skip) and renamed into place, so a reader sees the old file or the complete new
  one, never half a file; a crash leaves at most a hidden temporary behind.
- **Replace, never duplicate**: writing rows of run ``R`` replaces ``R``'s partition of that
  table (``mode="replace"``, the default); ``mode="append"`` adds to it (read, concatenate,
  atomic rewrite).  Concurrent writers of the *same* run and table are not supported (last wins).
- **Several tables as one transaction** (:func:`transaction`): every table's file is staged under
  a hidden name first (a failure there publishes nothing), then each is renamed into place with
  the file it replaces kept aside until all are in; a failure while publishing renames back what
  was done.  So a run is in all of the tables written or in none (the ``runs`` row is published
  last, so a reader that starts from ``runs`` never meets a run whose other rows are missing).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeAlias

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from catalog.schemas import (
    CANONICAL_VALUES,
    PARTITION,
    RENAMED_COLUMNS,
    SORT_KEYS,
    TABLES,
    SchemaError,
    file_schema,
    schema,
)
from cstrack.errors import DatasetError
from cstrack.fsutil import io_failure, locked_folder
from cstrack.names import MAX_NAME, is_name

DEFAULT_ROOT = "results"
PART_FILE = "part-0.parquet"

Filters: TypeAlias = Mapping[str, Any] | Sequence[Any] | pc.Expression | None


def check_run_id(run_id: str) -> str:
    """``run_id`` if it is a safe partition value (letters, digits, ``._-``; 1-200 chars)."""
    if not isinstance(run_id, str) or not is_name(run_id, MAX_NAME):
        raise SchemaError(f"run_id: {run_id!r} must be 1-200 characters of letters, digits, '.', '_' or '-'"
                          " (starting with a letter or digit)")
    return run_id


def filesystem(root: str | Path | None = None) -> tuple[fsspec.AbstractFileSystem, str]:
    """``(fsspec filesystem, path inside it)`` of a catalog root (local path or URL)."""
    text = DEFAULT_ROOT if root is None else str(root)
    if text.startswith(("s3://", "s3a://")):  # the endpoint and keys of the AWS variables, no stale listings
        from cstrack.storage import filesystem as store_filesystem

        return store_filesystem(text)
    fs, path = fsspec.core.url_to_fs(text)
    if isinstance(fs, LocalFileSystem):
        path = str(Path(path).resolve())
    return fs, path.rstrip("/") or "/"


def _arrow_fs(fs: fsspec.AbstractFileSystem) -> pafs.FileSystem:
    if isinstance(fs, LocalFileSystem):
        return pafs.LocalFileSystem()
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs))


# --------------------------------------------------------------------------------------------
# validation


def _columns(table: str, data: Any) -> tuple[dict[str, Any], int]:
    """Column name -> values (and the row count) of a DataFrame, Arrow table, records or dict."""
    if isinstance(data, pa.Table):
        return {n: data.column(n) for n in data.column_names}, data.num_rows
    if isinstance(data, pd.DataFrame):
        if data.columns.duplicated().any():
            raise SchemaError(f"{table}: duplicate column names {list(data.columns[data.columns.duplicated()])}")
        return {str(c): data[c] for c in data.columns}, len(data)
    if isinstance(data, Mapping):
        cols = {str(k): v for k, v in data.items()}
        lengths = {len(v) for v in cols.values()}
        if len(lengths) > 1:
            raise SchemaError(f"{table}: columns of different lengths {sorted(lengths)}")
        return cols, lengths.pop() if lengths else 0
    records = list(data)
    if not records:
        return {}, 0
    keys = list(records[0])
    for i, rec in enumerate(records):
        if not isinstance(rec, Mapping):
            raise SchemaError(f"{table}: record {i} is a {type(rec).__name__}, not a mapping")
        if set(rec) != set(keys):
            diff = sorted(set(rec) ^ set(keys))
            raise SchemaError(f"{table}: record {i} has different columns than record 0: {diff}")
    return {k: [rec[k] for rec in records] for k in keys}, len(records)


def _kind_ok(target: pa.DataType, got: pa.DataType) -> bool:
    if pa.types.is_null(got):
        return True
    if pa.types.is_integer(target):
        return pa.types.is_integer(got)
    if pa.types.is_floating(target):
        return pa.types.is_integer(got) or pa.types.is_floating(got)
    if pa.types.is_string(target):
        return pa.types.is_string(got) or pa.types.is_large_string(got)
    if pa.types.is_boolean(target):
        return pa.types.is_boolean(got)
    if pa.types.is_timestamp(target):
        return pa.types.is_timestamp(got) and got.tz is not None
    return got == target


def _map_array(values: Any, field: pa.Field, table: str) -> pa.Array:
    items: list[list[tuple[str, str | None]] | None] = []
    for i, v in enumerate(list(values)):
        if v is None:
            items.append(None)
        elif isinstance(v, Mapping):
            items.append([(str(k), None if x is None else str(x)) for k, x in sorted(v.items())])
        elif isinstance(v, list | tuple):
            items.append([(str(k), None if x is None else str(x)) for k, x in v])
        else:
            raise SchemaError(f"{table}.{field.name}: row {i} is a {type(v).__name__}, expected a mapping")
    return pa.array(items, type=field.type)


def _column_array(values: Any, field: pa.Field, n: int, table: str) -> pa.Array:
    where = f"{table}.{field.name}"
    if pa.types.is_map(field.type):
        arr = _map_array(values, field, table)
    else:
        try:
            chunked = isinstance(values, pa.ChunkedArray)
            got = values.combine_chunks() if chunked else pa.array(values, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError) as exc:
            raise SchemaError(f"{where}: cannot read the values as {field.type} ({exc})") from None
        if pa.types.is_dictionary(got.type):
            got = got.dictionary_decode()
        if not _kind_ok(field.type, got.type):
            hint = " (timestamps must be timezone-aware)" if pa.types.is_timestamp(field.type) else ""
            raise SchemaError(f"{where}: expected {field.type}, got {got.type}{hint}")
        try:
            arr = pa.nulls(n, field.type) if pa.types.is_null(got.type) else got.cast(field.type, safe=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise SchemaError(f"{where}: values do not fit {field.type} ({exc})") from None
    if not field.nullable and arr.null_count:
        first = int(np.flatnonzero(np.asarray(arr.is_null()))[0])
        raise SchemaError(f"{where}: required column has a null (or NaN) value in row {first}")
    return arr


def to_arrow(table: str, data: Any, run_id: str | None = None) -> pa.Table:
    """Validate ``data`` (DataFrame, Arrow table, list of records or dict of columns) against the
    schema of ``table`` and return it as an Arrow table with exactly that schema.

    ``run_id`` fills the partition column when the data has none (or checks it when it does).
    """
    sch = schema(table)
    cols, n = _columns(table, data)
    if n == 0 and not cols:  # no rows at all (e.g. ``[]``): an empty table of the right shape
        cols = {f.name: pa.nulls(0, f.type) for f in sch}
    if run_id is not None:
        check_run_id(run_id)
        if PARTITION not in cols:
            cols[PARTITION] = [run_id] * n
    missing = [f.name for f in sch if f.name not in cols]
    unknown = [c for c in cols if c not in sch.names]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing column(s) {missing}")
        if unknown:
            parts.append(f"unknown column(s) {unknown}")
        raise SchemaError(f"{table}: {'; '.join(parts)}")
    arrays = [_column_array(cols[f.name], f, n, table) for f in sch]
    out = _canonical(pa.Table.from_arrays(arrays, schema=sch), table)
    for rid in pc.unique(out[PARTITION]).to_pylist():
        check_run_id(rid)
        if run_id is not None and rid != run_id:
            raise SchemaError(f"{table}: rows of run {rid!r} given with run_id={run_id!r}")
    return out


# --------------------------------------------------------------------------------------------
# writing


def _partition_path(base: str, table: str, run_id: str) -> str:
    return f"{base}/{table}/{PARTITION}={run_id}/{PART_FILE}"


def _hidden(path: str, what: str) -> str:
    """A hidden name beside ``path`` (readers only look at ``part-0.parquet``)."""
    parent, name = path.rsplit("/", 1)
    return f"{parent}/.{name}.{uuid.uuid4().hex}.{what}"


@dataclass
class _Change:
    table: str
    path: str  # the partition file
    staged: str | None  # the new content (hidden), None to delete the partition
    backup: str | None = None  # the replaced file while publishing
    published: bool = False


@dataclass
class Transaction:
    """Writes and deletions of run partitions in several tables, published all together or not at
    all (see the module docstring).  Use through :func:`transaction`."""

    fs: fsspec.AbstractFileSystem
    base: str
    changes: list[_Change] = field(default_factory=list)
    created: list[str] = field(default_factory=list)  # partition folders made for staging (removed if unused)

    def write(self, table: str, data: Any, *, run_id: str | None = None,
              mode: Literal["replace", "append"] = "replace") -> list[str]:
        """Validate ``data`` and stage it as ``table``'s partition(s) (as :func:`write`); returns the run ids."""
        if mode not in ("replace", "append"):
            raise SchemaError(f"mode: expected 'replace' or 'append', got {mode!r}")
        tbl = to_arrow(table, data, run_id)
        rids = pc.unique(tbl[PARTITION]).to_pylist()
        if not rids and run_id is not None:
            rids = [run_id]
        target = file_schema(table).with_metadata({"cstrack.table": table})
        for rid in sorted(rids):
            part = tbl.filter(pc.equal(tbl[PARTITION], rid)).drop_columns([PARTITION])
            path = _partition_path(self.base, table, rid)
            if mode == "append":
                old = _read_partition(self.fs, path, table)
                if old is not None:
                    part = pa.concat_tables([old, part])
            staged = _hidden(path, "new")
            self.changes.append(_Change(table, path, staged))
            folder, made = path.rsplit("/", 1)[0], []
            while folder.startswith(self.base + "/") and not self.fs.exists(folder):
                made.append(folder)  # the partition folder, and its table folder when new
                folder = folder.rsplit("/", 1)[0]
            self.created += reversed(made)
            try:
                _write_file(self.fs, staged, part.replace_schema_metadata(target.metadata).cast(target))
            except OSError as exc:  # a full disk names the partition, not the hidden staged file
                raise (io_failure(exc, path, [staged]) or exc) from None
        return sorted(rids)

    def delete(self, table: str, run_id: str) -> None:
        """Stage the removal of ``run_id``'s partition of ``table`` (nothing when it has none)."""
        schema(table)
        self.changes.append(_Change(table, _partition_path(self.base, table, check_run_id(run_id)), None))

    def _publish(self) -> None:
        order = sorted(range(len(self.changes)), key=lambda i: (self.changes[i].table == "runs", i))
        try:
            for i in order:
                ch = self.changes[i]
                if self.fs.exists(ch.path):
                    ch.backup = _hidden(ch.path, "old")
                    self.fs.mv(ch.path, ch.backup)
                if ch.staged is not None:
                    self.fs.mv(ch.staged, ch.path)
                ch.published = True
        except BaseException:
            self._undo()
            raise
        for ch in self.changes:
            if ch.backup is not None:
                with contextlib.suppress(OSError):
                    self.fs.rm(ch.backup)

    def _undo(self) -> None:
        for ch in reversed(self.changes):
            with contextlib.suppress(OSError):
                if ch.published and ch.staged is not None and self.fs.exists(ch.path):
                    self.fs.mv(ch.path, ch.staged)
                if ch.backup is not None and self.fs.exists(ch.backup):
                    self.fs.mv(ch.backup, ch.path)
        self._discard()

    def _discard(self) -> None:
        for ch in self.changes:
            if ch.staged is not None:
                with contextlib.suppress(OSError):
                    if self.fs.exists(ch.staged):
                        self.fs.rm(ch.staged)
        for folder in reversed(self.created):  # no empty partition folder survives a failure
            with contextlib.suppress(OSError):
                if self.fs.exists(folder) and not self.fs.ls(folder):
                    self.fs.rmdir(folder)


@contextlib.contextmanager
def transaction(root: str | Path | None = None) -> Iterator[Transaction]:
    """``with transaction(root) as tx: tx.write(...); tx.delete(...)``: every change is staged,
    then all are published when the block ends without an exception; otherwise none is."""
    fs, base = filesystem(root)
    tx = Transaction(fs, base)
    with _catalog_lock(fs, base):
        try:
            yield tx
        except BaseException:
            tx._discard()
            raise
        tx._publish()


@contextlib.contextmanager
def _catalog_lock(fs: fsspec.AbstractFileSystem, base: str) -> Iterator[None]:
    """An advisory lock on a local catalog's root while a transaction runs: two processes
    appending to the same run's partition (read, add, write back) lose no row.  Object stores
    have no such lock (their writers are one per run).  A root made here for the lock is removed
    again when the transaction leaves it empty."""
    if not isinstance(fs, LocalFileSystem):
        yield
        return
    made = not os.path.isdir(base)
    os.makedirs(base, exist_ok=True)
    try:
        with locked_folder(base):
            yield
    finally:
        if made:
            with contextlib.suppress(OSError):
                os.rmdir(base)  # only when empty


def _write_file(fs: fsspec.AbstractFileSystem, path: str, data: pa.Table) -> None:
    """Write ``data`` as Parquet at the (hidden) ``path``, fsynced, with the umask's mode."""
    parent = path.rsplit("/", 1)[0]
    try:
        fs.makedirs(parent, exist_ok=True)
        if isinstance(fs, LocalFileSystem):
            with open(path, "wb") as fh:
                pq.write_table(data, fh, compression="zstd")
                fh.flush()
                os.fsync(fh.fileno())
            return
        with fs.open(path, "wb") as fh:
            pq.write_table(data, fh, compression="zstd")
    except BaseException:
        with contextlib.suppress(OSError):
            if fs.exists(path):
                fs.rm(path)
        raise


def _read_partition(fs: fsspec.AbstractFileSystem, path: str, table: str) -> pa.Table | None:
    if not fs.exists(path):
        return None
    with fs.open(path, "rb") as fh:
        old = _renamed(pq.read_table(fh), table)
    target = file_schema(table)
    cols = [old.column(f.name).cast(f.type) if f.name in old.column_names else pa.nulls(old.num_rows, f.type)
            for f in target]
    return pa.Table.from_arrays(cols, schema=target)


def write(
    table: str,
    data: Any,
    root: str | Path | None = None,
    *,
    run_id: str | None = None,
    mode: Literal["replace", "append"] = "replace",
) -> list[str]:
    """Validate ``data`` and write it into ``table``, one atomic file per run; returns the run ids.

    ``mode="replace"`` (default) makes each run's partition hold exactly these rows (re-ingesting
    a run never duplicates it); ``"append"`` adds them to what the partition holds.  With
    ``run_id`` the rows may omit the ``run_id`` column, and an empty ``data`` still replaces
    (empties) that run's partition.
    """
    with transaction(root) as tx:
        return tx.write(table, data, run_id=run_id, mode=mode)


def delete_run(run_id: str, root: str | Path | None = None, tables: Iterable[str] | None = None) -> list[str]:
    """Remove run ``run_id`` from ``tables`` (default: all); returns the tables it was in."""
    check_run_id(run_id)
    fs, base = filesystem(root)
    removed = []
    for table in tables if tables is not None else TABLES:
        schema(table)
        path = _partition_path(base, table, run_id)
        if fs.exists(path):
            fs.rm(path)
            removed.append(table)
    return removed


def run_ids(table: str = "runs", root: str | Path | None = None) -> list[str]:
    """Sorted ids of the runs that have a partition in ``table``."""
    schema(table)
    fs, base = filesystem(root)
    pattern = f"{base}/{table}/{PARTITION}=*/{PART_FILE}"
    return sorted(p.rsplit("/", 2)[-2].split("=", 1)[1] for p in fs.glob(pattern))


# --------------------------------------------------------------------------------------------
# reading

_PANDAS_TYPES = {
    pa.string(): pd.StringDtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}


def _expression(filters: Filters) -> pc.Expression | None:
    if filters is None:
        return None
    if isinstance(filters, pc.Expression):
        return filters
    if isinstance(filters, Mapping):
        expr = None
        for col, value in filters.items():
            field = pc.field(col)
            many = isinstance(value, list | tuple | set | frozenset)
            term = field.isin(list(value)) if many else field == value
            expr = term if expr is None else expr & term
        return expr
    return pq.filters_to_expression(list(filters))


def _to_pandas(tbl: pa.Table) -> pd.DataFrame:
    df = tbl.to_pandas(types_mapper=_PANDAS_TYPES.get)
    for f in tbl.schema:
        if pa.types.is_map(f.type):
            df[f.name] = [None if v is None else dict(v) for v in tbl.column(f.name).to_pylist()]
        elif pa.types.is_timestamp(f.type) and df[f.name].dtype == object:  # all-null column
            df[f.name] = pd.to_datetime(df[f.name], utc=True)
    return df


def load(
    table: str,
    filters: Filters = None,
    root: str | Path | None = None,
    columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Rows of ``table`` as a typed pandas frame (strings ``string``, integers nullable ``Int64``/
    ``Int32``, booleans ``boolean``, floats ``float64``, times ``datetime64[us, UTC]``, the
    ``packages`` map as dicts), sorted by the table's key columns.

    ``filters``: ``{"run_id": "r1", "sequence": ["A", "B"]}`` (equality / membership, AND-ed),
    pyarrow's DNF list ``[("MOTA", ">", 0.5)]``, or a ``pyarrow.compute`` expression; run ids
    prune whole partitions.
    """
    sch = schema(table)
    fs, base = filesystem(root)
    tdir = f"{base}/{table}"
    wanted = list(columns) if columns is not None else list(sch.names)
    unknown = [c for c in wanted if c not in sch.names]
    if unknown:
        raise SchemaError(f"{table}: unknown column(s) {unknown}")
    read_cols = list(dict.fromkeys([*wanted, *SORT_KEYS[table]]))
    expr = _expression(filters)
    canonical = table in CANONICAL_VALUES
    if canonical:  # old partitions may spell a value otherwise: filter after making it canonical
        read_cols, scan_filter = list(sch.names), None
    else:
        scan_filter = expr
    files = sorted(fs.glob(f"{tdir}/{PARTITION}=*/{PART_FILE}")) if fs.exists(tdir) else []
    if files:
        try:
            old = [f for f in files if _has_renamed_columns(fs, f, table)]
            parts = [_legacy_partition(fs, f, table).to_table(columns=read_cols, filter=scan_filter)
                     for f in old]
            current = [f for f in files if f not in old]
            if current or not parts:
                dataset = ds.dataset(
                    current, schema=sch, format="parquet", filesystem=_arrow_fs(fs),
                    partitioning=ds.partitioning(pa.schema([sch.field(PARTITION)]), flavor="hive"),
                    partition_base_dir=tdir,
                )
                parts.insert(0, dataset.to_table(columns=read_cols, filter=scan_filter))
            tbl = pa.concat_tables(parts)
            if canonical:
                tbl = _canonical(tbl, table)
                tbl = tbl if expr is None else tbl.filter(expr)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as exc:
            raise DatasetError(f"unreadable catalog table {table!r} ({_one_line(exc)})", tdir) from None
    else:
        tbl = sch.empty_table().select(read_cols)
    tbl = tbl.sort_by([(k, "ascending") for k in SORT_KEYS[table]]).select(wanted)
    return _to_pandas(tbl)


def _canonical(tbl: pa.Table, table: str) -> pa.Table:
    """``tbl`` with the values of :data:`~catalog.schemas.CANONICAL_VALUES` spelled as they are now."""
    for column, fix in CANONICAL_VALUES.get(table, {}).items():
        if column in tbl.column_names:
            i = tbl.column_names.index(column)
            values = [None if v is None else fix(v) for v in tbl.column(column).to_pylist()]
            tbl = tbl.set_column(i, tbl.schema.field(i), pa.array(values, tbl.schema.field(i).type))
    return tbl


def _renamed(tbl: pa.Table, table: str) -> pa.Table:
    """``tbl`` (a partition file's columns) with columns renamed since it was written under their names now."""
    renames = RENAMED_COLUMNS.get(table, {})
    return tbl.rename_columns([renames.get(c, c) for c in tbl.column_names])


def _has_renamed_columns(fs: fsspec.AbstractFileSystem, path: str, table: str) -> bool:
    """Whether the partition file ``path`` was written with a column renamed since (its footer only);
    a column of another kind of type than the table's is a :class:`SchemaError` naming the file
    and the table (Arrow would cast a number to text without a word)."""
    renames = RENAMED_COLUMNS.get(table) or {}
    with fs.open(path, "rb") as fh:
        found = pq.ParquetFile(fh).schema_arrow
    _check_kinds(found, path, table, renames)
    return any(c in renames for c in found.names)


def _kind(t: pa.DataType) -> str:
    for kind, test in (("integer", pa.types.is_integer), ("floating", pa.types.is_floating),
                       ("text", lambda x: pa.types.is_string(x) or pa.types.is_large_string(x)),
                       ("timestamp", pa.types.is_timestamp), ("null", pa.types.is_null),
                       ("boolean", pa.types.is_boolean), ("map", pa.types.is_map), ("list", pa.types.is_list),
                       ("struct", pa.types.is_struct), ("binary", pa.types.is_binary)):
        if test(t):
            return kind
    if pa.types.is_dictionary(t):
        return _kind(t.value_type)
    return str(t)


def _check_kinds(found: pa.Schema, path: str, table: str, renames: Mapping[str, str]) -> None:
    sch = schema(table)
    for f in found:
        name = renames.get(f.name, f.name)
        if name not in sch.names or _kind(f.type) == "null":
            continue
        want = sch.field(name).type
        if _kind(f.type) != _kind(want):
            raise SchemaError(f"{path}: catalog table {table!r}: column {f.name!r} is {f.type}, expected {want}")


def _legacy_partition(fs: fsspec.AbstractFileSystem, path: str, table: str) -> ds.Dataset:
    """A partition written before a column rename, as a dataset of the table's schema now."""
    with fs.open(path, "rb") as fh:
        old = _renamed(pq.read_table(fh), table)
    sch = schema(table)
    run_id = path.rsplit("/", 2)[-2].split("=", 1)[1]
    cols = [pa.array([run_id] * old.num_rows, f.type) if f.name == PARTITION
            else old.column(f.name).cast(f.type) if f.name in old.column_names else pa.nulls(old.num_rows, f.type)
            for f in sch]
    return ds.dataset(pa.Table.from_arrays(cols, schema=sch))


def _one_line(exc: BaseException) -> str:
    return "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())


def utc_now() -> dt.datetime:
    """Now, timezone-aware UTC (the catalog's timestamp convention)."""
    return dt.datetime.now(dt.UTC)
