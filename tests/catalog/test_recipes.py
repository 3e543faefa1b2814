"""The analyst recipes of docs/catalog.md run against a real catalog (TUD golden evaluation)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

import catalog
from catalog.ingest import RunInfo, ingest_evaluation
from cstrack.eval import evaluate_prepared, prepare
from cstrack.paths import REPO_ROOT, shared_data

TUD = shared_data() / "eval-golden" / "tud"
DOC = REPO_ROOT / "docs" / "catalog.md"


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("recipes") / "results"
    prepared = prepare(TUD / "gt", TUD / "trackers/motmetrics-test/data", None, "mot15")
    result = evaluate_prepared(prepared)
    for rid, tag in (("run-a", "nightly"), ("run-b", "nightly")):
        info = RunInfo(rid, "MOT15", "motmetrics-test", source="external", tag=tag)
        ingest_evaluation(root, info, result, prepared=prepared, results_dir=TUD / "trackers/motmetrics-test/data")
    return root


def test_pandas_recipes(results):
    runs = catalog.load("runs", root=results)
    combined = catalog.load("sequence_metrics", filters={"sequence": "COMBINED"}, root=results)
    board = runs[["run_id", "label"]].merge(combined[["run_id", "HOTA", "MOTA"]], on="run_id")
    assert board["MOTA"].round(6).tolist() == [0.555116, 0.555116]
    sw = catalog.load("events", filters=[("run_id", "=", "run-a"), ("event", "=", "SWITCH")], root=results)
    worst = sw.groupby(["sequence", "gt_id"]).size().sort_values(ascending=False)
    assert int(worst.iloc[0]) == 3 and worst.sum() == 14  # 14 ID switches in total, gt 3 of TUD-Campus has 3
    plain = pd.read_parquet(results / "sequence_metrics", filters=[("sequence", "==", "COMBINED")])
    assert len(plain) == 2


def test_duckdb_recipes_from_the_doc(results, monkeypatch):
    import duckdb  # a dev dependency (the recipes in docs/catalog.md use it; the package does not)
    monkeypatch.chdir(results.parent)
    queries = re.findall(r"```sql\n(.*?)```", DOC.read_text(), re.S)[0]
    statements = [s.strip() for s in queries.split(";") if s.strip()]
    assert len(statements) == 7
    con = duckdb.connect()
    out = [con.sql(s).fetchall() for s in statements]
    assert [round(r[5], 6) for r in out[0]] == [0.399957, 0.399957]  # leaderboard HOTA
    assert out[1][0][3] == 3  # most switches of one gt track
    assert out[6] == [("MOT15", 0.0, 0.0, None)]  # nightly diff of two identical runs (no fps)
