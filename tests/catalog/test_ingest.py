"""catalog.ingest: an evaluated run lands in every table, and ingesting it again replaces it."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import catalog
from catalog.ingest import RunInfo, SequenceTiming, ingest_evaluation, read_timings, results_fingerprint
from catalog.schemas import SchemaError
from cstrack.data.mot import read_results
from cstrack.eval import COMBINED, evaluate_prepared, prepare
from cstrack.paths import shared_data
from cstrack.provenance import Provenance

TUD = shared_data() / "eval-golden" / "tud"
PROV = Provenance("abc123", False, {"numpy": "2.4.6"}, "3.11.7", "Linux", "Test CPU", 2, None)


@pytest.fixture(scope="module")
def tud_eval():
    prepared = prepare(TUD / "gt", TUD / "trackers/motmetrics-test/data", None, "mot15")
    return prepared, evaluate_prepared(prepared)


def _info(**kw) -> RunInfo:
    base = dict(run_id="tud-1", dataset="MOT15", tracker="motmetrics-test", source="external", split="train",
                eval_preset="mot15", config={"note": "golden"})
    return RunInfo(**{**base, **kw})


def test_ingest_writes_every_table(tmp_path, tud_eval):
    prepared, result = tud_eval
    res_dir = TUD / "trackers/motmetrics-test/data"
    counts = ingest_evaluation(tmp_path, _info(), result, prepared=prepared, results_dir=res_dir, provenance=PROV)
    assert counts == {"runs": 1, "sequence_metrics": 3, "events": 1573, "tracks": 222 + 749}

    runs = catalog.load("runs", root=tmp_path)
    r = runs.iloc[0]
    assert (r["run_id"], r["source"], r["tracker"], r["label"], r["git_commit"]) == (
        "tud-1", "external", "motmetrics-test", "motmetrics-test", "abc123")
    assert json.loads(r["config_json"]) == {"note": "golden"} and len(r["config_hash"]) == 64
    assert r["packages"] == {"numpy": "2.4.6"} and r["cpu_model"] == "Test CPU" and r["cpu_cores"] == 2

    m = catalog.load("sequence_metrics", root=tmp_path).set_index("sequence")
    assert sorted(m.index) == [COMBINED, "TUD-Campus", "TUD-Stadtmitte"]
    for seq in m.index:
        for key, value in result[seq].items():
            assert m.loc[seq, key] == value, (seq, key)
    assert m["fps"].isna().all()  # no timing records for external results

    ev = catalog.load("events", root=tmp_path)
    assert ev.groupby("event").size().to_dict() == {"FP": 58, "MATCH": 899, "MISS": 602, "SWITCH": 14}

    tracks = catalog.load("tracks", {"sequence": "TUD-Campus"}, tmp_path)
    ref = read_results(res_dir / "TUD-Campus.txt").sorted()
    assert tracks["frame"].tolist() == ref.frame.tolist() and tracks["track_id"].tolist() == ref.id.tolist()
    np.testing.assert_array_equal(tracks[["x", "y", "w", "h"]].to_numpy(float), ref.tlwh)


def test_reingesting_replaces_the_run(tmp_path, tud_eval):
    prepared, result = tud_eval
    res_dir = TUD / "trackers/motmetrics-test/data"
    for _ in range(2):
        ingest_evaluation(tmp_path, _info(), result, prepared=prepared, results_dir=res_dir, provenance=PROV)
    ingest_evaluation(tmp_path, _info(run_id="tud-2"), result, provenance=PROV)  # a second run, no extras
    assert catalog.load("runs", root=tmp_path)["run_id"].tolist() == ["tud-1", "tud-2"]
    per_run = catalog.load("sequence_metrics", root=tmp_path).groupby("run_id").size().to_dict()
    assert per_run == {"tud-1": 3, "tud-2": 3}
    assert len(catalog.load("events", {"run_id": "tud-1"}, tmp_path)) == 1573
    # re-ingest tud-1 without events/tracks: its stale rows go, other runs stay
    ingest_evaluation(tmp_path, _info(label="again"), result, provenance=PROV)
    assert len(catalog.load("events", {"run_id": "tud-1"}, tmp_path)) == 0
    assert len(catalog.load("tracks", {"run_id": "tud-1"}, tmp_path)) == 0
    assert catalog.load("runs", {"run_id": "tud-1"}, tmp_path)["label"].tolist() == ["again"]


def test_timing_records_give_fps_and_stage_ms(tmp_path, tud_eval):
    _, result = tud_eval
    res_dir = tmp_path / "res"
    shutil.copytree(TUD / "trackers/motmetrics-test/data", res_dir)
    ms = {"read": 1.0, "preprocess": 2.0, "forward": 30.0, "postprocess": 3.0, "associate": 4.0}
    (res_dir / "timing.json").write_text(json.dumps({"TUD-Campus": {"frames": 71, "fps": 10.0, "ms": ms}}))
    ms2 = {k: 2 * v for k, v in ms.items()}
    (res_dir / "TUD-Stadtmitte.timing.json").write_text(
        json.dumps({"sequence": "TUD-Stadtmitte", "frames": 179, "fps": 20.0, "ms": ms2}))
    timings = read_timings(res_dir)
    assert timings["TUD-Campus"] == SequenceTiming(71, 10.0, ms)
    ingest_evaluation(tmp_path / "cat", _info(), result, results_dir=res_dir, provenance=PROV)
    m = catalog.load("sequence_metrics", root=tmp_path / "cat").set_index("sequence")
    assert m.loc["TUD-Campus", "fps"] == 10.0 and m.loc["TUD-Stadtmitte", "forward_ms"] == 60.0
    # COMBINED: 250 frames in 71/10 + 179/20 = 16.05 s; stage ms weighted by frames
    assert m.loc[COMBINED, "fps"] == pytest.approx(250 / 16.05)
    assert m.loc[COMBINED, "forward_ms"] == pytest.approx((71 * 30 + 179 * 60) / 250)


def test_run_info_is_validated():
    with pytest.raises(SchemaError, match="source"):
        _info(source="theirs")
    with pytest.raises(SchemaError, match="run_id"):
        _info(run_id="a/b")


def test_results_fingerprint_tracks_content(tmp_path):
    d = tmp_path / "r"
    d.mkdir()
    (d / "A.txt").write_text("1,1,0,0,1,1,1,-1,-1,-1\n")
    first = results_fingerprint(d, ["A"])
    assert results_fingerprint(d, ["A"]) == first
    (d / "A.txt").write_text("1,2,0,0,1,1,1,-1,-1,-1\n")
    assert results_fingerprint(d, ["A"]) != first


def _catalog_files(root) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_ingest_is_all_tables_or_none_when_a_table_cannot_be_staged(tmp_path, tud_eval):
    """Issue 20 case 4 (a table folder not writable mid-ingest).  Tests run as root, whom chmod
    does not stop, so the unwritable folder is simulated by a regular file in the way of
    ``tracks/run_id=tud-1/``: staging that table fails after the metrics and events are staged."""
    prepared, result = tud_eval
    res_dir = TUD / "trackers/motmetrics-test/data"
    (tmp_path / "tracks").mkdir()
    (tmp_path / "tracks" / "run_id=tud-1").write_text("in the way")
    with pytest.raises(OSError):
        ingest_evaluation(tmp_path, _info(), result, prepared=prepared, results_dir=res_dir, provenance=PROV)
    for table in ("runs", "sequence_metrics", "events", "tracks"):
        assert catalog.run_ids(table, tmp_path) == [], table
    assert [p.name for p in tmp_path.rglob(".*")] == []  # no staged file left behind


def test_failed_publish_restores_the_previous_run(tmp_path, tud_eval, monkeypatch):
    """A failure while publishing (the third table's rename) renames back what was published: the
    previously ingested version of the run stays whole and readable."""
    from fsspec.implementations.local import LocalFileSystem

    prepared, result = tud_eval
    res_dir = TUD / "trackers/motmetrics-test/data"
    ingest_evaluation(tmp_path, _info(label="first"), result, prepared=prepared, results_dir=res_dir, provenance=PROV)
    before = _catalog_files(tmp_path)
    real_mv, published = LocalFileSystem.mv, []

    def failing_mv(self, src, dst, **kw):
        if ".new" in str(src) and not str(dst).endswith(".new"):
            published.append(str(dst).split("/")[-3])
            if len(published) == 3:
                raise PermissionError(13, "Permission denied", str(dst))
        return real_mv(self, src, dst, **kw)

    monkeypatch.setattr(LocalFileSystem, "mv", failing_mv)
    with pytest.raises(PermissionError):
        ingest_evaluation(tmp_path, _info(label="second"), result, prepared=prepared, results_dir=res_dir,
                          provenance=PROV)
    assert published == ["sequence_metrics", "events", "tracks"]
    assert _catalog_files(tmp_path) == before
    assert catalog.load("runs", root=tmp_path)["label"].tolist() == ["first"]
    monkeypatch.setattr(LocalFileSystem, "mv", real_mv)
    ingest_evaluation(tmp_path, _info(label="second"), result, prepared=prepared, results_dir=res_dir, provenance=PROV)
    assert catalog.load("runs", root=tmp_path)["label"].tolist() == ["second"]
    assert [p.name for p in tmp_path.rglob(".*")] == []


def test_catalog_files_get_the_umask_mode(tmp_path, tud_eval):
    prepared, result = tud_eval
    ingest_evaluation(tmp_path, _info(), result, prepared=prepared, provenance=PROV)
    modes = {oct(p.stat().st_mode & 0o777) for p in tmp_path.rglob("*.parquet")}
    reference = tmp_path / "plain"
    reference.write_text("")
    assert modes == {oct(reference.stat().st_mode & 0o777)}
