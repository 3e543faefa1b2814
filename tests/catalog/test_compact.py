"""catalog.compact: the index of a compacted catalog gives the very frames the partitions give,
before and after runs are added, rewritten or deleted since the compaction."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import catalog
from catalog import store
from catalog.compact import INDEX_DIR, compact
from catalog.ingest import RunInfo, run_row
from cstrack.eval.result import FLOAT_FIELDS, INT_FIELDS
from cstrack.provenance import Provenance
from cstrack.timing import STAGES

T0 = dt.datetime(2026, 1, 1, 2, tzinfo=dt.UTC)
PROV = Provenance(git_commit="abc", git_dirty=False, packages={"numpy": "2.0"}, python="3.11", platform="linux",
                  cpu_model="cpu", cpu_cores=2, gpu=None)


def _write_run(root: str, i: int, value: float) -> None:
    rid = f"nightly-{i:03d}"
    info = RunInfo(rid, f"ds-{i % 2}", "cstrack-n", tag="nightly", started_at=T0 + dt.timedelta(days=i),
                   ended_at=T0 + dt.timedelta(days=i, hours=1))
    rows = [{"run_id": rid, "sequence": s, **dict.fromkeys(FLOAT_FIELDS, value), **dict.fromkeys(INT_FIELDS, i),
             "fps": None, **{f"{st}_ms": None for st in STAGES}} for s in ("A", "B", "COMBINED")]
    with store.transaction(root) as tx:
        tx.write("sequence_metrics", rows, run_id=rid)
        tx.write("runs", [run_row(info, PROV)], run_id=rid)


QUERIES = [
    ("runs", None, None),
    ("runs", {"tag": "nightly", "dataset": "ds-0"}, ["run_id", "started_at"]),
    ("sequence_metrics", {"sequence": "COMBINED"}, None),
    ("sequence_metrics", [("HOTA", ">", 0.25)], ["run_id", "sequence", "HOTA", "IDSW"]),
    ("sequence_metrics", {"run_id": ["nightly-001", "nightly-004"]}, None),
]


def _same_as_partitions(root: str) -> None:
    for table, filters, columns in QUERIES:
        want = store.load(table, filters, root, columns)
        got = catalog.load(table, filters, root, columns)
        pd.testing.assert_frame_equal(got, want, check_exact=True)


@pytest.fixture(params=["local", "memory"])
def root(request, tmp_path: Path):
    if request.param == "local":
        return str(tmp_path / "results")
    return f"memory://compact-{uuid.uuid4().hex}"


def test_index_gives_the_partitions_frames_through_changes(root: str) -> None:
    for i in range(6):
        _write_run(root, i, 0.1 * i)
    report = compact(root)
    assert report.partitions == {"runs": 6, "sequence_metrics": 6} and report.rows == {"runs": 6, "sequence_metrics": 18}
    fs, base = store.filesystem(root)
    assert fs.exists(f"{base}/{INDEX_DIR}/runs.parquet")
    _same_as_partitions(root)
    _write_run(root, 6, 0.9)  # added since
    _write_run(root, 2, 0.55)  # rewritten since (new values)
    store.delete_run("nightly-003", root)  # deleted since
    _same_as_partitions(root)
    got = catalog.load("sequence_metrics", {"sequence": "COMBINED"}, root)
    assert got.set_index("run_id")["HOTA"].to_dict() == pytest.approx(
        {"nightly-000": 0.0, "nightly-001": 0.1, "nightly-002": 0.55, "nightly-004": 0.4, "nightly-005": 0.5,
         "nightly-006": 0.9})
    compact(root)  # and once compacted again
    _same_as_partitions(root)


def test_without_an_index_load_is_the_stores(tmp_path: Path) -> None:
    root = str(tmp_path / "results")
    _write_run(root, 0, 0.5)
    _same_as_partitions(root)
    pd.testing.assert_frame_equal(catalog.load("events", root=root), store.load("events", root=root))


def test_cli_compacts(tmp_path: Path) -> None:
    from cstrack.cli import app

    root = str(tmp_path / "results")
    for i in range(3):
        _write_run(root, i, 0.2)
    res = CliRunner().invoke(app, ["catalog", "compact", "--results", root])
    assert res.exit_code == 0, res.output
    assert "runs: 3 partitions, 3 rows" in res.output and "sequence_metrics: 3 partitions, 9 rows" in res.output
    assert (tmp_path / "results" / INDEX_DIR / "sequence_metrics.parquet").is_file()
