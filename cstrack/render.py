"""Render tracking results onto a sequence's frames: boxes, IDs and motion trails, as an MP4.

Each track keeps one colour (from its id), its box is drawn with ``ID <n>`` above it, and its trail
joins the bottom centres (the feet) of its boxes in the last ``trail`` frames (a track that has
ended leaves its trail fading out over those frames).  Frames come from the sequence's
``img1/``; result rows are MOTChallenge ``frame, id, x, y, w, h, ...`` (tlwh, frame pixels).
"""

from __future__ import annotations

import colorsys
import os
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from cstrack.data.images import read_image
from cstrack.data.mot import Sequence, read_results
from cstrack.errors import ConfigError, DatasetError
from cstrack.fsutil import file_mode

FOURCC = "mp4v"  # MPEG-4 Part 2: always available in OpenCV's bundled FFmpeg (H.264 may not be)
_GOLDEN = 0.618033988749895


@dataclass(frozen=True)
class RenderSummary:
    path: Path
    frames: int
    tracks: int
    boxes: int
    width: int
    height: int
    fps: float
    seconds: float


def track_colour(track_id: int) -> tuple[int, int, int]:
    """A stable, well-separated BGR colour for ``track_id`` (golden-ratio hue steps)."""
    h = (int(track_id) * _GOLDEN) % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, 0.85, 1.0)
    return int(b * 255), int(g * 255), int(r * 255)


def draw_frame(
    img: np.ndarray,
    tlwh: np.ndarray,
    ids: np.ndarray,
    trails: dict[int, deque[tuple[int, int]]],
    frame: int,
    thickness: int = 2,
) -> np.ndarray:
    """Draw one frame's boxes ``tlwh [K, 4]`` with ``ids [K]`` and the ``trails`` on ``img`` (BGR, in place)."""
    h_img = img.shape[0]
    scale = max(0.4, h_img / 1000.0)
    for pts_id, pts in trails.items():
        if len(pts) > 1:
            cv2.polylines(img, [np.asarray(pts, np.int32).reshape(-1, 1, 2)], False, track_colour(pts_id), thickness)
    for (x, y, w, h), tid in zip(tlwh, ids, strict=True):
        c = track_colour(int(tid))
        p1, p2 = (round(x), round(y)), (round(x + w), round(y + h))
        cv2.rectangle(img, p1, p2, c, thickness)
        label = f"ID {int(tid)}"
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        top = max(p1[1] - th - base - 2, 0)
        cv2.rectangle(img, (p1[0], top), (p1[0] + tw + 2, top + th + base + 2), c, -1)
        cv2.putText(img, label, (p1[0] + 1, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, f"frame {frame}", (8, int(24 * scale / 0.5)), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255),
                2, cv2.LINE_AA)
    return img


def _update_trails(trails: dict[int, deque[tuple[int, int, int]]], tlwh: np.ndarray, ids: np.ndarray, frame: int,
                   trail: int) -> None:
    """Add this frame's foot points ``(frame, x, y)`` and forget points older than ``trail`` frames."""
    for (x, y, w, h), tid in zip(tlwh, ids, strict=True):
        trails.setdefault(int(tid), deque()).append((frame, round(x + w / 2), round(y + h)))
    for tid in list(trails):
        pts = trails[tid]
        while pts and pts[0][0] <= frame - trail:
            pts.popleft()
        if not pts:
            del trails[tid]


def render_tracks(
    seq_dir: str | Path,
    result_path: str | Path,
    out_path: str | Path,
    *,
    trail: int = 30,
    fps: float | None = None,
    max_frames: int | None = None,
    on_frame: Callable[[int], None] | None = None,
) -> RenderSummary:
    """Write ``out_path`` (MP4): every frame of ``seq_dir`` with the tracks of ``result_path``.

    ``trail`` is the number of past positions drawn per track (0 = none); ``fps`` defaults to the
    sequence's frame rate; ``max_frames`` stops early.  The file appears atomically (written beside
    it under a temporary name, then renamed).
    """
    if trail < 0:
        raise ConfigError(f"trail: must be >= 0, got {trail}")
    out = Path(out_path)
    if out.suffix.lower() != ".mp4":
        raise ConfigError(f"out_path: expected a .mp4 file, got {out.name}")
    t0 = time.perf_counter()
    seq = Sequence.open(seq_dir)
    n = seq.info.seq_length if max_frames is None else min(seq.info.seq_length, max_frames)
    table = read_results(result_path, seq.info.seq_length)
    rows = table.frame_slices()
    rate = float(fps or seq.info.frame_rate)
    size = (seq.info.im_width, seq.info.im_height)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=".mp4", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter.fourcc(*FOURCC), rate, size)
    trails: dict[int, deque[tuple[int, int, int]]] = {}
    try:
        if not writer.isOpened():
            raise DatasetError(f"cannot open a {FOURCC} video writer", out)
        for frame in range(1, n + 1):
            path = seq.image_path(frame)
            img = read_image(path, expect_size=size)
            idx = rows.get(frame, np.zeros(0, np.int64))
            tlwh, ids = table.tlwh[idx], table.id[idx]
            if trail:
                _update_trails(trails, tlwh, ids, frame, trail)
            writer.write(draw_frame(img, tlwh, ids, {k: deque(p[1:] for p in v) for k, v in trails.items()}, frame))
            if on_frame is not None:
                on_frame(frame)
        writer.release()
        os.chmod(tmp, file_mode())  # mkstemp created it private
        os.replace(tmp, out)
    except BaseException:
        writer.release()
        tmp.unlink(missing_ok=True)
        raise
    shown = table.select(table.frame <= n)
    return RenderSummary(out, n, len(np.unique(shown.id)), len(shown), size[0], size[1], rate,
                         time.perf_counter() - t0)
