"""Dispatch of track-all's sequences onto Dask: one task per sequence, cached by content, gathered
in completion order; cached records are checked before use and re-tracked when stale."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from prefect.cache_policies import CachePolicy
from prefect.logging.loggers import LoggingAdapter
from prefect_dask import DaskTaskRunner
from prefect_dask.task_runners import PrefectDaskFuture

from cstrack.errors import ConfigError
from cstrack.paths import SHIPPED_WEIGHTS, shipped_weights
from cstrack.storage import Location, is_remote
from flows.cluster import (
    declared_resources,
    is_connection_loss,
    job_resources,
    placed,
    scheduler_lost,
    scheduler_unreachable,
)
from flows.inference import track_all_model
from flows.params import DatasetSelection, TrackAllParams
from tasks.cachekeys import track_cache_key
from tasks.records import SequenceOutcome, SequenceRef, TrackJob, TrackRecord
from tasks.remote import cache_storage
from tasks.results import check_cached_result
from tasks.track import track_sequence_task

CACHE_DIR = ".cache"  # under results_root: cache keys (metadata) and the small persisted records

Logger = logging.Logger | LoggingAdapter
TrackFuture = PrefectDaskFuture[TrackRecord]


def abs_path(path: str | Path) -> Path:
    return Path(path).expanduser().resolve()


def abs_root(root: str | Path) -> Path | Location:
    """A data/results/catalog root: an absolute local path, or an ``s3://`` (any URL) location kept
    as given (:mod:`cstrack.storage`; ``/`` and ``str`` work alike on both)."""
    return Location.of(str(root)) if is_remote(root) else abs_path(root)


def error_text(exc: BaseException) -> str:
    """``Type: first line of the message``."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def resolve_weights(weights: str | None) -> str | None:
    """Absolute checkpoint path (Dask workers have their own working directories)."""
    if weights is None or weights == "coco":
        return weights
    if weights == SHIPPED_WEIGHTS and not Path(weights).is_file():  # the default, run outside the repository
        return str(shipped_weights())
    return str(abs_path(weights))


def job_for(params: TrackAllParams, selection: DatasetSelection) -> TrackJob:
    """The ``job`` argument of :func:`tasks.track.track_sequence_task` for one dataset selection:
    the checkpoint's inference settings with the run's overrides, resolved (:mod:`flows.inference`)."""
    return TrackJob(
        mode=params.mode_of(selection),
        uses_model=params.appearance_of(selection),
        model=track_all_model(params, resolve_weights(params.model.weights)),
        torch_threads=params.cluster.torch_threads,
        prefetch=params.cluster.prefetch,
        results_root=str(abs_root(params.results_root)),  # cached mode: where detcache/ lives
    )


def tracking_task(results_root: Path | Location, retries: int, refresh: bool = False) -> Any:
    """The tracking task with its cache records under ``results_root/.cache`` (shared by every
    worker that sees the results volume or bucket, and surviving a temporary Prefect home)."""
    cache = results_root / CACHE_DIR
    return track_sequence_task.with_options(
        cache_policy=CachePolicy.from_cache_key_fn(track_cache_key).configure(
            key_storage=cache_storage(str(cache / "keys")) if isinstance(cache, Location) else str(cache / "keys")),
        result_storage=cache_storage(str(cache / "records")),
        retries=retries,
        refresh_cache=refresh,
    )


def cached_record(value: object) -> TrackRecord:
    """The task's result as a record: a :class:`TrackRecord`, or the plain JSON object a cache
    record written before the typed records holds (the same fields as ``<SEQ>.timing.json``)."""
    if isinstance(value, TrackRecord):
        return value
    if isinstance(value, Mapping):
        return TrackRecord.from_json(value)
    raise ConfigError(f"tracking record: expected a TrackRecord, got {type(value).__name__}")


def _outcome(seq: SequenceRef, future: TrackFuture) -> SequenceOutcome:
    """The outcome of a finished future: tracked, cached or failed (with the error)."""
    try:
        state = future.wrapped_future.result()  # the task engine's final Prefect state
    except Exception as exc:  # the Dask side gave up (KilledWorker after repeated worker loss, a lost scheduler)
        return SequenceOutcome(seq, "failed", error=error_text(exc), scheduler_lost=is_connection_loss(exc))
    if not state.is_completed():
        err = state.result(raise_on_failure=False)
        error = error_text(err) if isinstance(err, BaseException) else f"{state.name}: {state.message}"
        return SequenceOutcome(seq, "failed", error=error)
    try:
        record = cached_record(state.result())
    except ConfigError as exc:  # a cache record of another shape: tracked again (run_sequences)
        return SequenceOutcome(seq, "failed", error=f"cached record unusable ({exc})", stale=True)
    return SequenceOutcome(seq, "cached" if state.name == "Cached" else "tracked", record)


def _submit(runner: DaskTaskRunner, task: Any, seqs: Iterable[SequenceRef], run_dir: Path | Location,
            jobs: Mapping[str, TrackJob]) -> list[tuple[SequenceRef, TrackFuture]]:
    """One task per sequence; a job whose model runs on CUDA asks for a GPU worker (flows.cluster)."""
    declared = declared_resources(runner.client)
    pairs = []
    for s in seqs:
        with placed(job_resources(jobs[s.dataset], declared)):
            pairs.append((s, runner.submit(task, parameters={"seq": s, "out_dir": str(run_dir / s.dataset / s.split),
                                                             "job": jobs[s.dataset]})))
    return pairs


def _gather(runner: DaskTaskRunner, pairs: list[tuple[SequenceRef, TrackFuture]], logger: Logger, done_before: int,
            total: int) -> list[SequenceOutcome]:
    """Wait for every future, logging each as it finishes (completion order)."""
    from distributed import as_completed

    by_key = {f.wrapped_future.key: (s, f) for s, f in pairs}
    out = []
    k = done_before
    with runner.client.as_current():
        for dask_future in as_completed([f.wrapped_future for _, f in pairs]):
            seq, fut = by_key[dask_future.key]
            o = _outcome(seq, fut)
            k += 1
            if o.stale:
                logger.warning("[%d/%d] %s: %s: tracking again", k, total, seq.label, o.error)
            elif o.record is None:
                logger.error("[%d/%d] %s FAILED: %s", k, total, seq.label, o.error)
            else:
                logger.info("[%d/%d] %s %s on %s: %d frames, %.1f fps", k, total, seq.label, o.status,
                            o.record.worker, o.record.frames, o.record.fps)
            out.append(o)
    lost = sum(o.scheduler_lost for o in out)
    if lost:
        raise scheduler_lost(str(runner.address), len(out) - lost + done_before, total)
    return out


def run_sequences(runner: DaskTaskRunner, params: TrackAllParams, seqs: list[SequenceRef], run_dir: Path | Location,
                  results_root: Path | Location, logger: Logger) -> list[SequenceOutcome]:
    """Track every sequence; cached records are checked (and their result put in place) and
    re-tracked when their result file is gone or differs."""
    jobs = {d.name: job_for(params, d) for d in params.datasets}
    total = len(seqs)
    try:  # the runner connects to its scheduler at the first submission
        pairs = _submit(runner, tracking_task(results_root, params.retries), seqs, run_dir, jobs)
    except OSError as exc:
        raise scheduler_unreachable(str(runner.address), exc) from exc
    outcomes = _gather(runner, pairs, logger, 0, total)
    stale = [o for o in outcomes if o.stale]
    for o in outcomes:
        if o.status == "cached" and o.record is not None:
            problem = check_cached_result(o.record, str(run_dir / o.seq.dataset / o.seq.split))
            if problem:
                logger.warning("%s: cached record unusable (%s): tracking again", o.seq.label, problem)
                stale.append(o)
    if stale:
        redo = _gather(runner, _submit(runner, tracking_task(results_root, params.retries, refresh=True),
                               [o.seq for o in stale], run_dir, jobs), logger, total - len(stale), total)
        keep = [o for o in outcomes if o not in stale]
        outcomes = keep + redo
    order = {s.label: i for i, s in enumerate(seqs)}
    return sorted(outcomes, key=lambda o: order[o.seq.label])
