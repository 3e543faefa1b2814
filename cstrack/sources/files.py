"""Offline sources: a video file (whatever OpenCV's FFmpeg backend decodes) and image files
(a folder or a glob), read in order, every frame."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from cstrack.data.images import CorruptImageError, declared_size, read_image
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
        for p in self.files:  # a link that leads nowhere is not skipped (later frames would be renumbered)
            if p.is_symlink() and not p.exists():
                raise DatasetError("symbolic link that does not resolve (dangling, or a loop)", p)
        self.total = len(self.files)
        read_image(self.files[0])  # a truncated / corrupt first image fails here, naming it
        self._check_sizes()

    def _check_sizes(self) -> None:
        """Frames whose headers declare another size than the first frame's are refused before
        any work (JPEG and PNG; other formats are checked as they are decoded)."""
        first: tuple[Path, tuple[int, int]] | None = None
        for p in self.files:
            size = declared_size(np.fromfile(p, dtype=np.uint8, count=1 << 16))
            if size is None:
                continue
            if first is None:
                first = (p, size)
            elif size != first[1]:
                raise _size_error(p, size, *first)

    def frames(self, stop: threading.Event | None = None) -> Iterator[Frame]:
        step = 1.0 / self.fps if self.fps else 0.0
        first: tuple[Path, tuple[int, int]] | None = None
        for n, path in enumerate(self.files, start=1):
            if stop is not None and stop.is_set():
                return
            img = read_image(path)  # truncated or corrupt JPEG/PNG: an error naming the file
            size = (img.shape[1], img.shape[0])
            if first is None:
                first = (path, size)
            elif size != first[1]:  # refused: the tracker's motion model lives in one frame geometry
                raise _size_error(path, size, *first)
            yield Frame(n, (n - 1) * step, img)

    def kind(self) -> str:
        return "images"


def _size_error(path: Path, size: tuple[int, int], first: Path, first_size: tuple[int, int]) -> CorruptImageError:
    return CorruptImageError(f"image is {size[0]}x{size[1]} but the first frame {first.name} is "
                             f"{first_size[0]}x{first_size[1]}; the frames of a source must share one size", path)


def image_files(folder: Path) -> list[Path]:
    """The images directly in ``folder``, sorted by name (symbolic links that do not resolve
    included, so that :meth:`ImageFilesSource.open` names them)."""
    return sorted(p for p in folder.iterdir()
                  if p.suffix.lower() in IMAGE_EXTENSIONS and (p.is_file() or (p.is_symlink() and not p.exists())))
