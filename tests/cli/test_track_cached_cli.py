"""``cstrack track --detections cached``: the same result file as a live private run, the network
run once per sequence."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cstrack.cli import app

runner = CliRunner()
WEIGHTS = str(Path(__file__).resolve().parents[2] / "weights" / "cstrack-n_pets09.pt")
MODEL = ["--weights", WEIGHTS, "--size", "320x256", "--path", "eager", "--conf", "0.4", "--no-progress"]


def test_cached_replay_equals_private(head8: Path, tmp_path: Path) -> None:
    live = runner.invoke(app, ["track", str(head8), "--out", str(tmp_path / "live"), *MODEL])
    assert live.exit_code == 0, live.output
    res = runner.invoke(app, ["track", str(head8), "--detections", "cached", "--results", str(tmp_path / "r"),
                              "--out", str(tmp_path / "cached"), *MODEL])
    assert res.exit_code == 0, res.output
    name = "PETS09-S2L1-head8.txt"
    assert (tmp_path / "cached" / name).read_bytes() == (tmp_path / "live" / name).read_bytes()
    (cache,) = (tmp_path / "r" / "detcache").glob("*.parquet")
    stamp = cache.stat().st_mtime_ns
    again = runner.invoke(app, ["track", str(head8), "--detections", "cached", "--results", str(tmp_path / "r"),
                                "--out", str(tmp_path / "again"), *MODEL])
    assert again.exit_code == 0, again.output
    assert cache.stat().st_mtime_ns == stamp  # replayed, not recomputed
    timing = json.loads((tmp_path / "again" / "timing.json").read_text())
    assert timing["PETS09-S2L1-head8"]["cache"] == str(cache)


def test_cached_refuses_below_the_floor_and_non_mot(head8: Path, tmp_path: Path) -> None:
    low = [a if a != "0.4" else "0.05" for a in MODEL]
    res = runner.invoke(app, ["track", str(head8), "--detections", "cached", "--results", str(tmp_path), "--out",
                              str(tmp_path / "o"), *low])
    assert res.exit_code == 2 and "score floor" in res.output
    res = runner.invoke(app, ["track", str(tmp_path / "x.mp4"), "--detections", "cached", "--out",
                              str(tmp_path / "o"), *MODEL])
    assert res.exit_code == 2 and "MOTChallenge folders" in res.output
    assert not (tmp_path / "detcache").exists()
