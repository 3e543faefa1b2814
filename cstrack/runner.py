"""Track one MOTChallenge sequence end to end: frames -> detections -> tracker -> result file + timing.

Detection modes (:data:`DetectionMode`), all producing :class:`cstrack.detection.Detections` in
frame pixels:

- ``private``: the detector's own boxes and embeddings (needs images and a detector).
- ``public``: boxes and scores from ``det/det.txt``; with a detector, embeddings are taken from
  the model at those boxes (:meth:`FrameDetector.embed_boxes`), otherwise association is
  motion/IoU only and no image is read.
- ``gt``: the ground-truth boxes the benchmark counts (:func:`cstrack.data.mot.counted_gt`: flag 1,
  pedestrian class where classes exist) with score 1, for the association upper bound; embeddings
  as in ``public``.

Stages timed per frame (ms, :data:`cstrack.timing.STAGES`): ``read`` (image read), ``preprocess``
(letterbox + tensor), ``forward``, ``postprocess`` (box decoding + NMS + embeddings, or boxes from the table + embeddings),
``associate`` (tracker update).  Frames come from a *frame reader* (:func:`read_frames` by
default), an iterator of :class:`FrameInput` that already carries read and preprocess times, so
a prefetching reader (a bounded background thread doing read + letterbox) can replace it
without touching the rest of the loop.  A reader may also hand over the network's outputs
(:attr:`FrameInput.out`): with a detector that forwards frames concurrently (the ONNX Runtime
paths), :func:`prefetched_frames` runs read + letterbox + forward of the next frames in frame
workers, one frame per worker thread on one core each, while the loop post-processes and tracks in
order (:func:`forward_ahead`; docs/cpu_speed.md).

Frames are decoded by :func:`cstrack.data.images.read_image`: a missing, truncated or corrupt
image, or one whose size disagrees with ``seqinfo.ini``, stops the run with an error naming the
file, unless the reader was made with ``skip_bad=True``; then the frame is tracked with no
detections (tracks coast on their motion model) and counted in :attr:`SequenceRun.bad_frames`.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args

import numpy as np

from cstrack.boxes import tlwh_to_xyxy
from cstrack.data.images import CorruptImageError, read_image
from cstrack.data.mot import MotTable, Sequence, counted_gt, write_results
from cstrack.detection import ConcurrentForward, Detections, FrameDetector, Prepared
from cstrack.errors import ConfigError, DatasetError
from cstrack.timing import DEFAULT_PREFETCH, STAGES
from cstrack.tracker import Tracker, TrackerConfig

DetectionMode = Literal["private", "public", "gt"]
DETECTION_MODES: tuple[str, ...] = get_args(DetectionMode)


@dataclass
class FrameInput:
    """One frame handed to the loop: ``number`` (1-based MOT frame), the detector input ``prep``
    (``None`` when the mode reads no images) and the seconds spent reading and preprocessing it.
    ``bad`` is the reason a skipped frame's image could not be used (``prep`` is then ``None``).
    ``out`` is the detector's forward output when a frame worker already ran the network
    (:func:`forward_ahead`; ``prep.tensor`` is then ``None``, only the letterbox geometry is
    kept), taking ``forward_s`` seconds."""

    number: int
    prep: Prepared | None = None
    read_s: float = 0.0
    preprocess_s: float = 0.0
    bad: str | None = None
    out: Any = None
    forward_s: float = 0.0


FrameReader = Callable[[Sequence, FrameDetector | None], Iterator[FrameInput]]


def read_frames(seq: Sequence, detector: FrameDetector | None, skip_bad: bool = False) -> Iterator[FrameInput]:
    """Frames ``1..seq_length`` in order; decoded (:func:`~cstrack.data.images.read_image`, BGR,
    checked against seqinfo's size) and preprocessed by ``detector`` when one is given, otherwise
    only numbered (no image is touched).  A bad image raises :class:`CorruptImageError` naming the
    file, or with ``skip_bad`` gives a frame whose ``bad`` says why."""
    size = (seq.info.im_width, seq.info.im_height)
    for number in range(1, seq.info.seq_length + 1):
        if detector is None:
            yield FrameInput(number)
            continue
        t0 = time.perf_counter()
        try:
            img = read_image(seq.image_path(number), expect_size=size)
        except CorruptImageError as exc:
            if not skip_bad:
                raise
            yield FrameInput(number, None, time.perf_counter() - t0, bad=str(exc))
            continue
        t1 = time.perf_counter()
        prep = detector.preprocess(img)
        t2 = time.perf_counter()
        yield FrameInput(number, prep, t1 - t0, t2 - t1)




def prefetched_frames(depth: int = DEFAULT_PREFETCH, skip_bad: bool = False, workers: int | None = None) -> FrameReader:
    """A frame reader like :func:`read_frames` whose read + preprocess run ``depth`` frames ahead
    in a bounded background thread (:mod:`cstrack.infer.prefetch`), overlapping the forward of the
    current frame.  Same frames, same order; a read error surfaces at its frame (``skip_bad``: the
    frame comes marked bad instead).  The depth is capped by the detector's ``input_slots``
    (reused input buffers) when it has them.

    With a detector that forwards concurrently (:class:`~cstrack.detection.ConcurrentForward`) and
    ``depth >= 1``, ``workers`` frame workers (default: ``torch.get_num_threads()``; 1 = off) also
    run the forward (:func:`forward_ahead`), ``depth`` frames beyond those in the workers."""

    def reader(seq: Sequence, detector: FrameDetector | None) -> Iterator[FrameInput]:
        if detector is None:
            return read_frames(seq, detector)
        n = frame_workers(detector, workers) if depth >= 1 else 1
        if n > 1 and isinstance(detector, ConcurrentForward):  # n > 1 only for these
            size = (seq.info.im_width, seq.info.im_height)
            frames = ((k, functools.partial(read_image, seq.image_path(k), expect_size=size))
                      for k in range(1, seq.info.seq_length + 1))
            return forward_ahead(frames, detector, n, depth, skip_bad)
        return prefetch_inputs(read_frames(seq, detector, skip_bad), detector, depth)

    return reader


def frame_workers(detector: FrameDetector, workers: int | None = None) -> int:
    """How many frame workers :func:`forward_ahead` would use for ``detector``: 1 (none) unless it
    forwards concurrently; ``workers`` or, when ``None``, ``torch.get_num_threads()`` (the thread
    setting every path follows)."""
    if not isinstance(detector, ConcurrentForward):
        return 1
    if workers is None:
        import torch

        workers = torch.get_num_threads()
    return max(1, workers)


def forward_ahead(
    frames: Iterable[tuple[int, Callable[[], np.ndarray]]],
    detector: ConcurrentForward,
    workers: int,
    ahead: int = DEFAULT_PREFETCH,
    skip_bad: bool = False,
) -> Iterator[FrameInput]:
    """Frames ``(number, load)`` (``load()`` returns the BGR image, raising
    :class:`CorruptImageError` for a bad one) decoded, letterboxed and forwarded by ``workers``
    threads, one frame per thread at a time (:meth:`~cstrack.detection.ConcurrentForward.prepare_and_forward`:
    a single-threaded session each, so ``workers`` frames use ``workers`` cores with no intra-op
    barrier), at most ``workers + ahead`` frames ahead of the consumer, in order.  Each
    :class:`FrameInput` carries ``out`` and the letterbox geometry; a read error surfaces at its
    frame (``skip_bad``: the frame comes marked bad).  Stage times are each worker's own, so
    several overlap in the wall time."""
    from cstrack.infer.prefetch import ordered_map

    def job(frame: tuple[int, Callable[[], np.ndarray]]) -> FrameInput:
        number, load = frame
        t0 = time.perf_counter()
        try:
            img = load()
        except CorruptImageError as exc:
            if not skip_bad:
                raise
            return FrameInput(number, None, time.perf_counter() - t0, bad=str(exc))
        t1 = time.perf_counter()
        prep, out, preprocess_s, forward_s = detector.prepare_and_forward(img)
        return FrameInput(number, Prepared(None, prep.meta), t1 - t0, preprocess_s, out=out, forward_s=forward_s)

    return ordered_map(job, frames, workers, ahead)


Input = TypeVar("Input", bound=FrameInput)  # FrameInput or a subclass carrying more (cstrack.source_runner)


def prefetch_inputs(source: Iterator[Input], detector: FrameDetector, depth: int) -> Iterator[Input]:
    """``source`` produced ``depth`` frames ahead in a bounded thread (``depth < 1``: as it is).
    The depth is capped by the detector's ``input_slots`` (its reused input buffers: at most
    ``slots - 2`` frames may wait while one is in the network and one is being prepared)."""
    if depth < 1:
        return source
    from cstrack.infer.prefetch import prefetch

    slots = getattr(detector, "input_slots", None)
    return prefetch(source, depth if slots is None else max(1, min(depth, slots - 2)))


@dataclass(frozen=True)
class SequenceRun:
    """What :func:`track_sequence` did: ``fps`` is frames over the wall time of the frame loop;
    ``ms`` holds the mean milliseconds per frame of each stage in :data:`STAGES`; ``bad_frames``
    the frames skipped because their image was unusable (only with a ``skip_bad`` reader)."""

    sequence: str
    frames: int
    fps: float
    ms: dict[str, float]
    result_path: Path
    mode: str
    num_tracks: int = 0
    num_boxes: int = 0
    bad_frames: tuple[int, ...] = ()

    def timing_record(self) -> dict[str, Any]:
        """The ``timing.json`` entry of this sequence."""
        return {"frames": self.frames, "fps": self.fps, "ms": dict(self.ms)}


@dataclass
class _BoxTable:
    """Per-frame boxes of a det/gt table: frame -> (xyxy float32 [K, 4], scores float32 [K])."""

    by_frame: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @classmethod
    def from_table(cls, table: MotTable, score: float | None = None) -> _BoxTable:
        out = cls()
        xyxy = tlwh_to_xyxy(table.tlwh).astype(np.float32)
        conf = np.full(len(table), score, np.float32) if score is not None else table.conf.astype(np.float32)
        for frame, rows in table.frame_slices().items():
            out.by_frame[frame] = (xyxy[rows], conf[rows])
        return out

    def get(self, frame: int) -> tuple[np.ndarray, np.ndarray]:
        empty = (np.zeros((0, 4), np.float32), np.zeros(0, np.float32))
        return self.by_frame.get(frame, empty)


def _boxes_for_mode(seq: Sequence, mode: str) -> _BoxTable | None:
    if mode == "public":
        return _BoxTable.from_table(seq.det())
    if mode == "gt":
        return _BoxTable.from_table(counted_gt(seq.gt()), score=1.0)
    return None


def track_sequence(
    seq_dir: str | Path,
    out_dir: str | Path,
    mode: DetectionMode,
    tracker_config: TrackerConfig | None = None,
    detector: FrameDetector | None = None,
    *,
    frame_reader: FrameReader | None = None,
    progress: Callable[[int], None] | None = None,
) -> SequenceRun:
    """Track the sequence folder ``seq_dir`` and write ``<out_dir>/<folder name>.txt`` atomically.

    The result file is MOTChallenge format, one row per reported box sorted by (frame, id):
    ``frame, id, x, y, w, h, score, -1, -1, -1`` (tlwh in frame pixels, rounded to 1/1000 px;
    score rounded to 6 decimals).  ``mode`` picks the
    detection source (see the module docstring); ``private`` requires ``detector``.  ``progress``
    is called with 1 after every frame.  Inputs are validated before the loop starts: the
    gt / det table is read (raising :class:`DatasetError` on a malformed file) and, when a
    detector is used, the first image must exist.  Frames come from ``frame_reader``, by default
    :func:`prefetched_frames` (read + preprocess :data:`DEFAULT_PREFETCH` frames ahead in a
    thread); pass :func:`read_frames` for a strictly sequential loop.
    """
    if frame_reader is None:
        frame_reader = prefetched_frames(DEFAULT_PREFETCH)
    if mode not in DETECTION_MODES:
        raise ConfigError(f"mode: expected one of {DETECTION_MODES}, got {mode!r}")
    if mode == "private" and detector is None:
        raise ConfigError("mode 'private' needs a detector (model weights or a variant)")
    seq = Sequence.open(seq_dir)
    boxes = _boxes_for_mode(seq, mode)
    if detector is not None and seq.info.seq_length > 0 and not seq.has_images():
        raise DatasetError(f"no images ({seq.image_path(1).name} missing); mode {mode!r} with a model reads frames",
                           seq.root / seq.info.im_dir)
    tracker = Tracker(tracker_config, frame_rate=seq.info.frame_rate)
    totals = dict.fromkeys(STAGES, 0.0)
    chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    frames = 0
    bad_frames: list[int] = []

    start = time.perf_counter()
    for fr in frame_reader(seq, detector):
        if fr.bad is not None:
            bad_frames.append(fr.number)
        totals["read"] += fr.read_s
        totals["preprocess"] += fr.preprocess_s
        dets = _detect(fr, boxes, detector, totals)
        t0 = time.perf_counter()
        out = tracker.update_arrays(dets)
        totals["associate"] += time.perf_counter() - t0
        if len(out):
            chunks.append((out.frame, out.ids, out.tlwh, out.scores))
        frames += 1
        if progress is not None:
            progress(1)
    wall = time.perf_counter() - start

    table = _result_table(chunks)
    name = Path(seq_dir).name
    path = write_results(Path(out_dir) / f"{name}.txt", table)
    ms = {k: (1000.0 * v / frames if frames else 0.0) for k, v in totals.items()}
    return SequenceRun(
        sequence=name,
        frames=frames,
        fps=frames / wall if wall > 0 else 0.0,
        ms=ms,
        result_path=path,
        mode=mode,
        num_tracks=len(np.unique(table.id)),
        num_boxes=len(table),
        bad_frames=tuple(bad_frames),
    )


def _detect(
    fr: FrameInput,
    boxes: _BoxTable | None,
    detector: FrameDetector | None,
    totals: dict[str, float],
) -> Detections:
    """Detections of one frame; adds the forward / postprocess seconds to ``totals``."""
    out = None
    if fr.bad is not None:  # a skipped frame: no detections, the tracks coast
        return Detections.empty(None if detector is None else detector.emb_dim)
    if detector is not None:
        if fr.prep is None:
            raise ConfigError("the frame reader gave no preprocessed input but a detector is in use")
        if fr.out is not None:  # a frame worker ran the network
            out = fr.out
            totals["forward"] += fr.forward_s
        else:
            t0 = time.perf_counter()
            out = detector.forward(fr.prep)
            totals["forward"] += time.perf_counter() - t0
    t0 = time.perf_counter()
    if boxes is None:
        assert detector is not None and fr.prep is not None
        dets = detector.postprocess(out, fr.prep)
    else:
        xyxy, scores = boxes.get(fr.number)
        emb = None
        if detector is not None and fr.prep is not None:
            emb = (
                detector.embed_boxes(out, fr.prep, xyxy)
                if len(xyxy)
                else np.zeros((0, detector.emb_dim), np.float32)
            )
        dets = Detections(xyxy, scores, emb)
    totals["postprocess"] += time.perf_counter() - t0
    return dets


def _result_table(chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]) -> MotTable:
    if not chunks:
        return MotTable.empty()
    frame = np.concatenate([c[0] for c in chunks])
    ids = np.concatenate([c[1] for c in chunks])
    # Millipixels and 6 score decimals: far below any box accuracy, and free of float32 noise digits.
    tlwh = np.round(np.concatenate([c[2] for c in chunks]), 3)
    score = np.round(np.concatenate([c[3] for c in chunks]).astype(np.float64), 6)
    return MotTable(frame, ids, tlwh, score).sorted()
