"""``cstrack eval`` and ``cstrack report`` end to end through the Typer app."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import catalog
from cstrack.cli import app
from cstrack.paths import shared_data

GOLDEN = shared_data() / "eval-golden"
EXPECTED = json.loads((GOLDEN / "EXPECTED.json").read_text())
TUD = ["--gt-root", str(GOLDEN / "tud/gt"), "--results-root", str(GOLDEN / "tud/trackers/motmetrics-test/data"),
       "--preset", "mot15"]

runner = CliRunner()


def test_eval_prints_a_server_table_and_writes_json(tmp_path):
    out = tmp_path / "m.json"
    res = runner.invoke(app, ["eval", *TUD, "--json", str(out)])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    header = next(ln for ln in lines if "HOTA" in ln and "IDF1" in ln)
    assert header.split()[1:4] == ["HOTA", "DetA", "AssA"]
    combined = next(ln for ln in lines if ln.startswith("COMBINED")).split()
    # HOTA 39.996 %, MOTA 55.512 %, IDSW 14, FP 58, FN 602 (EXPECTED.json, tud COMBINED)
    assert combined[1] == "39.996" and combined[5] == "55.512" and combined[10:13] == ["14", "58", "602"]
    data = json.loads(out.read_text())
    assert set(data) == {"TUD-Campus", "TUD-Stadtmitte", "COMBINED"}
    want = EXPECTED["tud"]["COMBINED"]
    for key in ("HOTA", "DetA", "AssA", "MOTA", "MOTP", "IDF1"):
        assert data["COMBINED"][key] == pytest.approx(want[key], abs=1e-9)
    for key in ("IDSW", "FP", "FN", "Frag", "MT", "ML"):
        assert data["COMBINED"][key] == want[key] and isinstance(data["COMBINED"][key], int)
    assert data["COMBINED"]["PT"] == want["_extra"]["PT"]
    assert data["COMBINED"]["IDP"] == pytest.approx(want["_extra"]["IDP"], abs=1e-9)


def test_eval_sequences_option_and_workers():
    res = runner.invoke(app, ["eval", *TUD, "--sequences", "TUD-Campus", "--workers", "2"])
    assert res.exit_code == 0, res.output
    assert "TUD-Stadtmitte" not in res.output
    combined = next(ln for ln in res.output.splitlines() if ln.startswith("COMBINED")).split()
    assert combined[5] == "52.646"  # TUD-Campus alone: MOTA 0.526462


def test_eval_catalog_ingestion_is_idempotent(tmp_path):
    root = tmp_path / "results"
    args = ["eval", *TUD, "--catalog", str(root), "--variant", "cstrack-l", "--dataset", "MOT15", "--split", "train",
            "--detection-mode", "private", "--label", "ours"]
    for _ in range(2):
        res = runner.invoke(app, args)
        assert res.exit_code == 0, res.output
        assert "ingested run cstrack-l-MOT15-train-" in res.output
    runs = catalog.load("runs", root=root)
    assert len(runs) == 1
    r = runs.iloc[0]
    assert (r["source"], r["tracker"], r["variant"], r["detection_mode"], r["label"], r["eval_preset"]) == (
        "cstrack", "cstrack-l", "cstrack-l", "private", "ours", "mot15")
    assert len(catalog.load("sequence_metrics", root=root)) == 3
    assert len(catalog.load("events", root=root)) == 1573
    assert len(catalog.load("tracks", root=root)) == 222 + 749


def test_import_tracker_records_an_external_run(tmp_path):
    root = tmp_path / "cat"
    res = runner.invoke(app, ["eval", "--gt-root", str(GOLDEN / "mot20/gt"), "--results-root",
                              str(GOLDEN / "mot20/trackers/MPNTrack"), "--preset", "mot20",
                              "--import-tracker", "MPNTrack", "--catalog", str(root), "--no-events"])
    assert res.exit_code == 0, res.output
    r = catalog.load("runs", root=root).iloc[0]
    assert (r["source"], r["tracker"], r["label"], r["dataset"]) == ("external", "MPNTrack", "MPNTrack", "MOT20")
    m = catalog.load("sequence_metrics", {"sequence": "COMBINED"}, root).iloc[0]
    assert (m["IDSW"], m["FP"], m["FN"]) == (53, 391, 6338)
    assert len(catalog.load("events", root=root)) == 0


def test_eval_errors_are_one_line_with_exit_code_2(tmp_path):
    empty = tmp_path / "res"
    empty.mkdir()
    args = ["eval", "--gt-root", str(GOLDEN / "tud/gt"), "--results-root", str(empty), "--preset", "mot15"]
    res = runner.invoke(app, args)
    assert res.exit_code == 2
    assert "error:" in res.output and "TUD-Campus.txt: no result file for sequence TUD-Campus" in res.output
    res = runner.invoke(app, [*args, "--allow-missing"])
    assert res.exit_code == 0 and "counted as empty (no result file): TUD-Campus, TUD-Stadtmitte" in res.output
    bad = runner.invoke(app, ["eval", *TUD[:4], "--preset", "mot99"])
    assert bad.exit_code == 2 and "preset: unknown 'mot99'" in bad.output


def test_report_command_writes_tables(tmp_path):
    root = tmp_path / "results"
    assert runner.invoke(app, ["eval", *TUD, "--catalog", str(root), "--variant", "cstrack-l",
                               "--dataset", "MOT16", "--split", "train", "--no-events", "--no-tracks"]).exit_code == 0
    out = tmp_path / "tables"
    res = runner.invoke(app, ["report", "--results", str(root), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert {p.name for p in out.iterdir()} >= {"table_vi.md", "table_vi.csv", "table_vi.tex", "ablations.md",
                                               "upper_bound.tex", "report.md", "mota_vs_fps.png"}
    # MT 6 and ML 2 of 18 gt tracks: 33.3 % and 11.1 %
    assert "MOT16,train,cstrack-l,ours,55.5,62.4,40.0,33.3,11.1,58,602,14," in (out / "table_vi.csv").read_text()
