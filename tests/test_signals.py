"""SIGINT and SIGTERM (cstrack.signals, issue 24): unit behaviour, then real signals sent to a real
``cstrack track`` process: SIGTERM keeps what was tracked and exits 143; a second signal while
stopping aborts at once (130), the unfinished files of the current source removed, nothing hidden
left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from cstrack.run.sinks import read_jsonl
from cstrack.signals import EXIT_TERMINATED, Aborted, GracefulStop, Terminated, exit_status, terminate_raises
from tests.fake_detector import write_sequence

REPO = Path(__file__).resolve().parents[1]


def test_the_first_signal_stops_the_second_aborts() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        stop = threading.Event()
        with GracefulStop(stop, message="stopping") as g:
            os.kill(os.getpid(), sig)
            assert stop.wait(2.0) and g.signum == sig
            with pytest.raises(Aborted) as info:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(1.0)
        assert exit_status(info.value) == 130
        assert g.exit_status == (EXIT_TERMINATED if sig == signal.SIGTERM else 0)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_sigterm_raises_like_ctrl_c() -> None:
    with pytest.raises(KeyboardInterrupt) as info, terminate_raises():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1.0)
    assert isinstance(info.value, Terminated) and exit_status(info.value) == 143
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def _video(path: Path, frames: int) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (160, 96))
    for k in range(frames):
        img = np.full((96, 160, 3), 30, np.uint8)
        cv2.rectangle(img, (k % 120, 20), (k % 120 + 30, 80), (200, 200, 200), -1)
        writer.write(img)
    writer.release()
    return path


def _start(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("CSTRACK_DEBUG", None)
    return subprocess.Popen([sys.executable, "-m", "cstrack", "track", *args, "--no-progress"], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(cond: object, proc: subprocess.Popen[str], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if cond():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"not reached (exit {proc.poll()}): {proc.communicate()[1] if proc.poll() is not None else ''}")


@pytest.mark.slow
def test_sigterm_keeps_what_was_tracked_and_exits_143(tmp_path: Path) -> None:
    video = _video(tmp_path / "clip.avi", 3000)
    out = tmp_path / "out"
    proc = _start([str(video), "--weights", "random", "--variant", "cstrack-n", "--size", "128x96", "--path", "eager",
                   "--out", str(out), "--jsonl", str(tmp_path / "clip.jsonl")], tmp_path)
    _wait_for(lambda: any(p.read_text().count("\n") >= 5 for p in tmp_path.glob(".clip.*.jsonl")), proc)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr
    assert "terminated (SIGTERM)" in stderr and "Traceback" not in stderr
    n = json.loads((out / "timing.json").read_text())["clip"]["frames"]
    assert 5 <= n < 3000 and len(read_jsonl(tmp_path / "clip.jsonl")) == n
    assert (out / "clip.txt").is_file() and "(stopped: interrupted)" in stdout
    assert not [p for p in tmp_path.rglob(".*") if p.is_file()]  # no hidden temporary file left


@pytest.mark.slow
def test_a_second_signal_aborts_at_once_with_130(tmp_path: Path) -> None:
    """A MOT folder runs to its end after the first signal; a second one aborts it."""
    seq = write_sequence(tmp_path / "data", frames=600)
    out = tmp_path / "out"
    (out).mkdir()
    (out / "timing.json").write_text('{"OLD": {"frames": 1}}\n')
    proc = _start([str(seq), "--weights", "random", "--variant", "cstrack-n", "--size", "128x96", "--path", "eager",
                   "--out", str(out)], tmp_path)
    err: list[str] = []
    reader = threading.Thread(target=lambda: err.extend(iter(proc.stderr.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    _wait_for(lambda: any(line.startswith("settings:") for line in err), proc)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    _wait_for(lambda: any("stopping" in line for line in err), proc)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    reader.join(10)
    assert time.monotonic() - t0 < 20
    assert proc.returncode == 130, "".join(err)
    lines = [ln for ln in err if ln.strip()]
    assert lines[-1].startswith("interrupted (outputs already written are kept") and "Traceback" not in "".join(err)
    assert not (out / f"{seq.name}.txt").exists()  # unfinished: not written
    assert (out / "timing.json").read_text() == '{"OLD": {"frames": 1}}\n'
    assert not [p for p in tmp_path.rglob(".*") if p.is_file()]
