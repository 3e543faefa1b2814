"""Per-frame pipeline timing (``cstrack bench-speed``): read + letterbox + forward + post-process
+ associate (:data:`cstrack.timing.STAGES`) on a folder of frames, with any model path.

The loop is the runner's (:mod:`cstrack.run`): frames are read and letterboxed by the
detector in a bounded prefetch thread (unless ``prefetch=0``), then forwarded, post-processed and
handed to a :class:`~cstrack.tracker.Tracker`; with a detector that forwards concurrently (the ONNX
Runtime paths) the runner's frame workers read, letterbox and forward (``workers``, default the
thread count: :func:`cstrack.run.frames.forward_ahead`), as ``cstrack track`` does on a sequence.  ``fps`` is frames over the wall time of the timed
loop (read to tracks); the per-stage milliseconds are means over the timed frames (read and
preprocess run in the prefetch thread, overlapped with the others, so the stages need not add up
to the frame time).

Random weights give next to no detections, so the tracker would do no work: ``fake_dets = N``
adds N synthetic detections per frame (boxes drifting one pixel per frame, fixed unit
embeddings, as in the spec §14 anchor) to the model's own before tracking.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cstrack.data.images import read_image
from cstrack.detection import ConcurrentForward, Detections, FrameDetector
from cstrack.errors import ConfigError, DatasetError
from cstrack.run.frames import FrameInput, forward_ahead, frame_workers, prefetch_inputs
from cstrack.timing import STAGES

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
DEFAULT_PREFETCH = 2
FAKE_SEED = 0


def list_images(folder: str | Path) -> list[Path]:
    """Image files of ``folder`` sorted by name; :class:`DatasetError` when there are none."""
    root = Path(folder)
    if not root.is_dir():
        raise DatasetError("not a folder of images", root)
    files = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DatasetError(f"no images ({', '.join(IMAGE_SUFFIXES)})", root)
    return files


def read_cycled(files: list[Path], frames: int, detector: FrameDetector) -> Iterator[FrameInput]:
    """``frames`` frames (cycling through ``files``): decoded with :func:`~cstrack.data.images.read_image` (checked) and preprocessed."""
    for i in range(frames):
        path = files[i % len(files)]
        t0 = time.perf_counter()
        img = read_image(path)
        t1 = time.perf_counter()
        prep = detector.preprocess(img)
        yield FrameInput(i + 1, prep, t1 - t0, time.perf_counter() - t1)


@dataclass(frozen=True)
class FakeDetections:
    """``n`` synthetic pedestrians (w x h = 40 x 100 px) on a grid, drifting one pixel per frame,
    each with a fixed random unit embedding of ``dim`` values."""

    n: int
    dim: int
    frame_wh: tuple[int, int]

    def boxes(self, frame: int) -> Detections:
        if self.n == 0:
            return Detections.empty(self.dim)
        w, h = self.frame_wh
        cols = int(np.ceil(np.sqrt(self.n)))
        idx = np.arange(self.n)
        x = (idx % cols + 0.5) * (w / cols) - 20 + (frame % 50)
        y = (idx // cols + 0.5) * (h / cols) - 50
        xyxy = np.stack([x, y, x + 40, y + 100], axis=1).astype(np.float32)
        emb = np.random.default_rng(FAKE_SEED).standard_normal((self.n, self.dim)).astype(np.float32)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        return Detections(xyxy, np.full(self.n, 0.9, np.float32), emb)


def _merge(a: Detections, b: Detections) -> Detections:
    if len(b) == 0:
        return a
    eb = b.embeddings
    if eb is None:  # the synthetic detections always carry embeddings
        raise ValueError("_merge: the detections added need embeddings")
    ea = a.embeddings if a.embeddings is not None else np.zeros((len(a), eb.shape[1]), np.float32)
    return Detections(np.concatenate([a.xyxy, b.xyxy]), np.concatenate([a.scores, b.scores]), np.concatenate([ea, eb]))


def run_pipeline(
    detector: FrameDetector,
    files: list[Path],
    frames: int,
    *,
    warmup: int = 2,
    prefetch_depth: int = DEFAULT_PREFETCH,
    fake_dets: int = 0,
    frame_rate: float = 30.0,
    workers: int | None = None,
) -> dict[str, Any]:
    """Time ``frames`` frames (after ``warmup`` untimed ones) of the full pipeline.

    ``workers``: frame workers (:func:`cstrack.run.frames.frame_workers`: default the thread count for
    a detector that forwards concurrently, 1 = the prefetch thread only; none when
    ``prefetch_depth`` is 0).  Returns ``{"frames", "fps", "ms_per_frame", "ms": {stage: mean ms},
    "post_track_share", "detections_per_frame", "tracks_per_frame", "workers", "cpu_ms_per_frame"}``
    (``cpu_ms_per_frame``: CPU time of every thread of the process per timed frame, the frame's work
    in core-milliseconds whatever the overlap).
    """
    from cstrack.tracker import Tracker

    if frames < 1:
        raise ConfigError(f"must be >= 1, got {frames}", "frames")
    if warmup < 0 or prefetch_depth < 0 or fake_dets < 0:
        raise ConfigError("warmup, prefetch depth and fake detections must be >= 0")
    first = read_image(files[0])
    fake = FakeDetections(fake_dets, detector.emb_dim, (first.shape[1], first.shape[0]))
    tracker = Tracker(frame_rate=frame_rate)
    n_workers = frame_workers(detector, workers) if prefetch_depth >= 1 else 1
    source: Iterator[FrameInput]
    if n_workers > 1 and isinstance(detector, ConcurrentForward):  # n_workers > 1 only for these
        jobs = ((i + 1, functools.partial(read_image, files[i % len(files)])) for i in range(warmup + frames))
        source = forward_ahead(jobs, detector, n_workers, prefetch_depth)
    else:
        source = prefetch_inputs(read_cycled(files, warmup + frames, detector), detector, prefetch_depth)
    totals = dict.fromkeys(STAGES, 0.0)
    n_dets = n_tracks = 0
    start, cpu_start = time.perf_counter(), time.process_time()
    for fr in source:
        timed = fr.number > warmup
        if fr.number == warmup + 1:
            start, cpu_start = time.perf_counter(), time.process_time()
        assert fr.prep is not None
        t0 = time.perf_counter()
        out = fr.out if fr.out is not None else detector.forward(fr.prep)
        t1 = time.perf_counter()
        forward_s = fr.forward_s if fr.out is not None else t1 - t0
        dets = detector.postprocess(out, fr.prep)
        t2 = time.perf_counter()
        dets = _merge(dets, fake.boxes(fr.number))
        t3 = time.perf_counter()
        tracks = tracker.update_arrays(dets)
        t4 = time.perf_counter()
        if timed:
            for stage, sec in zip(STAGES, (fr.read_s, fr.preprocess_s, forward_s, t2 - t1, t4 - t3), strict=True):
                totals[stage] += sec
            n_dets += len(dets)
            n_tracks += len(tracks)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    ms = {k: 1000.0 * v / frames for k, v in totals.items()}
    ms_frame = 1000.0 * wall / frames
    return {
        "frames": frames,
        "fps": frames / wall,
        "ms_per_frame": ms_frame,
        "cpu_ms_per_frame": 1000.0 * cpu / frames,
        "ms": ms,
        "post_track_share": (ms["postprocess"] + ms["associate"]) / ms_frame,
        "detections_per_frame": n_dets / frames,
        "tracks_per_frame": n_tracks / frames,
        "workers": n_workers,
    }


def forward_only(detector: FrameDetector, image: Path, iters: int, warmup: int = 2) -> dict[str, float]:
    """Median and best milliseconds of ``detector.forward`` alone on one prepared frame."""
    prep = detector.preprocess(read_image(image))
    for _ in range(warmup):
        detector.forward(prep)
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        detector.forward(prep)
        times.append(time.perf_counter() - t0)
    times.sort()
    return {"ms_median": 1000.0 * times[len(times) // 2], "ms_best": 1000.0 * times[0], "iters": iters}


def bench_speed(
    variant: str,
    weights: str | Path | None,
    input_size: tuple[int, int],
    images: str | Path,
    frames: int,
    path: str = "eager",
    *,
    threads: int | None = None,
    warmup: int = 2,
    prefetch_depth: int = DEFAULT_PREFETCH,
    fake_dets: int = 0,
    forward_iters: int = 0,
    seed: int = 0,
    post: Any = None,
    workers: int | None = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """Build the detector of ``path`` on the concrete torch ``device`` and time the pipeline (see :func:`run_pipeline`), then, with
    ``forward_iters > 0``, the forward alone on the first frame (``"forward"``: median / best ms
    and the fps of the median; ``None`` otherwise).

    ``threads`` sets ``torch.set_num_threads`` (which the ONNX Runtime paths follow); ``seed``
    fixes the random initialisation when no weights are given; ``post`` is the detector's
    :class:`~cstrack.model.postprocess.PostprocessConfig` (thresholds; default: spec §11);
    ``workers`` the frame workers (:func:`run_pipeline`).
    """
    from cstrack.model.detector import build_detector

    if threads is not None:
        if threads < 1:
            raise ConfigError(f"must be >= 1, got {threads}", "threads")
        torch.set_num_threads(threads)
    files = list_images(images)
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    detector = build_detector(variant, weights, input_size, path=path, post=post, device=device)
    build_s = time.perf_counter() - t0
    result = run_pipeline(detector, files, frames, warmup=warmup, prefetch_depth=prefetch_depth, fake_dets=fake_dets,
                          workers=workers)
    fwd: dict[str, float] | None = None
    if forward_iters > 0:
        fwd = forward_only(detector, files[0], forward_iters)
        fwd["fps"] = 1000.0 / fwd["ms_median"]
    return {
        "variant": variant,
        "weights": None if weights is None else str(weights),
        "size": list(input_size),
        "path": path,
        "device": device,
        "threads": torch.get_num_threads(),
        "prefetch": prefetch_depth,
        "fake_dets": fake_dets,
        "warmup": warmup,
        "build_s": build_s,
        "images": str(images),
        **result,
        "forward": fwd,
    }
