"""cstrack.render: an MP4 with the tracks drawn on the sequence's frames."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from cstrack.data.mot import MotTable, write_results
from cstrack.errors import ConfigError, DatasetError
from cstrack.render import render_tracks, track_colour


def _result(tmp_path: Path) -> Path:
    # track 7 walks right 10 px per frame; track 9 appears at frame 3
    rows = [(f, 7, 100 + 10 * (f - 1), 200, 40, 100) for f in range(1, 9)]
    rows += [(f, 9, 500, 150, 50, 120) for f in range(3, 9)]
    t = MotTable(np.array([r[0] for r in rows]), np.array([r[1] for r in rows]), np.array([r[2:] for r in rows]),
                 np.ones(len(rows)))
    return write_results(tmp_path / "res.txt", t.sorted())


def test_renders_every_frame_with_boxes(head8: Path, tmp_path: Path) -> None:
    out = tmp_path / "video" / "seq.mp4"
    seen: list[int] = []
    s = render_tracks(head8, _result(tmp_path), out, trail=5, on_frame=seen.append)
    assert (s.frames, s.tracks, s.boxes, s.width, s.height) == (8, 2, 14, 768, 576)
    assert seen == list(range(1, 9))
    cap = cv2.VideoCapture(str(out))
    frames = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(img)
    cap.release()
    assert len(frames) == 8 and frames[0].shape == (576, 768, 3)
    # frame 8: the left edge of track 7's box (x = 170) carries its colour; the source pixel does not
    src = cv2.imread(str(head8 / "img1" / "000008.jpg"))
    col = np.array(track_colour(7), float)
    drawn, orig = frames[7][250, 170].astype(float), src[250, 170].astype(float)
    assert np.abs(drawn - col).max() < 60 < np.abs(orig - col).max()
    # the trail of track 7 passes through its previous foot points (x = 160 at frame 7, y = 300)
    assert np.abs(frames[7][300, 150].astype(float) - col).max() < 60
    assert not list(out.parent.glob(".*.mp4")), "temporary file left behind"


def test_max_frames_and_argument_checks(head8: Path, tmp_path: Path) -> None:
    s = render_tracks(head8, _result(tmp_path), tmp_path / "short.mp4", max_frames=3)
    assert (s.frames, s.boxes) == (3, 4)
    with pytest.raises(ConfigError, match=r"\.mp4"):
        render_tracks(head8, _result(tmp_path), tmp_path / "x.avi")
    with pytest.raises(ConfigError, match="trail"):
        render_tracks(head8, _result(tmp_path), tmp_path / "x.mp4", trail=-1)


def test_missing_frame_fails_and_leaves_nothing(head8: Path, tmp_path: Path) -> None:
    import shutil

    seq = tmp_path / "seq"
    shutil.copytree(head8, seq)
    (seq / "img1" / "000004.jpg").unlink()
    out = tmp_path / "v.mp4"
    with pytest.raises(DatasetError, match=r"000004\.jpg"):
        render_tracks(seq, _result(tmp_path), out)
    assert not out.exists() and not list(tmp_path.glob(".*.mp4"))


def test_colours_are_stable_and_distinct() -> None:
    assert track_colour(3) == track_colour(3)
    assert len({track_colour(i) for i in range(1, 30)}) == 29


def test_trails_of_ended_tracks_fade_out(head8: Path, tmp_path: Path) -> None:
    from collections import deque

    from cstrack.render import _update_trails

    trails: dict = {}
    box = np.array([[10.0, 10.0, 4.0, 10.0]])
    for f in range(1, 4):
        _update_trails(trails, box + np.array([f, 0, 0, 0]), np.array([5]), f, trail=2)
    assert trails == {5: deque([(2, 14, 20), (3, 15, 20)])}
    _update_trails(trails, np.zeros((0, 4)), np.zeros(0, np.int64), 4, trail=2)
    _update_trails(trails, np.zeros((0, 4)), np.zeros(0, np.int64), 5, trail=2)
    assert trails == {}
