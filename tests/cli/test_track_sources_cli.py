"""``cstrack track`` on video files, image folders and streams: outputs, settings, bad input, SIGINT."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest
from typer.testing import CliRunner

from cstrack.cli import app
from cstrack.data.mot import read_results
from cstrack.run.sinks import read_jsonl
from cstrack.sources import source_name
from tests.fake_detector import FakeDetector, write_sequence
from tests.mjpeg_server import MjpegServer, closed_port_url, jpeg_bytes

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def syn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sequence(tmp_path_factory.mktemp("syn"), frames=20)


def images_of(seq: Path) -> list:
    return [cv2.imread(str(p)) for p in sorted((seq / "img1").glob("*.png"))]


def write_avi(path: Path, images: list, fps: float = 12.0) -> Path:
    h, w = images[0].shape[:2]
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    for img in images:
        vw.write(img)
    vw.release()
    return path


@pytest.fixture
def fake_model(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    import cstrack.model.detector as detector_module

    calls: list[tuple] = []

    def fake_build(variant: str, weights: object, input_size: tuple[int, int], path: str = "eager",
                   post: object = None, device: str = "cpu") -> FakeDetector:
        calls.append((variant, input_size, path))
        return FakeDetector(input_size)

    monkeypatch.setattr(detector_module, "build_detector", fake_build)
    return calls


def test_video_and_image_folder_with_video_and_jsonl_outputs(syn: Path, tmp_path: Path, fake_model: list) -> None:
    video = write_avi(tmp_path / "clip.avi", images_of(syn))
    out = tmp_path / "out"
    res = runner.invoke(app, ["track", str(video), str(syn / "img1"), "--out", str(out), "--save-video",
                              str(tmp_path / "videos"), "--jsonl", str(tmp_path / "jsonl"), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert fake_model == [("cstrack-n", (1088, 608), "onnx")]  # the shipped checkpoint's settings, path auto
    timing = json.loads((out / "timing.json").read_text())
    assert timing["clip"]["kind"] == "video" and timing["clip"]["frame_rate"] == 12.0  # from the container
    assert timing["img1"]["kind"] == "images" and timing["img1"]["frame_rate"] == 7.0  # the checkpoint's rate
    assert timing["clip"]["settings"]["input_size"] == [1088, 608] and timing["clip"]["frames"] == 20
    for name in ("clip", "img1"):
        assert set(read_results(out / f"{name}.txt").id) == {1, 2}
        assert len(read_jsonl(tmp_path / "jsonl" / f"{name}.jsonl")) == 20
        assert (tmp_path / "videos" / f"{name}.mp4").is_file()
    assert "clip: 20 frames at 12 fps source rate" in res.stdout


def test_mot_folder_gets_video_and_jsonl_too(syn: Path, tmp_path: Path, fake_model: list) -> None:
    res = runner.invoke(app, ["track", str(syn), "--out", str(tmp_path), "--save-video", str(tmp_path / "a.mp4"),
                              "--jsonl", str(tmp_path / "a.jsonl"), "--no-progress"])
    assert res.exit_code == 0, res.output
    recs = read_jsonl(tmp_path / "a.jsonl")
    assert len(recs) == 20 and recs[1]["timestamp"] == pytest.approx(0.1)  # seqinfo's 10 fps
    assert (tmp_path / "a.mp4").stat().st_size > 0


def test_fps_option_overrides_the_container(syn: Path, tmp_path: Path, fake_model: list) -> None:
    video = write_avi(tmp_path / "clip.avi", images_of(syn)[:5])
    res = runner.invoke(app, ["track", str(video), "--out", str(tmp_path), "--fps", "25", "--jsonl",
                              str(tmp_path / "c.jsonl"), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "timing.json").read_text())["clip"]["frame_rate"] == 25.0


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda d: d.joinpath("bad.mp4").write_bytes(b"\x00" * 4000) and str(d / "bad.mp4"), "bad.mp4: cannot open as a video"),
        (lambda d: closed_port_url(), ": stream: cannot connect"),
        (lambda d: "97", "97: camera 97: no such camera"),
        (lambda d: "ftp://example.org/v.mp4", "ftp://example.org/v.mp4: unsupported URL scheme 'ftp'"),
        (lambda d: str(d / "missing.mp4"), "missing.mp4: source not found"),
    ],
)
def test_bad_sources_one_line_exit_2_before_any_work(tmp_path: Path, make, needle: str) -> None:  # type: ignore[no-untyped-def]
    spec = make(tmp_path)
    out = tmp_path / "out"
    res = runner.invoke(app, ["track", spec, "--out", str(out), "--no-progress"])
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], res.stderr
    assert not out.exists()


def test_truncated_video_exit_2_with_results_so_far_kept(syn: Path, tmp_path: Path, fake_model: list) -> None:
    data = write_avi(tmp_path / "full.avi", images_of(syn)).read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    res = runner.invoke(app, ["track", str(cut), "--out", str(out), "--jsonl", str(tmp_path / "cut.jsonl"),
                              "--no-progress"])
    assert res.exit_code == 2
    assert res.stderr.strip().splitlines()[-1].startswith("error: ") and "cut.avi: video ends at frame" in res.stderr
    kept = read_results(out / "cut.txt")
    n = json.loads((out / "timing.json").read_text())["cut"]["frames"]
    assert 3 <= n < 20 and kept.frame.max() == n and len(read_jsonl(tmp_path / "cut.jsonl")) == n


def test_public_mode_needs_mot_folders(syn: Path, tmp_path: Path) -> None:
    res = runner.invoke(app, ["track", str(syn / "img1"), "--detections", "public", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "--detections public: needs MOTChallenge folders" in res.output


@pytest.mark.slow
def test_sigint_stops_a_live_run_cleanly_with_everything_written(syn: Path, tmp_path: Path) -> None:
    """A real process on an endless MJPEG stream (one connection to check it, one to track it): Ctrl-C ends
    it with exit 0 and every output in place."""
    out = tmp_path / "out"
    with MjpegServer(jpeg_bytes(images_of(syn)), plan=[100000, 100000], interval=0.02) as server:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "cstrack", "track", server.url, "--variant", "cstrack-n", "--weights", "random",
             "--size", "128x96", "--path", "eager", "--out", str(out), "--jsonl", str(tmp_path / "live.jsonl"),
             "--save-video", str(tmp_path / "live.mp4"), "--no-progress"],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            partial = [p for p in tmp_path.glob(".live.*.jsonl") if p.read_text().count("\n") >= 5]
            if partial:
                break
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert server.connections == 2  # checked before the model was built, then tracked on a fresh connection
    assert "(stopped: interrupted)" in stdout
    name = source_name(server.url)
    n = json.loads((out / "timing.json").read_text())[name]["frames"]
    assert n >= 5 and len(read_jsonl(tmp_path / "live.jsonl")) == n
    assert (tmp_path / "live.mp4").stat().st_size > 0 and (out / f"{name}.txt").is_file()  # random weights: no boxes
    assert not list(tmp_path.glob(".live.*"))


def test_a_missing_camera_prints_one_line_in_a_real_process(tmp_path: Path) -> None:
    """OpenCV's and FFmpeg's own logs (written by C code, not seen by CliRunner) stay quiet."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("OPENCV_LOG_LEVEL", None)
    env.pop("OPENCV_FFMPEG_LOGLEVEL", None)
    proc = subprocess.run([sys.executable, "-m", "cstrack", "track", "97", "--out", str(tmp_path / "o")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == ["error: 97: camera 97: no such camera or it is busy"], proc.stderr


def test_eval_into_the_catalog_records_the_settings_track_ran_with(syn: Path, tmp_path: Path,
                                                                   fake_model: list) -> None:
    import catalog

    out = tmp_path / "out"
    res = runner.invoke(app, ["track", str(syn), "--out", str(out), "--conf", "0.4", "--no-progress"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["eval", "--gt-root", str(syn.parent), "--results-root", str(out), "--preset", "plain",
                              "--catalog", str(tmp_path / "cat")])
    assert res.exit_code == 0, res.output
    run = catalog.load("runs", root=tmp_path / "cat").iloc[0]
    settings = json.loads(run.config_json)["inference"]
    assert settings["input_size"] == [1088, 608] and settings["conf_thres"] == 0.4 and settings["path"] == "onnx"
    assert run.variant == "cstrack-n" and run.weights_sha256 == settings["weights_sha256"]
