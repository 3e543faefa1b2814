"""Tracker preset files: written, read back, accepted by preset(), and bad files named."""

from __future__ import annotations

from pathlib import Path

import pytest

from cstrack.errors import ConfigError
from cstrack.tracker import preset
from cstrack.tracker.presetfile import is_preset, read_preset_file, write_preset_file


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_round_trip_and_preset_accepts_the_file(tmp_path: Path, suffix: str) -> None:
    path = write_preset_file(tmp_path / f"best{suffix}", "original", {"det_thresh": 0.42, "track_buffer": 45}, 0.35)
    pf = read_preset_file(path)
    assert pf.base == "original" and pf.conf_thres == 0.35
    cfg = preset(str(path))
    assert cfg == preset("original", det_thresh=0.42, track_buffer=45)
    assert cfg.new_track_report == "next_frame"  # the base preset's other fields are kept
    assert preset(str(path), iou_thresh=0.3).iou_thresh == 0.3
    assert is_preset(str(path)) and is_preset("mot17") and not is_preset("nope")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("base: default\ntracker: {det_thresh: 2.0}\n", "det_thresh"),
        ("base: default\ntracker: {no_such: 1}\n", "no_such"),
        ("base: nope\n", "unknown tracker preset 'nope'"),
        ("tracker: {}\nextra: 1\n", "unknown key"),
        ("detection: {conf_thres: 1.5}\n", "conf_thres"),
        ("- a list\n", "expected a mapping"),
    ],
)
def test_bad_files_are_named(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match) as err:
        preset(str(path))
    assert str(path) in str(err.value)
    assert not is_preset(str(path))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such preset file"):
        preset(str(tmp_path / "gone.yaml"))
