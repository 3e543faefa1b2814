"""tasks.results.check_cached_result: a cache hit is only trusted with its result file intact."""

from __future__ import annotations

import json
from pathlib import Path

from cstrack.fsutil import sha256_file
from tasks.results import check_cached_result


def _record(path: Path) -> dict:
    return {"sequence": "SEQ", "result_path": str(path), "result_sha256": sha256_file(path), "fps": 12.5}


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
    assert check_cached_result({"sequence": "SEQ"}, str(tmp_path)) == "record without sequence name or result checksum"
