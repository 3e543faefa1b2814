"""tasks.results.check_cached_result: a cache hit is only trusted with its result file intact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cstrack.errors import ConfigError
from cstrack.fsutil import sha256_file
from flows.dispatch import cached_record
from tasks.records import TrackRecord
from tasks.results import check_cached_result

_TIMES = {"started": "2026-01-01T00:00:00.000+00:00", "finished": "2026-01-01T00:00:01.000+00:00"}


def _record(path: Path) -> TrackRecord:
    return TrackRecord(dataset="d", split="s", sequence="SEQ", mode="gt", frames=1, fps=12.5, result_path=str(path),
                       result_sha256=sha256_file(path), worker="local", **_TIMES)


def test_result_in_place_is_accepted(tmp_path: Path) -> None:
    res = tmp_path / "SEQ.txt"
    res.write_text("1,1,0,0,10,20,1,-1,-1,-1\n")
    assert check_cached_result(_record(res), str(tmp_path)) is None
    # the timing record is restored beside it when absent
    assert json.loads((tmp_path / "SEQ.timing.json").read_text())["fps"] == 12.5


def test_result_cached_elsewhere_is_copied_into_place(tmp_path: Path) -> None:
    src = tmp_path / "old" / "SEQ.txt"
    src.parent.mkdir()
    src.write_text("1,1,0,0,10,20,1,-1,-1,-1\n")
    out = tmp_path / "new"
    assert check_cached_result(_record(src), str(out)) is None
    assert (out / "SEQ.txt").read_bytes() == src.read_bytes()
    assert json.loads((out / "SEQ.timing.json").read_text())["result_path"] == str(out / "SEQ.txt")


def test_missing_or_changed_results_are_refused(tmp_path: Path) -> None:
    src = tmp_path / "SEQ.txt"
    src.write_text("1,1,0,0,10,20,1,-1,-1,-1\n")
    rec = _record(src)
    src.write_text("1,1,0,0,10,21,1,-1,-1,-1\n")
    assert "changed" in (check_cached_result(rec, str(tmp_path / "other")) or "")
    src.unlink()
    assert "missing" in (check_cached_result(rec, str(tmp_path / "other")) or "")


def test_cache_records_as_plain_objects_are_read_and_bad_ones_refused(tmp_path: Path) -> None:
    """A cache record persisted before the typed records is the timing JSON: read as a record;
    one without its sequence or checksum is refused naming what is missing (tracked again)."""
    res = tmp_path / "SEQ.txt"
    res.write_text("1,1,0,0,10,20,1,-1,-1,-1\n")
    rec = _record(res)
    assert cached_record(rec) is rec
    assert cached_record({**rec.to_json(), "a_newer_key": 1}) == rec
    with pytest.raises(ConfigError, match="missing dataset, split, mode, frames, fps, result_path, result_sha256"):
        cached_record({"sequence": "SEQ", **_TIMES, "worker": "w"})
    with pytest.raises(ConfigError, match="expected a TrackRecord"):
        cached_record(["SEQ"])


def test_the_record_round_trips_through_prefects_json_serializer(tmp_path: Path) -> None:
    """The task's result is persisted by Prefect's JSON serializer (the cache record)."""
    from prefect.serializers import JSONSerializer

    res = tmp_path / "SEQ.txt"
    res.write_text("1,1,0,0,10,20,1,-1,-1,-1\n")
    rec = _record(res)
    rec = TrackRecord(**{**rec.to_json(), "ms": {"forward": 3.5}, "settings": {"input_size": [320, 256]}})
    ser = JSONSerializer()
    assert ser.loads(ser.dumps(rec)) == rec
