"""Track one MOTChallenge sequence end to end: frames -> detections -> tracker -> result file + timing.

Detection modes (:data:`DetectionMode`), all producing :class:`cstrack.detection.Detections` in
frame pixels:

- ``private``: the detector's own boxes and embeddings (needs images and a detector).
- ``public``: boxes and scores from ``det/det.txt``; with a detector, embeddings are taken from
  the model at those boxes (:meth:`FrameDetector.embed_boxes`), otherwise association is
  motion/IoU only and no image is read.
- ``gt``: the ground-truth boxes the benchmark counts (:func:`cstrack.data.mot.counted_gt`: flag 1,
  pedestrian class where classes exist) with score 1, for the association upper bound; embeddings
  as in ``public``.

The frames come from a frame reader (:mod:`cstrack.run.frames`) and go through the one loop
(:class:`cstrack.run.loop.FrameLoop`: stage timing, limits, result table).  A bad image stops the
run with an error naming the file unless the reader skips bad frames; those are counted in
:attr:`SequenceRun.bad_frames`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from cstrack.boxes import tlwh_to_xyxy
from cstrack.data.mot import MotTable, Sequence, counted_gt, write_results
from cstrack.detection import FrameDetector
from cstrack.errors import ConfigError, DatasetError
from cstrack.run.frames import FrameReader, prefetched_frames
from cstrack.run.loop import FrameLoop, detect_stage, run_stats
from cstrack.timing import DEFAULT_PREFETCH
from cstrack.tracker import Tracker, TrackerConfig

DetectionMode = Literal["private", "public", "gt"]
DETECTION_MODES: tuple[str, ...] = get_args(DetectionMode)


@dataclass(frozen=True)
class SequenceRun:
    """What :func:`track_sequence` did: ``fps`` is frames over the wall time of the frame loop;
    ``ms`` holds the mean milliseconds per frame of each stage in :data:`STAGES`; ``bad_frames``
    the frames skipped because their image was unusable (only with a ``skip_bad`` reader)."""

    sequence: str
    frames: int
    fps: float
    ms: dict[str, float]
    result_path: Path
    mode: str
    num_tracks: int = 0
    num_boxes: int = 0
    bad_frames: tuple[int, ...] = ()
    stopped: str = "end"  # cstrack.run.loop.STOP_REASONS

    def timing_record(self) -> dict[str, Any]:
        """The ``timing.json`` entry of this sequence (``stopped`` when it did not run to its end)."""
        rec: dict[str, Any] = {"frames": self.frames, "fps": self.fps, "ms": dict(self.ms)}
        if self.stopped != "end":
            rec["stopped"] = self.stopped
        return rec


@dataclass
class _BoxTable:
    """Per-frame boxes of a det/gt table: frame -> (xyxy float32 [K, 4], scores float32 [K])."""

    by_frame: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @classmethod
    def from_table(cls, table: MotTable, score: float | None = None) -> _BoxTable:
        out = cls()
        xyxy = tlwh_to_xyxy(table.tlwh).astype(np.float32)
        conf = np.full(len(table), score, np.float32) if score is not None else table.conf.astype(np.float32)
        for frame, rows in table.frame_slices().items():
            out.by_frame[frame] = (xyxy[rows], conf[rows])
        return out

    def get(self, frame: int) -> tuple[np.ndarray, np.ndarray]:
        empty = (np.zeros((0, 4), np.float32), np.zeros(0, np.float32))
        return self.by_frame.get(frame, empty)


def _boxes_for_mode(seq: Sequence, mode: str) -> _BoxTable | None:
    if mode == "public":
        return _BoxTable.from_table(seq.det())
    if mode == "gt":
        return _BoxTable.from_table(counted_gt(seq.gt()), score=1.0)
    return None


def track_sequence(
    seq_dir: str | Path,
    out_dir: str | Path,
    mode: DetectionMode,
    tracker_config: TrackerConfig | None = None,
    detector: FrameDetector | None = None,
    *,
    frame_reader: FrameReader | None = None,
    progress: Callable[[int], None] | None = None,
    max_frames: int | None = None,
    duration: float | None = None,
    stop: threading.Event | None = None,
) -> SequenceRun:
    """Track the sequence folder ``seq_dir`` and write ``<out_dir>/<folder name>.txt`` atomically.

    The result file is MOTChallenge format, one row per reported box sorted by (frame, id):
    ``frame, id, x, y, w, h, score, -1, -1, -1`` (tlwh in frame pixels, rounded to 1/1000 px;
    score rounded to 6 decimals).  ``mode`` picks the
    detection source (see the module docstring); ``private`` requires ``detector``.  ``progress``
    is called with 1 after every frame.  Inputs are validated before the loop starts: the
    gt / det table is read (raising :class:`DatasetError` on a malformed file) and, when a
    detector is used, the first image must exist.  Frames come from ``frame_reader``, by default
    :func:`prefetched_frames` (read + preprocess :data:`DEFAULT_PREFETCH` frames ahead in a
    thread); pass :func:`~cstrack.run.frames.read_frames` for a strictly sequential loop.
    ``max_frames``, ``duration`` (seconds) and ``stop`` end the loop early; the frames tracked until
    then are written (:attr:`SequenceRun.stopped` says why it ended).
    """
    if frame_reader is None:
        frame_reader = prefetched_frames(DEFAULT_PREFETCH)
    if mode not in DETECTION_MODES:
        raise ConfigError(f"expected one of {DETECTION_MODES}, got {mode!r}", "mode")
    if mode == "private" and detector is None:
        raise ConfigError("'private' needs a detector (model weights or a variant)", "mode")
    seq = Sequence.open(seq_dir)
    boxes = _boxes_for_mode(seq, mode)
    if detector is not None and seq.info.seq_length > 0 and not seq.has_images():
        raise DatasetError(f"no images ({seq.image_path(1).name} missing); mode {mode!r} with a model reads frames",
                           seq.root / seq.info.im_dir)
    tracker = Tracker(tracker_config, frame_rate=seq.info.frame_rate)
    loop = FrameLoop(tracker, detect_stage(detector, boxes), max_frames=max_frames, duration=duration, stop=stop,
                     progress=progress)
    loop.run(frame_reader(seq, detector))
    table = loop.table()
    name = Path(seq_dir).name
    path = write_results(Path(out_dir) / f"{name}.txt", table)
    num_tracks, num_boxes = run_stats(table)
    return SequenceRun(sequence=name, frames=loop.frames, fps=loop.fps, ms=loop.ms(), result_path=path, mode=mode,
                       num_tracks=num_tracks, num_boxes=num_boxes, bad_frames=tuple(loop.bad_frames),
                       stopped=loop.stopped)
