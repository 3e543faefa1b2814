"""The one tracking loop: frames -> detections -> tracker, with the stage timing and the result table.

Every way of tracking runs this loop: a MOTChallenge folder (:func:`cstrack.run.sequence.track_sequence`),
any frame source (:func:`cstrack.run.source.track_source`) and a replay of cached network outputs
(:func:`cstrack.run.detcache.replay`).  They differ only in where frames come from (a frame
reader, :mod:`cstrack.run.frames`), how a frame becomes detections (a :data:`Detect` stage:
:func:`detect_stage`) and what else is written per frame (``on_frame``: the sinks).

Stages timed per frame (ms, :data:`cstrack.timing.STAGES`): ``read`` (image read), ``preprocess``
(letterbox + tensor), ``forward``, ``postprocess`` (box decoding + NMS + embeddings, or boxes from
a table + embeddings), ``associate`` (tracker update).  Read and preprocess come measured with the
frame (:class:`~cstrack.run.frames.FrameInput`); a reader that ran the network ahead (frame
workers, or a batch) hands over ``out`` and ``forward_s`` and the detect stage only post-processes.

The loop ends at the frames' end, after ``max_frames`` tracked frames, after ``duration`` seconds
or when ``stop`` is set (:data:`STOP_REASONS`); an exception propagates with the frames tracked so
far kept in the loop (:meth:`FrameLoop.table`), so a caller can still write them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

import numpy as np

from cstrack.data.mot import MotTable
from cstrack.detection import Detections, FrameDetector
from cstrack.errors import ConfigError
from cstrack.run.frames import FrameInput
from cstrack.timing import STAGES
from cstrack.tracker import Tracker
from cstrack.tracker.tracker import TrackOutputs

STOP_REASONS = ("end", "max-frames", "duration", "interrupted", "error")

Chunk = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # frame (tracker step), ids, tlwh, scores

# A frame's detections (frame pixels); adds the seconds of its stages to the totals it is given.
Detect = Callable[[FrameInput, dict[str, float]], Detections]


class BoxSource(Protocol):
    """Boxes of a frame from a table (det/gt): ``(xyxy float32 [K, 4], scores float32 [K])``."""

    def get(self, frame: int) -> tuple[np.ndarray, np.ndarray]: ...


# (frame, tracker output: per reported box frame (tracker step; a birth may back-fill earlier steps),
# ids, tlwh (frame px), scores; the step)
OnFrame = Callable[[FrameInput, TrackOutputs, int], None]


def check_limits(max_frames: int | None, duration: float | None) -> None:
    """``max_frames`` >= 1 and ``duration`` > 0 seconds (or ``None``); the error names the parameter."""
    if max_frames is not None and (isinstance(max_frames, bool) or max_frames < 1):
        raise ConfigError(f"must be >= 1, got {max_frames}", "max_frames")
    if duration is not None and not duration > 0:
        raise ConfigError(f"must be > 0 seconds, got {duration}", "duration")


def detect_stage(detector: FrameDetector | None, boxes: BoxSource | None = None) -> Detect:
    """The detect stage of a frame:

    - ``FrameInput.dets`` when the frame carries its detections (a replay);
    - a ``bad`` frame: no detections (the tracks coast);
    - ``boxes is None``: the detector's own boxes (``private``): forward (unless a reader already
      ran it: ``FrameInput.out``) and post-process;
    - otherwise the table's boxes of the frame (``public`` / ``gt``), with the model's embeddings
      at those boxes when ``detector`` is given.
    """

    def detect(fr: FrameInput, totals: dict[str, float]) -> Detections:
        if fr.dets is not None:
            return fr.dets
        out = None
        if fr.bad is not None:  # a skipped frame: no detections, the tracks coast
            return Detections.empty(None if detector is None else detector.emb_dim)
        if detector is not None:
            if fr.prep is None:
                raise ConfigError("the frame reader gave no preprocessed input but a detector is in use")
            if fr.out is not None:  # a frame worker (or a batch) ran the network
                out = fr.out
                totals["forward"] += fr.forward_s
            else:
                t0 = time.perf_counter()
                out = detector.forward(fr.prep)
                totals["forward"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        if boxes is None:
            if detector is None or fr.prep is None:
                raise ConfigError("private detections need a detector")
            dets = detector.postprocess(out, fr.prep)
        else:
            xyxy, scores = boxes.get(fr.number)
            emb = None
            if detector is not None and fr.prep is not None:
                emb = (detector.embed_boxes(out, fr.prep, xyxy) if len(xyxy)
                       else np.zeros((0, detector.emb_dim), np.float32))
            dets = Detections(xyxy, scores, emb)
        totals["postprocess"] += time.perf_counter() - t0
        return dets

    return detect


class FrameLoop:
    """One pass of a tracker over frames (see the module docstring).  After :meth:`run` (which
    may raise) the loop holds what was tracked: :attr:`frames`, :attr:`numbers` (tracker step ->
    frame number), :attr:`bad_frames`, :attr:`stopped`, :meth:`ms` and :meth:`table`."""

    def __init__(self, tracker: Tracker, detect: Detect, *, max_frames: int | None = None,
                 duration: float | None = None, stop: threading.Event | None = None,
                 on_frame: OnFrame | None = None, progress: Callable[[int], None] | None = None) -> None:
        check_limits(max_frames, duration)
        self.tracker, self.detect = tracker, detect
        self.max_frames, self.duration, self.stop = max_frames, duration, stop
        self.on_frame, self.progress = on_frame, progress
        self.totals = dict.fromkeys(STAGES, 0.0)
        self.chunks: list[Chunk] = []
        self.numbers: list[int] = []
        self.bad_frames: list[int] = []
        self.stopped = "end"
        self.wall = 0.0

    @property
    def frames(self) -> int:
        return len(self.numbers)

    def run(self, frames: Iterable[FrameInput]) -> FrameLoop:
        """Track ``frames`` in order; the wall time counts even when a frame raises."""
        start = time.perf_counter()
        try:
            for fr in frames:
                if fr.bad is not None:
                    self.bad_frames.append(fr.number)
                self.totals["read"] += fr.read_s
                self.totals["preprocess"] += fr.preprocess_s
                dets = self.detect(fr, self.totals)
                t0 = time.perf_counter()
                res = self.tracker.update_arrays(dets)
                self.totals["associate"] += time.perf_counter() - t0
                self.numbers.append(fr.number)
                step = len(self.numbers)
                if len(res):
                    self.chunks.append((res.frame.copy(), res.ids, res.tlwh, res.scores))
                if self.on_frame is not None:
                    self.on_frame(fr, res, step)
                if self.progress is not None:
                    self.progress(1)
                if self.max_frames is not None and step >= self.max_frames:
                    self.stopped = "max-frames"
                    break
                if self.duration is not None and time.perf_counter() - start >= self.duration:
                    self.stopped = "duration"
                    break
                if self.stop is not None and self.stop.is_set():
                    self.stopped = "interrupted"
                    break
            if self.stopped == "end" and self.stop is not None and self.stop.is_set():
                self.stopped = "interrupted"
        finally:
            self.wall = time.perf_counter() - start
            close = getattr(frames, "close", None)
            if close is not None:  # a prefetching reader's thread stops when the loop ends early
                close()
        return self

    @property
    def fps(self) -> float:
        """Tracked frames over the loop's wall time."""
        return self.frames / self.wall if self.wall > 0 else 0.0

    def ms(self) -> dict[str, float]:
        """Mean milliseconds per frame of each stage in :data:`STAGES`."""
        n = self.frames
        return {k: (1000.0 * v / n if n else 0.0) for k, v in self.totals.items()}

    def table(self, renumber: bool = False) -> MotTable:
        """The result rows: frames numbered as the frames came (:attr:`numbers`), or with
        ``renumber`` by tracker step (1, 2, ...: a window replayed as a sequence of its own)."""
        return result_table(self.chunks, None if renumber else np.asarray(self.numbers, np.int64))


def result_table(chunks: Sequence[Chunk], numbers: np.ndarray | None = None) -> MotTable:
    """The one result table: the tracker's rows (``chunks``), tracker steps (1-based) mapped to
    frame numbers by ``numbers`` (``None``: steps as they are), tlwh rounded to 1/1000 px and scores
    to 6 decimals (far below any box accuracy, and free of float32 noise digits), sorted by
    (frame, id)."""
    if not chunks:
        return MotTable.empty()
    steps = np.concatenate([c[0] for c in chunks])
    frame = steps if numbers is None else numbers[steps - 1]
    ids = np.concatenate([c[1] for c in chunks])
    tlwh = np.round(np.concatenate([c[2] for c in chunks]), 3)
    score = np.round(np.concatenate([c[3] for c in chunks]).astype(np.float64), 6)
    return MotTable(frame, ids, tlwh, score).sorted()


def run_stats(table: MotTable) -> tuple[int, int]:
    """``(tracks, boxes)`` of a result table."""
    return len(np.unique(table.id)), len(table)

