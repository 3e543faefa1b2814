"""What every frame source shares: the :class:`Frame` it yields and the :class:`FrameSource` interface.

A source is *offline* (a video file, image files: every frame is read, in order, as fast as the
tracker takes them) or *live* (a camera or a stream: frames arrive on their own clock and the
oldest waiting ones are dropped when tracking falls behind, see :mod:`cstrack.sources.live`).
Errors name the source as the user wrote it (:class:`~cstrack.errors.DatasetError` with
``path=spec``), so the CLI prints one line such as ``error: clip.mp4: video ends at frame 40 of 795``.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import cv2
import numpy as np

# OpenCV's FFmpeg backend and its capture probes log to stderr on their own (e.g. "Stream ends
# prematurely", "can't open camera by index"); our errors already say what went wrong in one line.
# Set before the first capture is created; a user's own setting wins.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")


@contextlib.contextmanager
def quiet_opencv() -> Iterator[None]:
    """OpenCV's own log (capture probes: "can't open camera by index", "backend ... can't be used")
    silenced while opening a capture, whenever cv2 was imported (the variable above only counts
    before)."""
    logging = cv2.utils.logging
    previous = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        logging.setLogLevel(previous)


@dataclass(frozen=True)
class Frame:
    """One decoded frame: ``number`` (1-based position in the source; live sources count dropped
    frames too, so gaps show what was skipped), ``timestamp`` (seconds: the container's
    presentation time for files, ``(number - 1) / fps`` for image files, seconds since the first
    captured frame for live sources) and ``image`` (BGR uint8 ``[h, w, 3]``)."""

    number: int
    timestamp: float
    image: np.ndarray


@dataclass
class SourceStats:
    """Counters of a live source: frames captured, dropped (oldest first) and reconnections."""

    captured: int = 0
    dropped: int = 0
    reconnects: int = 0


@dataclass
class FrameSource:
    """A named sequence of frames.

    ``spec`` is what the user gave (path, glob, camera index, URL) and names the source in
    errors; ``name`` is the stem of its output files; ``fps`` is the frame rate the container or
    stream reports (``None`` when it reports none); ``total`` the frame count when known.
    :meth:`open` validates the source (raising before any work starts); :meth:`frames` yields
    until the end, an error, or ``stop`` is set; :meth:`close` releases it.
    """

    spec: str
    name: str
    fps: float | None = None
    total: int | None = None
    live: bool = False
    stats: SourceStats = field(default_factory=SourceStats)

    def open(self) -> None:
        """Check that the source can be read; raise :class:`~cstrack.errors.DatasetError` naming it."""

    def frames(self, stop: threading.Event | None = None) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the source (idempotent)."""

    def kind(self) -> str:
        """``video``, ``images``, ``camera`` or ``stream`` (as :func:`cstrack.sources.classify`)."""
        raise NotImplementedError


def sane_fps(value: float) -> float | None:
    """A container's frame rate, or ``None`` when it reports none or nonsense (0, NaN, > 1000)."""
    return float(value) if value == value and 0.0 < value <= 1000.0 else None
