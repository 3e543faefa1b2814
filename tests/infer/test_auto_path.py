"""``--path auto`` is only as fast as it is faithful: its tracks equal the eager path's on PETS09,
frame by frame from a video and, on a sequence folder, with the frame workers running several frames
through the network at once (the default for offline sequences)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from cstrack.data.mot import MotTable, SeqInfo, read_results, write_seqinfo
from cstrack.detection import ConcurrentForward
from cstrack.model.detector import AUTO_PATH, build_detector, resolve_path
from cstrack.model.inference_settings import settings_for_weights
from cstrack.paths import shipped_weights
from cstrack.run.frames import frame_workers, prefetched_frames, read_frames
from cstrack.run.sequence import track_sequence
from cstrack.run.source import track_source
from cstrack.sources import make_source
from cstrack.tracker import preset

SEGMENT = 25  # frames 1-25 of PETS09-S2L1: tracks are born and confirmed, people walk past each other


@pytest.mark.slow  # an ONNX export and 80 forwards: ~10 s on an idle 2-core machine
def test_auto_path_tracks_equal_eager_on_a_pets09_segment(data_dir: Path, tmp_path: Path) -> None:
    assert resolve_path("auto") == AUTO_PATH != "eager"
    weights = shipped_weights()
    settings = settings_for_weights(weights)
    tables = {}
    for path in ("eager", "auto"):
        det = build_detector("cstrack-n", weights, settings.input_size, path=path, post=settings.postprocess_config())
        run = track_source(make_source(str(data_dir / "raw" / "PETS09-S2L1.mp4")), tmp_path / path, det,
                           preset(settings.tracker_preset), max_frames=SEGMENT, prefetch=0)
        assert run.frames == SEGMENT and run.result_path is not None
        tables[path] = read_results(run.result_path)
    assert_same_tracks(tables["auto"], tables["eager"])


def assert_same_tracks(got: MotTable, eager: MotTable) -> None:
    assert len(eager) > 3 * SEGMENT and len(set(eager.id)) >= 3  # the people on screen are tracked
    # the same tracks: same rows (frame, id); boxes and scores equal up to the file's last rounded digit
    np.testing.assert_array_equal(got.frame, eager.frame)
    np.testing.assert_array_equal(got.id, eager.id)
    np.testing.assert_allclose(got.tlwh, eager.tlwh, rtol=0, atol=2e-3)
    np.testing.assert_allclose(got.conf, eager.conf, rtol=0, atol=1e-5)


def pets09_segment(data_dir: Path, root: Path) -> Path:
    """The first :data:`SEGMENT` frames of the PETS09-S2L1 video as a MOTChallenge sequence folder
    (lossless PNG frames)."""
    cap = cv2.VideoCapture(str(data_dir / "raw" / "PETS09-S2L1.mp4"))
    (root / "img1").mkdir(parents=True)
    for k in range(1, SEGMENT + 1):
        ok, frame = cap.read()
        assert ok, f"frame {k} of the video"
        cv2.imwrite(str(root / "img1" / f"{k:06d}.png"), frame)
    cap.release()
    h, w = frame.shape[:2]
    write_seqinfo(root, SeqInfo(root.name, 7.0, SEGMENT, w, h, im_ext=".png"))
    return root


@pytest.mark.slow  # an ONNX export and 2 x 25 forwards: ~10 s on an idle 2-core machine
def test_frame_workers_give_the_eager_tracks_on_a_pets09_sequence(data_dir: Path, tmp_path: Path) -> None:
    """Offline sequences run decode + letterbox + forward of two frames at once (one frame per
    worker thread, a single-threaded ONNX Runtime session); the tracker still sees them in order."""
    seq = pets09_segment(data_dir, tmp_path / "PETS09-S2L1-seg")
    weights = shipped_weights()
    settings = settings_for_weights(weights)
    tracker = preset(settings.tracker_preset)
    eager = build_detector("cstrack-n", weights, settings.input_size, path="eager", post=settings.postprocess_config())
    ref = track_sequence(seq, tmp_path / "eager", "private", tracker, eager, frame_reader=read_frames)
    auto = build_detector("cstrack-n", weights, settings.input_size, path="auto", post=settings.postprocess_config())
    assert isinstance(auto, ConcurrentForward) and frame_workers(auto, 2) == 2
    threads: list[str] = []
    forward = auto.prepare_and_forward

    def spy(frame: np.ndarray) -> Any:
        threads.append(threading.current_thread().name)
        return forward(frame)

    auto.prepare_and_forward = spy  # type: ignore[method-assign]
    run = track_sequence(seq, tmp_path / "auto", "private", tracker, auto, frame_reader=prefetched_frames(2, workers=2))
    assert run.frames == SEGMENT and len(threads) == SEGMENT
    assert len(set(threads)) == 2 and threading.current_thread().name not in threads  # two workers did the frames
    assert_same_tracks(read_results(run.result_path), read_results(ref.result_path))
