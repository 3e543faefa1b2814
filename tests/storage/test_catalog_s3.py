"""The catalog in an S3 bucket (SeaweedFS): the same rows as on a local disk, the bucket recipes of
docs/catalog.md, and `cstrack data prepare --upload`."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import catalog
from catalog.ingest import RunInfo, ingest_evaluation
from catalog.schemas import TABLES
from cstrack.cli import app
from cstrack.eval import evaluate_prepared, prepare
from cstrack.paths import REPO_ROOT, shared_data
from cstrack.storage import Location, read_manifest

TUD = shared_data() / "eval-golden" / "tud"
DOC = REPO_ROOT / "docs" / "catalog.md"


def _ingest(root: str | Path) -> None:
    prepared = prepare(TUD / "gt", TUD / "trackers/motmetrics-test/data", None, "mot15")
    result = evaluate_prepared(prepared)
    for rid in ("run-a", "run-b"):
        info = RunInfo(rid, "MOT15", "motmetrics-test", source="external", tag="nightly")
        ingest_evaluation(root, info, result, prepared=prepared, results_dir=TUD / "trackers/motmetrics-test/data")


def test_catalog_in_the_bucket(s3_bucket: str, tmp_path: Path) -> None:
    """Every table reads back from the bucket as from a local root (except the times of ingestion),
    re-ingesting replaces rather than duplicates, and the doc's bucket recipe runs as written."""
    local, remote = tmp_path / "results", f"{s3_bucket}/results"
    _ingest(local)
    _ingest(remote)
    _ingest(remote)  # the same runs again: replaced, not duplicated
    for table in TABLES:
        a, b = catalog.load(table, root=local), catalog.load(table, root=remote)
        volatile = [c for c in a.columns if str(a[c].dtype).startswith("datetime64")]  # when it was ingested
        pd.testing.assert_frame_equal(a.drop(columns=volatile), b.drop(columns=volatile))
    assert catalog.store.run_ids(root=remote) == ["run-a", "run-b"]
    assert len(catalog.load("sequence_metrics", filters={"run_id": "run-a"}, root=remote)) > 1

    block = re.search(r"## Straight from the bucket.*?```python\n(.*?)```", DOC.read_text(), re.S)
    assert block is not None
    scope: dict[str, object] = {}
    exec(block.group(1).replace('"s3://bucket/results"', repr(remote)), scope)
    board = scope["board"]
    assert isinstance(board, pd.DataFrame)
    assert board["run_id"].tolist() == ["run-a", "run-b"] or board["run_id"].tolist() == ["run-b", "run-a"]
    assert [round(v, 6) for v in board["HOTA"]] == [0.399957, 0.399957]  # tests/catalog/test_recipes.py
    assert len(scope["combined"]) == 2 and len(scope["plain"]) == 2  # type: ignore[arg-type]


def test_prepare_uploads_changed_files_only(s3_bucket: str, tmp_path: Path) -> None:
    runner = CliRunner()
    url = f"{s3_bucket}/data"
    res = runner.invoke(app, ["data", "prepare", "mot17-mini", "--root", str(tmp_path), "--quiet", "--upload", url])
    assert res.exit_code == 0, res.output
    local = tmp_path / "mot17-mini"
    n = sum(1 for p in local.rglob("*") if p.is_file())
    assert f"mot17-mini: uploaded {n} file(s) to {url}/mot17-mini (0 unchanged)" in res.output
    man = read_manifest(f"{url}/mot17-mini")
    assert man is not None and len(man["files"]) == n
    seq = "images/train/MOT17-02-FRCNN"
    assert Location.of(f"{url}/mot17-mini/{seq}/seqinfo.ini").read_bytes() == (local / seq / "seqinfo.ini").read_bytes()
    gt = local / seq / "gt" / "gt.txt"
    gt.unlink()  # prepare hard-links the shared files: replace the link, never write through it
    gt.write_text("1,1,1,1,5,5,1,1,1\n")  # one file changes: one file goes up
    again = runner.invoke(app, ["data", "prepare", "mot17-mini", "--root", str(tmp_path), "--quiet", "--upload", url])
    assert f"uploaded 1 file(s) to {url}/mot17-mini ({n - 1} unchanged)" in again.output, again.output
    assert Location.of(f"{url}/mot17-mini/{seq}/gt/gt.txt").read_text() == "1,1,1,1,5,5,1,1,1\n"


def test_upload_to_a_missing_bucket_is_one_line(s3_bucket: str, tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["data", "prepare", "mot17-mini", "--root", str(tmp_path), "--quiet",
                                   "--upload", "s3://no-such-bucket-h7/data"])
    assert res.exit_code == 2
    assert "error: s3://no-such-bucket-h7/data/mot17-mini/" in res.output and "no bucket 'no-such-bucket-h7'" in res.output
    assert "Traceback" not in res.output


def test_prepare_task_uploads_to_an_s3_data_root(s3_bucket: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The prepare-data flow's task with an s3:// data_root prepares on this host and uploads."""
    import logging

    import prefect.logging

    from tasks.data import prepare_dataset

    monkeypatch.setattr(prefect.logging, "get_run_logger", lambda: logging.getLogger("test"))  # no flow run
    monkeypatch.setenv("CSTRACK_CACHE", str(tmp_path / "cache"))
    url = f"{s3_bucket}/data"
    first = prepare_dataset.fn("mot17-mini", url)
    assert first["path"] == f"{url}/mot17-mini" and first["uploaded"] > 0
    assert Location.of(f"{url}/mot17-mini/images/train/MOT17-05-FRCNN/seqinfo.ini").exists()
    again = prepare_dataset.fn("mot17-mini", url)
    assert again["skipped"] and again["uploaded"] == 0
