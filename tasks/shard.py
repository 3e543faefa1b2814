"""Many short sequences in one task: a shard.

A Prefect task run costs a few hundred milliseconds of orchestration (its creation, state changes,
cache lookup and result record on the API: ``docs/scale.md``), more than tracking a 20-frame
sequence in gt mode.  ``track-all`` therefore groups sequences shorter than ``shard_frames`` into
shards of at least that many frames (:func:`plan_shards`) and runs each shard as one task, which
keeps, per sequence, what the per-sequence task gives:

- **caching**: the same content key (:func:`tasks.cachekeys.track_key`) names a record under
  ``<results_root>/.cache/shards/``; a hit whose result file is gone or changed is tracked again
  (:func:`tasks.results.check_cached_result`);
- **retries**: a sequence failing with anything but a project error (:class:`CSTrackError`: a
  corrupt image fails the same way every time) is tried again, up to the run's ``retries``;
- **failure isolation**: a failing sequence is one failed item; the shard's other sequences go on;
- **its own outcome, score and catalog rows**: one :class:`ShardItem` per sequence.

A lost worker's shard is rescheduled by Dask; the sequences it had finished are cache hits then.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from prefect import task
from prefect.cache_policies import NO_CACHE

from cstrack.errors import CSTrackError
from cstrack.fsutil import atomic_write_json
from tasks.evaluation import ScoredSequence, score_tracked
from tasks.records import SequenceRef, TrackJob, TrackRecord

SHARD_CACHE = "shards"  # under <results_root>/.cache


@dataclass(frozen=True)
class ShardItem:
    """One sequence of a shard: ``status`` tracked / cached / failed, its record (unless failed),
    ``error`` (``Type: first line``), ``attempts`` and its score when it was scored."""

    seq: SequenceRef
    status: Literal["tracked", "cached", "failed"]
    record: TrackRecord | None = None
    error: str | None = None
    attempts: int = 0
    scored: ScoredSequence | None = None


def plan_shards(seqs: list[SequenceRef], shard_frames: int) -> tuple[list[SequenceRef], list[list[SequenceRef]]]:
    """``(alone, shards)``: sequences with at least ``shard_frames`` frames (or of unknown length:
    videos) keep a task each; the others, in the given order, fill shards of at least
    ``shard_frames`` frames (the last one may be smaller).  ``shard_frames`` 0: no shards."""
    if shard_frames <= 0:
        return list(seqs), []
    alone = [s for s in seqs if s.frames <= 0 or s.frames >= shard_frames]
    shards: list[list[SequenceRef]] = []
    current: list[SequenceRef] = []
    frames = 0
    for s in seqs:
        if s.frames <= 0 or s.frames >= shard_frames:
            continue
        current.append(s)
        frames += s.frames
        if frames >= shard_frames:
            shards.append(current)
            current, frames = [], 0
    if current:
        shards.append(current)
    return alone, shards


def _error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _cached(seq: SequenceRef, out_dir: str, record_path: Path | None) -> TrackRecord | None:
    """The cached record of ``seq`` when it exists and its result is (now) in ``out_dir``."""
    from tasks.results import check_cached_result

    if record_path is None or not record_path.is_file():
        return None
    try:
        import json

        record = TrackRecord.from_json(json.loads(record_path.read_text(encoding="utf-8")))
    except (ValueError, CSTrackError, OSError):
        return None  # unreadable: tracked again
    return record if check_cached_result(record, out_dir) is None else None


def track_one(seq: SequenceRef, run_dir: str, job: TrackJob, retries: int, refresh: bool = False) -> ShardItem:
    """Track (or find cached) one sequence of a shard; never raises for the sequence's own failure."""
    from tasks.cachekeys import track_key
    from tasks.track import track_sequence_task

    out_dir = str(Path(run_dir) / seq.dataset / seq.split)
    try:
        key = track_key(seq.seq_dir, job, seq.video)
    except (CSTrackError, OSError) as exc:
        return ShardItem(seq, "failed", error=_error(exc))
    record_path = None if key is None else Path(job.results_root) / ".cache" / SHARD_CACHE / f"{key}.json"
    hit = None if refresh else _cached(seq, out_dir, record_path)
    if hit is not None:
        return ShardItem(seq, "cached", hit)
    for attempt in range(1, retries + 2):
        try:
            record = track_sequence_task.fn(seq, out_dir, job)
        except CSTrackError as exc:  # fails the same way every time
            return ShardItem(seq, "failed", error=_error(exc), attempts=attempt)
        except Exception as exc:  # transient (a full disk, a lost mount): try again
            if attempt > retries:
                return ShardItem(seq, "failed", error=_error(exc), attempts=attempt)
            time.sleep(min(2.0, 0.5 * attempt))
            continue
        if record_path is not None:
            atomic_write_json(record_path, record.to_json())
        return ShardItem(seq, "tracked", record, attempts=attempt)
    raise AssertionError("unreachable")  # pragma: no cover


@task(name="track-shard", task_run_name="track shard {label}", cache_policy=NO_CACHE, persist_result=False,
      retries=0, tags=["cstrack-track"])
def track_shard_task(seqs: list[SequenceRef], run_dir: str, jobs: dict[str, TrackJob], retries: int,
                     presets: dict[str, str] | None, events: bool, label: str) -> list[ShardItem]:
    """Track every sequence of ``seqs`` (``jobs[seq.dataset]``; results under
    ``run_dir/<dataset>/<split>``), then score each tracked or cached one that has ground truth
    with ``presets[seq.dataset]`` (``presets`` None: no scoring).  One item per sequence, in order."""
    items = []
    for seq in seqs:
        item = track_one(seq, run_dir, jobs[seq.dataset], retries)
        if presets is not None and item.record is not None and seq.has_gt:
            out_dir = str(Path(run_dir) / seq.dataset / seq.split)
            item = ShardItem(item.seq, item.status, item.record, item.error, item.attempts,
                             score_tracked(seq, out_dir, presets[seq.dataset], events))
        items.append(item)
    return items
