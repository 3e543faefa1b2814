"""cstrack.run.loop: the one result table and the loop's limits, on hand-made detections."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from cstrack.detection import Detections
from cstrack.errors import ConfigError
from cstrack.run.frames import FrameInput
from cstrack.run.loop import FrameLoop, check_limits, detect_stage, result_table
from cstrack.tracker import Tracker, preset


def test_result_table_maps_steps_rounds_and_sorts() -> None:
    chunks = [
        (np.array([1, 1]), np.array([2, 1]), np.array([[1.00049, 2.0, 3.0, 4.0], [0.0, 0.0, 1.0, 1.0]]),
         np.array([0.1234564, 0.5], np.float32)),
        (np.array([2]), np.array([1]), np.array([[5.0, 5.0, 2.0, 2.0]]), np.array([0.9], np.float32)),
    ]
    t = result_table(chunks, np.array([10, 12]))  # step 1 -> frame 10, step 2 -> frame 12
    assert t.frame.tolist() == [10, 10, 12] and t.id.tolist() == [1, 2, 1]
    assert t.tlwh[1, 0] == 1.0 and t.conf[1] == pytest.approx(0.123456, abs=1e-9)
    assert result_table(chunks).frame.tolist() == [1, 1, 2]  # steps as they are (a replay window)
    assert len(result_table([])) == 0


def _frames(n: int) -> list[FrameInput]:
    box = np.array([[10.0, 10.0, 50.0, 110.0]], np.float32)
    return [FrameInput(k, dets=Detections(box + 2 * k, np.array([0.9], np.float32), None)) for k in range(1, n + 1)]


def test_loop_limits_and_stop() -> None:
    loop = FrameLoop(Tracker(preset("default"), frame_rate=10), detect_stage(None), max_frames=3)
    loop.run(_frames(8))
    assert (loop.frames, loop.stopped, loop.numbers) == (3, "max-frames", [1, 2, 3])
    assert set(loop.table().frame.tolist()) <= {1, 2, 3}
    stop = threading.Event()
    stop.set()
    loop = FrameLoop(Tracker(preset("default"), frame_rate=10), detect_stage(None), stop=stop).run(_frames(8))
    assert (loop.frames, loop.stopped) == (1, "interrupted")
    full = FrameLoop(Tracker(preset("default"), frame_rate=10), detect_stage(None)).run(_frames(8))
    assert (full.frames, full.stopped, full.table().id.tolist()) == (8, "end", [1] * 8)


def test_limits_name_their_parameters() -> None:
    with pytest.raises(ConfigError, match=r"^max_frames: must be >= 1"):
        check_limits(0, None)
    with pytest.raises(ConfigError, match=r"^duration: must be > 0"):
        check_limits(None, 0.0)
