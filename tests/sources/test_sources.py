"""Frame sources: what a SOURCE is, video files (whole, truncated, corrupt), image folders and globs,
and live MJPEG streams (queue that drops the oldest, reconnection, unreachable)."""

from __future__ import annotations

import itertools
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from cstrack.errors import ConfigError, DatasetError
from cstrack.sources import LiveSource, classify, make_source, source_name
from tests.fake_detector import write_sequence
from tests.mjpeg_server import MjpegServer, closed_port_url, jpeg_bytes


def frames_of(seq: Path) -> list[np.ndarray]:
    return [cv2.imread(str(p)) for p in sorted((seq / "img1").glob("*.png"))]


@pytest.fixture(scope="module")
def syn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sequence(tmp_path_factory.mktemp("syn"), frames=20)


def write_video(path: Path, images: list[np.ndarray], fps: float = 10.0, fourcc: str = "MJPG") -> Path:
    h, w = images[0].shape[:2]
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    assert vw.isOpened()
    for img in images:
        vw.write(img)
    vw.release()
    return path


@pytest.fixture(scope="module")
def syn_video(syn: Path) -> Path:
    return write_video(syn.parent / "syn.avi", frames_of(syn))


def test_classify_and_names(syn: Path, syn_video: Path) -> None:
    assert classify(str(syn)) == "mot"
    assert classify(str(syn / "img1")) == "images" and source_name(str(syn / "img1")) == "img1"
    assert classify(str(syn_video)) == "video" and source_name(str(syn_video)) == "syn"
    assert classify(str(syn / "img1" / "*.png")) == "glob" and source_name(str(syn / "img1" / "*.png")) == "img1"
    assert classify("0") == "camera" and source_name("0") == "camera0"
    assert classify("rtsp://cam.local:554/live") == "stream"
    assert source_name("rtsp://cam.local:554/live/main") == "cam.local-554-live-main"
    with pytest.raises(ConfigError, match=r"ftp://x/y: unsupported URL scheme 'ftp'"):
        classify("ftp://x/y")
    with pytest.raises(ConfigError, match=r"000001\.png: an image file; give its folder, or quote a glob"):
        classify(str(syn / "img1" / "000001.png"))
    with pytest.raises(DatasetError, match=r"nope\.mp4: source not found"):
        classify(str(syn.parent / "nope.mp4"))


def test_video_file_frames_rate_and_timestamps(syn: Path, syn_video: Path) -> None:
    src = make_source(str(syn_video))
    src.open()
    assert (src.fps, src.total, src.kind()) == (10.0, 20, "video")
    frames = list(src.frames())
    src.close()
    assert [f.number for f in frames] == list(range(1, 21))
    assert [round(f.timestamp, 6) for f in frames[:3]] == [0.0, 0.1, 0.2]
    ref = frames_of(syn)
    # MJPG is lossy: the same picture within a few grey levels
    assert all(np.abs(f.image.astype(int) - r).mean() < 3 for f, r in zip(frames, ref, strict=True))


def test_image_folder_and_glob_read_every_file_in_name_order(syn: Path) -> None:
    for spec in (str(syn / "img1"), str(syn / "img1" / "00001*.png")):
        src = make_source(spec)
        src.open()
        src.fps = 5.0
        frames = list(src.frames())
        n = 20 if spec.endswith("img1") else 10  # 000010..000019 match the glob
        assert len(frames) == n and frames[-1].timestamp == pytest.approx((n - 1) / 5.0)
        assert src.kind() == "images"
    empty = syn.parent / "empty"
    empty.mkdir(exist_ok=True)
    with pytest.raises(DatasetError, match="empty: no images"):
        make_source(str(empty)).open()


def test_truncated_video_yields_what_it_has_then_names_the_file(syn: Path, tmp_path: Path) -> None:
    # an uncompressed AVI cut in the middle: the index says 20 frames, the data holds about 8
    full = write_video(tmp_path / "full.avi", frames_of(syn), fourcc="MJPG")
    data = full.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) * 2 // 5])
    src = make_source(str(cut))
    src.open()
    got = []
    with pytest.raises(DatasetError, match=r"cut.avi: video ends at frame \d+ of 20 \(truncated or corrupt\)"):
        for f in src.frames():
            got.append(f.number)
    assert 3 <= len(got) < 18 and got == list(range(1, len(got) + 1))


def test_corrupt_video_is_refused_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    with pytest.raises(DatasetError, match=r"bad\.mp4: cannot open as a video"):
        make_source(str(bad)).open()


def test_unreachable_stream_and_missing_camera_fail_at_open() -> None:
    url = closed_port_url()
    with pytest.raises(DatasetError, match=f"{url}: stream: cannot connect"):
        make_source(url).open()
    with pytest.raises(DatasetError, match=r"^97: camera 97: no such camera"):
        make_source("97").open()


def test_stream_that_breaks_comes_back_after_a_reconnect(syn: Path) -> None:
    jpgs = jpeg_bytes(frames_of(syn))
    with MjpegServer(jpgs, plan=[12, 200], interval=0.005) as server:
        src = make_source(server.url, queue_size=500, reconnects=3, backoff_s=0.05)
        assert isinstance(src, LiveSource)
        src.open()
        got = []
        for f in src.frames():
            got.append(f)
            if len(got) == 30:
                break
        src.close()
    assert server.connections == 2 and src.stats.reconnects == 1 and src.stats.dropped == 0
    assert [f.number for f in got] == list(range(1, 31))
    # frames continue with the second connection's pictures (frame 13 is picture 13 of the cycle)
    ref = frames_of(syn)
    assert np.abs(got[12].image.astype(int) - ref[12]).mean() < 3
    assert all(b.timestamp >= a.timestamp for a, b in itertools.pairwise(got))


def test_slow_consumer_drops_the_oldest_frames_and_a_dead_stream_ends_in_an_error(syn: Path) -> None:
    jpgs = jpeg_bytes(frames_of(syn))
    with MjpegServer(jpgs, plan=[60], interval=0.002) as server:
        src = make_source(server.url, queue_size=2, reconnects=1, backoff_s=0.05)
        src.open()
        got = []
        with pytest.raises(DatasetError, match=r"stream lost after 60 frames; 1 reconnect attempt\(s\) failed"):
            for f in src.frames():
                got.append(f.number)
                time.sleep(0.05)
        src.close()
    assert src.stats.captured == 60 and src.stats.dropped > 20
    assert len(got) + src.stats.dropped == 60  # every captured frame was either tracked or counted as dropped
    assert got == sorted(got) and got[-1] == 60  # the newest frames are the ones kept


def test_bad_queue_and_reconnect_values_name_the_parameter() -> None:
    with pytest.raises(ConfigError, match=r"^queue_size: must be >= 1"):  # the CLI says --queue (PARAM_FLAGS)
        make_source("rtsp://x/y", queue_size=0)
    with pytest.raises(ConfigError, match=r"^reconnects: must be >= 0"):
        make_source("rtsp://x/y", reconnects=-1)


def test_missing_video_file_after_classification(tmp_path: Path, syn_video: Path) -> None:
    moved = tmp_path / "moved.avi"
    shutil.copy(syn_video, moved)
    src = make_source(str(moved))
    moved.unlink()
    with pytest.raises(DatasetError, match=r"moved\.avi: video file not found"):
        src.open()
