"""Converters into our layout.

- :func:`video_to_sequence`: a video (+ optional MOT gt/det/seqinfo) -> a MOTChallenge sequence
  folder (``img1/000001.jpg...``, ``seqinfo.ini``, ``gt/gt.txt``, ``det/det.txt``).  Decoded frame
  ``i`` (0-based, ``cv2.VideoCapture.read`` order) is source frame ``i + 1``.
- :func:`write_mot_labels`: MOTChallenge sequences -> JDE training labels (``labels_with_ids``)
  and list files, with the "half" split protocol.
- :func:`crowdhuman_to_jde` and :func:`index_jde_images`: the other training sources.

Our dataset layout (``D = ROOT/<dataset>``)::

    D/images/<split>/<SEQ>/{seqinfo.ini, img1/, gt/gt.txt, det/det.txt}    MOT sequences
    D/labels_with_ids/<split>/<SEQ>/img1/000001.txt                        JDE labels
    D/<list>.txt                                                           list files

A label file holds one line per box, ``class identity cx cy w h``: class 0 (pedestrian), identity
0-based and unique within the dataset (``-1`` = no identity), box centre and size normalised by the
image width/height.  Its path is the image path with the last ``images`` folder replaced by
``labels_with_ids`` and the extension by ``.txt`` (the JDE convention, :func:`label_path_for`).
A list file holds one image path per line, relative to the list file's folder (absolute paths are
accepted when reading).
"""

from __future__ import annotations

import csv
import fnmatch
import io
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from cstrack.data.mot import Kind, SeqInfo, counted_gt, read_mot, read_seqinfo, write_seqinfo
from cstrack.data.mot import Sequence as MotSequence
from cstrack.errors import ConfigError, DatasetError
from cstrack.fsutil import atomic_write_text, make_temp_dir

IMAGES_DIR = "images"
LABELS_DIR = "labels_with_ids"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
DEFAULT_JPEG_QUALITY = 90  # as the shipped PETS09-S2L1-head8 frames (shared/data/README.md)


# --------------------------------------------------------------------------------------------
# frame ranges


def parse_frame_range(text: str, param: str = "--frames") -> tuple[int, int | None]:
    """Parse ``A:B`` (1-based, inclusive), ``A:`` (to the end) or ``:B`` into ``(A, B or None)``."""
    m = re.fullmatch(r"\s*(\d*)\s*:\s*(\d*)\s*", text)
    if not m or not (m.group(1) or m.group(2)):
        raise ConfigError(f"{param}: expected A:B with 1-based inclusive frame numbers, got {text!r}")
    first = int(m.group(1)) if m.group(1) else 1
    last = int(m.group(2)) if m.group(2) else None
    if first < 1 or (last is not None and last < first):
        raise ConfigError(f"{param}: need 1 <= A <= B, got {text!r}")
    return first, last


def half_split(seq_length: int) -> tuple[range, range]:
    """The "half" protocol: frames ``1..n//2`` train, ``n//2+1..n`` val (PETS09: 1-397 / 398-795)."""
    if seq_length < 2:
        raise ConfigError(f"half split: a sequence needs at least 2 frames, got {seq_length}")
    mid = seq_length // 2
    return range(1, mid + 1), range(mid + 1, seq_length + 1)


# --------------------------------------------------------------------------------------------
# video -> MOT sequence


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
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise ConfigError(f"--name: invalid sequence name {name!r}")
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


# --------------------------------------------------------------------------------------------
# label files and list files


def label_path_for(image: str | Path) -> Path:
    """JDE rule: the last ``images`` folder becomes ``labels_with_ids``, the extension ``.txt``."""
    p = Path(image)
    parts = p.parts
    idx = max((i for i, part in enumerate(parts[:-1]) if part == IMAGES_DIR), default=-1)
    if idx < 0:
        raise DatasetError(f"no '{IMAGES_DIR}' folder in the image path: cannot locate its label file", p)
    return Path(*parts[:idx], LABELS_DIR, *parts[idx + 1 :]).with_suffix(".txt")


def format_labels(rows: np.ndarray) -> str:
    """Label-file text for ``rows`` float [n, 6] = (class, identity, cx, cy, w, h) normalised."""
    return "".join(
        f"{int(c)} {int(i)} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n" for c, i, cx, cy, w, h in np.asarray(rows)
    )


def write_list(path: str | Path, images: Iterable[str | Path]) -> Path:
    """Write a list file: one image path per line, relative to the list file's folder when inside it."""
    p = Path(path)
    base = p.parent.resolve()
    lines = []
    for img in images:
        q = Path(img).resolve()
        try:
            lines.append(q.relative_to(base).as_posix())
        except ValueError:
            lines.append(q.as_posix())
    return atomic_write_text(p, "".join(f"{line}\n" for line in lines))


def read_list(path: str | Path) -> list[Path]:
    """Image paths of a list file (relative lines resolved against its folder; blank lines and
    lines starting with ``#`` skipped)."""
    p = Path(path)
    if not p.is_file():
        raise DatasetError("list file not found", p)
    out = []
    for line in p.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        q = Path(line)
        out.append(q if q.is_absolute() else p.parent / q)
    return out


# --------------------------------------------------------------------------------------------
# MOTChallenge -> JDE labels


@dataclass(frozen=True)
class LabelSummary:
    """What :func:`write_mot_labels` wrote."""

    sequences: tuple[str, ...]
    images: int
    boxes: int
    identities: int  # number of distinct identities (ids 0..identities-1)
    lists: dict[str, int] = field(default_factory=dict)  # list file name -> number of images


def find_sequences(root: str | Path) -> list[Path]:
    """MOT sequence folders (containing ``seqinfo.ini``) under ``root``, sorted."""
    return sorted(p.parent for p in Path(root).rglob("seqinfo.ini"))


def sequence_label_rows(seq: MotSequence, visibility: float = 0.0) -> tuple[dict[int, np.ndarray], np.ndarray]:
    """JDE rows per frame for the counted gt of ``seq`` (raw gt ids in column 1).

    Kept: flag 1 and, where the file has classes, class 1 (pedestrian), with visibility >=
    ``visibility`` where known (:func:`cstrack.data.mot.counted_gt`).  Returns ``({frame: float64
    [n, 6]}, sorted unique raw ids)``.
    """
    table = counted_gt(seq.gt(), visibility)
    W, H = seq.info.im_width, seq.info.im_height
    x, y, w, h = table.tlwh.T
    rows = np.stack([np.zeros(len(table)), table.id.astype(np.float64), (x + w / 2) / W, (y + h / 2) / H, w / W, h / H], 1)
    per_frame = {int(f): rows[idx] for f, idx in table.frame_slices().items()}
    return per_frame, np.unique(table.id)


def write_mot_labels(
    dataset_dir: str | Path,
    *,
    splits: Sequence[str] = ("train",),
    sequences: str = "*",
    visibility: float = 0.0,
    id_start: int = 0,
    half: bool = True,
) -> LabelSummary:
    """Write JDE labels and list files for the MOT sequences in ``dataset_dir/images/<split>/``.

    Identities are renumbered ``id_start, id_start+1, ...`` in (split, sequence, gt id) order so
    that they are unique across the sequences (pass ``id_start`` to continue after another dataset).
    Every frame gets a label file (empty when no box is counted).  List files: ``<split>.txt`` (all
    frames) and, with ``half``, ``<split>_half.txt`` / ``val_half.txt`` from the "half" protocol
    (:func:`half_split`).  ``ids.csv`` in the labels folder maps (split, sequence, gt id) to the
    identity written.  Sequences without ``gt/gt.txt`` are skipped.
    """
    if not 0.0 <= visibility <= 1.0:
        raise ConfigError(f"visibility: must be in [0, 1], got {visibility}")
    if id_start < 0:
        raise ConfigError(f"id_start: must be >= 0, got {id_start}")
    root = Path(dataset_dir)
    next_id = id_start
    names: list[str] = []
    lists: dict[str, list[Path]] = {}
    id_rows: list[tuple[str, str, int, int]] = []
    n_boxes = 0
    for split in splits:
        split_dir = root / IMAGES_DIR / split
        seq_dirs = [d for d in sorted(split_dir.iterdir()) if (d / "seqinfo.ini").is_file()] if split_dir.is_dir() else []
        for seq_dir in seq_dirs:
            if not fnmatch.fnmatchcase(seq_dir.name, sequences):
                continue
            seq = MotSequence.open(seq_dir)
            if not seq.gt_path.is_file():
                continue
            per_frame, raw_ids = sequence_label_rows(seq, visibility)
            id_map = {int(r): next_id + k for k, r in enumerate(raw_ids)}
            id_rows += [(split, seq.name, r, i) for r, i in id_map.items()]
            next_id += len(id_map)
            images = []
            for frame in range(1, seq.info.seq_length + 1):
                img = seq.image_path(frame)
                if not img.is_file():
                    raise DatasetError(f"image of frame {frame} missing (seqLength={seq.info.seq_length})", img)
                rows = per_frame.get(frame, np.zeros((0, 6)))
                if len(rows):
                    rows = rows.copy()
                    rows[:, 1] = [id_map[int(r)] for r in rows[:, 1]]
                n_boxes += len(rows)
                label = label_path_for(img)
                label.parent.mkdir(parents=True, exist_ok=True)
                label.write_text(format_labels(rows), encoding="utf-8")
                images.append(img)
            names.append(f"{split}/{seq.name}")
            lists.setdefault(split, []).extend(images)
            if half:
                first, second = half_split(len(images))
                lists.setdefault(f"{split}_half", []).extend(images[i - 1] for i in first)
                lists.setdefault("val_half", []).extend(images[i - 1] for i in second)
    counts = {}
    for list_name, images in lists.items():
        write_list(root / f"{list_name}.txt", images)
        counts[f"{list_name}.txt"] = len(images)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["split", "sequence", "gt_id", "identity"])
    writer.writerows(id_rows)
    if names:
        atomic_write_text(root / LABELS_DIR / "ids.csv", buf.getvalue())
    return LabelSummary(tuple(names), sum(len(v) for k, v in lists.items() if k in splits), n_boxes, next_id - id_start, counts)


# --------------------------------------------------------------------------------------------
# CrowdHuman and JDE-zoo datasets


def link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link ``src`` to ``dst`` (same file system), else copy it."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def crowdhuman_to_jde(
    odgt: str | Path,
    image_dirs: Sequence[str | Path],
    dataset_dir: str | Path,
    split: str,
    *,
    id_start: int = 0,
    box: str = "fbox",
) -> tuple[list[Path], int]:
    """Convert one CrowdHuman ``.odgt`` file into ``dataset_dir/images/<split>/<ID>.jpg`` + labels.

    Each line is a JSON record ``{"ID": ..., "gtboxes": [{"tag", "fbox", "vbox", "extra"}, ...]}``;
    boxes tagged ``person`` and not marked ``extra.ignore == 1`` are kept, each with its own new
    identity (CrowdHuman has no tracks).  ``box`` picks the full (``fbox``) or visible (``vbox``)
    box.  Images are looked up by ``<ID>.jpg`` in ``image_dirs`` and hard-linked (or copied).
    Returns (image paths, next free identity).  A malformed line raises :class:`DatasetError` with
    the odgt path and line.
    """
    from PIL import Image

    if box not in ("fbox", "vbox"):
        raise ConfigError(f"box: must be 'fbox' or 'vbox', got {box!r}")
    odgt = Path(odgt)
    index = {p.name: p for d in image_dirs for p in Path(d).rglob("*.jpg")}
    out_dir = Path(dataset_dir) / IMAGES_DIR / split
    next_id = id_start
    images: list[Path] = []
    for line_no, line in enumerate(odgt.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            image_id = str(rec["ID"])
            boxes = rec.get("gtboxes", [])
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DatasetError(f"malformed odgt record ({exc})", odgt, line_no) from None
        src = index.get(f"{image_id}.jpg")
        if src is None:
            raise DatasetError(f"image {image_id}.jpg not found in {', '.join(map(str, image_dirs))}", odgt, line_no)
        try:
            with Image.open(src) as im:
                W, H = im.size
        except OSError as exc:
            raise DatasetError(f"unreadable image ({exc})", src) from None
        rows = []
        for b in boxes:
            if b.get("tag") != "person" or (b.get("extra") or {}).get("ignore", 0) == 1:
                continue
            try:
                x, y, w, h = (float(v) for v in b[box])
            except (KeyError, TypeError, ValueError):
                raise DatasetError(f"person without a valid {box}", odgt, line_no) from None
            if w <= 0 or h <= 0:
                continue
            rows.append((0, next_id, (x + w / 2) / W, (y + h / 2) / H, w / W, h / H))
            next_id += 1
        dst = out_dir / f"{image_id}.jpg"
        link_or_copy(src, dst)
        label = label_path_for(dst)
        label.parent.mkdir(parents=True, exist_ok=True)
        label.write_text(format_labels(np.asarray(rows, dtype=np.float64).reshape(-1, 6)), encoding="utf-8")
        images.append(dst)
    return images, next_id


def index_jde_images(root: str | Path) -> list[Path]:
    """Images under any ``images`` folder below ``root`` that have a label file, sorted."""
    out = []
    for p in sorted(Path(root).rglob("*")):
        is_image = p.suffix.lower() in IMAGE_SUFFIXES and IMAGES_DIR in p.parts[:-1] and p.is_file()
        if is_image and label_path_for(p).is_file():
            out.append(p)
    return out
