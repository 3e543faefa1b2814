"""A video (+ optional MOT gt/det/seqinfo) -> a MOTChallenge sequence folder (``img1/000001.jpg...``,
``seqinfo.ini``, ``gt/gt.txt``, ``det/det.txt``).  Decoded frame ``i`` (0-based,
``cv2.VideoCapture.read`` order) is source frame ``i + 1``."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from cstrack.data.mot import Kind, SeqInfo, read_mot, read_seqinfo, write_seqinfo
from cstrack.errors import ConfigError, DatasetError
from cstrack.fsutil import atomic_write_text, make_temp_dir
from cstrack.names import RULE as NAME_RULE
from cstrack.names import is_name

DEFAULT_JPEG_QUALITY = 90  # as the shipped PETS09-S2L1-head8 frames (shared/data/README.md)


@dataclass(frozen=True)
class VideoConversion:
    """Summary of :func:`video_to_sequence`."""

    seq_dir: Path
    frames: int  # images written (frames of the new sequence)
    first_source_frame: int
    last_source_frame: int
    bad_frames: tuple[int, ...]  # source frame numbers that could not be decoded (skipped)
    frame_rate: float
    frame_rate_from: str  # "option", "seqinfo" or "container"
    gt_rows: int
    det_rows: int
    seconds: float


@dataclass(frozen=True)
class _Annotations:
    gt: Path | None
    det: Path | None
    seqinfo: SeqInfo | None
    seqinfo_path: Path | None


def _resolve_annotations(gt: Path | None, det: Path | None, seqinfo: Path | None) -> _Annotations:
    gt_file = gt
    if gt is not None and gt.is_dir():  # a MOT sequence folder: take gt, det and seqinfo from it
        gt_file = gt / "gt" / "gt.txt"
        if det is None and (gt / "det" / "det.txt").is_file():
            det = gt / "det" / "det.txt"
        if seqinfo is None and (gt / "seqinfo.ini").is_file():
            seqinfo = gt / "seqinfo.ini"
    elif gt is not None and seqinfo is None and gt.parent.name == "gt":
        candidate = gt.parent.parent / "seqinfo.ini"
        seqinfo = candidate if candidate.is_file() else None
    if gt_file is not None and not gt_file.is_file():
        raise DatasetError("gt file not found", gt_file)
    if det is not None and not det.is_file():
        raise DatasetError("det file not found", det)
    info = read_seqinfo(seqinfo) if seqinfo is not None else None
    return _Annotations(gt_file, det, info, seqinfo)


def video_to_sequence(
    video: str | Path,
    out_root: str | Path,
    name: str,
    *,
    gt: str | Path | None = None,
    det: str | Path | None = None,
    seqinfo: str | Path | None = None,
    frames: tuple[int, int | None] | None = None,
    frame_rate: float | None = None,
    skip_bad_frames: bool = False,
    jpeg_quality: int = DEFAULT_JPEG_QUALITY,
    overwrite: bool = False,
    workers: int = 2,
    on_frame: Callable[[int], None] | None = None,
) -> VideoConversion:
    """Decode ``video`` into the MOT sequence ``out_root/name``.

    ``gt`` is a gt file or a MOT sequence folder (then its ``gt/gt.txt``, ``det/det.txt`` and
    ``seqinfo.ini`` are used).  The frame rate comes from ``frame_rate``, else the seqinfo next to
    the gt, else the container.  ``frames=(A, B)`` keeps source frames ``A..B`` (1-based,
    inclusive) renumbered from 1; gt/det rows are cut to them and shifted to match, every other
    column kept verbatim.  A frame that cannot be decoded raises :class:`DatasetError` unless
    ``skip_bad_frames`` (then it is dropped, later frames move up, its gt/det rows are dropped and
    it is listed in ``bad_frames``).  The folder is built beside the destination and renamed into
    place; an existing destination is replaced only with ``overwrite``.
    """
    t0 = time.perf_counter()
    video, out_root = Path(video), Path(out_root)
    if not is_name(name):
        raise ConfigError(f"--name: invalid sequence name {name!r} ({NAME_RULE})")
    if not 1 <= jpeg_quality <= 100:
        raise ConfigError(f"jpeg_quality: must be in 1..100, got {jpeg_quality}")
    if frame_rate is not None and frame_rate <= 0:
        raise ConfigError(f"--frame-rate: must be positive, got {frame_rate}")
    dest = out_root / name
    if dest.exists() and not overwrite:
        raise ConfigError(f"{dest} already exists (pass --overwrite to replace it)")
    if not video.is_file():
        raise DatasetError("video not found", video)
    ann = _resolve_annotations(
        Path(gt) if gt is not None else None, Path(det) if det is not None else None,
        Path(seqinfo) if seqinfo is not None else None,
    )
    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise DatasetError("cannot open video (unsupported or corrupt file)", video)
    try:
        width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        container_fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        container_count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if ann.seqinfo is not None and (ann.seqinfo.im_width, ann.seqinfo.im_height) != (width, height):
            raise DatasetError(
                f"video is {width}x{height} but seqinfo says {ann.seqinfo.im_width}x{ann.seqinfo.im_height}",
                ann.seqinfo_path,
            )
        n_source = ann.seqinfo.seq_length if ann.seqinfo is not None else (container_count or None)
        first, last = frames if frames is not None else (1, None)
        if last is None:
            last = n_source
        if n_source is not None and last is not None and last > n_source:
            raise ConfigError(f"--frames: last frame {last} is past the end of the sequence ({n_source} frames)")
        if last is not None and first > last:
            raise ConfigError(f"--frames: first frame {first} is past the end of the sequence ({last} frames)")
        if frame_rate is not None:
            rate, rate_from = float(frame_rate), "option"
        elif ann.seqinfo is not None:
            rate, rate_from = float(ann.seqinfo.frame_rate), "seqinfo"
        elif container_fps > 0:
            rate, rate_from = container_fps, "container"
        else:
            raise DatasetError("the container has no frame rate: pass --frame-rate", video)

        tmp = make_temp_dir(out_root, f".{name}.convert-")
        try:
            kept, bad, decoded_to_end = _decode_frames(
                cap, video, tmp / "img1", first, last, n_source, ann.seqinfo is not None, (height, width),
                skip_bad_frames, jpeg_quality, workers, on_frame,
            )
            if decoded_to_end and ((frames is not None and frames[1] is not None) or not kept):
                raise ConfigError(f"--frames: {first}:{last} is past the end of the video ({len(kept) + len(bad)} frames)")
            if not kept:
                raise DatasetError(f"no frame of {first}..{last} could be decoded ({len(bad)} bad frames)", video)
            total_source = kept[-1] if decoded_to_end and not bad else n_source
            frame_map = {src: k + 1 for k, src in enumerate(kept)}
            gt_rows = det_rows = 0
            if ann.gt is not None:
                gt_rows = cut_mot_file(ann.gt, tmp / "gt" / "gt.txt", "gt", frame_map, total_source)
            if ann.det is not None:
                det_rows = cut_mot_file(ann.det, tmp / "det" / "det.txt", "det", frame_map, total_source)
            write_seqinfo(tmp, SeqInfo(name, rate, len(kept), width, height, "img1", ".jpg"))
            _replace_dir(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    finally:
        cap.release()
    return VideoConversion(
        dest, len(kept), first, kept[-1], tuple(bad), rate, rate_from, gt_rows, det_rows,
        time.perf_counter() - t0,
    )


def _decode_frames(
    cap: cv2.VideoCapture,
    video: Path,
    img_dir: Path,
    first: int,
    last: int | None,
    n_source: int | None,
    n_from_seqinfo: bool,
    shape: tuple[int, int],
    skip_bad: bool,
    quality: int,
    workers: int,
    on_frame: Callable[[int], None] | None,
) -> tuple[list[int], list[int], bool]:
    """Decode source frames ``first..last`` into ``img_dir``; return (kept, bad, reached the end)."""
    img_dir.mkdir(parents=True)
    params = [int(cv2.IMWRITE_JPEG_QUALITY), quality]
    kept: list[int] = []
    bad: list[int] = []
    pending: list[Future[None]] = []
    decoded_to_end = False
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        f = 0
        while last is None or f < last:
            f += 1
            if f < first:
                ok = cap.grab()
                img = None
            else:
                ok, img = cap.read()
            if ok and (img is None or img.shape[:2] == shape):
                if img is None:
                    continue
                kept.append(f)
                out = img_dir / f"{len(kept):06d}.jpg"
                pending.append(pool.submit(_write_jpeg, out, img, params))
                if len(pending) > 4 * max(1, workers):
                    pending.pop(0).result()
                if on_frame is not None:
                    on_frame(f)
                continue
            if not ok and n_source is None:  # unknown length: a failed read is the end of the video
                decoded_to_end = True
                break
            what = "could not be decoded" if not ok or img is None else f"has shape {img.shape[:2]}, expected {shape}"
            if not skip_bad:
                raise DatasetError(
                    f"frame {f} (decoded index {f - 1}) {what}; pass --skip-bad-frames to drop bad frames", video
                )
            bad.append(f)
        if n_from_seqinfo and last == n_source and cap.grab():
            raise DatasetError(f"the video has more frames than the {n_source} its seqinfo.ini declares", video)
        for fut in pending:
            fut.result()
    return kept, bad, decoded_to_end


def _write_jpeg(path: Path, img: np.ndarray, params: list[int]) -> None:
    ok, buf = cv2.imencode(".jpg", img, params)
    if not ok:  # pragma: no cover - encoding a valid BGR frame does not fail
        raise DatasetError("JPEG encoding failed", path)
    path.write_bytes(buf.tobytes())


def cut_mot_file(src: Path, dst: Path, kind: Kind, frame_map: dict[int, int], seq_length: int | None) -> int:
    """Keep the rows of ``src`` whose frame is in ``frame_map`` and renumber their frame.

    Every other column is kept verbatim (MOT15 world coordinates included).  ``src`` is fully
    validated first (:func:`read_mot`: a bad line raises :class:`DatasetError` with path and line).
    Returns the number of rows written.
    """
    table = read_mot(src, kind, seq_length)
    lines = src.read_text(encoding="utf-8").splitlines()
    out: list[str] = []
    order = np.argsort(np.array([frame_map.get(int(f), 0) for f in table.frame]), kind="stable")
    for k in order:
        new = frame_map.get(int(table.frame[k]))
        if new is None:
            continue
        rest = lines[int(table.lines[k]) - 1].strip().split(",", 1)[1]
        out.append(f"{new},{rest}")
    atomic_write_text(dst, "\n".join(out) + ("\n" if out else ""))
    return len(out)


def _replace_dir(tmp: Path, dest: Path) -> None:
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        os.replace(dest, old)
        os.replace(tmp, dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, dest)
