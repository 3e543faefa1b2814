"""The per-sequence tracking task: one call of the tracking loop (:mod:`cstrack.run`).

Arguments are small frozen records (:mod:`tasks.records`: they pickle to Dask workers cheaply and
:mod:`tasks.cachekeys` hashes their values):

- ``seq``: a :class:`~tasks.records.SequenceRef` (:func:`tasks.data.select_sequences`)
- ``out_dir``: absolute folder of ``<SEQ>.txt`` (the same path on every worker: a shared volume)
- ``job``: a :class:`~tasks.records.TrackJob` (the effective inference settings, :mod:`flows.inference`)

The result file is written atomically by the runner; the timing record beside it
(``<SEQ>.timing.json``) atomically here.  The returned :class:`~tasks.records.TrackRecord` is small (no
arrays) and is what the cache persists (:mod:`tasks.cachekeys` keys it by content).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import time
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import CachePolicy

from cstrack.errors import CSTrackError, StoreUnreachableError
from cstrack.fsutil import atomic_write_json, sha256_file
from cstrack.model.device import describe_device
from cstrack.storage import is_remote
from tasks.cachekeys import track_cache_key, weights_fingerprint
from tasks.records import JobModel, SequenceRef, TrackJob, TrackRecord
from tasks.runtime import set_torch_threads, worker_identity

# Model weights that are only partly pretrained ("coco": REN and the embedding head keep their
# initialisation) must be initialised identically in every process for results to be reproducible
# and cacheable.
INIT_SEED = 0


def timing_path(out_dir: str | Path, name: str) -> Path:
    return Path(out_dir) / f"{name}.timing.json"


# The flows' spelling of the model's parameters (flows.inference.PARAM_PATHS) for errors raised on a worker.
_WORKER_PARAMS = {"device": "model.device", "path": "model.path", "weights": "model.weights"}


def build_model_detector(model: JobModel, post: Any) -> Any:
    """``model``'s detector built on this worker; a device this worker lacks (``cuda`` pinned by a
    flow on another host, :meth:`cstrack.model.ref.ModelRef.pin`) fails with one line naming
    ``model.device``."""
    from cstrack.errors import ConfigError

    try:
        return model.ref.build_detector(model.settings, post)
    except ConfigError as exc:
        raise exc.renamed(_WORKER_PARAMS) from None


@functools.lru_cache(maxsize=2)
def _detector(model: JobModel, weights_sha: str | None, conf_thres: float) -> Any:
    """One detector per worker process and model (weights are loaded once, not per sequence;
    ``weights_sha`` keys the cache so that a checkpoint rewritten in place is loaded again)."""
    import torch

    torch.manual_seed(INIT_SEED)
    return build_model_detector(model, dataclasses.replace(model.settings.postprocess_config(), conf_thres=conf_thres))


def detector_for(model: JobModel, conf_thres: float | None = None) -> Any:
    """The worker's detector for ``model`` (built once per process and model) at its detection
    threshold, or at ``conf_thres`` (a cache's score floor)."""
    return _detector(model, weights_fingerprint(model.weights), float(model.conf_thres if conf_thres is None
                                                                       else conf_thres))


def _track_video(seq: SequenceRef, out_dir: str, job: TrackJob, detector: Any, progress: Any, depth: int) -> Any:
    """Track a video sequence (private mode only); a decode error fails the task after the frames
    before it are written."""
    from cstrack.errors import ConfigError
    from cstrack.model.inference_settings import tracker_config
    from cstrack.run.source import track_source
    from cstrack.sources import make_source

    if job.mode != "private" or detector is None or seq.video is None:
        raise ConfigError(f"{seq.video}: a video sequence is tracked in private mode (no det/gt boxes to read)")
    from cstrack.infer.batch import batching

    detector = batching(detector, None, job.model.precision, live=True)  # one frame per call, as cstrack track
    source = make_source(seq.video, "video")
    source.name = seq.name
    run = track_source(source, out_dir, detector, tracker_config(job.settings),
                       frame_rate=seq.fps or job.model.frame_rate, prefetch=depth, progress=progress)
    if run.error is not None:
        raise run.error
    return run


def _track_cached(seq: SequenceRef, out_dir: str, job: TrackJob) -> Any:
    """Cached mode: the sequence's network outputs from ``<results_root>/detcache`` (computed first
    when missing, at the cache's score floor) replayed through the tracker at the job's threshold."""
    from cstrack.model.inference_settings import tracker_config
    from cstrack.run.detcache import DEFAULT_SCORE_FLOOR, CacheSpec, ensure_cache, track_cached

    m = job.model
    spec = CacheSpec.of(m.ref, m.settings, DEFAULT_SCORE_FLOOR)
    cache = ensure_cache(seq.seq_dir, job.results_root, spec, lambda: detector_for(m, DEFAULT_SCORE_FLOOR))
    return track_cached(seq.seq_dir, out_dir, cache, tracker_config(job.settings), float(m.conf_thres))


class _Progress:
    """The runner's per-frame callback: logs every 10 % and remembers when the first frame was done."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total, self.done = label, total, 0
        self.first_frame_unix: float | None = None
        self.step = max(1, total // 10)
        self.t0 = time.perf_counter()

    def __call__(self, n: int) -> None:
        if self.first_frame_unix is None:
            self.first_frame_unix = time.time()
        self.done += n
        if self.done % self.step == 0 or self.done == self.total:
            from prefect.logging import get_run_logger

            rate = self.done / max(time.perf_counter() - self.t0, 1e-9)
            get_run_logger().info("%s: %d/%d frames (%.1f fps)", self.label, self.done, self.total, rate)


def is_transient(task: Any, task_run: Any, state: Any) -> bool:
    """``retry_condition_fn``: retry anything but the project's own errors (a corrupt image or a
    bad config fails the same way every time; a lost connection or a full disk may not)."""
    exc = state.data if isinstance(state.data, BaseException) else None
    return not isinstance(exc, CSTrackError) or isinstance(exc, StoreUnreachableError)  # a store restarting


@task(
    name="track-sequence",
    task_run_name="track {seq.dataset}/{seq.name}",
    cache_policy=CachePolicy.from_cache_key_fn(track_cache_key),
    persist_result=True,
    result_serializer="json",
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=is_transient,
    tags=["cstrack-track"],
)
def track_sequence_task(seq: SequenceRef, out_dir: str, job: TrackJob) -> TrackRecord:
    """Track one sequence; return its record (timing, result file + sha256, worker)."""
    if is_remote(seq.seq_dir) or is_remote(out_dir):  # s3:// data or results: a local copy in front (tasks/remote.py)
        from tasks.remote import track_remote

        return track_remote(track_sequence_task.fn, seq, out_dir, job)
    from cstrack.model.inference_settings import tracker_config
    from cstrack.run.frames import prefetched_frames
    from cstrack.run.sequence import track_sequence

    started = dt.datetime.now(dt.UTC)
    t0 = time.perf_counter()
    threads = set_torch_threads(job.torch_threads)
    mode = job.mode
    detector = detector_for(job.model) if job.uses_model and mode != "cached" else None
    setup_s = time.perf_counter() - t0
    progress = _Progress(f"{seq.dataset}/{seq.name}", seq.frames)
    depth = job.prefetch
    if mode == "cached":
        run = _track_cached(seq, out_dir, job)
    elif seq.kind == "video":
        run = _track_video(seq, out_dir, job, detector, progress, depth)
    else:
        if detector is not None:  # model.batch_size (None: the device's default, 8 on CUDA, 1 on the CPU): same tracks
            from cstrack.infer.batch import batching

            detector = batching(detector, job.model.batch_size, job.model.precision)
        run = track_sequence(seq.seq_dir, out_dir, mode, tracker_config(job.settings), detector,
                             frame_reader=prefetched_frames(depth), progress=progress)
    device = describe_device(job.model.device) if job.uses_model else None
    record = TrackRecord(
        device=None if device is None else device.spec,
        device_name=None if device is None else device.name,
        dataset=seq.dataset,
        split=seq.split,
        sequence=run.sequence,
        mode=job.mode,
        kind=seq.kind,
        frame_rate=getattr(run, "frame_rate", None),
        settings=job.settings.to_dict(),
        frames=run.frames,
        fps=run.fps,
        ms=dict(run.ms),
        num_tracks=run.num_tracks,
        num_boxes=run.num_boxes,
        result_path=str(run.result_path),
        result_sha256=sha256_file(run.result_path),
        torch_threads=threads,
        prefetch=depth,
        setup_s=setup_s,
        first_frame_unix=progress.first_frame_unix,
        wall_s=time.perf_counter() - t0,
        started=started.isoformat(timespec="milliseconds"),
        finished=dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
        **dataclasses.asdict(worker_identity()),
    )
    atomic_write_json(timing_path(out_dir, run.sequence), record.to_json())
    return record
