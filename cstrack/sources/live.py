"""Live sources: a camera index or a stream URL (rtsp://, http:// MJPEG, ...) through OpenCV.

A capture thread reads frames as they arrive into a bounded queue of ``queue_size`` frames; when
the tracker falls behind, the *oldest* waiting frame is dropped (and counted) so that the tracker
always works on recent frames.  When the connection breaks (a read fails), the thread reconnects
with exponential backoff (``backoff_s``, doubled per attempt, capped at :data:`MAX_BACKOFF_S`) up
to ``reconnects`` times in a row; a frame read successfully resets the count.  When every attempt
fails the frames already queued are still yielded, then :class:`~cstrack.errors.DatasetError`
naming the source is raised.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import cv2

from cstrack.errors import ConfigError, DatasetError
from cstrack.sources.base import Frame, FrameSource, quiet_opencv, sane_fps

DEFAULT_QUEUE = 2  # frames waiting for the tracker: small, so that what is tracked is recent
DEFAULT_RECONNECTS = 5  # attempts in a row before a lost stream is given up
DEFAULT_BACKOFF_S = 0.5  # first wait before reconnecting; doubled per failed attempt
MAX_BACKOFF_S = 8.0
OPEN_TIMEOUT_MS = 5000  # OpenCV/FFmpeg connect and read timeouts of network streams
READ_TIMEOUT_MS = 5000
_POLL_S = 0.1  # how often a waiting consumer or a backing-off producer checks for stop


def open_capture(target: int | str) -> cv2.VideoCapture:
    """An OpenCV capture of a camera index or a URL (FFmpeg with connect/read timeouts)."""
    with quiet_opencv():
        if isinstance(target, int):
            return cv2.VideoCapture(target)
        return cv2.VideoCapture(target, cv2.CAP_FFMPEG,
                                [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, OPEN_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                                 READ_TIMEOUT_MS])


@dataclass
class LiveSource(FrameSource):
    """A camera (``target`` an int) or a stream (``target`` a URL); see the module docstring."""

    target: int | str = 0
    queue_size: int = DEFAULT_QUEUE
    reconnects: int = DEFAULT_RECONNECTS
    backoff_s: float = DEFAULT_BACKOFF_S
    opener: Callable[[int | str], Any] = open_capture
    _cap: Any = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _closing: threading.Event = field(default_factory=threading.Event, repr=False)

    def __post_init__(self) -> None:
        self.live = True
        if self.queue_size < 1:
            raise ConfigError(f"must be >= 1, got {self.queue_size}", "queue_size")
        if self.reconnects < 0:
            raise ConfigError(f"must be >= 0, got {self.reconnects}", "reconnects")

    def _what(self) -> str:
        return f"camera {self.target}" if isinstance(self.target, int) else "stream"

    def kind(self) -> str:
        return "camera" if isinstance(self.target, int) else "stream"

    def open(self) -> None:
        if self._cap is not None:
            return
        cap = self.opener(self.target)
        if not cap.isOpened():
            cap.release()
            detail = "no such camera or it is busy" if isinstance(self.target, int) else "cannot connect"
            raise DatasetError(f"{self._what()}: {detail}", self.spec)
        self._cap = cap
        self.fps = sane_fps(cap.get(cv2.CAP_PROP_FPS))

    def frames(self, stop: threading.Event | None = None) -> Iterator[Frame]:
        self._closing.clear()  # a source closed after validation is opened again here
        if self._cap is None:
            self.open()
        stop = stop or threading.Event()
        queue: deque[Frame] = deque()
        cond = threading.Condition()
        state: dict[str, Any] = {"done": False, "error": None}

        def produce() -> None:
            try:
                self._capture(queue, cond, stop)
            except BaseException as exc:  # handed to the consumer
                state["error"] = exc
            with cond:
                state["done"] = True
                cond.notify_all()

        self._thread = threading.Thread(target=produce, name=f"capture {self.name}", daemon=True)
        self._thread.start()
        try:
            while True:
                with cond:
                    while not queue and not state["done"] and not stop.is_set():
                        cond.wait(_POLL_S)
                    if stop.is_set():
                        return
                    if not queue:
                        break
                    frame = queue.popleft()
                yield frame
            if state["error"] is not None:
                raise state["error"]
        finally:
            self._closing.set()

    def _capture(self, queue: deque[Frame], cond: threading.Condition, stop: threading.Event) -> None:
        """The capture thread: read, enqueue (dropping the oldest), reconnect on failure."""
        t0: float | None = None
        failures = 0
        while not (stop.is_set() or self._closing.is_set()):
            ok, img = self._cap.read() if self._cap is not None else (False, None)
            if ok and img is not None:
                failures = 0
                now = time.monotonic()
                t0 = now if t0 is None else t0
                self.stats.captured += 1
                frame = Frame(self.stats.captured, now - t0, img)
                with cond:
                    if len(queue) >= self.queue_size:
                        queue.popleft()
                        self.stats.dropped += 1
                    queue.append(frame)
                    cond.notify()
                continue
            if failures >= self.reconnects:
                raise DatasetError(
                    f"{self._what()} lost after {self.stats.captured} frames; "
                    f"{failures} reconnect attempt(s) failed", self.spec)
            if not self._wait(min(self.backoff_s * 2 ** failures, MAX_BACKOFF_S), stop):
                return
            failures += 1
            if self._cap is not None:
                self._cap.release()
            cap = self.opener(self.target)
            self._cap = cap if cap.isOpened() else None
            if self._cap is not None:
                self.stats.reconnects += 1

    def _wait(self, seconds: float, stop: threading.Event) -> bool:
        """Sleep ``seconds`` unless stopped; False when stopped."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if stop.is_set() or self._closing.is_set():
                return False
            time.sleep(min(_POLL_S, max(0.0, end - time.monotonic())))
        return True

    def close(self) -> None:
        self._closing.set()
        if self._thread is not None:
            self._thread.join(timeout=READ_TIMEOUT_MS / 1000 + 1)
            self._thread = None
        if self._cap is not None:
            self._cap.release()
            self._cap = None
