"""Every flow run is an observation (issue 28): two runs of unchanged results give two ``runs`` rows
(their own ids, times and counts) while the big ``tracks``/``events`` rows are stored once and
shared by reference; names are canonical on write and on read; a catalog written before the
change (tests/catalog/golden/catalog_2026_12, written by the code of 2026-12-07) reads as before."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from pathlib import Path

import pytest

import catalog
from catalog.ingest import RunInfo, default_label, ingest_evaluation, ingest_tracking, results_run
from cstrack.data.names import canonical_dataset
from cstrack.eval import evaluate_prepared, prepare
from cstrack.paths import shared_data
from cstrack.provenance import Provenance
from flows.params import TrackAllParams
from flows.recording import FlowRun, device_names, run_info
from tasks.records import TrackRecord

TUD = shared_data() / "eval-golden" / "tud"
RES = TUD / "trackers/motmetrics-test/data"
GOLDEN = Path(__file__).parent / "golden" / "catalog_2026_12"
PROV = Provenance("abc123", False, {"numpy": "2.4.6"}, "3.11.7", "Linux", "Test CPU", 2, None)
T0 = dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def campus():
    prepared = prepare(TUD / "gt", RES, ["TUD-Campus"], "mot15")
    return prepared, evaluate_prepared(prepared)


def _night(i: int, **kw) -> RunInfo:
    base = dict(run_id=f"night-{i}", dataset="mot17", tracker="cstrack-n", variant="cstrack-n", tag="nightly",
                split="train", tracker_preset="default", weights_sha256="0123456789abcdef" * 4,
                results_hash="same-results", flow_run_id=f"flow-{i}", run_group=f"flow-{i}", run_name="nightly",
                started_at=T0 + dt.timedelta(days=i), ended_at=T0 + dt.timedelta(days=i, minutes=3),
                sequences_tracked=1 if i == 0 else 0, sequences_cached=0 if i == 0 else 1)
    return RunInfo(**{**base, **kw})


def test_two_runs_of_unchanged_results_are_two_rows_sharing_the_tracks(tmp_path: Path, campus) -> None:
    prepared, result = campus
    first = ingest_evaluation(tmp_path, _night(0), result, prepared=prepared, results_dir=RES, provenance=PROV)
    second = ingest_evaluation(tmp_path, _night(1), result, prepared=prepared, results_dir=RES, provenance=PROV)
    assert first["tracks"] == 222 and first["events"] > 0
    assert second == {"runs": 1, "sequence_metrics": 2, "events": 0, "tracks": 0}  # shared, not copied

    runs = catalog.load("runs", root=tmp_path).set_index("run_id")
    assert list(runs.index) == ["night-0", "night-1"]
    assert list(runs["started_at"]) == [T0, T0 + dt.timedelta(days=1)]
    assert list(runs["flow_run_id"]) == ["flow-0", "flow-1"]
    assert list(runs["sequences_tracked"]) == [1, 0] and list(runs["sequences_cached"]) == [0, 1]
    assert runs.loc["night-0", "results_run_id"] is pd_na() and runs.loc["night-1", "results_run_id"] == "night-0"
    assert set(runs["dataset"]) == {"MOT17"} and set(runs["label"]) == {"cstrack-n default 01234567"}

    # metrics are copied per run (joins on run_id work), tracks/events stored once
    m = catalog.load("sequence_metrics", root=tmp_path)
    assert m.groupby("run_id").size().to_dict() == {"night-0": 2, "night-1": 2}
    assert catalog.store.run_ids("tracks", tmp_path) == ["night-0"]
    assert catalog.store.run_ids("events", tmp_path) == ["night-0"]
    runs = runs.reset_index()
    assert results_run(runs, "night-1") == "night-0" and results_run(runs, "night-0") == "night-0"

    # a night whose results changed writes its own tracks
    third = ingest_evaluation(tmp_path, _night(2, results_hash="other"), result, prepared=prepared,
                              results_dir=RES, provenance=PROV)
    assert third["tracks"] == 222
    # re-ingesting the first run (same id) keeps its own rows
    again = ingest_evaluation(tmp_path, _night(0), result, prepared=prepared, results_dir=RES, provenance=PROV)
    assert again["tracks"] == 222


def pd_na():
    import pandas as pd

    return pd.NA


def test_runs_without_ground_truth_share_their_tracks_too(tmp_path: Path) -> None:
    for i in (0, 1):
        counts = ingest_tracking(tmp_path, _night(i, dataset="clips"), RES, ["TUD-Campus"], provenance=PROV)
        assert counts["tracks"] == (222 if i == 0 else 0)
    assert catalog.load("sequence_stats", root=tmp_path).groupby("run_id").size().to_dict() == {"night-0": 1,
                                                                                                  "night-1": 1}
    assert catalog.store.run_ids("tracks", tmp_path) == ["night-0"]


@pytest.mark.parametrize(("name", "canonical"), [
    ("mot17", "MOT17"), ("MOT17", "MOT17"), ("mot20", "MOT20"), ("Mot16", "MOT16"), ("mot17-mini", "MOT17-mini"),
    ("2dmot15", "MOT15"), ("pets09-s2l1", "pets09-s2l1"), ("motsynth", "motsynth"), ("mot170", "mot170"),
])
def test_dataset_names_are_spelled_as_the_server_does(name: str, canonical: str) -> None:
    assert canonical_dataset(name) == canonical


def test_the_default_label_tells_settings_apart() -> None:
    assert default_label(_night(0)) == "cstrack-n default 01234567"
    assert default_label(_night(0, tracker_preset="original")) == "cstrack-n original 01234567"
    assert default_label(_night(0, label="mine")) == "mine"
    assert default_label(_night(0, source="external", tracker="FairMOT", variant=None)) == "FairMOT"


def test_a_catalog_written_before_reads_as_before_with_canonical_names(tmp_path: Path) -> None:
    root = tmp_path / "cat"
    shutil.copytree(GOLDEN, root)
    runs = catalog.load("runs", root=root)
    assert list(runs["run_id"]) == ["cstrack-n-clips-train-cccccccccccc", "cstrack-n-mot17-train-aaaaaaaaaaaa",
                                    "cstrack-n-mot17-train-bbbbbbbbbbbb"]
    assert list(runs["dataset"]) == ["clips", "MOT17", "MOT17"]  # written as "mot17"
    assert runs["run_name"].isna().all() and runs["results_run_id"].isna().all()  # columns added since
    assert runs["device_name"].isna().all()
    assert list(runs["label"]) == ["cstrack-n", "cstrack-n", "cstrack-n"] and list(runs["flow_run_id"][1:]) == [
        "flow-0", "flow-1"]
    # a filter on the canonical name finds the old rows; the other tables read as before
    assert len(catalog.load("runs", filters={"dataset": "MOT17"}, root=root)) == 2
    assert len(catalog.load("runs", filters={"dataset": "mot17"}, root=root)) == 0
    m = catalog.load("sequence_metrics", root=root)
    assert m.groupby("run_id").size().to_dict() == {"cstrack-n-mot17-train-aaaaaaaaaaaa": 2,
                                                    "cstrack-n-mot17-train-bbbbbbbbbbbb": 2}
    assert round(float(m[m["sequence"] == "COMBINED"]["MOTA"].iloc[0]), 4) == 0.5265  # motmetrics: TUD-Campus MOTA 52.6 %
    assert len(catalog.load("tracks", filters={"run_id": "cstrack-n-mot17-train-aaaaaaaaaaaa"}, root=root)) == 222
    # and a new run lands beside the old ones
    ingest_tracking(root, _night(5, dataset="clips", results_hash=None), RES, ["TUD-Campus"], provenance=PROV)
    assert len(catalog.load("runs", root=root)) == 4


def _record(seq: str, sha: str, started: str) -> TrackRecord:
    return TrackRecord(dataset="synth", split="train", sequence=seq, mode="gt", frames=10, fps=5.0,
                       result_path=f"/r/{seq}.txt", result_sha256=sha, worker="w1", started=started,
                       finished=started)


def test_flow_runs_of_the_same_results_get_their_own_ids_and_times(tmp_path: Path) -> None:
    params = TrackAllParams(datasets=[{"name": "synth", "mode": "gt"}], run_name="nightly", tag="nightly")
    recs = [_record("S-01", "a" * 64, "2026-12-01T02:00:00+00:00"), _record("S-02", "b" * 64,
                                                                            "2026-12-01T02:00:05+00:00")]
    night1 = FlowRun("f1", "g1", T0, T0 + dt.timedelta(minutes=2))
    night2 = FlowRun("f2", "g2", T0 + dt.timedelta(days=1), T0 + dt.timedelta(days=1, seconds=20))
    a = run_info(params, params.datasets[0], "train", recs, tmp_path, "f1", flow=night1, tracked=2)
    b = run_info(params, params.datasets[0], "train", recs, tmp_path, "f2", flow=night2, tracked=0)
    assert a.run_id != b.run_id and a.run_id.startswith("cstrack-n-synth-train-")
    assert a.results_hash == b.results_hash
    assert (b.started_at, b.ended_at, b.flow_run_id, b.run_group) == (night2.started_at, night2.ended_at, "f2", "g2")
    assert (a.sequences_tracked, a.sequences_cached, b.sequences_tracked, b.sequences_cached) == (2, 0, 0, 2)
    assert (b.run_name, b.tracker_preset, b.device, b.device_name) == ("nightly", "default", "cpu", None)  # gt: no model
    changed = [recs[0], _record("S-02", "c" * 64, "2026-12-02T02:00:00+00:00")]
    assert run_info(params, params.datasets[0], "train", changed, tmp_path, "f2", flow=night2).results_hash != (
        a.results_hash)


def test_the_run_row_names_the_hardware_its_network_ran_on(tmp_path: Path) -> None:
    recs = [dataclasses.replace(_record(f"S-0{i}", "a" * 64, "2026-12-01T02:00:00+00:00"), device="cuda:0",
                                device_name=name) for i, name in enumerate(["NVIDIA H100", "NVIDIA H100", "NVIDIA L4"])]
    assert device_names(recs[:2]) == "NVIDIA H100"  # the common value
    assert device_names(recs) == "NVIDIA H100, NVIDIA L4"  # workers differ: each once, sorted
    assert device_names([_record("S-01", "a" * 64, "2026-12-01T02:00:00+00:00")]) is None
    ingest_tracking(tmp_path, _night(0, dataset="clips", device="cuda:0", device_name=device_names(recs)), RES,
                    ["TUD-Campus"], provenance=PROV)
    runs = catalog.load("runs", root=tmp_path)
    assert list(runs["device_name"]) == ["NVIDIA H100, NVIDIA L4"] and list(runs["device"]) == ["cuda:0"]


def test_the_nightly_comparison_compares_consecutive_nights_cached_or_not(tmp_path: Path, campus) -> None:
    from tasks.compare import compare_with_previous

    prepared, result = campus
    for i in range(3):  # three nights, the last two served from the cache (same results)
        ingest_evaluation(tmp_path, _night(i), result, prepared=prepared, results_dir=RES, provenance=PROV)
    th = {"metrics": ["MOTA", "IDF1"], "metric_warn": 0.01, "metric_fail": 0.02, "fps_warn": 0.1, "fps_fail": 0.2}
    cmp = compare_with_previous.fn(str(tmp_path), ["night-2"], th)
    assert cmp["pairs"] == {"night-2": "night-1"} and cmp["worst"] == "ok"
    assert {r["delta"] for r in cmp["rows"]} == {0.0}
    assert compare_with_previous.fn(str(tmp_path), ["night-0"], th)["pairs"] == {"night-0": None}
