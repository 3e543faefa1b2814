"""Evaluate a folder of results and record it in the catalog: thin tasks over :mod:`catalog.record`.

A track-all run spanning several datasets becomes one catalog run per (dataset, split): the
catalog's ``runs`` row has one dataset, split, detection mode and preset.  Every flow run is an
observation (:func:`flows.recording.run_info`): its ``run_id`` hashes the results and the flow run,
so a fully cached re-run adds its own row, sharing the earlier run's ``tracks``/``events`` by
reference (:mod:`catalog.ingest`).
"""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from catalog.ingest import RunInfo
from catalog.record import evaluate_into_catalog, record_tracking, scores_into_catalog
from cstrack.eval.scores import SequenceScore
from tasks.remote import staged_results


@task(name="evaluate", task_run_name="evaluate {label}")
def evaluate_task(
    gt_root: str,
    results_dir: str,
    sequences: list[str] | None,
    preset: str,
    label: str,
    catalog_root: str | None = None,
    run: RunInfo | None = None,
    allow_missing: bool = False,
) -> dict[str, Any]:
    """:func:`catalog.record.evaluate_into_catalog` as a task (see there); ground truth and results
    in a bucket are evaluated from a local copy of what evaluation reads (:mod:`tasks.remote`)."""
    with staged_results(gt_root, results_dir, sequences) as (gt_local, results_local):
        return evaluate_into_catalog(gt_local, results_local, sequences, preset, label, catalog_root, run,
                                     allow_missing)


# NO_CACHE: Prefect's default policy would hash every input (a thousand sequences' scores and event
# rows) for a cache key that is never used.
@task(name="record-scores", task_run_name="evaluate {label}", cache_policy=NO_CACHE)
def record_scores_task(
    scores: list[SequenceScore],
    events: list[Any] | None,
    label: str,
    gt_root: str,
    results_dir: str,
    catalog_root: str | None = None,
    run: RunInfo | None = None,
) -> dict[str, Any]:
    """:func:`catalog.record.scores_into_catalog` as a task: the per-sequence scores computed on the
    workers combined and recorded (returns what :func:`evaluate_task` returns)."""
    return scores_into_catalog(scores, label, gt_root, results_dir, catalog_root, run, events=events)


@task(name="record-tracking", task_run_name="record {label}")
def record_tracking_task(
    results_dir: str,
    sequences: list[str],
    label: str,
    catalog_root: str,
    run: RunInfo,
    frame_rates: dict[str, float | None] | None = None,
) -> dict[str, Any]:
    """:func:`catalog.record.record_tracking` as a task: returns ``{"label", "run_id", "counts", "rows"}``."""
    with staged_results(None, results_dir, sequences) as (_, results_local):
        return record_tracking(results_local, sequences, label, catalog_root, run, frame_rates)
