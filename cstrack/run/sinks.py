"""Per-frame outputs written while tracking a source: an annotated MP4 and a JSON-lines record.

Both write beside their final path under a temporary name and move into place on :meth:`close`,
which the source runner calls also when tracking stops early (an error, SIGINT, ``--max-frames``):
the frames tracked so far are kept, and a reader never sees a half-written file under the final
name.  :meth:`abort` removes the temporary file instead (nothing was tracked).
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections import deque
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np

from cstrack.errors import ConfigError, DatasetError
from cstrack.fsutil import file_mode, io_failure
from cstrack.render import FOURCC, _update_trails, draw_frame


def _temp_beside(path: Path, suffix: str) -> Path:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=suffix, dir=path.parent)
    except OSError as exc:  # read-only or full: name the user's file, not the temporary one
        raise (io_failure(exc, path) or exc) from None
    os.close(fd)
    return Path(name)


def _publish(tmp: Path, path: Path) -> None:
    """Move ``tmp`` onto ``path`` with the umask's mode; on a failure ``tmp`` is removed and the
    error names ``path`` (:func:`cstrack.fsutil.io_failure`)."""
    try:
        os.chmod(tmp, file_mode())  # mkstemp created it private
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise (io_failure(exc, path, [tmp]) or exc) from None


def _failed(exc: BaseException, path: Path, tmp: Path | None) -> BaseException:
    """``exc`` (a failed write of ``tmp``) as the error to raise: naming ``path`` when it is an I/O failure."""
    return io_failure(exc, path, [tmp] if tmp is not None else []) or exc


class VideoSink:
    """Frames with their tracks drawn (boxes, IDs, trails: :func:`cstrack.render.draw_frame`) into
    an MP4 at ``fps``.  The size is the first frame's; later frames of another size (a camera that
    reconnected at another resolution) are resized to it."""

    def __init__(self, path: str | Path, fps: float, trail: int = 30) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() != ".mp4":
            raise ConfigError(f"expected a .mp4 file, got {self.path.name}", "video")
        if trail < 0:
            raise ConfigError(f"trail: must be >= 0, got {trail}")
        self.fps, self.trail = float(fps), trail
        self.frames = 0
        self._tmp: Path | None = None
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None
        self._trails: dict[int, deque[tuple[int, int, int]]] = {}

    def write(self, image: np.ndarray, tlwh: np.ndarray, ids: np.ndarray, frame: int) -> None:
        """Draw ``tlwh [K, 4]`` (frame pixels) with ``ids [K]`` on a copy of ``image`` (BGR) and append it."""
        if self._writer is None or self._size is None:
            self._size = (image.shape[1], image.shape[0])
            self._tmp = _temp_beside(self.path, ".mp4")
            self._writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter.fourcc(*FOURCC), self.fps, self._size)
            if not self._writer.isOpened():
                self.abort()
                raise DatasetError(f"cannot open a {FOURCC} video writer", self.path)
        img = image.copy()
        if (img.shape[1], img.shape[0]) != self._size:
            img = cv2.resize(img, self._size)
            scale = np.array([self._size[0] / image.shape[1], self._size[1] / image.shape[0]] * 2)
            tlwh = np.asarray(tlwh) * scale
        if self.trail:
            _update_trails(self._trails, tlwh, ids, frame, self.trail)
        trails = {k: deque(p[1:] for p in v) for k, v in self._trails.items()}
        try:
            self._writer.write(draw_frame(img, tlwh, ids, trails, frame))
        except (OSError, cv2.error) as exc:
            tmp = self._tmp
            self.abort()
            raise _failed(exc, self.path, tmp) from None
        self.frames += 1

    def close(self) -> Path | None:
        """Finish the file and move it into place; ``None`` when no frame was written.  A writer
        that could not write its frames (OpenCV reports nothing; a full disk leaves an empty file)
        raises an ``OSError`` naming the file, and no file is left."""
        if self._writer is None or self._tmp is None:
            return None
        tmp = self._tmp
        try:
            self._writer.release()
            self._writer = None
            if self.frames and tmp.stat().st_size == 0:
                raise OSError(errno.EIO, "the video writer wrote nothing (disk full?)", str(self.path))
        except (OSError, cv2.error) as exc:
            self.abort()
            raise _failed(exc, self.path, tmp) from None
        self._tmp = None
        _publish(tmp, self.path)
        return self.path

    def abort(self) -> None:
        writer, tmp = self._writer, self._tmp
        self._writer = self._tmp = None
        try:
            if writer is not None:
                writer.release()
        finally:
            if tmp is not None:
                tmp.unlink(missing_ok=True)


class JsonlSink:
    """One JSON object per tracked frame, one line each::

        {"frame": 12, "timestamp": 1.1, "tracks": [{"id": 3, "tlwh": [x, y, w, h], "score": 0.91}, ...]}

    ``tlwh`` in frame pixels rounded to 1/1000 px, ``score`` to 6 decimals (as the result file).
    Lines are flushed as they are written, so another program may follow the temporary file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.frames = 0
        self._tmp = _temp_beside(self.path, ".jsonl")
        self._fh: IO[str] | None = open(self._tmp, "w", encoding="utf-8")  # noqa: SIM115 (closed in close/abort)

    def write(self, frame: int, timestamp: float, ids: np.ndarray, tlwh: np.ndarray, scores: np.ndarray) -> None:
        assert self._fh is not None
        tracks: list[dict[str, Any]] = [
            {"id": int(i), "tlwh": [round(float(v), 3) for v in box], "score": round(float(s), 6)}
            for i, box, s in zip(ids, tlwh, scores, strict=True)
        ]
        try:
            self._fh.write(json.dumps({"frame": int(frame), "timestamp": round(float(timestamp), 6),
                                       "tracks": tracks}) + "\n")
            self._fh.flush()
        except OSError as exc:  # a full disk: the file is removed, the error names it
            self.abort()
            raise _failed(exc, self.path, self._tmp) from None
        self.frames += 1

    def close(self) -> Path | None:
        """Move the file into place (``None`` after :meth:`abort`)."""
        if self._fh is None:
            return None
        fh, self._fh = self._fh, None
        try:
            fh.close()
        except OSError as exc:
            self._tmp.unlink(missing_ok=True)
            raise _failed(exc, self.path, self._tmp) from None
        _publish(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        fh, self._fh = self._fh, None
        try:
            if fh is not None:
                fh.close()  # may fail to flush on a full disk: the file goes all the same
        except OSError:
            pass
        finally:
            self._tmp.unlink(missing_ok=True)


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The records of a :class:`JsonlSink` file."""
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def jsonl_from_results(result_path: str | Path, out: str | Path, frame_rate: float, frames: int) -> Path:
    """A :class:`JsonlSink` file from a finished MOTChallenge result file: one record per frame
    ``1..frames`` (``timestamp = (frame - 1) / frame_rate``), back-filled birth boxes included."""
    from cstrack.data.mot import read_results

    table = read_results(result_path, frames)
    rows = table.frame_slices()
    sink = JsonlSink(out)
    try:
        for f in range(1, frames + 1):
            idx = rows.get(f, np.zeros(0, np.int64))
            sink.write(f, (f - 1) / frame_rate, table.id[idx], table.tlwh[idx], table.conf[idx])
    except BaseException:
        sink.abort()
        raise
    written = sink.close()
    assert written is not None  # not aborted
    return written
