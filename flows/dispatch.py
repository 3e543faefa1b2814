"""Dispatch of track-all's sequences onto Dask: one task per sequence (or one per shard of short
sequences, :mod:`tasks.shard`), cached by content, gathered in completion order; cached records are
checked before use and re-tracked when stale; each sequence with ground truth is scored on a
worker as soon as it is tracked (:mod:`tasks.evaluation`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import uuid4

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
    placement,
    scheduler_lost,
    scheduler_unreachable,
)
from flows.inference import track_all_model
from flows.params import DatasetSelection, TrackAllParams
from tasks.cachekeys import track_cache_key
from tasks.evaluation import ScoredSequence, score_tracked
from tasks.records import SequenceOutcome, SequenceRef, TrackJob, TrackRecord
from tasks.remote import cache_storage
from tasks.results import check_cached_result
from tasks.shard import ShardItem, plan_shards, track_shard_task
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
    mode = params.mode_of(selection)
    if mode == "cached" and params.model.precision != "fp32":
        raise ConfigError("the detection cache holds fp32 network outputs; mode cached runs fp32", "model.precision")
    return TrackJob(
        mode=mode,
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


@dataclass
class Dispatched:
    """What :func:`run_sequences` gives back: every sequence's outcome (in selection order), the
    scores computed on the workers (by :attr:`SequenceRef.label`; sequences with ground truth,
    when the run evaluates), how many tracking tasks were submitted and where the time went."""

    outcomes: list[SequenceOutcome]
    scores: dict[str, ScoredSequence] = field(default_factory=dict)
    tasks: int = 0
    shards: int = 0
    timings: dict[str, float] = field(default_factory=dict)


class _Scorer:
    """Scores each tracked sequence with ground truth on a Dask worker as soon as it is in place:
    a plain Dask future (no Prefect task run), gathered at the end."""

    def __init__(self, runner: DaskTaskRunner, run_dir: Path | Location, presets: Mapping[str, str] | None) -> None:
        self.runner, self.run_dir, self.presets = runner, run_dir, presets
        self.futures: dict[str, Any] = {}
        self.done: dict[str, ScoredSequence] = {}
        self.declared: set[str] | None = None  # the cluster's worker resources, read at the first submission

    def submit(self, seq: SequenceRef) -> None:
        if self.presets is None or not seq.has_gt or seq.label in self.done:
            return
        out_dir = str(self.run_dir / seq.dataset / seq.split)
        if self.declared is None:
            self.declared = declared_resources(self.runner.client)
        with placed(placement(False, self.declared)):  # evaluation needs no GPU: it stays off the GPU workers
            self.futures[seq.label] = self.runner.client.submit(score_tracked, seq, out_dir, self.presets[seq.dataset],
                                                                True, pure=False, key=f"score-{seq.label}-{uuid4().hex}")

    def gather(self) -> dict[str, ScoredSequence]:
        for label, fut in self.futures.items():
            try:
                self.done[label] = fut.result()
            except Exception as exc:  # the worker died twice, the scheduler went away: scored in the flow
                self.done[label] = ScoredSequence(label, None, error=f"scoring lost ({error_text(exc)})")
        self.futures.clear()
        return self.done


def _log(logger: Logger, k: int, total: int, o: SequenceOutcome) -> None:
    seq = o.seq
    if o.stale:
        logger.warning("[%d/%d] %s: %s: tracking again", k, total, seq.label, o.error)
    elif o.record is None:
        logger.error("[%d/%d] %s FAILED: %s", k, total, seq.label, o.error)
    else:
        logger.info("[%d/%d] %s %s on %s: %d frames, %.1f fps", k, total, seq.label, o.status,
                    o.record.worker, o.record.frames, o.record.fps)


def _gather(runner: DaskTaskRunner, pairs: list[tuple[SequenceRef, TrackFuture]], logger: Logger, done_before: int,
            total: int, shards: list[tuple[list[SequenceRef], Any]] | None = None,
            scorer: _Scorer | None = None) -> list[SequenceOutcome]:
    """Wait for every future (per-sequence tasks and shards), logging each sequence as it finishes
    (completion order); a freshly tracked sequence is handed to ``scorer`` at once."""
    from distributed import as_completed

    by_key: dict[Any, tuple[str, Any, Any]] = {f.wrapped_future.key: ("seq", s, f) for s, f in pairs}
    by_key.update({f.wrapped_future.key: ("shard", seqs, f) for seqs, f in shards or []})
    out = []
    k = done_before
    with runner.client.as_current():
        for dask_future in as_completed([f.wrapped_future for _, _, f in by_key.values()]):
            kind, what, fut = by_key[dask_future.key]
            if kind == "seq":
                got = [_outcome(what, fut)]
            else:
                got, scores = _shard_outcomes(what, fut)
                if scorer is not None:
                    scorer.done.update(scores)
            for o in got:
                k += 1
                _log(logger, k, total, o)
                if scorer is not None and o.status == "tracked":
                    scorer.submit(o.seq)
                out.append(o)
    lost = sum(o.scheduler_lost for o in out)
    if lost:
        raise scheduler_lost(str(runner.address), len(out) - lost + done_before, total)
    return out


def _shard_outcomes(seqs: list[SequenceRef], future: Any) -> tuple[list[SequenceOutcome], dict[str, ScoredSequence]]:
    """The outcomes (and scores) of a finished shard; a shard that failed as a whole (its worker
    lost repeatedly, the scheduler gone) fails each of its sequences with that error."""
    try:
        state = future.wrapped_future.result()
    except Exception as exc:
        lost = is_connection_loss(exc)
        return [SequenceOutcome(s, "failed", error=error_text(exc), scheduler_lost=lost) for s in seqs], {}
    if not state.is_completed():
        err = state.result(raise_on_failure=False)
        error = error_text(err) if isinstance(err, BaseException) else f"{state.name}: {state.message}"
        return [SequenceOutcome(s, "failed", error=error) for s in seqs], {}
    items: list[ShardItem] = state.result()
    outcomes = [SequenceOutcome(i.seq, i.status, i.record, i.error) for i in items]
    return outcomes, {i.seq.label: i.scored for i in items if i.scored is not None}


def _submit_shards(runner: DaskTaskRunner, shards: list[list[SequenceRef]], run_dir: Path,
                   jobs: Mapping[str, TrackJob], params: TrackAllParams,
                   presets: Mapping[str, str] | None) -> list[tuple[list[SequenceRef], Any]]:
    """One task per shard (placed as its first sequence's job asks: flows.cluster)."""
    declared = declared_resources(runner.client)
    out = []
    for i, seqs in enumerate(shards):
        label = f"{i + 1}/{len(shards)} ({len(seqs)} sequences, {sum(s.frames for s in seqs)} frames)"
        with placed(job_resources(jobs[seqs[0].dataset], declared)):
            out.append((seqs, runner.submit(track_shard_task, parameters={
                "seqs": seqs, "run_dir": str(run_dir), "jobs": {s.dataset: jobs[s.dataset] for s in seqs},
                "retries": params.retries, "presets": None if presets is None else dict(presets), "events": True,
                "label": label})))
    return out


def run_sequences(runner: DaskTaskRunner, params: TrackAllParams, seqs: list[SequenceRef], run_dir: Path | Location,
                  results_root: Path | Location, logger: Logger) -> Dispatched:
    """Track every sequence and, when the run evaluates, score each one with ground truth on the
    workers as it finishes.  Sequences shorter than ``params.shard_frames`` go in shards
    (:mod:`tasks.shard`); the others have a task each, whose cached records are checked (and
    their result put in place) and re-tracked when their result file is gone or differs.  Results
    in a bucket (a :class:`Location`): no shards and no scoring on the workers (the flow evaluates
    each (dataset, split) from a local copy, :mod:`tasks.remote`)."""
    t0 = time.perf_counter()
    jobs = {d.name: job_for(params, d) for d in params.datasets}
    local = not isinstance(run_dir, Location)
    presets = {d.name: d.preset for d in params.datasets} if params.evaluate and local else None
    alone, shards = plan_shards(seqs, params.shard_frames if local else 0)
    total = len(seqs)
    scorer = _Scorer(runner, run_dir, presets)
    try:  # the runner connects to its scheduler at the first submission
        pairs = _submit(runner, tracking_task(results_root, params.retries), alone, run_dir, jobs)
        shard_futures = _submit_shards(runner, shards, Path(str(run_dir)), jobs, params, presets)
    except OSError as exc:
        raise scheduler_unreachable(str(runner.address), exc) from exc
    t_submitted = time.perf_counter()
    outcomes = _gather(runner, pairs, logger, 0, total, shard_futures, scorer)
    in_shards = {s.label for shard in shards for s in shard}
    stale = [o for o in outcomes if o.stale]
    for o in outcomes:
        if o.status == "cached" and o.record is not None and o.seq.label not in in_shards:
            problem = check_cached_result(o.record, str(run_dir / o.seq.dataset / o.seq.split))
            if problem:
                logger.warning("%s: cached record unusable (%s): tracking again", o.seq.label, problem)
                stale.append(o)
            else:
                scorer.submit(o.seq)
    if stale:
        redo = _gather(runner, _submit(runner, tracking_task(results_root, params.retries, refresh=True),
                               [o.seq for o in stale], run_dir, jobs), logger, total - len(stale), total,
                       scorer=scorer)
        keep = [o for o in outcomes if o not in stale]
        outcomes = keep + redo
    t_tracked = time.perf_counter()
    scores = scorer.gather()
    order = {s.label: i for i, s in enumerate(seqs)}
    return Dispatched(
        outcomes=sorted(outcomes, key=lambda o: order[o.seq.label]), scores=scores,
        tasks=len(pairs) + len(shard_futures) + len(stale), shards=len(shard_futures),
        timings={"submit_s": t_submitted - t0, "track_s": t_tracked - t_submitted,
                 "score_wait_s": time.perf_counter() - t_tracked})
