"""Tracking a frame source end to end: same tracks as the MOT-folder runner, per-frame outputs, live
streams (reconnect, drops), and every way a run can stop keeping what was tracked."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from cstrack.data.mot import read_results
from cstrack.run.sequence import track_sequence
from cstrack.run.sinks import read_jsonl
from cstrack.run.source import track_source
from cstrack.sources import make_source
from tests.fake_detector import FakeDetector, crossing_positions, write_sequence
from tests.mjpeg_server import MjpegServer, jpeg_bytes


@pytest.fixture(scope="module")
def syn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sequence(tmp_path_factory.mktemp("syn"), frames=30)


def frames_of(seq: Path) -> list[np.ndarray]:
    return [cv2.imread(str(p)) for p in sorted((seq / "img1").glob("*.png"))]


class SlowDetector(FakeDetector):
    """The fake detector taking ``delay`` seconds per forward (a tracker that falls behind)."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    def forward(self, prep):  # type: ignore[no-untyped-def]
        time.sleep(self.delay)
        return super().forward(prep)


def test_image_folder_gives_the_mot_runner_tracks_and_per_frame_outputs(syn: Path, tmp_path: Path) -> None:
    ref = track_sequence(syn, tmp_path / "mot", "private", None, FakeDetector())
    src = make_source(str(syn / "img1"))
    run = track_source(src, tmp_path / "src", FakeDetector(), frame_rate=10.0, video=tmp_path / "v.mp4",
                       jsonl=tmp_path / "t.jsonl")
    assert (run.frames, run.stopped, run.error, run.kind, run.frame_rate) == (30, "end", None, "images", 10.0)
    assert run.result_path is not None and run.result_path.read_text() == ref.result_path.read_text()
    recs = read_jsonl(tmp_path / "t.jsonl")
    assert [r["frame"] for r in recs] == list(range(1, 31))
    assert recs[3]["timestamp"] == pytest.approx(0.3)
    # frame 5: both rectangles tracked at their drawn positions (ids 1 and 2, 20x40 boxes)
    boxes = {t["id"]: t["tlwh"] for t in recs[4]["tracks"]}
    (x1, y1), (x2, y2) = crossing_positions(5)
    assert boxes[1] == pytest.approx([x1, y1, 20, 40], abs=0.5) and boxes[2] == pytest.approx([x2, y2, 20, 40], abs=0.5)
    cap = cv2.VideoCapture(str(tmp_path / "v.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 30 and cap.get(cv2.CAP_PROP_FPS) == 10.0
    cap.release()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_stream_that_breaks_and_comes_back_is_tracked_to_max_frames(syn: Path, tmp_path: Path) -> None:
    with MjpegServer(jpeg_bytes(frames_of(syn)), plan=[10, 500], interval=0.02) as server:
        src = make_source(server.url, queue_size=100, reconnects=3, backoff_s=0.05)
        run = track_source(src, tmp_path, FakeDetector(), max_frames=25, jsonl=tmp_path / "live.jsonl",
                           video=tmp_path / "live.mp4")
    assert (run.frames, run.stopped, run.reconnects, run.dropped, run.kind) == (25, "max-frames", 1, 0, "stream")
    table = read_results(run.result_path)
    assert set(table.id) == {1, 2} and table.frame.max() == 25
    recs = read_jsonl(tmp_path / "live.jsonl")
    assert [r["frame"] for r in recs] == list(range(1, 26))
    assert all(b["timestamp"] > a["timestamp"] for a, b in itertools.pairwise(recs))
    assert (tmp_path / "live.mp4").stat().st_size > 0


def test_a_tracker_behind_a_live_stream_drops_frames_and_numbers_them_as_captured(syn: Path, tmp_path: Path) -> None:
    with MjpegServer(jpeg_bytes(frames_of(syn)), plan=[1000], interval=0.002) as server:
        src = make_source(server.url, queue_size=2, reconnects=0)
        run = track_source(src, tmp_path, SlowDetector(0.03), max_frames=15, jsonl=tmp_path / "d.jsonl")
    assert run.frames == 15 and run.dropped > 10
    numbers = [r["frame"] for r in read_jsonl(tmp_path / "d.jsonl")]
    assert numbers == sorted(numbers) and numbers[-1] > 15 + 5  # gaps where frames were dropped
    assert set(read_results(run.result_path).frame) <= set(numbers)


def test_stop_keeps_everything_tracked_so_far(syn: Path, tmp_path: Path) -> None:
    stop = threading.Event()
    done = []

    def progress(n: int) -> None:
        done.append(n)
        if len(done) == 12:
            stop.set()  # what the CLI's SIGINT handler does

    src = make_source(str(syn / "img1"))
    run = track_source(src, tmp_path, FakeDetector(), frame_rate=10.0, stop=stop, progress=progress,
                       jsonl=tmp_path / "s.jsonl", video=tmp_path / "s.mp4", prefetch=0)
    assert (run.frames, run.stopped) == (12, "interrupted")
    assert read_results(run.result_path).frame.max() == 12
    assert len(read_jsonl(tmp_path / "s.jsonl")) == 12 and (tmp_path / "s.mp4").is_file()


def test_truncated_video_keeps_the_frames_before_the_damage(syn: Path, tmp_path: Path) -> None:
    h, w = frames_of(syn)[0].shape[:2]
    full = tmp_path / "full.avi"
    vw = cv2.VideoWriter(str(full), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (w, h))
    for img in frames_of(syn):
        vw.write(img)
    vw.release()
    cut = tmp_path / "cut.avi"
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    run = track_source(make_source(str(cut)), tmp_path / "out", FakeDetector(), jsonl=tmp_path / "c.jsonl")
    assert run.stopped == "error" and "cut.avi: video ends at frame" in str(run.error)
    assert 5 <= run.frames < 28 and read_results(run.result_path).frame.max() == run.frames
    assert len(read_jsonl(tmp_path / "c.jsonl")) == run.frames
