"""Frames into the tracking loop: :class:`FrameInput` and the frame readers of a MOTChallenge folder.

A *frame reader* is an iterator of :class:`FrameInput` that already carries the read and
preprocess times, so a prefetching reader (a bounded background thread doing read + letterbox,
:func:`prefetched_frames`) can replace the sequential one (:func:`read_frames`) without touching the
loop (:mod:`cstrack.run.loop`).  A reader may also hand over the network's outputs
(:attr:`FrameInput.out`): with a detector that forwards frames concurrently (the ONNX Runtime
paths), :func:`prefetched_frames` runs read + letterbox + forward of the next frames in frame
workers, one frame per worker thread on one core each, while the loop post-processes and tracks in
order (:func:`forward_ahead`; docs/cpu_speed.md).  That is also the seam of batched inference: a
reader that forwards a batch of prepared frames at once fills ``out`` (and ``forward_s``) of each.

Frames are decoded by :func:`cstrack.data.images.read_image`: a missing, truncated or corrupt
image, or one whose size disagrees with ``seqinfo.ini``, stops the run with an error naming the
file, unless the reader was made with ``skip_bad=True``; then the frame comes marked ``bad`` and is
tracked with no detections (tracks coast on their motion model).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from cstrack.data.images import CorruptImageError, read_image
from cstrack.data.mot import Sequence
from cstrack.detection import ConcurrentForward, Detections, FrameDetector, Prepared
from cstrack.timing import DEFAULT_PREFETCH


@dataclass
class FrameInput:
    """One frame handed to the loop: ``number`` (1-based MOT frame), the detector input ``prep``
    (``None`` when the mode reads no images) and the seconds spent reading and preprocessing it.
    ``bad`` is the reason a skipped frame's image could not be used (``prep`` is then ``None``).
    ``out`` is the detector's forward output when a frame worker already ran the network
    (:func:`forward_ahead`; ``prep.tensor`` is then ``None``, only the letterbox geometry is
    kept), taking ``forward_s`` seconds.  ``dets`` are the frame's detections when they are already
    known (a replay of cached network outputs): the detector stage is then skipped."""

    number: int
    prep: Prepared | None = None
    read_s: float = 0.0
    preprocess_s: float = 0.0
    bad: str | None = None
    out: Any = None
    forward_s: float = 0.0
    dets: Detections | None = None


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
        from cstrack.infer.batch import BatchedDetector, batched_frames

        if isinstance(detector, BatchedDetector) and detector.batch_size > 1:  # batched inference (docs/gpu.md)
            return batched_frames(seq, detector, FrameInput, skip_bad)
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


Input = TypeVar("Input", bound=FrameInput)  # FrameInput or a subclass carrying more (cstrack.run.source)


def prefetch_inputs(source: Iterator[Input], detector: FrameDetector, depth: int) -> Iterator[Input]:
    """``source`` produced ``depth`` frames ahead in a bounded thread (``depth < 1``: as it is).
    The depth is capped by the detector's ``input_slots`` (its reused input buffers: at most
    ``slots - 2`` frames may wait while one is in the network and one is being prepared)."""
    if depth < 1:
        return source
    from cstrack.infer.prefetch import prefetch

    slots = getattr(detector, "input_slots", None)
    return prefetch(source, depth if slots is None else max(1, min(depth, slots - 2)))
