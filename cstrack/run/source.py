"""Track any frame source (video file, image files, camera, stream) end to end, writing as it goes.

The one loop (:class:`cstrack.run.loop.FrameLoop`, private detections) over a
:class:`~cstrack.sources.FrameSource` instead of a MOTChallenge folder, plus per-frame outputs
(:mod:`cstrack.run.sinks`).  It ends at the source's end, after ``max_frames`` tracked frames,
after ``duration`` seconds, when ``stop`` is set (SIGINT in the CLI), or at an error; in every
case the frames tracked so far are written: ``<out_dir>/<name>.txt`` (MOTChallenge rows, frames
numbered as in the source, so a live source's dropped frames leave gaps), the MP4 and the JSON
lines.  An error is returned in :attr:`SourceRun.error` (not raised) so that the caller can report
what was kept and then fail.

Offline sources read + preprocess ahead in a thread (:func:`cstrack.run.frames.prefetch_inputs`);
live sources already capture in their own thread through a queue that drops the oldest frames.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cstrack.data.mot import write_results
from cstrack.detection import FrameDetector
from cstrack.errors import CSTrackError
from cstrack.run.frames import FrameInput, prefetch_inputs
from cstrack.run.loop import STOP_REASONS, FrameLoop, check_limits, detect_stage, run_stats
from cstrack.run.sinks import JsonlSink, VideoSink
from cstrack.sources import Frame, FrameSource
from cstrack.timing import DEFAULT_PREFETCH
from cstrack.tracker import Tracker, TrackerConfig
from cstrack.tracker.tracker import TrackOutputs

DEFAULT_FPS = 30.0  # the tracker's frame rate when neither the source, the user nor the checkpoint gives one
__all__ = ["DEFAULT_FPS", "STOP_REASONS", "SourceRun", "track_source"]


@dataclass
class _SourceInput(FrameInput):
    """A :class:`~cstrack.run.frames.FrameInput` that keeps the decoded frame (for the video output)."""

    frame: Frame | None = None


@dataclass(frozen=True)
class SourceRun:
    """What :func:`track_source` did.  ``fps`` is tracked frames over the loop's wall time;
    ``frame_rate`` the source frame rate the tracker used; ``stopped`` one of :data:`STOP_REASONS`."""

    sequence: str
    source: str
    kind: str
    frames: int
    fps: float
    ms: dict[str, float]
    frame_rate: float
    stopped: str
    result_path: Path | None
    num_tracks: int = 0
    num_boxes: int = 0
    dropped: int = 0
    reconnects: int = 0
    video_path: Path | None = None
    jsonl_path: Path | None = None
    error: CSTrackError | OSError | None = field(default=None, compare=False)

    def timing_record(self) -> dict[str, Any]:
        """The ``timing.json`` entry of this source."""
        return {"frames": self.frames, "fps": self.fps, "ms": dict(self.ms), "source": self.source,
                "kind": self.kind, "frame_rate": self.frame_rate, "stopped": self.stopped,
                "dropped": self.dropped, "reconnects": self.reconnects}


def _inputs(source: FrameSource, detector: FrameDetector, stop: threading.Event | None) -> Iterator[_SourceInput]:
    """Frames of ``source`` preprocessed by ``detector``; ``read_s`` includes waiting for a live frame."""
    frames = source.frames(stop)
    try:
        while True:
            t0 = time.perf_counter()
            frame = next(frames, None)
            if frame is None:
                return
            t1 = time.perf_counter()
            prep = detector.preprocess(frame.image)
            yield _SourceInput(number=frame.number, prep=prep, read_s=t1 - t0,
                               preprocess_s=time.perf_counter() - t1, frame=frame)
    finally:
        close = getattr(frames, "close", None)
        if close is not None:
            close()


def track_source(
    source: FrameSource,
    out_dir: str | Path,
    detector: FrameDetector,
    tracker_config: TrackerConfig | None = None,
    *,
    frame_rate: float | None = None,
    max_frames: int | None = None,
    duration: float | None = None,
    video: str | Path | None = None,
    jsonl: str | Path | None = None,
    trail: int = 30,
    stop: threading.Event | None = None,
    prefetch: int = DEFAULT_PREFETCH,
    progress: Callable[[int], None] | None = None,
) -> SourceRun:
    """Track ``source`` (opened here if it is not yet) with ``detector`` and write its outputs.

    ``frame_rate`` overrides the source's own; when neither is known :data:`DEFAULT_FPS` is used
    (the caller may pass a checkpoint's training rate).  ``video`` (.mp4) and ``jsonl`` are the
    optional per-frame outputs; a run that tracked no frame writes no file.  See the module docstring.
    """
    check_limits(max_frames, duration)
    source.open()
    rate = float(frame_rate or source.fps or DEFAULT_FPS)
    if source.fps is None or frame_rate is not None:
        source.fps = rate  # image files take their timestamps from it
    tracker = Tracker(tracker_config, frame_rate=rate)
    video_sink = VideoSink(video, rate, trail) if video is not None else None
    jsonl_sink = JsonlSink(jsonl) if jsonl is not None else None

    def on_frame(fr: FrameInput, res: TrackOutputs, step: int) -> None:
        assert isinstance(fr, _SourceInput) and fr.frame is not None
        now = res.frame == step  # back-filled birth boxes of earlier frames go to the result file only
        if jsonl_sink is not None:
            jsonl_sink.write(fr.number, fr.frame.timestamp, res.ids[now], res.tlwh[now], res.scores[now])
        if video_sink is not None:
            video_sink.write(fr.frame.image, res.tlwh[now], res.ids[now], fr.number)

    loop = FrameLoop(tracker, detect_stage(detector), max_frames=max_frames, duration=duration, stop=stop,
                     on_frame=on_frame if video_sink is not None or jsonl_sink is not None else None,
                     progress=progress)
    error = None
    source_inputs = _inputs(source, detector, stop)
    inputs = source_inputs if source.live else prefetch_inputs(source_inputs, detector, prefetch)
    try:
        loop.run(inputs)
    except (CSTrackError, OSError) as exc:  # bad input or a failed write (disk full): keep what was tracked
        loop.stopped, error = "error", exc
    except KeyboardInterrupt:
        loop.stopped = "interrupted"
    except BaseException:  # a bug, not bad input: leave no temporary files behind
        for sink in (video_sink, jsonl_sink):
            if sink is not None:
                sink.abort()
        raise
    finally:
        source.close()
    frames = loop.frames
    table = loop.table()
    result_path = video_path = jsonl_path = None
    if frames:
        try:
            result_path = write_results(Path(out_dir) / f"{source.name}.txt", table)
            video_path = video_sink.close() if video_sink is not None else None
            jsonl_path = jsonl_sink.close() if jsonl_sink is not None else None
        except BaseException:  # e.g. a full disk: no temporary file is left behind
            for sink in (video_sink, jsonl_sink):
                if sink is not None:
                    sink.abort()
            raise
    else:
        for sink in (video_sink, jsonl_sink):
            if sink is not None:
                sink.abort()
    num_tracks, num_boxes = run_stats(table)
    return SourceRun(
        sequence=source.name, source=source.spec, kind=source.kind(), frames=frames, fps=loop.fps, ms=loop.ms(),
        frame_rate=rate, stopped=loop.stopped, result_path=result_path, num_tracks=num_tracks, num_boxes=num_boxes,
        dropped=source.stats.dropped, reconnects=source.stats.reconnects,
        video_path=video_path, jsonl_path=jsonl_path, error=error,
    )
