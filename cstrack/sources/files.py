"""Offline sources: a video file (whatever OpenCV's FFmpeg backend decodes) and image files
(a folder or a glob), read in order, every frame."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2

from cstrack.data.images import read_image
from cstrack.errors import DatasetError
from cstrack.sources.base import Frame, FrameSource, quiet_opencv, sane_fps

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
# A container's frame count may be an estimate (duration x rate) for some formats; a video that
# stops more than this many frames short of it is reported as truncated or corrupt.
COUNT_SLACK = 2


@dataclass
class VideoFileSource(FrameSource):
    """A video file.  ``fps`` and ``total`` come from the container; ``timestamp`` from each
    frame's presentation time.  A file OpenCV cannot open, one with no decodable frame, and one
    that ends more than :data:`COUNT_SLACK` frames before the container's count raise
    :class:`DatasetError` naming the file (frames already yielded stay yielded)."""

    path: Path = field(default_factory=Path)
    _cap: cv2.VideoCapture | None = field(default=None, repr=False)
    _size: tuple[int, int] = (0, 0)

    def open(self) -> None:
        if self._cap is not None:
            return
        if not self.path.is_file():
            raise DatasetError("video file not found", self.spec)
        with quiet_opencv():
            cap = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
        if not cap.isOpened():
            cap.release()
            raise DatasetError("cannot open as a video (not a format OpenCV decodes, truncated or corrupt)",
                               self.spec)
        self._cap = cap
        self.fps = sane_fps(cap.get(cv2.CAP_PROP_FPS))
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.total = count if count > 0 else None
        self._size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))

    def size(self) -> tuple[int, int]:
        """``(width, height)`` of the frames, from the container (after :meth:`open`)."""
        return self._size

    def frames(self, stop: threading.Event | None = None) -> Iterator[Frame]:
        if self._cap is None:
            self.open()
        cap = self._cap
        assert cap is not None
        n = 0
        step = 1.0 / self.fps if self.fps else 0.0
        while stop is None or not stop.is_set():
            ok, img = cap.read()
            if not ok or img is None:
                break
            n += 1
            pts = cap.get(cv2.CAP_PROP_POS_MSEC)
            yield Frame(n, pts / 1000.0 if pts == pts and pts >= 0 else (n - 1) * step, img)
        else:
            return
        if n == 0:
            raise DatasetError("no decodable frame (corrupt or not a video)", self.spec)
        if self.total is not None and n < self.total - COUNT_SLACK:
            raise DatasetError(f"video ends at frame {n} of {self.total} (truncated or corrupt)", self.spec)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def kind(self) -> str:
        return "video"


@dataclass
class ImageFilesSource(FrameSource):
    """Image files in the given order (a folder's images sorted by name, or a glob's matches).
    ``fps`` is ``None``: image files carry no frame rate (the caller supplies one)."""

    files: Sequence[Path] = ()

    def open(self) -> None:
        if not self.files:
            raise DatasetError(f"no images ({', '.join(IMAGE_EXTENSIONS)})", self.spec)
        self.total = len(self.files)
        read_image(self.files[0])  # a truncated / corrupt first image fails here, naming it

    def frames(self, stop: threading.Event | None = None) -> Iterator[Frame]:
        step = 1.0 / self.fps if self.fps else 0.0
        for n, path in enumerate(self.files, start=1):
            if stop is not None and stop.is_set():
                return
            img = read_image(path)  # truncated or corrupt JPEG/PNG: an error naming the file
            yield Frame(n, (n - 1) * step, img)

    def kind(self) -> str:
        return "images"


def image_files(folder: Path) -> list[Path]:
    """The images directly in ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
